"""Dropout and F.dropout: inverted dropout, checked statistically and element by element.

Random masks cannot be compared with torch's draws, so the tests check the properties torch's
dropout has: the fraction of zeros is p, survivors are x / (1 - p) (strategies.TOLERANCES), the
gradient is the same mask / (1 - p), and eval mode / training=False / p=0 are exact identities.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_state_dict_layout, tolerance
from strategies import dtypes, seeds, shapes

UNSCALED_HINT = (
    "survivors must be scaled by 1/(1-p) (inverted dropout), so the expected value is unchanged"
)
MULTIPLIED_HINT = "survivors must be divided by (1-p), not multiplied by it"
KEEP_PROBABILITY_HINT = "p is the probability of zeroing an element, not of keeping it"
P_ONE_HINT = "p=1 must give zeros (x * 0 / (1 - p) is 0/0 = NaN: treat p=1 separately)"
EVAL_HINT = "in eval mode (training=False) dropout is the identity"
N = 200_000  # large enough: the zero fraction's σ is ≤ 0.0011


def randn(shape, dtype, seed) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def dropout_hint(x: torch.Tensor, out: torch.Tensor, p: float) -> str | None:
    """Explain a dropout output whose statistics or survivor values are wrong.

    ``x`` must have no zeros; the tolerance on the zero fraction is 0.01 (≥ 9 σ at N = 200k).
    """
    if torch.isnan(out).any():
        return P_ONE_HINT if p == 1 else "the output contains NaN"
    dropped = out == 0
    fraction = dropped.double().mean().item()
    if abs(p - 0.5) > 0.02 and abs(fraction - (1 - p)) < 0.01:
        return f"{KEEP_PROBABILITY_HINT}: {fraction:.3f} of the elements are zero, p = {p}"
    if abs(fraction - p) > 0.01:
        return f"expected a fraction p = {p} of zeros, got {fraction:.3f}"
    kept, x_kept = out[~dropped], x[~dropped]
    tol = tolerance(x.dtype)
    if kept.numel() == 0 or torch.allclose(kept, x_kept / (1 - p), **tol):
        return None
    if torch.allclose(kept, x_kept, **tol):
        return UNSCALED_HINT
    if torch.allclose(kept, x_kept * (1 - p), **tol):
        return MULTIPLIED_HINT
    return "surviving elements should equal x / (1 - p)"


def assert_dropout_statistics(dropout_fn, p: float, dtype: torch.dtype) -> None:
    x = 1 + torch.rand(N, dtype=dtype, generator=torch.Generator().manual_seed(3))  # no zeros
    out = dropout_fn(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    hint = dropout_hint(x, out, p)
    assert hint is None, hint
    # The mean is kept: mean(out) / mean(x) has σ ≈ sqrt(p / ((1 - p) N)) (≤ 0.0067); allow 6 σ.
    ratio = (out.double().mean() / x.double().mean()).item()
    limit = 6 * math.sqrt(p / ((1 - p) * N))
    assert abs(ratio - 1) < limit, f"mean changed by a factor {ratio:.4f} (inverted dropout)"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_functional_dropout_statistics(p, dtype):
    assert_dropout_statistics(lambda x: impl.F.dropout(x, p=p, training=True), p, dtype)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_module_dropout_statistics(p):
    layer = impl.nn.Dropout(p)
    assert layer.training, "a new module is in training mode"
    assert_dropout_statistics(layer, p, torch.float32)


def test_defaults_drop_half():
    assert impl.nn.Dropout().p == torch.nn.Dropout().p == 0.5
    assert_dropout_statistics(impl.F.dropout, 0.5, torch.float32)
    assert_dropout_statistics(impl.nn.Dropout(), 0.5, torch.float64)


@given(shape=shapes(0, 4), p=st.sampled_from([0.1, 0.5, 0.9]), dtype=dtypes, seed=seeds)
@example(shape=(), p=0.5, dtype=torch.float32, seed=0)
@example(shape=(1, 1), p=0.9, dtype=torch.float64, seed=0)
def test_each_element_is_dropped_or_scaled_and_gradient_uses_the_same_mask(shape, p, dtype, seed):
    x = randn(shape, dtype, seed).requires_grad_()
    torch.manual_seed(seed)
    out = impl.F.dropout(x, p=p, training=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    kept = out.detach() != 0  # x has no zeros (a standard normal draw)
    expected = torch.where(kept, x.detach() / (1 - p), torch.zeros_like(x))
    torch.testing.assert_close(
        out.detach(),
        expected,
        **tolerance(dtype),
        msg=lambda m: f"each element must be 0 or x / (1 - p)\n{m}",
    )
    upstream = randn(shape, dtype, seed + 1)
    out.backward(upstream)
    torch.testing.assert_close(
        x.grad,
        upstream * kept / (1 - p),
        **tolerance(dtype),
        msg=lambda m: f"the gradient is upstream * mask / (1 - p)\n{m}",
    )


INDEPENDENT_HINT = (
    "each element needs its own keep/drop draw: the mask must have the input's full shape "
    "(e.g. torch.rand_like(x) >= p)"
)


def assert_independent_mask(dropout_fn, p: float) -> None:
    """Per-row and per-column zero fractions of a (400, 500) input are all near p (σ ≤ 0.025)."""
    dropped = (dropout_fn(torch.ones(400, 500)) == 0).double()
    for dim in (0, 1):
        fractions = dropped.mean(dim)
        worst = (fractions - p).abs().max().item()
        assert worst < 0.15, f"{INDEPENDENT_HINT}; a row or column has zero fraction off by {worst}"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_is_drawn_per_element(p):
    assert_independent_mask(lambda x: impl.F.dropout(x, p), p)
    assert_independent_mask(impl.nn.Dropout(p), p)


def test_masks_are_fresh_and_follow_the_global_seed():
    x = torch.ones(1000)
    torch.manual_seed(1)
    first = impl.F.dropout(x, 0.5)
    second = impl.F.dropout(x, 0.5)
    assert not torch.equal(first, second), "each call must draw a new mask"
    torch.manual_seed(1)
    assert torch.equal(impl.F.dropout(x, 0.5), first), "torch.manual_seed must fix the mask"
    layer = impl.nn.Dropout(0.5)
    torch.manual_seed(2)
    a = layer(x)
    torch.manual_seed(2)
    assert torch.equal(layer(x), a)


def assert_identity(out: torch.Tensor, x: torch.Tensor) -> None:
    """The output is x (the same values; it may be x itself), and x's gradient flows through."""
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out.detach(), x.detach()), EVAL_HINT
    upstream = torch.randn(x.shape, dtype=x.dtype)
    out.backward(upstream)
    assert torch.equal(x.grad, upstream), "the identity must pass the gradient through unchanged"


