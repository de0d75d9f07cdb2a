"""Text-to-speech examples: what a synthesiser reads (a sequence of symbols, each with its duration
in frames, and a speaker) and what it must produce (log-mel frames).

- ``speech_features(waveform, sample_rate)``: the log-mel frames (frames, N_MELS) a synthesiser
  predicts and a recogniser of generated speech reads -- one definition for both, so the judge
  hears exactly what the vocoder is given. ``features_to_waveform`` inverts them (the inverse mel
  projection, then Griffin-Lim).
- ``espeak_examples(n, seed, kind, split)``: eSpeak NG's utterances (``data/espeak.py``, after
  ``make real``): the symbols are the phonemes eSpeak reports, each lasting from its start to
  the next one's, so the durations come from the synthesiser itself (no aligner to train).
- ``keyword_examples(n, seed)``: the synthetic keyword clips (``data/audio.py``), always
  available: the symbols are the word's letters, sharing the clip's frames equally. The tiny
  path of tests and the demo; it teaches the wiring, not speech.

Lesson 30 teaches ``frame_durations``, ``dtw_path`` and ``mel_cepstral_distortion``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from minimod.data.spectral import (
    centred_frames,
    griffin_lim,
    inverse_mel,
    mel_filterbank,
    mel_spectrogram,
)

N_FFT, HOP, N_MELS = 1024, 256, 80  # 46 ms windows every 11.6 ms at 22,050 Hz
MEL = {"scale": "slaney", "norm": "slaney"}  # librosa's defaults, as most vocoders use
POWER_FLOOR = 1e-5  # log(1e-5) ≈ -11.5: silence, and the floor of the generated frames
PAD = "<pad>"  # symbol 0 of every inventory


@dataclass
class SpeechExamples:
    """symbols[i]: the symbol names of utterance i; durations[i] (len(symbols[i]),) int64
    frames, summing to frames_i; features[i] (frames_i, N_MELS) log-mel; speakers (N,) int64;
    texts[i] the text; sample_rate of the audio the features came from."""

    texts: list[str]
    symbols: list[list[str]]
    durations: list[torch.Tensor]
    features: list[torch.Tensor]
    speakers: torch.Tensor
    sample_rate: int

    def __len__(self) -> int:
        return len(self.texts)


def speech_features(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(..., samples) -> log mel power (..., 1 + samples // HOP, N_MELS), floored at
    log(POWER_FLOOR): centred frames, Slaney mel."""
    mel = mel_spectrogram(waveform, sample_rate, N_FFT, HOP, N_MELS, **MEL)
    return mel.clamp(min=POWER_FLOOR).log()


def features_to_waveform(
    features: torch.Tensor, sample_rate: int, n_iter: int = 48, seed: int = 0
) -> torch.Tensor:
    """Log-mel frames (frames, N_MELS) -> a waveform (samples,): linear power from the
    pseudo-inverse of the mel filterbank, its square root as the magnitude, the phase from
    Griffin-Lim (``n_iter`` fast iterations, seeded)."""
    bank = mel_filterbank(N_FFT, N_MELS, sample_rate, dtype=features.dtype, **MEL)
    power = inverse_mel(features.exp(), bank.to(features.device))
    return griffin_lim(power.sqrt(), N_FFT, HOP, n_iter=n_iter, seed=seed)


