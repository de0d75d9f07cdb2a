"""Identity and Flatten against torch.nn.Identity and torch.nn.Flatten.

Both only move data, so values and gradients must be exactly equal (tolerance 0).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, assert_same_state_dict_layout
from strategies import dtypes, seeds, shapes

DEFAULT_START_HINT = (
    "Flatten keeps the batch axis: its start_dim defaults to 1 (torch.flatten's default is 0)"
)
INCLUSIVE_END_HINT = "end_dim is inclusive: Flatten(1, 2) merges axes 1 AND 2"
EXACT = dict(rtol=0.0, atol=0.0)


def randn(shape, dtype, seed) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@st.composite
def flatten_cases(draw):
    """(shape, start_dim, end_dim) with start <= end once negative indices are resolved."""
    shape = draw(shapes(1, 5, 4))
    n = len(shape)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start, n - 1))
    start = start - n if draw(st.booleans()) else start
    end = end - n if draw(st.booleans()) else end
    return shape, start, end


def flatten_hint(x: torch.Tensor, out: torch.Tensor, start_dim: int, end_dim: int) -> str | None:
    expected = x.flatten(start_dim, end_dim)
    if out.shape == expected.shape:
        return None
    if start_dim == 1 and out.shape == x.flatten().shape:
        return f"{DEFAULT_START_HINT}; got shape {tuple(out.shape)}"
    end = end_dim % x.dim()
    if end > start_dim % x.dim() and out.shape == x.flatten(start_dim, end - 1).shape:
        return f"{INCLUSIVE_END_HINT}; got shape {tuple(out.shape)}"
    return f"expected shape {tuple(expected.shape)}, got {tuple(out.shape)}"


def assert_flatten_matches(mine, twin, x: torch.Tensor, start_dim: int, end_dim: int) -> None:
    with torch.no_grad():
        out = mine(x)
    hint = flatten_hint(x, out, start_dim, end_dim)
    assert hint is None, hint
    assert_same_state_dict_layout(mine, twin)
    assert_same_forward_backward(mine, twin, [x], factor=0.0)


@given(case=flatten_cases(), dtype=dtypes, seed=seeds)
@example(case=((2, 3, 4, 5), 1, -1), dtype=torch.float32, seed=0)
@example(case=((2, 3, 4, 5), 1, 2), dtype=torch.float64, seed=0)
@example(case=((3,), 0, -1), dtype=torch.float32, seed=0)
@example(case=((1, 1, 1), -2, -2), dtype=torch.float64, seed=0)
@example(case=((2, 3, 4), -3, 1), dtype=torch.float64, seed=0)
def test_flatten_matches_torch(case, dtype, seed):
    shape, start_dim, end_dim = case
    x = randn(shape, dtype, seed)
    mine = impl.nn.Flatten(start_dim, end_dim)
    twin = torch.nn.Flatten(start_dim, end_dim)
    assert_flatten_matches(mine, twin, x, start_dim, end_dim)


@given(shape=shapes(2, 5, 4), dtype=dtypes, seed=seeds)
@example(shape=(2, 3, 4, 5), dtype=torch.float32, seed=0)
@example(shape=(1, 1), dtype=torch.float64, seed=0)
def test_flatten_defaults_keep_batch_axis(shape, dtype, seed):
    x = randn(shape, dtype, seed)
    assert_flatten_matches(impl.nn.Flatten(), torch.nn.Flatten(), x, 1, -1)


def test_flatten_keyword_arguments_and_repr():
    mine = impl.nn.Flatten(start_dim=0, end_dim=1)
    twin = torch.nn.Flatten(start_dim=0, end_dim=1)
    x = randn((2, 3, 4), torch.float32, 0)
    assert mine(x).shape == twin(x).shape == (6, 4)
    assert repr(mine) == repr(twin) == "Flatten(start_dim=0, end_dim=1)"
    assert repr(impl.nn.Flatten()) == repr(torch.nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


@given(shape=shapes(0, 4), dtype=dtypes, seed=seeds)
@example(shape=(), dtype=torch.float32, seed=0)
@example(shape=(1,), dtype=torch.float64, seed=0)
def test_identity_matches_torch(shape, dtype, seed):
    x = randn(shape, dtype, seed)
    mine, twin = impl.nn.Identity(), torch.nn.Identity()
    assert_same_state_dict_layout(mine, twin)
    assert list(mine.parameters()) == []
    assert_same_forward_backward(mine, twin, [x], factor=0.0)


def test_identity_ignores_constructor_arguments_like_torch():
    x = randn((2, 3), torch.float32, 0)
    mine = impl.nn.Identity(54, unused_argument=0.1)
    torch.testing.assert_close(mine(x), torch.nn.Identity(54, unused_argument=0.1)(x), **EXACT)
    assert repr(impl.nn.Identity()) == repr(torch.nn.Identity()) == "Identity()"


# -- the hints fire on deliberately wrong implementations ------------------------------------


class _FlattenEverything(torch.nn.Module):
    def forward(self, x):
        return x.flatten()


class _ExclusiveEndFlatten(torch.nn.Module):
    def __init__(self, start_dim, end_dim):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.reshape(*x.shape[: self.start_dim], -1, *x.shape[self.end_dim :])


@pytest.mark.reference_only
def test_hint_default_start_dim_fires():
    x = randn((2, 3, 4, 5), torch.float32, 0)
    with pytest.raises(AssertionError, match="start_dim defaults to 1"):
        assert_flatten_matches(_FlattenEverything(), torch.nn.Flatten(), x, 1, -1)


@pytest.mark.reference_only
def test_hint_exclusive_end_dim_fires():
    x = randn((2, 3, 4, 5), torch.float32, 0)
    with pytest.raises(AssertionError, match="end_dim is inclusive"):
        assert_flatten_matches(_ExclusiveEndFlatten(1, 2), torch.nn.Flatten(1, 2), x, 1, 2)