@given(shape=shapes(0, 4), p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), dtype=dtypes, seed=seeds)
@example(shape=(3,), p=1.0, dtype=torch.float32, seed=0)
def test_eval_mode_and_training_false_are_identity(shape, p, dtype, seed):
    x = randn(shape, dtype, seed).requires_grad_()
    assert_identity(impl.F.dropout(x, p=p, training=False), x)
    layer = impl.nn.Dropout(p)
    assert layer.eval() is layer and not layer.training
    x = randn(shape, dtype, seed).requires_grad_()
    assert_identity(layer(x), x)
    layer.train()
    if 0 < p < 1 and math.prod(shape) >= 200:  # all kept: ≤ 0.9^200
        assert not torch.equal(layer(x).detach(), x.detach()), "train() must switch dropout on"


@given(shape=shapes(0, 4), dtype=dtypes, seed=seeds)
def test_p_zero_is_identity_while_training(shape, dtype, seed):
    x = randn(shape, dtype, seed).requires_grad_()
    assert_identity(impl.F.dropout(x, p=0.0, training=True), x)
    x = randn(shape, dtype, seed).requires_grad_()
    assert_identity(impl.nn.Dropout(0.0)(x), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_p_one_gives_zeros_like_torch(dtype):
    x = randn((4, 5), dtype, 0).requires_grad_()
    try:
        out = impl.F.dropout(x, p=1.0, training=True)
    except ZeroDivisionError as error:
        raise AssertionError(P_ONE_HINT) from error
    expected = torch.nn.functional.dropout(x.detach(), p=1.0, training=True)
    hint = dropout_hint(x.detach(), out.detach(), 1.0)
    assert hint is None, hint
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(
        x.grad,
        torch.zeros_like(x),
        rtol=0,
        atol=0,
        msg="with p=1 nothing survives, so the gradient is zero",
    )
    assert torch.equal(impl.nn.Dropout(1.0)(x.detach()), expected)


def test_no_parameters_and_repr():
    mine, twin = impl.nn.Dropout(0.1), torch.nn.Dropout(0.1)
    assert list(mine.parameters()) == [] and list(mine.buffers()) == []
    assert_same_state_dict_layout(mine, twin)
    # torch also prints inplace=False; minimod's Dropout has no inplace argument.
    assert repr(mine) in ("Dropout(p=0.1)", repr(twin))
    assert repr(impl.nn.Dropout()) in ("Dropout(p=0.5)", repr(torch.nn.Dropout()))
    x = torch.ones(4, 5)
    assert torch.equal(mine.eval()(x), x)  # and it works


@pytest.mark.reference_only
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_invalid_p_raises_value_error(p):
    from minimod.nn import Dropout
    from minimod.nn.functional import dropout

    with pytest.raises(ValueError, match="Dropout.*p"):
        Dropout(p)
    with pytest.raises(ValueError, match="dropout.*p"):
        dropout(torch.ones(3), p=p)
    with pytest.raises(ValueError):  # torch agrees
        torch.nn.Dropout(p)


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _unscaled(x, p):
    return x * (torch.rand_like(x) >= p)


def _multiplied(x, p):
    return x * (torch.rand_like(x) >= p) * (1 - p)


def _keep_probability(x, p):
    return x * (torch.rand_like(x) < p) / p


def _dividing_by_zero(x, p):
    return x * (torch.rand_like(x) >= p) / torch.tensor(1.0 - p, dtype=x.dtype)


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "wrong, p, hint",
    [
        (_unscaled, 0.5, UNSCALED_HINT),
        (_multiplied, 0.5, MULTIPLIED_HINT),
        (_keep_probability, 0.1, KEEP_PROBABILITY_HINT),
        (_keep_probability, 0.9, KEEP_PROBABILITY_HINT),
    ],
)
def test_statistics_hints_fire(wrong, p, hint):
    with pytest.raises(AssertionError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        assert_dropout_statistics(lambda x: wrong(x, p), p, torch.float32)


@pytest.mark.reference_only
def test_p_one_hint_fires():
    x = randn((4, 5), torch.float32, 0)
    assert dropout_hint(x, _dividing_by_zero(x, 1.0), 1.0) == P_ONE_HINT


@pytest.mark.reference_only
def test_statistics_check_accepts_torch():
    for p in (0.1, 0.5, 0.9):
        assert_dropout_statistics(
            lambda x, p=p: torch.nn.functional.dropout(x, p), p, torch.float32
        )


@pytest.mark.reference_only
def test_eval_hint_fires():
    x = randn((3, 4), torch.float32, 0).requires_grad_()
    with pytest.raises(AssertionError, match="eval mode"):
        assert_identity(torch.nn.functional.dropout(x, 0.5, training=True), x)


def _one_mask_per_column(x, p):
    return x * (torch.rand(x.shape[-1:]) >= p) / (1 - p)


def _one_mask_per_row(x, p):
    return x * (torch.rand(*x.shape[:-1], 1) >= p) / (1 - p)


@pytest.mark.reference_only
@pytest.mark.parametrize("wrong", [_one_mask_per_column, _one_mask_per_row])
def test_independent_mask_hint_fires(wrong):
    with pytest.raises(AssertionError, match="its own keep/drop draw"):
        assert_independent_mask(lambda x: wrong(x, 0.5), 0.5)
    assert_independent_mask(lambda x: torch.nn.functional.dropout(x, 0.5), 0.5)  # torch passes


@pytest.mark.reference_only
def test_p_one_division_hint_fires(monkeypatch):
    def divides_by_zero(x, p=0.5, training=True):
        return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))

    monkeypatch.setattr(impl, "F", SimpleNamespace(dropout=divides_by_zero))
    with pytest.raises(AssertionError, match="p=1 must give zeros"):
        test_p_one_gives_zeros_like_torch(torch.float32)
