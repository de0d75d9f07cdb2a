"""Spectrograms and back: the signal processing under speech generation, in tensor ops and
``torch.stft`` / ``torch.istft`` only (docs/architecture.md §2).

- ``hann_window``; ``stft`` / ``istft``: complex spectrograms in the project's layout
  (..., frames, n_fft // 2 + 1), frames centred (frame t is centred on sample t · hop, the
  signal padded with n_fft // 2 zeros each side: ``centred_frames`` counts them, 1 + samples //
  hop for an even n_fft). Zero padding, as
  librosa, keeps the STFT linear, so ``istft`` (windowed overlap-add divided by the summed
  squared windows) is its exact least-squares inverse.
- ``hz_to_mel`` / ``mel_to_hz`` on the HTK scale (mel = 2595 log10(1 + f / 700)) or librosa's
  Slaney scale (f / (200 / 3) below 1000 Hz, 15 + ln(f / 1000) / (ln 6.4 / 27) above);
  ``mel_filterbank`` (triangles on either scale, optionally area-normalised: torchaudio's
  ``melscale_fbanks`` and librosa's ``filters.mel``); ``mel_spectrogram`` (centred frames);
  ``inverse_mel``: the least-squares way back from mel power to linear power.
- ``griffin_lim``: a waveform whose STFT magnitude matches a given one, by alternating
  projections (Griffin & Lim 1984) with Perraudin et al.'s momentum (2013);
  ``spectral_convergence`` measures how well it matched.

``audio.py`` (the keyword features: uncentred frames) imports the window and the mel helpers
from here. Lesson 29 teaches this file.
"""

from __future__ import annotations

import math

import torch

SCALES = ("htk", "slaney")
NORMS = (None, "slaney")
SLANEY_HZ_PER_MEL = 200.0 / 3.0  # the linear part: 1 mel per 66.7 Hz
SLANEY_BREAK_HZ = 1000.0  # where the scale turns logarithmic ...
SLANEY_BREAK_MEL = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL  # ... at mel 15
SLANEY_LOG_STEP = math.log(6.4) / 27.0  # 27 mels per factor 6.4 in frequency above it


def hann_window(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The periodic Hann window 0.5 - 0.5 cos(2π k / n), k = 0..n-1 (as ``torch.hann_window``)."""
    return 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n, dtype=torch.float64) / n).to(dtype)


def _window(window: torch.Tensor | None, n_fft: int, like: torch.Tensor) -> torch.Tensor:
    """``window`` or a Hann window of ``n_fft``, in the real dtype and on the device of ``like``."""
    if window is None:
        window = hann_window(n_fft, torch.float64)
    if window.shape != (n_fft,):
        raise ValueError(
            f"window: expected shape ({n_fft},) for n_fft={n_fft}, got {tuple(window.shape)}"
        )
    real = like.real if like.is_complex() else like
    return window.to(dtype=real.dtype, device=like.device)


def centred_frames(samples: int, n_fft: int, hop: int) -> int:
    """How many frames ``stft`` makes of ``samples``: 1 + samples // hop for an even n_fft."""
    return 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop


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
    # BEGIN SOLUTION
    flat = waveform.reshape(-1, waveform.shape[-1])  # torch.stft takes (batch, samples)
    spectrum = torch.stft(
        flat, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
    ).transpose(-1, -2)  # (batch, freq, frames) -> (batch, frames, freq)
    return spectrum.reshape(*waveform.shape[:-1], *spectrum.shape[1:])
    # END SOLUTION


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
    # BEGIN SOLUTION
    flat = spectrum.reshape(-1, *spectrum.shape[-2:]).transpose(-1, -2)  # (batch, freq, frames)
    waveform = torch.istft(flat, n_fft, hop, window=window, center=True, length=length)
    return waveform.reshape(*spectrum.shape[:-2], waveform.shape[-1])
    # END SOLUTION


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"mel scale must be one of {SCALES}, got {scale!r}")


def hz_to_mel(hz: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Frequencies (any shape) -> mels on the ``scale`` ("htk" or "slaney"), elementwise."""
    _check_scale(scale)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    # BEGIN SOLUTION
    linear = hz / SLANEY_HZ_PER_MEL
    # clamp: the log branch is computed everywhere, and log(0) would be -inf where it is unused
    log_ratio = torch.log(hz.clamp(min=SLANEY_BREAK_HZ) / SLANEY_BREAK_HZ)
    logarithmic = SLANEY_BREAK_MEL + log_ratio / SLANEY_LOG_STEP
    return torch.where(hz >= SLANEY_BREAK_HZ, logarithmic, linear)
    # END SOLUTION


def mel_to_hz(mel: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Mels (any shape) on the ``scale`` -> frequencies, elementwise: ``hz_to_mel``'s inverse."""
    _check_scale(scale)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    # BEGIN SOLUTION
    logarithmic = SLANEY_BREAK_HZ * torch.exp(SLANEY_LOG_STEP * (mel - SLANEY_BREAK_MEL))
    return torch.where(mel >= SLANEY_BREAK_MEL, logarithmic, SLANEY_HZ_PER_MEL * mel)
    # END SOLUTION


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
    # BEGIN SOLUTION
    limits = hz_to_mel(torch.tensor([f_min, f_max], dtype=torch.float64), scale)
    mel_min, mel_max = limits.tolist()
    edges = mel_to_hz(torch.linspace(mel_min, mel_max, n_mels + 2, dtype=torch.float64), scale)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    bank = torch.minimum(rising, falling).clamp(min=0)
    if norm == "slaney":
        bank = bank * (2.0 / (upper - lower))
    return bank.to(dtype)
    # END SOLUTION


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
    # BEGIN SOLUTION
    pseudo_inverse = torch.linalg.pinv(filterbank.double()).to(mel_power.dtype)  # (n_mels, freq)
    return (mel_power @ pseudo_inverse).clamp(min=0)
    # END SOLUTION


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
    # BEGIN SOLUTION
    generator = torch.Generator(magnitude.device).manual_seed(seed)
    turns = torch.rand(
        magnitude.shape, generator=generator, dtype=magnitude.dtype, device=magnitude.device
    )
    phase = torch.polar(torch.ones_like(magnitude), 2 * math.pi * turns)  # unit complex numbers
    previous = torch.zeros_like(phase)
    for _ in range(n_iter):
        consistent = stft(istft(magnitude * phase, n_fft, hop, window, length), n_fft, hop, window)
        accelerated = consistent + momentum * (consistent - previous)
        # the phase of the accelerated point; a zero bin keeps phase 0 (its magnitude hides it)
        phase = accelerated / accelerated.abs().clamp(min=torch.finfo(magnitude.dtype).tiny)
        previous = consistent
    return istft(magnitude * phase, n_fft, hop, window, length)
    # END SOLUTION
