"""Connected-word utterances for speech recognition: single-word recordings strung together with
short silences, transcribed word by word (``"seven three nine"`` -> ``[7, 3, 9]``).

- ``digit_recordings(split)``: the Free Spoken Digit Dataset's recordings of ``split`` (the seeded
  split of ``spoken_digits`` by recording: held-out sets use held-out recordings only), whole
  (not cropped), 13 standardized MFCCs per frame; needs ``make real``.
- ``keyword_recordings(n, seed)``: synthetic keywords (``data.audio``), always available: tests
  and the tiny path need no ``make real``.
- ``connect(pool, n, generator)``: ``n`` utterances of 1..max_words recordings drawn from the pool
  with a silence before, between and after the words.
- ``spec_augment``: SpecAugment's time and frequency masks (Park et al. 2019), seeded.
- ``collate``: padded features, lengths, padded targets, target lengths.

A silence is a few low-energy frames drawn from N(mean, std) of the quietest 5% of the training
recordings' frames, so it looks like the pauses around the words in the recordings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from minimod.data.audio import log_mel, make_keywords, mfcc
from minimod.data.digitsets import spoken_digits
from minimod.data.loader import pad_sequences

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RECORDING_FRAMES = 256  # longer than any FSDD recording (92 frames): nothing is cropped
QUIET_FRACTION = 0.05  # silences imitate the quietest 5% of the training frames


@dataclass
class WordRecordings:
    """One-word recordings: features[i] (frames_i, F) float32 says vocabulary[labels[i]];
    silence_mean, silence_std (F,): the statistics of the quiet frames silences are drawn from."""

    features: list[torch.Tensor]
    labels: torch.Tensor
    vocabulary: tuple[str, ...]
    silence_mean: torch.Tensor
    silence_std: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class Utterances:
    """features[i] (frames_i, F) float32; labels[i]: the words, indices into vocabulary;
    sources[i]: the indices of the recordings (in the pool) concatenated, in order."""

    features: list[torch.Tensor]
    labels: list[list[int]]
    sources: list[list[int]]
    vocabulary: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.features)

    @property
    def transcripts(self) -> list[str]:
        return [words_of(labels, self.vocabulary) for labels in self.labels]


def words_of(labels: list[int], vocabulary: tuple[str, ...]) -> str:
    """[7, 3, 9] -> "seven three nine" (with DIGIT_WORDS)."""
    return " ".join(vocabulary[label] for label in labels)


def _quiet_statistics(frames: torch.Tensor, energy: torch.Tensor):
    """frames (N, F), energy (N,) -> mean and std (F,) of the frames of lowest energy."""
    quiet = frames[energy <= energy.quantile(QUIET_FRACTION)]
    return quiet.mean(0), quiet.std(0)


@lru_cache(maxsize=4)
def _digit_split(split: str, path: str | None):
    data = spoken_digits(split, path, frames=RECORDING_FRAMES)
    features = [data.features[i, :n] for i, n in enumerate(data.lengths.tolist())]
    return features, data.labels


def digit_recordings(split: str, path: str | Path | None = None) -> WordRecordings:
    """The FSDD recordings of ``split`` ("train", "val", "test"; ``spoken_digits``' split by
    recording) as whole utterances of standardized MFCCs; silences from the train split's
    quietest frames (coefficient 0 is the log energy)."""
    path = None if path is None else str(path)
    features, labels = _digit_split(split, path)
    train = torch.cat(_digit_split("train", path)[0])
    mean, std = _quiet_statistics(train, train[:, 0])
    return WordRecordings(features, labels, DIGIT_WORDS, mean, std)


def keyword_recordings(
    n: int,
    seed: int,
    words: tuple[str, ...] | None = None,
    kind: str = "log_mel",
    clip_seconds: float = 0.6,
) -> WordRecordings:
    """``n`` synthetic keyword clips (``make_keywords``) of ``clip_seconds`` as "log_mel" (40)
    or "mfcc" (13) features per frame; silences from these clips' quietest frames."""
    if kind not in ("log_mel", "mfcc"):
        raise ValueError(f"keyword_recordings: kind must be 'log_mel' or 'mfcc', got {kind!r}")
    clips = make_keywords(n, seed, words, clip_seconds=clip_seconds)
    features = (log_mel if kind == "log_mel" else mfcc)(clips.waveforms)  # (n, frames, F)
    frames = features.flatten(0, 1)
    energy = frames.mean(-1) if kind == "log_mel" else frames[:, 0]
    mean, std = _quiet_statistics(frames, energy)
    return WordRecordings(list(features.unbind(0)), clips.labels, clips.word_names, mean, std)


