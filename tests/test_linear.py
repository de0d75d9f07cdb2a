"""Linear and F.linear against torch.nn.Linear and torch.nn.functional.linear.

Tolerances: strategies.TOLERANCES (float32 rtol 1e-4 / atol 1e-5, float64 rtol 1e-9 / atol 1e-10);
the sums are over at most 6 input features, so no extra factor is needed.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import (
    assert_module_matches_twin,
    assert_same_forward_backward,
    assert_same_state_dict_layout,
    load_into_twin,
    tolerance,
)
from strategies import batch_shapes, dtypes, scales, seeds, sides

WEIGHT_HINT = "weight should be (out_features, in_features) and used as x @ W.T"
BIAS_HINT = "the bias was not added"
INIT_OUT_HINT = "the init bound uses out_features; torch uses 1/sqrt(in_features) (fan_in)"
INIT_NORMAL_HINT = "the weights look normally distributed; torch.nn.Linear draws them uniformly"


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def _matches(out: torch.Tensor, candidate: torch.Tensor, factor: float = 1.0) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out, candidate, **tolerance(candidate.dtype, factor)
    )


def linear_hint(x, weight, bias, out) -> str | None:
    """Name the classic mistake when ``out`` is wrong and equals what that mistake computes."""
    with torch.no_grad():
        right = x @ weight.T + (0 if bias is None else bias)
        if _matches(out, right):
            return None
        if weight.shape[0] == weight.shape[1]:
            if _matches(out, x @ weight + (0 if bias is None else bias)):
                return f"{WEIGHT_HINT}: your output equals x @ W"
        if bias is not None and _matches(out, x @ weight.T):
            return f"{BIAS_HINT}: your output equals x @ W.T without + b"
    return None


def assert_linear_matches(mine, twin, x: torch.Tensor) -> None:
    """Layout, forward (with a hint for the classic mistakes) and every gradient."""
    weight_shape = tuple(mine.weight.shape)
    expected_shape = (twin.out_features, twin.in_features)
    assert weight_shape == expected_shape, (
        f"{WEIGHT_HINT}: got weight of shape {weight_shape}, expected {expected_shape}"
    )
    load_into_twin(mine, twin)
    with torch.no_grad():
        out = mine(x)
    bias = None if mine.bias is None else mine.bias.detach()
    hint = linear_hint(x, mine.weight.detach(), bias, out)
    assert hint is None, hint
    assert_module_matches_twin(mine, twin, [x])


@given(
    batch=batch_shapes(),
    in_features=sides(),
    out_features=sides(),
    bias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(batch=(), in_features=1, out_features=1, bias=True, dtype=torch.float32, seed=0, scale=1.0)
@example(
    batch=(1,), in_features=3, out_features=3, bias=False, dtype=torch.float64, seed=1, scale=1.0
)
@example(
    batch=(2, 1, 3),
    in_features=5,
    out_features=1,
    bias=True,
    dtype=torch.float64,
    seed=2,
    scale=10.0,
)
def test_linear_matches_torch(batch, in_features, out_features, bias, dtype, seed, scale):
    mine = impl.nn.Linear(in_features, out_features, bias=bias).to(dtype)
    twin = torch.nn.Linear(in_features, out_features, bias=bias).to(dtype)
    x = randn((*batch, in_features), dtype, seed, scale)
    assert_linear_matches(mine, twin, x)


@given(
    batch=batch_shapes(),
    in_features=sides(),
    out_features=sides(),
    bias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(batch=(), in_features=1, out_features=1, bias=True, dtype=torch.float64, seed=0, scale=1.0)
@example(
    batch=(4,), in_features=2, out_features=2, bias=False, dtype=torch.float32, seed=3, scale=0.01
)
def test_functional_linear_matches_torch(
    batch, in_features, out_features, bias, dtype, seed, scale
):
    x = randn((*batch, in_features), dtype, seed, scale)
    weight = randn((out_features, in_features), dtype, seed + 1)
    inputs = [x, weight] + ([randn((out_features,), dtype, seed + 2)] if bias else [])
    out = impl.F.linear(*inputs)
    hint = linear_hint(x, weight, inputs[2] if bias else None, out)
    assert hint is None, hint
    assert_same_forward_backward(impl.F.linear, torch.nn.functional.linear, inputs)


def test_functional_linear_bias_defaults_to_none():
    x, weight = randn((2, 3), torch.float64, 0), randn((4, 3), torch.float64, 1)
    torch.testing.assert_close(impl.F.linear(x, weight), x @ weight.T, **tolerance(torch.float64))


def test_linear_defaults_and_attributes():
    mine, twin = impl.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    assert (mine.in_features, mine.out_features) == (4, 3)
    assert mine.bias is not None, "bias=True is the default"
    assert mine.weight.dtype == twin.weight.dtype == torch.float32
    assert mine.weight.requires_grad and mine.bias.requires_grad
    assert impl.nn.Linear(4, 3, bias=False).bias is None
    assert_same_state_dict_layout(mine, twin)
    for name, p in impl.nn.Linear(4, 3, dtype=torch.float64).named_parameters():
        assert p.dtype == torch.float64, (
            f"Linear(4, 3, dtype=torch.float64) made a {p.dtype} {name}: create every tensor "
            "with device=device, dtype=dtype"
        )


@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_loads_both_ways(bias):
    x = randn((5, 4), torch.float32, 0)
    # torch -> minimod: give the twin distinctive weights first.
    twin = torch.nn.Linear(4, 3, bias=bias)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(randn(p.shape, p.dtype, 7))
    mine = impl.nn.Linear(4, 3, bias=bias)
    assert_same_state_dict_layout(mine, twin)
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32))
    # minimod -> torch
    mine = impl.nn.Linear(4, 3, bias=bias)
    twin = torch.nn.Linear(4, 3, bias=bias)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32))
    assert list(mine.state_dict()) == list(twin.state_dict()), "key order differs from torch"


def linear_init_hint(weight: torch.Tensor, in_features: int, out_features: int) -> str | None:
    """Explain a wrong default initialisation, or None if it is U(-1/√in, 1/√in)."""
    w = weight.detach().double().flatten()
    bound = 1 / math.sqrt(in_features)
    max_abs, std = w.abs().max().item(), w.std().item()
    if max_abs <= bound * (1 + 1e-6) and abs(std - bound / math.sqrt(3)) < 0.03 * bound:
        return None
    if max_abs / std > 2.5:  # a uniform's max/std is √3 ≈ 1.73; a normal's grows with n
        return f"{INIT_NORMAL_HINT}: max|w| / std = {max_abs / std:.2f} (uniform: 1.73)"
    wrong = 1 / math.sqrt(out_features)
    if abs(max_abs - wrong) < 0.02 * wrong:
        return f"{INIT_OUT_HINT}: max|w| = {max_abs:.4g} ≈ 1/sqrt({out_features})"
    return (
        f"weights should be ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) = "
        f"U(-{bound:.4g}, {bound:.4g}) (std {bound / math.sqrt(3):.4g}); "
        f"got max|w| = {max_abs:.4g}, std = {std:.4g}"
    )


def assert_linear_default_init(layer, in_features: int, out_features: int) -> None:
    hint = linear_init_hint(layer.weight, in_features, out_features)
    assert hint is None, hint
    bound = 1 / math.sqrt(in_features)
    b = layer.bias.detach().double()
    assert b.abs().max().item() <= bound * (1 + 1e-6), (
        f"bias should be ~ U(-1/sqrt(in_features), 1/sqrt(in_features)); max|b| = "
        f"{b.abs().max().item():.4g} > {bound:.4g}"
    )
    # 4000 samples: the std of a uniform is estimated to about ±1.3%; allow 6%.
    assert abs(b.std().item() - bound / math.sqrt(3)) < 0.06 * bound / math.sqrt(3), (
        f"bias std {b.std().item():.4g}, expected {bound / math.sqrt(3):.4g} "
        "(U(-1/sqrt(in_features), 1/sqrt(in_features)))"
    )
    assert b.abs().max().item() > 0.95 * bound, "bias does not fill its range"
    assert abs(b.mean().item()) < 0.05 * bound, "bias is not centred on 0"


def test_default_init_is_torchs_uniform():
    # 50 inputs, 4000 outputs: 200k weights; bound 1/sqrt(50) ≈ 0.141 (1/sqrt(4000) ≈ 0.016).
    layer = impl.nn.Linear(50, 4000)
    assert_linear_default_init(layer, 50, 4000)
    w = layer.weight.detach().double()
    assert w.abs().max().item() > 0.99 / math.sqrt(50), "weights do not fill their range"
    assert abs(w.mean().item()) < 0.01 / math.sqrt(50), "weights are not centred on 0"


@pytest.mark.parametrize("in_features", [1, 3])
def test_default_init_bounds_small_layers(in_features):
    layer = impl.nn.Linear(in_features, 2000)
    bound = 1 / math.sqrt(in_features)
    for name, p in layer.named_parameters():
        assert p.detach().abs().max().item() <= bound * (1 + 1e-6), (
            f"{name} exceeds the bound 1/sqrt(in_features) = {bound:.4g}"
        )
    assert layer.weight.detach().std().item() == pytest.approx(bound / math.sqrt(3), rel=0.06)


@pytest.mark.parametrize("bias", [True, False])
def test_repr_matches_torch(bias):
    mine, twin = impl.nn.Linear(4, 3, bias=bias), torch.nn.Linear(4, 3, bias=bias)
    assert repr(mine) == repr(twin) == f"Linear(in_features=4, out_features=3, bias={bias})"


@pytest.mark.reference_only
def test_wrong_input_width_names_the_layer():
    from minimod.nn import Linear

    with pytest.raises(ValueError, match=r"Linear\(in_features=64.*last dimension 64.*\(2, 32\)"):
        Linear(64, 10)(torch.randn(2, 32))


# -- the hints fire on deliberately wrong implementations ------------------------------------


class _TransposedLinear(torch.nn.Linear):
    def forward(self, x):
        return x @ self.weight + self.bias


class _NoBiasLinear(torch.nn.Linear):
    def forward(self, x):
        return x @ self.weight.T


class _InOutLinear(torch.nn.Module):
    """Stores the weight as (in_features, out_features)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(in_features, out_features))
        self.bias = torch.nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return x @ self.weight + self.bias


