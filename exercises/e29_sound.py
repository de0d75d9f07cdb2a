"""Lesson 29: Sound -- the STFT, the mel scale, and the phase Griffin-Lim puts back

The idea
A waveform is a row of samples x[n], 16 000 a second. Speech models neither read nor write it
directly: they read and predict a spectrogram, how much energy each frequency has in each
window of ~25 ms. A text-to-speech model predicts a log-mel spectrogram, and something must turn
that back into samples (a vocoder). This lesson builds both directions without a single learned
weight: the short-time Fourier transform (STFT), mel filters, and Griffin-Lim, which recovers
the phase that a magnitude spectrogram threw away.

The STFT: frames, window, hop
Cut x into frames of n_fft samples, hop samples apart; multiply each by a window w (periodic
Hann: w[k] = 0.5 - 0.5 cos(2π k / n_fft)); take each frame's real FFT:
    X[t, f] = Σ_k w[k] x[t·hop - n_fft/2 + k] exp(-2πi f k / n_fft),    f = 0 .. n_fft // 2
Bin f is the frequency f · sample_rate / n_fft. Frames are centred: frame t is centred on
sample t · hop, the signal padded with n_fft // 2 zeros at each end, so the first and last
samples get whole frames too: 1 + samples // hop frames for an even n_fft. One second at
16 kHz with n_fft = 400 (25 ms), hop = 160 (10 ms): 101 frames of 201 bins, 15 of every 25 ms
shared with the neighbour (audio.log_mel's uncentred frames: 1 + (16000 - 400) // 160 = 98).
Shapes: stft (..., samples) -> complex (..., frames, n_fft // 2 + 1), time first, as every
sequence model reads it; torch.stft takes (batch, samples) and returns (batch, freq, frames).
Why a window: a frame cut with sharp edges jumps at each edge, and the jump leaks energy into
every bin; Hann tapers the frame to 0 at both ends.

The way back: overlap-add
Each frame's inverse FFT gives w · (its slice of x) back. Put every frame where it came from,
weight it by w again, add, and divide by the summed squared windows:
    x[n] = Σ_t w[n - t·hop] y_t[n - t·hop] / Σ_t w[n - t·hop]²
For the STFT of a signal this is exact. For ANY complex array Y of that shape it gives the
signal whose STFT is closest to Y in least squares (Griffin & Lim 1984) -- the fact Griffin-Lim
rests on. It needs every sample under a window that is not 0 there: with centred frames,
hop ≤ n_fft // 2. Padding with zeros (not torch.stft's default, reflection) keeps the STFT a
linear map, so the least-squares claim holds at the ends as well.

The mel scale
We hear low frequencies finely and high ones coarsely: 100 -> 200 Hz is a big step, 8000 ->
8100 Hz none at all. A mel scale is about linear below 1 kHz and logarithmic above. Two are
in use, and they give different numbers:
    HTK (torchaudio's default):   mel = 2595 log10(1 + f / 700)
    Slaney (librosa's default):   mel = f / (200/3)                          below 1000 Hz
                                  mel = 15 + ln(f / 1000) / (ln 6.4 / 27)    from 1000 Hz
Slaney is 3 mels per 200 Hz, then 27 mels per factor 6.4: mel(1000 Hz) = 15, mel(6400 Hz) = 42.
hz_to_mel and mel_to_hz convert either way, elementwise; mel_to_hz inverts each piece.

The filterbank
Take n_mels + 2 edges e_0 .. e_{n_mels+1} equally spaced in mel from f_min to f_max, turn them
back into Hz, and make filter m a triangle that rises from 0 at e_m to 1 at e_{m+1} and falls
to 0 at e_{m+2}, read at each bin's frequency f_k = k · sample_rate / n_fft:
    bank[k, m] = max(0, min((f_k - e_m) / (e_{m+1} - e_m), (e_{m+2} - f_k) / (e_{m+2} - e_{m+1})))
bank is (n_fft // 2 + 1, n_mels); the mel power is |X|² @ bank: (..., frames, n_mels), and the
log-mel is its log, floored (1e-10) so silence is not -inf. norm="slaney" divides filter m by
half its width, (e_{m+2} - e_m) / 2, so each triangle has area 1 in Hz: the wide high filters
then do not collect more energy than the narrow low ones (librosa's default, and that of many
speech-synthesis models). mel_filterbank builds the edges, the triangles and the norm.

Why the phase is missing
X[t, f] = |X[t, f]| exp(iφ[t, f]). A spectrogram keeps |X| (or |X|², then mel, then log) and
drops φ: the phase turns by 2π f · hop / sample_rate per frame and depends on where each sound
started, so it looks like noise and is hard to predict, and the ear barely hears it. The
inverse STFT needs it. A random (or zero) phase on |X| gives an array that is the STFT of no
signal (it is INCONSISTENT): overlapping frames disagree about the samples they share, the
overlap-add averages the disagreement, and the result sounds phasey and buzzy.
The mel step loses detail as well: n_mels numbers cannot give back n_fft // 2 + 1.
inverse_mel takes the least-squares answer of smallest norm, P = mel_power @ pinv(bank) with
pinv(bank) (n_mels, freq), clamped at 0 (power is never negative). It is exact for a spectrum
made of the triangles themselves, a smooth guess otherwise; |X| is then sqrt(P).

Griffin-Lim: alternating projections
Two sets of complex arrays: C1, the consistent ones (STFTs of some signal); C2, those with the
target magnitude S. Project back and forth:
    phase = exp(2πi · turns), turns uniform in [0, 1) from a seeded generator
    repeat n_iter times:
        c = stft(istft(S · phase))    the nearest consistent spectrogram (onto C1)
        phase = c / |c|               keep its phase, put the magnitude S back (onto C2)
    return istft(S · phase)
Neither projection can increase the distance between the two current points, so the
spectral convergence ‖S - |stft(x_k)|‖ / ‖S‖ never increases -- but it falls slowly, to a
local optimum.
The fast Griffin-Lim (Perraudin, Balazs & Søndergaard 2013) steps further along the change:
    t = c + α (c - c_previous),   phase = t / |t|,    α = momentum = 0.99, c_previous = 0 at first
Same cost per iteration, a much lower error after 32 of them; momentum = 0 is the classic one.

What you write
stft and istft (torch.stft / torch.istft with center=True, zero padding, the window,
return_complex=True; fold the leading dimensions into the one batch dimension torch takes and
turn (freq, frames) into (frames, freq), and back), the Slaney halves of hz_to_mel and
mel_to_hz, mel_filterbank's edges, triangles and norm, inverse_mel, and griffin_lim after its
checks: the starting phase (torch.rand with a torch.Generator seeded with seed, on the
magnitude's device: the same seed must give the same waveform), the loop, the last istft.
The checks, mel_spectrogram and spectral_convergence are given, and so are the Slaney
constants: SLANEY_HZ_PER_MEL (200/3), SLANEY_BREAK_HZ (1000), SLANEY_BREAK_MEL (15) and
SLANEY_LOG_STEP (ln 6.4 / 27).

Classic pitfalls
- (freq, frames) vs (frames, freq): torch.stft returns frequency first.
- No window (torch.stft's default is a rectangle): the jumps at the frame edges leak into every bin.
- hop > n_fft // 2 with centred frames: the last samples lie under no frame; torch.istft
  pads them with zeros and only warns.
- HTK features into a model trained on Slaney ones, or norm=None vs "slaney": same shapes,
  wrong numbers, no error.
- Power vs magnitude: the mel spectrogram is built from |X|², Griffin-Lim wants |X| = sqrt.
- Slaney's log branch, computed everywhere by torch.where, is log(0) = -inf at 0 Hz: clamp
  f to ≥ 1000 inside it first.
- phase = c / |c| where c = 0: NaN, and the NaN spreads through istft to every sample; clamp
  |c| away from 0.
- Momentum on the angles instead of the complex numbers: angles wrap around at ±π.

A worked example
n_fft = 8 at 8 kHz: 5 bins, at 0, 1000, 2000, 3000 and 4000 Hz. Slaney: mel(4000) = 15 +
ln 4 / (ln 6.4 / 27) = 35.10; two filters need four edges, 0, 11.70, 23.40, 35.10 mel, which
are 0, 781, 1787 and 4000 Hz. At the 1000 Hz bin, filter 0 is falling: (1787 - 1000) / (1787 -
781) = 0.78; filter 1 is rising: (1000 - 781) / (1787 - 781) = 0.22. The 2000 Hz bin is past
filter 0's last edge (0) and on filter 1's falling side: (4000 - 2000) / (4000 - 1787) = 0.90.

Run it
Griffin-Lim puts a phase back under the magnitude of real speech (eSpeak NG, after
`make real`) with your STFT, and writes what it hears:
    python -c "if 1:
        from minimod.data.espeak import render
        from minimod.data.wav import write_wav
        from exercises.e29_sound import griffin_lim, spectral_convergence, stft
        x, rate = render('one two three')[:2]
        magnitude = stft(x, 512, 128).abs()
        for n in (0, 32):
            y = griffin_lim(magnitude, 512, 128, n_iter=n, length=len(x))
            print(n, round(spectral_convergence(magnitude, y, 512, 128).item(), 3))
        write_wav('griffin_lim.wav', y, rate)"
prints 0 0.608 (random phases) and 32 0.088 (32 iterations with momentum), then writes
griffin_lim.wav, 0.8 s of the three words at 22050 Hz: listen to it (about 10 s).
Next: lesson 30 (Text to speech: durations, the length regulator, and every frame at once)

Check it: minimod exercises check 29
Try it (python, in the repository folder):
    >>> import math
    >>> import torch
    >>> from exercises.e29_sound import griffin_lim, hz_to_mel, mel_filterbank
    >>> from exercises.e29_sound import spectral_convergence, stft
    >>> hz_to_mel(torch.tensor([440.0, 1000.0, 6400.0]), "slaney")
    tensor([ 6.6000, 15.0000, 42.0000])
    >>> mel_filterbank(n_fft=8, n_mels=2, sample_rate=8000, scale="slaney")
    tensor([[0.0000, 0.0000],
            [0.7826, 0.2174],
            [0.0000, 0.9037],
            [0.0000, 0.4518],
            [0.0000, 0.0000]])
    >>> x = torch.sin(2 * math.pi * 440 * torch.arange(4000) / 8000)  # half a second of A4
    >>> magnitude = stft(x, n_fft=256, hop=64).abs()  # the phase is thrown away
    >>> magnitude.shape
    torch.Size([63, 129])
    >>> for n_iter in (0, 8, 32):
    ...     y = griffin_lim(magnitude, 256, 64, n_iter, momentum=0.0, length=4000)
    ...     print(n_iter, round(spectral_convergence(magnitude, y, 256, 64).item(), 2))
    0 0.64
    8 0.22
    32 0.13
    >>> y = griffin_lim(magnitude, 256, 64, n_iter=32, length=4000)  # momentum 0.99
    >>> round(spectral_convergence(magnitude, y, 256, 64).item(), 2)
    0.08
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 29`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import math

import torch

from minimod.data.spectral import (
    NORMS,
    SLANEY_BREAK_HZ,
    SLANEY_BREAK_MEL,
    SLANEY_HZ_PER_MEL,
    SLANEY_LOG_STEP,
    _check_scale,
    _window,
    centred_frames,
)

# ---- from minimod/data/spectral.py ----------------------------------------


def stft(
    waveform: torch.Tensor, n_fft: int = 400, hop: int = 160, window: torch.Tensor | None = None
) -> torch.Tensor:
    """(..., samples) -> complex (..., centred_frames(samples, n_fft, hop), n_fft // 2 + 1): the
    rfft of each centred, zero-padded frame times ``window`` (default: periodic Hann)."""
    if n_fft < 1 or hop < 1 or waveform.dim() < 1 or waveform.is_complex():
        raise ValueError(
            f"stft: need n_fft ≥ 1, hop ≥ 1 and a real (..., samples) waveform, got n_fft={n_fft}, "
            f"hop={hop} and a {waveform.dtype} tensor of shape {tuple(waveform.shape)}"
        )
    window = _window(window, n_fft, waveform)
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: stft")
    # END YOUR CODE


def istft(
    spectrum: torch.Tensor,
    n_fft: int = 400,
    hop: int = 160,
    window: torch.Tensor | None = None,
    length: int | None = None,
) -> torch.Tensor:
    """complex (..., frames, n_fft // 2 + 1) -> (..., length) real, length default
    (frames - 1) · hop (+ 1 for an odd n_fft): the signal whose ``stft`` is closest to
    ``spectrum`` (exactly ``spectrum``'s signal when it is one's STFT). Needs hop ≤ n_fft // 2:
    with a longer hop the last samples lie under no frame."""
    if not 1 <= hop <= n_fft // 2 or spectrum.dim() < 2 or spectrum.shape[-1] != n_fft // 2 + 1:
        raise ValueError(
            f"istft: need 1 ≤ hop ≤ n_fft // 2 and a (..., frames, n_fft // 2 + 1) spectrum, got "
            f"n_fft={n_fft}, hop={hop} and shape {tuple(spectrum.shape)}"
        )
    window = _window(window, n_fft, spectrum)
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: istft")
    # END YOUR CODE


def hz_to_mel(hz: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Frequencies (any shape) -> mels on the ``scale`` ("htk" or "slaney"), elementwise."""
    _check_scale(scale)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: hz_to_mel")
    # END YOUR CODE


def mel_to_hz(mel: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Mels (any shape) on the ``scale`` -> frequencies, elementwise: ``hz_to_mel``'s inverse."""
    _check_scale(scale)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: mel_to_hz")
    # END YOUR CODE


def mel_filterbank(
    n_fft: int = 400,
    n_mels: int = 40,
    sample_rate: int = 16000,
    f_min: float = 0.0,
    f_max: float | None = None,
    dtype: torch.dtype = torch.float32,
    scale: str = "htk",
    norm: str | None = None,
) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels): column m is a triangle over the FFT bins' frequencies
    (k · sample_rate / n_fft, as librosa; torchaudio's grid, linspace(0, sample_rate // 2),
    differs for an odd n_fft or sample rate), rising from edge m to its peak at edge m+1 and
    falling to 0 at edge m+2, where the n_mels + 2 edges are equally spaced in mel (``scale``)
    from f_min to f_max (default sample_rate / 2). ``norm=None``: peak height 1;
    ``norm="slaney"``: column m divided by half its width, (edge m+2 - edge m) / 2, so every
    triangle has area ≈ 1 in Hz (torchaudio's ``melscale_fbanks(..., norm, mel_scale)``,
    librosa's ``filters.mel`` transposed).
    ``spectrum @ bank`` maps (..., n_fft // 2 + 1) to (..., n_mels)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    _check_scale(scale)
    if norm not in NORMS:
        raise ValueError(f"mel_filterbank: norm must be None or 'slaney', got {norm!r}")
    if n_fft < 1 or n_mels < 1 or sample_rate <= 0 or not 0 <= f_min < f_max:
        raise ValueError(
            f"mel_filterbank: need n_fft ≥ 1, n_mels ≥ 1, sample_rate > 0 and 0 ≤ f_min < f_max, "
            f"got n_fft={n_fft}, n_mels={n_mels}, sample_rate={sample_rate}, f_min={f_min}, "
            f"f_max={f_max}"
        )
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: mel_filterbank")
    # END YOUR CODE


def mel_spectrogram(
    waveform: torch.Tensor,
    sample_rate: int = 16000,
    n_fft: int = 400,
    hop: int = 160,
    n_mels: int = 40,
    scale: str = "htk",
    norm: str | None = None,
) -> torch.Tensor:
    """(..., samples) -> mel power (..., frames, n_mels): |stft|² @ mel_filterbank,
    on centred frames (what ``griffin_lim`` inverts; audio.log_mel keeps uncentred frames)."""
    bank = mel_filterbank(n_fft, n_mels, sample_rate, dtype=waveform.dtype, scale=scale, norm=norm)
    return stft(waveform, n_fft, hop).abs() ** 2 @ bank.to(waveform.device)


def inverse_mel(mel_power: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """Mel power (..., frames, n_mels) and the (freq, n_mels) ``filterbank`` that made it ->
    linear power (..., frames, freq) ≥ 0: the least-squares solution P of P @ filterbank =
    mel_power of smallest norm (through the pseudo-inverse), negatives clamped to 0. Exact for
    a spectrum in the span of the triangles (P = c @ filterbank.T) when they are independent;
    otherwise a smooth estimate: n_mels numbers cannot give back n_fft // 2 + 1."""
    if filterbank.dim() != 2 or mel_power.dim() < 1 or mel_power.shape[-1] != filterbank.shape[1]:
        raise ValueError(
            f"inverse_mel: expected mel_power (..., n_mels) and a filterbank (freq, n_mels), got "
            f"shapes {tuple(mel_power.shape)} and {tuple(filterbank.shape)}"
        )
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: inverse_mel")
    # END YOUR CODE


def spectral_convergence(
    magnitude: torch.Tensor,
    waveform: torch.Tensor,
    n_fft: int = 400,
    hop: int = 160,
    window: torch.Tensor | None = None,
) -> torch.Tensor:
    """‖S - |stft(waveform)|‖ / ‖S‖ (Frobenius norms over the last two axes): how far the
    waveform's magnitude is from the target ``magnitude`` S (..., frames, n_fft // 2 + 1); 0 is
    a perfect match. Returns (...)."""
    error = magnitude - stft(waveform, n_fft, hop, window).abs()
    return torch.linalg.matrix_norm(error) / torch.linalg.matrix_norm(magnitude)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int = 400,
    hop: int = 160,
    n_iter: int = 32,
    momentum: float = 0.99,
    seed: int = 0,
    length: int | None = None,
    window: torch.Tensor | None = None,
) -> torch.Tensor:
    """A waveform (..., length) whose STFT magnitude is close to ``magnitude`` (..., frames,
    n_fft // 2 + 1), length default as ``istft``'s. Starts from random phases (drawn from
    ``seed``: the same seed gives the same waveform) and repeats ``n_iter`` times: keep the
    phase, impose the magnitude, go to the nearest consistent spectrogram (stft of istft), then
    step ``momentum`` further along the change from the previous one (the fast Griffin-Lim of
    Perraudin et al. 2013; ``momentum=0`` is the classic algorithm, whose spectral convergence
    never increases)."""
    frames = magnitude.shape[-2] if magnitude.dim() >= 2 else 0
    if magnitude.is_complex() or frames < 1 or magnitude.shape[-1] != n_fft // 2 + 1:
        raise ValueError(
            f"griffin_lim: expected a real magnitude (..., frames, n_fft // 2 + 1 = "
            f"{n_fft // 2 + 1}), got a {magnitude.dtype} tensor of shape {tuple(magnitude.shape)}"
        )
    if n_iter < 0 or not 0 <= momentum < 1:
        raise ValueError(
            f"griffin_lim: need n_iter ≥ 0 and 0 ≤ momentum < 1, got n_iter={n_iter} and "
            f"momentum={momentum}"
        )
    if length is not None and centred_frames(length, n_fft, hop) != frames:
        raise ValueError(
            f"griffin_lim: length={length} samples make {centred_frames(length, n_fft, hop)} "
            f"frames at n_fft={n_fft}, hop={hop}, not the magnitude's {frames}"
        )
    # BEGIN YOUR CODE
    raise NotImplementedError("e29: griffin_lim")
    # END YOUR CODE
