"""Synthetic spoken "keywords" and the classic speech features, in tensor ops only.

The keywords are made up by this code, not recorded: each word is a pitch contour (rising,
falling, rise-fall, two tones, ...) sung on a vowel-like tone with a few harmonics, by one of
several synthetic speakers who differ in base pitch, pitch range, speed and timbre. Every clip:
- lasts ``clip_seconds`` (default 1 s at 16 kHz); the word (0.42-0.9 s) starts at a random time;
- has pitch f(τ) = base · 2^(range · contour(τ) / 12) over the word's time τ ∈ [0, 1], with the
  base jittered by up to ±1 semitone and the duration by ±15 % per clip;
- is Σ_h b^(h-1) sin(h φ) for harmonics h = 1..4 (b: the speaker's brightness), φ the running
  phase 2π ∫ f, shaped by the envelope sqrt(sin(π τ)), scaled by an amplitude in [0.3, 0.9];
- has Gaussian noise of standard deviation in [0.003, 0.03] over the whole clip.

Features (tensor ops only, docs/architecture.md §2; the formulas are torchaudio's and librosa's):
frames (``Tensor.unfold``, no centre padding: frames = 1 + (samples - n_fft) // hop) -> periodic
Hann window -> power spectrum |rfft|² -> triangular mel filters on the HTK mel scale
(mel = 2595 log10(1 + f / 700)) -> log (floored at 1e-10) -> orthonormal DCT-II for MFCCs.
Feature tensors are (N, frames, coefficients), the layout ``AudioCNN`` takes. The window and
the mel filters come from ``spectral`` (centred STFTs, the Slaney scale, Griffin-Lim).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from minimod.data.cache import cached
from minimod.data.spectral import hann_window, mel_filterbank

VERSION = 1  # bump when the clips or features change, so cached copies are not reused
SAMPLE_RATE = 16000
LOG_FLOOR = 1e-10
CHUNK = 128  # clips rendered at a time, to bound memory

# Pitch contours in semitones over the word's time t ∈ [0, 1], before the speaker's range.
CONTOURS = {
    "flat": lambda t: torch.zeros_like(t),
    "rise": lambda t: 8 * t - 4,
    "fall": lambda t: 4 - 8 * t,
    "rise_fall": lambda t: 8 * torch.sin(math.pi * t) - 4,
    "fall_rise": lambda t: 4 - 8 * torch.sin(math.pi * t),
    "two_tone_up": lambda t: 3 * torch.tanh(20 * (t - 0.5)),
    "two_tone_down": lambda t: -3 * torch.tanh(20 * (t - 0.5)),
    "wobble": lambda t: 3 * torch.sin(6 * math.pi * t),
}
WORD_NAMES = tuple(CONTOURS)


@dataclass(frozen=True)
class Speaker:
    base_hz: float  # base pitch
    pitch_range: float  # scales the contour's excursions
    seconds: float  # typical word duration
    brightness: float  # harmonic h has amplitude brightness ** (h - 1)


SPEAKERS = (
    Speaker(110.0, 0.8, 0.60, 0.50),
    Speaker(150.0, 1.0, 0.70, 0.60),
    Speaker(190.0, 1.2, 0.50, 0.40),
    Speaker(230.0, 0.9, 0.78, 0.70),
    Speaker(270.0, 1.1, 0.55, 0.55),
    Speaker(130.0, 1.3, 0.65, 0.35),
)


@dataclass
class Keywords:
    """waveforms (N, samples) float32; labels (N,) int64 into word_names; speakers (N,) int64
    into ``SPEAKERS``."""

    waveforms: torch.Tensor
    labels: torch.Tensor
    speakers: torch.Tensor
    word_names: tuple[str, ...]
    sample_rate: int = SAMPLE_RATE


@dataclass
class KeywordFeatures:
    """features (N, frames, coefficients) float32; labels, speakers and word_names as in
    ``Keywords``."""

    features: torch.Tensor
    labels: torch.Tensor
    speakers: torch.Tensor
    word_names: tuple[str, ...]


def make_keywords(
    n: int,
    seed: int = 0,
    words: tuple[str, ...] | None = None,
    speakers: tuple[int, ...] | None = None,
    clip_seconds: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
) -> Keywords:
    """``n`` synthetic keyword clips of the ``words`` (default all of ``WORD_NAMES``), spoken by
    the ``speakers`` (indices into ``SPEAKERS``, default all; pass a subset to hold speakers out).
    Words are balanced (counts differ by at most one); speakers are drawn uniformly."""
    labels, spk, chunks = _clips(n, seed, words, speakers, clip_seconds, sample_rate)
    samples = round(clip_seconds * sample_rate)
    waveforms = torch.cat([torch.empty(0, samples), *chunks])
    return Keywords(waveforms, labels, spk, _words(words), sample_rate)


def keyword_features(
    n: int,
    seed: int = 0,
    kind: str = "log_mel",
    words: tuple[str, ...] | None = None,
    speakers: tuple[int, ...] | None = None,
    n_mels: int = 40,
    n_mfcc: int = 13,
    cache: bool = False,
) -> KeywordFeatures:
    """The ``kind`` ("log_mel" or "mfcc") features of ``make_keywords(n, seed, words,
    speakers)`` (1 s clips at 16 kHz, n_fft=400, hop=160: 98 frames), computed a chunk at a time
    so the waveforms are never all in memory. ``cache=True`` keeps the result in the data cache
    (``minimod.data.cache``) and loads it from there next time."""
    if kind not in ("log_mel", "mfcc"):
        raise ValueError(f"keyword_features: kind must be 'log_mel' or 'mfcc', got {kind!r}")

    def make() -> dict:
        labels, spk, chunks = _clips(n, seed, words, speakers, 1.0, SAMPLE_RATE)
        if kind == "mfcc":
            feats = [mfcc(c, n_mels=n_mels, n_mfcc=n_mfcc) for c in chunks]
        else:
            feats = [log_mel(c, n_mels=n_mels) for c in chunks]
        width = n_mfcc if kind == "mfcc" else n_mels
        features = torch.cat([torch.empty(0, n_frames(SAMPLE_RATE, 400, 160), width), *feats])
        return dict(features=features, labels=labels, speakers=spk)

    names = _words(words)
    if cache:
        params = dict(n=n, seed=seed, kind=kind, words=list(names), n_mels=n_mels, n_mfcc=n_mfcc)
        params["speakers"] = None if speakers is None else list(speakers)
        return KeywordFeatures(**cached("keywords", VERSION, params, make), word_names=names)
    return KeywordFeatures(**make(), word_names=names)


def _words(words: tuple[str, ...] | None) -> tuple[str, ...]:
    names = tuple(WORD_NAMES if words is None else words)
    unknown = [w for w in names if w not in CONTOURS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"make_keywords: words must be distinct names from {WORD_NAMES}, got {names}"
        )
    return names


def _clips(n, seed, words, speakers, clip_seconds, sample_rate):
    """Draw every clip's parameters, then -> (labels, speakers, an iterator of waveform chunks
    (≤ CHUNK, samples) rendered one after another from the same generator)."""
    names = _words(words)
    speakers = tuple(range(len(SPEAKERS)) if speakers is None else speakers)
    if not speakers or not all(0 <= s < len(SPEAKERS) for s in speakers) or n < 0:
        raise ValueError(f"make_keywords: need n ≥ 0 and speakers in 0..{len(SPEAKERS) - 1}")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(names))[torch.randperm(n, generator=g)]
    spk = torch.tensor(speakers)[torch.randint(len(speakers), (n,), generator=g)]
    table = torch.tensor(
        [[s.base_hz, s.pitch_range, s.seconds, s.brightness] for s in SPEAKERS], dtype=torch.float64
    )[spk]
    u = torch.rand(n, 5, generator=g, dtype=torch.float64)
    base = table[:, 0] * 2 ** ((2 * u[:, 0] - 1) / 12)  # ±1 semitone
    seconds = (table[:, 2] * (0.85 + 0.3 * u[:, 1])).clamp(max=clip_seconds)
    start = (clip_seconds - seconds) * u[:, 2]
    amplitude, noise = 0.3 + 0.6 * u[:, 3], 0.003 + 0.027 * u[:, 4]
    params = dict(label=labels, base=base, pitch_range=table[:, 1], seconds=seconds, start=start)
    params.update(brightness=table[:, 3], amplitude=amplitude, noise=noise)
    samples = round(clip_seconds * sample_rate)

    def chunks() -> Iterator[torch.Tensor]:
        for i in range(0, n, CHUNK):
            chunk = {key: value[i : i + CHUNK, None] for key, value in params.items()}
            yield _render(names, chunk, samples, sample_rate, g)

    return labels, spk, chunks()


def _render(names, p: dict[str, torch.Tensor], samples, sample_rate, g) -> torch.Tensor:
    """Parameters ``p`` (B, 1) each -> waveforms (B, samples) float32."""
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    tau = (t - p["start"]) / p["seconds"]  # (B, samples): the word's time, in [0, 1] while heard
    inside = (tau >= 0) & (tau <= 1)
    tau = tau.clamp(0, 1)
    semitones = torch.zeros_like(tau)
    for k, name in enumerate(names):
        chosen = p["label"][:, 0] == k
        semitones[chosen] = CONTOURS[name](tau[chosen])
    freq = p["base"] * 2 ** (p["pitch_range"] * semitones / 12)
    phase = 2 * math.pi * torch.cumsum(freq, dim=1) / sample_rate
    weights = p["brightness"] ** torch.arange(4, dtype=torch.float64)  # (B, 4)
    tone = sum(weights[:, h : h + 1] * torch.sin((h + 1) * phase) for h in range(4))
    envelope = torch.sin(math.pi * tau).sqrt() * inside
    wave = p["amplitude"] * envelope * tone / weights.sum(dim=1, keepdim=True)
    wave = wave + p["noise"] * torch.randn(wave.shape, generator=g, dtype=torch.float64)
    return wave.float()


# ---- features ----


def n_frames(n_samples: int, n_fft: int = 400, hop: int = 160) -> int:
    """How many whole frames of ``n_fft`` samples, ``hop`` apart, fit in ``n_samples``."""
    return 1 + (n_samples - n_fft) // hop


def frames(waveforms: torch.Tensor, n_fft: int = 400, hop: int = 160) -> torch.Tensor:
    """(..., samples) -> (..., n_frames(samples, n_fft, hop), n_fft): overlapping views."""
    if waveforms.shape[-1] < n_fft or n_fft < 1 or hop < 1:
        raise ValueError(
            f"frames: need n_fft ≥ 1, hop ≥ 1 and at least n_fft={n_fft} samples, "
            f"got {waveforms.shape[-1]} samples and hop={hop}"
        )
    return waveforms.unfold(-1, n_fft, hop)


def power_spectrum(waveforms: torch.Tensor, n_fft: int = 400, hop: int = 160) -> torch.Tensor:
    """(..., samples) -> |rfft(window · frame)|²: (..., frames, n_fft // 2 + 1)."""
    windowed = frames(waveforms, n_fft, hop) * hann_window(n_fft, waveforms.dtype)
    return torch.fft.rfft(windowed, dim=-1).abs() ** 2


def dct_matrix(n_mfcc: int, n_mels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II: column k is c_k cos(π k (m + ½) / n_mels), with
    c_0 = sqrt(1 / n_mels) and c_k = sqrt(2 / n_mels) after. ``x @ D`` transforms the last axis."""
    m = torch.arange(n_mels, dtype=torch.float64)[:, None]
    k = torch.arange(n_mfcc, dtype=torch.float64)[None, :]
    scale = torch.where(k == 0, math.sqrt(1 / n_mels), math.sqrt(2 / n_mels))
    return (scale * torch.cos(math.pi * k * (m + 0.5) / n_mels)).to(dtype)


def log_mel(
    waveforms: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 400,
    hop: int = 160,
    n_mels: int = 40,
) -> torch.Tensor:
    """(..., samples) -> log mel energies (..., frames, n_mels), floored at log(1e-10)."""
    bank = mel_filterbank(n_fft, n_mels, sample_rate, dtype=waveforms.dtype)
    energies = power_spectrum(waveforms, n_fft, hop) @ bank
    return energies.clamp(min=LOG_FLOOR).log()


def mfcc(
    waveforms: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 400,
    hop: int = 160,
    n_mels: int = 40,
    n_mfcc: int = 13,
) -> torch.Tensor:
    """(..., samples) -> MFCCs (..., frames, n_mfcc): the DCT-II of the log mel energies."""
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"mfcc: need 1 ≤ n_mfcc ≤ n_mels={n_mels}, got n_mfcc={n_mfcc}")
    features = log_mel(waveforms, sample_rate, n_fft, hop, n_mels)
    return features @ dct_matrix(n_mfcc, n_mels, waveforms.dtype)
