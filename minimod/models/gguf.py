"""GGUF files (llama.cpp's format): metadata, tensor infos and weights, read by path.

A GGUF file is a header of key-value metadata (the architecture and its sizes, the tokenizer's
vocabulary and merges, a chat template, ...), then one info record per tensor (name, dimensions,
ggml format, offset), then the tensors' bytes. The field's own reader, the ``gguf`` package
(``make real`` installs it), parses the container; turning a tensor's bytes into numbers is
minimod's (``models/quantize.py``).

Dimension order: ggml lists a tensor's dimensions fastest-varying first (ne[0] is the length of a
row), torch lists them slowest first; ``read_gguf`` reverses them, so the token embedding, which
ggml calls [576, 49152], is (49152, 576) here: one row of 576 numbers per token, as in torch.

    file = read_gguf(smollm2_path())              # models.pretrained.smollm2_path
    file.metadata["llama.block_count"]            # 30
    kind, shape, raw = file.tensors["blk.0.attn_q.weight"]   # "Q4_1", (576, 576), uint8 bytes
    weights = load_tensors(file, ["token_embd.weight"])      # name -> float32 (49152, 576)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from minimod.models.pretrained import MissingExtraError
from minimod.models.quantize import LAYOUTS, dequantize

GGUF_HINT = "run `make real` (or: pip install gguf==0.19.0)"


class GGUFTensor(NamedTuple):
    """One tensor of a GGUF file, still in its stored format."""

    kind: str  # ggml's format name: "F32", "F16", "Q8_0", "Q4_1", ...
    shape: tuple[int, ...]  # torch order: the last axis varies fastest
    raw: torch.Tensor  # uint8, the stored bytes (mapped from the file, copy-on-write)


@dataclass(repr=False)
class GGUFFile:
    """A parsed GGUF file: metadata (key -> str, int, float, bool or list) and tensors by name,
    in the file's order."""

    metadata: dict[str, Any]
    tensors: dict[str, GGUFTensor]

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for tensor in self.tensors.values():
            kinds[tensor.kind] = kinds.get(tensor.kind, 0) + 1
        counts = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        architecture = self.metadata.get("general.architecture", "?")
        return (
            f"GGUFFile(architecture={architecture!r}, {len(self.metadata)} metadata keys, "
            f"{len(self.tensors)} tensors: {counts})"
        )


def read_gguf(path: str | Path) -> GGUFFile:
    """The GGUF file at ``path`` -> GGUFFile. The file is memory-mapped: tensor bytes are read
    from disk only when used. Raises FileNotFoundError, MissingExtraError (no ``gguf``
    package), or ValueError for a file that is not a readable little-endian GGUF file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_gguf: no file at {path}")
    try:
        from gguf import GGUFReader
    except ImportError:
        raise MissingExtraError(
            f"read_gguf: the gguf package is not installed: {GGUF_HINT}"
        ) from None
    try:
        # "c": copy-on-write, so the bytes are writable for torch but the file never changes.
        reader = GGUFReader(path, mode="c")
    except (ValueError, KeyError, IndexError, OSError) as error:
        raise ValueError(
            f"read_gguf: {path} is not a readable GGUF file (corrupt or truncated: {error})"
        ) from None
    if reader.endianess.name != "LITTLE":  # quantize.py reads little-endian bytes
        raise ValueError(
            f"read_gguf: {path} is a big-endian GGUF file; minimod reads little-endian"
        )

    # GGUF.version, GGUF.tensor_count, GGUF.kv_count are the reader's header, not metadata.
    metadata = {
        name: field.contents()
        for name, field in reader.fields.items()
        if not name.startswith("GGUF.")
    }
    tensors = {}
    for info in reader.tensors:
        shape = tuple(int(n) for n in reversed(info.shape.tolist()))
        # The reader has checked that the bytes are all there (a truncated file fails above).
        raw = torch.from_numpy(reader.data[info.data_offset : info.data_offset + info.n_bytes])
        tensors[info.name] = GGUFTensor(info.tensor_type.name, shape, raw)
    return GGUFFile(metadata, tensors)


def load_tensors(
    file: GGUFFile | str | Path, names: Iterable[str] | None = None
) -> dict[str, torch.Tensor]:
    """The tensors ``names`` (None: all, in the file's order) of a GGUFFile (or a path) ->
    name -> float32 tensor of its torch-order shape, through ``quantize.dequantize``."""
    if not isinstance(file, GGUFFile):
        file = read_gguf(file)
    if isinstance(names, str):
        raise TypeError("load_tensors: names must be a list of tensor names, got one string")
    names = list(file.tensors) if names is None else list(names)
    unknown = [name for name in names if name not in file.tensors]
    if unknown:
        raise ValueError(
            f"load_tensors: the file has no tensor {unknown[0]!r} "
            f"({len(unknown)} unknown of {len(names)} asked; it has e.g. "
            f"{', '.join(list(file.tensors)[:3])})"
        )
    unsupported = [name for name in names if file.tensors[name].kind not in LAYOUTS]
    if unsupported:
        name = unsupported[0]
        raise ValueError(
            f"load_tensors: tensor {name!r} is stored as {file.tensors[name].kind}; minimod "
            f"dequantizes only {', '.join(LAYOUTS)}"
        )
    loaded = {}
    for name in names:
        kind, shape, raw = file.tensors[name]
        loaded[name] = dequantize(raw, kind, shape)
    return loaded
