"""What the real datasets share: fixed train / val / test splits by content hash, and the error
a loader raises when ``make real`` has not prepared its data.

Splits are fixed and need no random generator, so they are the same on every machine and every
library version: within each class, examples are ordered by the SHA-256 of their content (the
snippet's text, the image's pixels, the utterance's features) and the first tenth is "test", the
next tenth "val", the rest "train" (``split_by_hash``). Identical examples hash alike, so they
sit next to each other in that order, and a cut that would fall between two copies moves past
the last of them: copies never end up on both sides of a split (copies with different labels
are in different classes, and are split apart like any two examples).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SPLITS = ("train", "val", "test")
PREPARE_HINT = "make real"


class MissingDataError(FileNotFoundError):
    """A real dataset has not been prepared (or installed); the message says how to get it."""


def split_by_hash(keys: Sequence[bytes], labels: Sequence[int], split: str) -> list[int]:
    """Indices (in their original order) of the examples of ``split`` ("train", "val", "test").

    Within each class the examples are sorted by ``sha256(key)`` (ties by position); of a class
    of ``n`` the first ``n // 10`` are "test", the next ``n // 10`` "val", the rest "train",
    each cut moved past any copies of the example before it (so a split may be a few examples
    larger than a tenth). The split is stratified, needs no seed and does not depend on the order
    of the file."""
    check_split("split_by_hash", split)
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
        digests = sorted((hashlib.sha256(keys[i]).digest(), i) for i in members)
        ordered = [i for _, i in digests]
        hashes = [digest for digest, _ in digests]
        tenth = len(ordered) // 10
        first = _past_copies(hashes, tenth)
        second = _past_copies(hashes, max(first, 2 * tenth))
        bounds = {"test": (0, first), "val": (first, second), "train": (second, None)}
        start, stop = bounds[split]
        chosen.extend(ordered[start:stop])
    return sorted(chosen)


def _past_copies(hashes: list[bytes], cut: int) -> int:
    """``cut`` moved right past every copy of the example just before it (sorted ``hashes``)."""
    while 0 < cut < len(hashes) and hashes[cut] == hashes[cut - 1]:
        cut += 1
    return cut


def check_split(caller: str, split: str) -> None:
    """A ValueError naming ``caller`` unless ``split`` is one of ``SPLITS``."""
    if split not in SPLITS:
        raise ValueError(f"{caller}: split must be one of {SPLITS}, got {split!r}")
