TEXT = """Lesson 29: Sound -- the STFT, the mel scale, and the phase Griffin-Lim puts back

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
