"""GGML's weight formats, read and written with tensor operations: F32, F16, Q8_0 and Q4_1.

A GGUF file (``models/gguf.py``) stores each tensor as raw bytes in one of ggml's formats. The
float formats hold one number per element; the quantized ones cut the flat tensor into blocks
of 32 consecutive elements and store each block in a few bytes (all numbers little-endian):

    F32    4 bytes per element: float32
    F16    2 bytes per element: float16
    Q8_0   34 bytes per block: d (float16), then 32 int8 values q      x = q * d
    Q4_1   20 bytes per block: d (float16), m (float16), then 16 bytes
           of 4-bit values q in 0..15: byte j holds element j in its
           low nibble and element 16 + j in its high nibble              x = d * q + m

Q4_1 takes 20 bytes per 32 weights, 5 bits each instead of float32's 32; Q8_0 takes 8.5 bits.
Blocks run along the last (fastest-varying) axis, so its size must be a multiple of 32.

``quantize_q4_1`` goes the other way as ggml does: per block, m = the minimum and
d = (maximum - minimum) / 15, each value rounded to the nearest of the 16 levels m + d * q.
Every element comes back within about d / 2 of where it was.

    raw = quantize_q4_1(w)                    # w: (..., 32k) -> 20 bytes per 32 elements
    w_back = dequantize(raw, "Q4_1", w.shape)  # float32, |w - w_back| <= ~d / 2 per block
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import torch

BLOCK = 32  # elements per block of Q8_0 and Q4_1
# kind -> (elements per block, bytes per block): ggml's type traits for the kinds minimod reads
LAYOUTS = {
    "F32": (1, 4),
    "F16": (1, 2),
    "Q8_0": (BLOCK, 2 + BLOCK),
    "Q4_1": (BLOCK, 4 + BLOCK // 2),
}
FLOAT16_MAX = 65504.0


def _from_bytes(raw: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(..., k) little-endian bytes -> (..., k / itemsize) numbers of ``dtype``, bits unchanged."""
    size = torch.empty((), dtype=dtype).element_size()
    raw = raw.contiguous()
    if sys.byteorder == "big":  # GGUF is little-endian: reverse each number's bytes first
        raw = raw.reshape(*raw.shape[:-1], -1, size).flip(-1).reshape(raw.shape)
    return raw.view(dtype)


def _to_bytes(values: torch.Tensor) -> torch.Tensor:
    """(..., k) numbers -> (..., k * itemsize) uint8, little-endian."""
    size = values.element_size()
    raw = values.contiguous().view(torch.uint8)
    if sys.byteorder == "big":
        raw = raw.reshape(*raw.shape[:-1], -1, size).flip(-1).reshape(raw.shape)
    return raw


def dequantize(raw: torch.Tensor, kind: str, shape: Sequence[int]) -> torch.Tensor:
    """A tensor's bytes in ggml format ``kind`` ("F32", "F16", "Q8_0" or "Q4_1") -> a new
    float32 tensor of ``shape`` (torch order: the last axis varies fastest), on raw's device.

    raw: uint8, any shape, exactly as many bytes as ``shape`` takes in that format."""
    if not isinstance(raw, torch.Tensor) or raw.dtype != torch.uint8:
        got = raw.dtype if isinstance(raw, torch.Tensor) else type(raw).__name__
        raise TypeError(f"dequantize: raw must be a uint8 tensor of bytes, got {got}")
    if kind not in LAYOUTS:
        raise ValueError(
            f"dequantize: unsupported kind {kind!r}; minimod reads {', '.join(LAYOUTS)}"
        )
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"dequantize: shape must not have negative sizes, got {shape}")
    block, block_bytes = LAYOUTS[kind]
    if block > 1 and (not shape or shape[-1] % block):
        raise ValueError(
            f"dequantize: a {kind} tensor's last dimension must be a multiple of {block}, "
            f"got shape {shape}"
        )
    expected = math.prod(shape) // block * block_bytes
    if raw.numel() != expected:
        raise ValueError(
            f"dequantize: a {kind} tensor of shape {shape} takes {expected} bytes, "
            f"got {raw.numel()}"
        )
    if kind == "F32":
        return _from_bytes(raw.reshape(-1), torch.float32).clone().reshape(shape)
    if kind == "F16":
        return _from_bytes(raw.reshape(-1), torch.float16).float().reshape(shape)

    # BEGIN SOLUTION
    blocks = raw.reshape(-1, block_bytes)  # (n_blocks, bytes per block)
    d = _from_bytes(blocks[:, 0:2], torch.float16).float()  # (n_blocks, 1): the scale
    if kind == "Q8_0":
        q = _from_bytes(blocks[:, 2:], torch.int8).float()  # (n_blocks, 32) in -128..127
        return (q * d).reshape(shape)
    m = _from_bytes(blocks[:, 2:4], torch.float16).float()  # (n_blocks, 1): the minimum
    packed = blocks[:, 4:]  # (n_blocks, 16): two 4-bit values per byte
    q = torch.cat([packed & 0x0F, packed >> 4], dim=1).float()  # (n_blocks, 32) in 0..15
    return (d * q + m).reshape(shape)
    # END SOLUTION


def quantize_q4_1(x: torch.Tensor) -> torch.Tensor:
    """x: float tensor (..., 32k) -> its Q4_1 bytes, uint8 of shape (x.numel() / 32 * 20,), as
    ggml's reference quantizer computes them (from float32 values; ``dequantize`` reads them).

    Per block of 32: m = min, d = (max - min) / 15 in float32, q = trunc((x - m) / d + 0.5)
    computed as (x - m) * (1 / d) + 0.5 like ggml, then d and m are stored as float16."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"quantize_q4_1: x must be a floating-point tensor, got {got}")
    if x.ndim == 0 or x.shape[-1] % BLOCK:
        raise ValueError(
            f"quantize_q4_1: x's last dimension must be a multiple of {BLOCK}, "
            f"got shape {tuple(x.shape)}"
        )
    blocks = x.detach().to(torch.float32).reshape(-1, BLOCK)  # (n_blocks, 32)
    if blocks.numel() == 0:
        return torch.empty(0, dtype=torch.uint8, device=x.device)
    # Beyond float16's range the stored minimum or scale would become infinite.
    if not bool((blocks.abs() <= FLOAT16_MAX).all()):
        raise ValueError(
            f"quantize_q4_1: x must be finite with every |value| <= {FLOAT16_MAX:g} "
            f"(float16's largest), got {blocks.abs().max().item():g}"
        )
    # BEGIN SOLUTION
    low = blocks.amin(dim=1, keepdim=True)  # (n_blocks, 1)
    high = blocks.amax(dim=1, keepdim=True)
    d = (high - low) / 15
    inverse = torch.where(d == 0, 0.0, 1 / d)  # a constant block stores q = 0 everywhere
    q = torch.trunc((blocks - low) * inverse + 0.5).clamp(0, 15).to(torch.uint8)
    packed = q[:, : BLOCK // 2] | (q[:, BLOCK // 2 :] << 4)  # (n_blocks, 16)
    header = [_to_bytes(d.to(torch.float16)), _to_bytes(low.to(torch.float16))]
    return torch.cat([*header, packed], dim=1).reshape(-1)
    # END SOLUTION
