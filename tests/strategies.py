"""Shared hypothesis strategies: shapes, dtypes and finite tensors.

Tensors are drawn as (seed, scale) and made with torch's generator: fast, reproducible, and
hypothesis still shrinks towards small shapes and simple seeds.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

DTYPES = (torch.float32, torch.float64)
dtypes = st.sampled_from(DTYPES)

# Tolerances per dtype for comparing against the torch reference. Layers that sum over long
# axes may pass a looser factor; each test states what it uses.
TOLERANCES = {
    torch.float32: dict(rtol=1e-4, atol=1e-5),
    torch.float64: dict(rtol=1e-9, atol=1e-10),
}


def sides(max_side: int = 6) -> st.SearchStrategy[int]:
    return st.integers(1, max_side)


def shapes(min_dims: int = 1, max_dims: int = 4, max_side: int = 6) -> st.SearchStrategy[tuple]:
    """Any shape with between min_dims and max_dims axes, each of length 1..max_side."""
    return st.lists(sides(max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def batch_shapes(max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[tuple]:
    """Leading batch axes of any rank, including none (an unbatched input)."""
    return shapes(0, max_dims, max_side)


scales = st.sampled_from([1.0, 0.01, 10.0])


@st.composite
def tensors(draw, shape, dtype=torch.float64, scale=None, requires_grad=False) -> torch.Tensor:
    """A finite tensor of ``shape`` (a tuple or a strategy for one)."""
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    if isinstance(dtype, st.SearchStrategy):
        dtype = draw(dtype)
    scale = draw(scales) if scale is None else scale
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    values = torch.randn(shape, generator=generator, dtype=dtype) * scale
    return values.requires_grad_(requires_grad)


@st.composite
def class_targets(draw, shape, num_classes: int) -> torch.Tensor:
    """Integer class indices in [0, num_classes) of ``shape``."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return torch.randint(0, num_classes, shape, generator=generator)


seeds = st.integers(0, 2**31 - 1)