@pytest.mark.reference_only
def test_hint_transposed_weight_fires():
    x = randn((2, 3), torch.float64, 0)
    with pytest.raises(AssertionError, match=r"x @ W\.T: your output equals x @ W"):
        assert_linear_matches(_TransposedLinear(3, 3).double(), torch.nn.Linear(3, 3).double(), x)


@pytest.mark.reference_only
def test_hint_weight_layout_fires():
    x = randn((2, 3), torch.float32, 0)
    with pytest.raises(AssertionError, match=r"\(out_features, in_features\).*got weight of shape"):
        assert_linear_matches(_InOutLinear(3, 5), torch.nn.Linear(3, 5), x)


@pytest.mark.reference_only
def test_hint_missing_bias_fires():
    x = randn((2, 3), torch.float32, 0)
    with pytest.raises(AssertionError, match=BIAS_HINT):
        assert_linear_matches(_NoBiasLinear(3, 4), torch.nn.Linear(3, 4), x)
    weight, bias = randn((4, 3), torch.float64, 1), randn((4,), torch.float64, 2)
    hint = linear_hint(x.double(), weight, bias, x.double() @ weight.T)
    assert hint is not None and BIAS_HINT in hint


@pytest.mark.reference_only
def test_hint_init_with_out_features_fires():
    wrong = torch.nn.Linear(50, 4000)
    with torch.no_grad():
        wrong.weight.uniform_(-1 / math.sqrt(4000), 1 / math.sqrt(4000))
    with pytest.raises(AssertionError, match="uses out_features"):
        assert_linear_default_init(wrong, 50, 4000)


@pytest.mark.reference_only
def test_hint_init_normal_fires():
    wrong = torch.nn.Linear(50, 4000)
    with torch.no_grad():
        wrong.weight.normal_(0, 1 / math.sqrt(50))
    with pytest.raises(AssertionError, match="normally distributed"):
        assert_linear_default_init(wrong, 50, 4000)


@pytest.mark.reference_only
def test_init_check_accepts_torchs_own_linear():
    """The statistical check must not reject torch's own initialisation."""
    assert_linear_default_init(torch.nn.Linear(50, 4000), 50, 4000)
