"""Input checks shared by the layers, so a mistake reads "LayerNorm((64,)): ..." instead of a bare
matmul error deep inside torch."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def describe(module) -> str:
    """``Linear(in_features=64, out_features=10, bias=True)``: how errors name a layer."""
    return f"{type(module).__name__}({module.extra_repr()})"


def _name(where) -> str:
    """``where`` as it appears in an error: a string as is, a module described. Checks take the
    module itself and describe it only when they fail (a repr on every call costs time)."""
    return where if isinstance(where, str) else describe(where)


def expect_tensor(where, x) -> None:
    """x must be a tensor: a list or an array is a TypeError naming ``where`` (a string, or the
    module checking), not an AttributeError from deep inside the layer."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{_name(where)}: expected a tensor, got {type(x).__name__}")


def expect_floating(where, x: torch.Tensor) -> None:
    """x must be a floating-point tensor; ``where``: a string, or the module checking."""
    expect_tensor(where, x)
    if not x.is_floating_point():
        raise TypeError(f"{_name(where)}: expected a floating-point input, got {x.dtype}")


def expect_trailing_shape(where, x: torch.Tensor, shape: Sequence[int]) -> None:
    """The last ``len(shape)`` dimensions of ``x`` must equal ``shape``; ``where`` as above."""
    expect_tensor(where, x)
    shape = tuple(shape)
    if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape) :]) != shape:
        what = "last dimension" if len(shape) == 1 else "trailing dimensions"
        expected = shape[0] if len(shape) == 1 else shape
        raise ValueError(
            f"{_name(where)}: expected input with {what} {expected}, got shape {tuple(x.shape)}"
        )


def normalize_dim(where: str, dim: int, ndim: int) -> int:
    """A dimension index in [-ndim, ndim) made non-negative (a 0-d tensor has one dim slot)."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(
            f"{where}: dim {dim} is out of range for a {ndim}-D input "
            f"(expected a value in [{-size}, {size - 1}])"
        )
    return dim % size


def can_read_back(x: torch.Tensor) -> bool:
    """Whether a check may read values of ``x`` back to Python (``int(x.max())``): only on the
    CPU (on a GPU it would wait for the device) and not under torch.compile (it would split the
    compiled graph in two, which torch 2.13 has crashed on)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()