def frame_durations(starts: list[int], n_samples: int) -> torch.Tensor:
    """Sample positions where each symbol starts -> frames per symbol (len(starts),) int64,
    summing to ``centred_frames(n_samples)``: symbol k owns the frames whose centres fall from
    its start to the next symbol's; the first symbol also owns any lead-in."""
    # BEGIN SOLUTION
    frames = centred_frames(n_samples, N_FFT, HOP)
    # Frame j is centred on sample j·HOP: it belongs to the last symbol starting at or before it.
    bounds = [0] + [min(frames, (s + HOP - 1) // HOP) for s in starts[1:]] + [frames]
    bounds = torch.tensor(bounds).cummax(0).values  # never backwards
    return bounds.diff()
    # END SOLUTION


def espeak_examples(n: int, seed: int = 0, kind: str = "digits", split: str = "train"):
    """``n`` eSpeak NG utterances of ``kind`` ("digits", "sentences") from ``split`` (held out
    by text: see ``espeak.render_corpus``) as SpeechExamples; their phonemes are the symbols.
    Needs ``make real`` (MissingDataError otherwise)."""
    from minimod.data.espeak import render_corpus

    corpus = render_corpus(n, seed, kind, split)
    symbols, durations, features = [], [], []
    for waveform, phonemes in zip(corpus.waveforms, corpus.phonemes, strict=True):
        symbols.append([name for name, _, _ in phonemes])
        durations.append(frame_durations([start for _, start, _ in phonemes], len(waveform)))
        features.append(speech_features(waveform, corpus.sample_rate))
    return SpeechExamples(
        corpus.texts, symbols, durations, features, corpus.speakers, corpus.sample_rate
    )


def keyword_examples(n: int, seed: int = 0) -> SpeechExamples:
    """``n`` synthetic keyword clips (``audio.make_keywords``) as SpeechExamples: the word's
    letters are the symbols, sharing the clip's frames as equally as integers allow."""
    from minimod.data.audio import make_keywords

    clips = make_keywords(n, seed)
    texts = [clips.word_names[label] for label in clips.labels.tolist()]
    features = list(speech_features(clips.waveforms, clips.sample_rate).unbind(0))
    durations = []
    for text, frames in zip(texts, features, strict=True):
        share = torch.full((len(text),), len(frames) // len(text))
        share[: len(frames) % len(text)] += 1
        durations.append(share)
    return SpeechExamples(
        texts, [list(text) for text in texts], durations, features, clips.speakers,
        clips.sample_rate,
    )  # fmt: skip


def mel_cepstra(features: torch.Tensor, n: int = 13) -> torch.Tensor:
    """Log-mel power frames (frames, N_MELS) -> mel cepstra c_1..c_{n-1} (frames, n - 1) of the
    log AMPLITUDE (half the log power): the orthonormal DCT-II over the bands, c_0 (loudness)
    dropped, as mel-cepstral distortion compares them."""
    from minimod.data.audio import dct_matrix

    return (0.5 * features) @ dct_matrix(n, features.shape[-1], features.dtype)[:, 1:]


def dtw_path(cost: torch.Tensor) -> list[tuple[int, int]]:
    """The monotonic alignment of least total cost through ``cost`` (T1, T2), from (0, 0) to
    (T1 - 1, T2 - 1), each step one frame forward in either sequence or both (dynamic time
    warping)."""
    # BEGIN SOLUTION
    rows, cols = cost.shape
    table = cost.tolist()
    total = [[float("inf")] * (cols + 1) for _ in range(rows + 1)]
    total[0][0] = 0.0
    for i in range(1, rows + 1):
        above, here, row = total[i - 1], total[i], table[i - 1]
        for j in range(1, cols + 1):
            here[j] = row[j - 1] + min(above[j - 1], above[j], here[j - 1])
    path, i, j = [], rows, cols
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        steps = ((total[i - 1][j - 1], i - 1, j - 1), (total[i - 1][j], i - 1, j),
                 (total[i][j - 1], i, j - 1))  # fmt: skip
        _, i, j = min(steps)
    return path[::-1]
    # END SOLUTION


def mel_cepstral_distortion(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """MCD in dB between two log-mel sequences (frames, N_MELS) of the same text: the mean over
    the DTW alignment of (10 / ln 10) · sqrt(2 Σ_d (c_d − c'_d)²) on ``mel_cepstra`` -- so a
    different speaking rate is not counted as distortion. 0 for identical frames."""
    # BEGIN SOLUTION
    a, b = mel_cepstra(generated.double()), mel_cepstra(reference.double())
    cost = torch.cdist(a, b)
    path = dtw_path(cost)
    rows, cols = zip(*path, strict=True)
    distances = cost[list(rows), list(cols)]
    return float((10 / math.log(10)) * math.sqrt(2) * distances.mean())
    # END SOLUTION


__all__ = [
    "HOP",
    "N_FFT",
    "N_MELS",
    "PAD",
    "SpeechExamples",
    "espeak_examples",
    "features_to_waveform",
    "frame_durations",
    "keyword_examples",
    "mel_cepstral_distortion",
    "speech_features",
]
