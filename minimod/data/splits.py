"""What the real datasets share: fixed train / val / test splits by content hash, and the error
a loader raises when ``make real`` has not prepared its data.

Splits are fixed and need no random generator, so they are the same on every machine and every
library version: within each class, examples are ordered by the SHA-256 of their content (the
snippet's text, the image's pixels, the utterance's features) and the first tenth is "test", the
next tenth "val", the rest "train" (``split_by_hash``). Identical examples hash alike, so they
cannot end up on both sides of a split.
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
    of ``n`` the first ``n // 10`` are "test", the next ``n // 10`` "val", the rest "train". The
    split is stratified, needs no seed and does not depend on the order of the file."""
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
        members.sort(key=lambda i: (hashlib.sha256(keys[i]).digest(), i))
        tenth = len(members) // 10
        bounds = {"test": (0, tenth), "val": (tenth, 2 * tenth), "train": (2 * tenth, None)}
        start, stop = bounds[split]
        chosen.extend(members[start:stop])
    return sorted(chosen)


def check_split(caller: str, split: str) -> None:
    """A ValueError naming ``caller`` unless ``split`` is one of ``SPLITS``."""
    if split not in SPLITS:
        raise ValueError(f"{caller}: split must be one of {SPLITS}, got {split!r}")
