"""Common dataset file formats, read by path: ``read_idx`` (MNIST's IDX files, plain or
gzip) and ``read_text_label_tsv`` (``text<TAB>label`` lines). Malformed input is a ValueError
naming the file (and the line)."""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

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


def tab_separated(data: bytes, source: str, layout: str) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank line of UTF-8 ``data`` (a BOM, LF or CRLF
    allowed). ``layout`` names the fields, one per tab-separated column ("id<TAB>rating<TAB>
    text"); a line with another number of fields, or bytes that are not UTF-8, is a ValueError
    naming ``source`` and the line."""
    expected = layout.count("<TAB>") + 1
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{source} line {line}: not UTF-8 text") from None
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != expected:
            raise ValueError(
                f"{source} line {number}: expected {expected} tab-separated fields ({layout}), "
                f"got {len(fields)}"
            )
        rows.append((number, fields))
    return rows


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
    lines = tab_separated(path.read_bytes(), f"read_text_label_tsv: {path}", "text<TAB>label")
    rows = [(number, text, label.strip()) for number, (text, label) in lines]
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