def connect(
    pool: WordRecordings,
    n: int,
    generator: torch.Generator,
    max_words: int = 7,
    min_words: int = 1,
    silence: tuple[int, int] = (2, 8),
) -> Utterances:
    """``n`` utterances, each of min_words..max_words recordings drawn (with replacement) from
    ``pool``, a silence of silence[0]..silence[1] frames before, between and after the words.
    Every random number comes from ``generator``, so a seeded one gives the same utterances."""
    if not 1 <= min_words <= max_words or n < 0 or not 1 <= silence[0] <= silence[1]:
        raise ValueError(
            f"connect: need n ≥ 0, 1 ≤ min_words ≤ max_words and 1 ≤ silence[0] ≤ silence[1], "
            f"got n={n}, words {min_words}..{max_words}, silence {silence}"
        )
    if len(pool) == 0:
        raise ValueError("connect: the pool of recordings is empty")
    features, labels, sources = [], [], []
    for _ in range(n):
        count = int(torch.randint(min_words, max_words + 1, (1,), generator=generator))
        picks = torch.randint(len(pool), (count,), generator=generator).tolist()
        parts = [_silence(pool, silence, generator)]
        for index in picks:
            parts += [pool.features[index], _silence(pool, silence, generator)]
        features.append(torch.cat(parts))
        labels.append(pool.labels[picks].tolist())
        sources.append(picks)
    return Utterances(features, labels, sources, pool.vocabulary)


def _silence(pool: WordRecordings, frames: tuple[int, int], generator) -> torch.Tensor:
    """(frames, F) drawn from N(silence_mean, silence_std), frames in frames[0]..frames[1]."""
    count = int(torch.randint(frames[0], frames[1] + 1, (1,), generator=generator))
    noise = torch.randn(count, pool.silence_mean.shape[0], generator=generator)
    return pool.silence_mean + pool.silence_std * noise


def spec_augment(
    features: torch.Tensor,
    generator: torch.Generator,
    time_masks: int = 2,
    time_width: int = 10,
    freq_masks: int = 2,
    freq_width: int = 4,
) -> torch.Tensor:
    """SpecAugment on one utterance (T, F): ``time_masks`` runs of up to ``time_width`` frames
    and ``freq_masks`` bands of up to ``freq_width`` coefficients set to the utterance's mean.
    Returns a new tensor; widths are drawn from ``generator`` (0 masks nothing)."""
    if features.dim() != 2:
        raise ValueError(f"spec_augment: expected features (T, F), got {tuple(features.shape)}")
    out = features.clone()
    fill = features.mean()
    for count, width, axis in ((time_masks, time_width, 0), (freq_masks, freq_width, 1)):
        size = features.shape[axis]
        for _ in range(count):
            w = int(torch.randint(0, min(width, size) + 1, (1,), generator=generator))
            start = int(torch.randint(0, size - w + 1, (1,), generator=generator))
            out.narrow(axis, start, w).fill_(fill)
    return out


def collate(features: list[torch.Tensor], labels: list[list[int]]):
    """Utterances -> (x (B, T, F) zero-padded to the longest, lengths (B,), targets (B, S)
    padded with 0 (the blank, never a label), target_lengths (B,)); lengths are int64."""
    lengths = torch.tensor([len(f) for f in features], dtype=torch.long)
    x = features[0].new_zeros(len(features), int(lengths.max()), features[0].shape[-1])
    for i, f in enumerate(features):
        x[i, : len(f)] = f
    targets, mask = pad_sequences(labels, pad_id=0)
    return x, lengths, targets, mask.sum(dim=1)


__all__ = [
    "DIGIT_WORDS",
    "Utterances",
    "WordRecordings",
    "collate",
    "connect",
    "digit_recordings",
    "keyword_recordings",
    "spec_augment",
    "words_of",
]
