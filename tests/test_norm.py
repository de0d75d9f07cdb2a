"""LayerNorm / RMSNorm and F.layer_norm / F.rms_norm against their torch.nn twins.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): normalising divides by a standard deviation as small as ~0.01 (inputs of scale
0.01), which magnifies rounding in the input gradient.
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
    tolerance,
)
from strategies import batch_shapes, dtypes, scales, seeds, shapes

FACTOR = 10.0
UNBIASED_HINT = (
    "looks like you used the unbiased variance (divide by N-1); "
    "LayerNorm uses the biased variance (divide by N)"
)
EPS_OUTSIDE_HINT = "eps belongs inside the square root: sqrt(var + eps), not sqrt(var) + eps"
LAST_AXIS_HINT = (
    "normalise over all of normalized_shape's trailing dimensions, not only the last one"
)
BATCH_AXIS_HINT = (
    "LayerNorm normalises each sample over its features (normalized_shape's trailing dims), "
    "not over the batch axis (that is BatchNorm)"
)
NAN_GRAD_HINT = (
    "the input gradient has NaN where torch's has none: where the variance is 0 (e.g. a single "
    "normalised element) the derivative of sqrt(var) is infinite; take sqrt(var + eps) so eps "
    "keeps it finite"
)
MEAN_HINT = "RMSNorm does not subtract the mean (that is LayerNorm): x / sqrt(mean(x²) + eps)"
EPS_NONE_HINT = "eps=None means torch.finfo(input.dtype).eps"


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def _matches(out: torch.Tensor, candidate: torch.Tensor) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out, candidate, **tolerance(candidate.dtype, FACTOR)
    )


def _affine(y, weight, bias):
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def _as_tuple(normalized_shape) -> tuple:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(normalized_shape)


def layer_norm_hint(x, normalized_shape, weight, bias, eps, out) -> str | None:
    """Name the classic LayerNorm mistake that ``out`` equals, if it is wrong."""
    shape = _as_tuple(normalized_shape)
    dims = tuple(range(-len(shape), 0))
    with torch.no_grad():
        right = torch.nn.functional.layer_norm(x, shape, weight, bias, eps)
        if _matches(out, right):
            return None
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, keepdim=True, unbiased=False)
        if math.prod(shape) == 1 and torch.isnan(out).any():
            return f"{UNBIASED_HINT} (with one element N-1 = 0, which gives NaN)"
        if math.prod(shape) > 1:
            unbiased = x.var(dims, keepdim=True, unbiased=True)
            if _matches(out, _affine((x - mean) / (unbiased + eps).sqrt(), weight, bias)):
                return UNBIASED_HINT
        if _matches(out, _affine((x - mean) / (var.sqrt() + eps), weight, bias)):
            return EPS_OUTSIDE_HINT
        if len(shape) > 1:
            last = torch.nn.functional.layer_norm(x, shape[-1:], None, None, eps)
            if _matches(out, _affine(last, weight, bias)):
                return LAST_AXIS_HINT
        if x.dim() > len(shape) and x.shape[0] > 1:
            centred = x - x.mean(0, keepdim=True)
            batch_var = x.var(0, keepdim=True, unbiased=False)
            if _matches(out, _affine(centred / (batch_var + eps).sqrt(), weight, bias)):
                return BATCH_AXIS_HINT
    return None


def rms_norm_hint(x, normalized_shape, weight, eps, out) -> str | None:
    """Name the classic RMSNorm mistake that ``out`` equals, if it is wrong."""
    shape = _as_tuple(normalized_shape)
    dims = tuple(range(-len(shape), 0))
    with torch.no_grad():
        right = torch.nn.functional.rms_norm(x, shape, weight, eps)
        if _matches(out, right):
            return None
        actual_eps = torch.finfo(x.dtype).eps if eps is None else eps
        centred = x - x.mean(dims, keepdim=True)  # LayerNorm without its bias
        centred_rms = (centred.pow(2).mean(dims, keepdim=True) + actual_eps).sqrt()
        if _matches(out, _affine(centred / centred_rms, weight, None)):
            return MEAN_HINT
        mean_square = x.pow(2).mean(dims, keepdim=True)
        if eps is None:
            for guess in (1e-5, 1e-6, 1e-8):
                if _matches(out, _affine(x / (mean_square + guess).sqrt(), weight, None)):
                    return f"{EPS_NONE_HINT} ({torch.finfo(x.dtype).eps:.3g}); you used {guess:g}"
        if _matches(out, _affine(x / (mean_square.sqrt() + actual_eps), weight, None)):
            return EPS_OUTSIDE_HINT
    return None


def assert_hint_free(hint: str | None) -> None:
    assert hint is None, hint


def nan_gradient_hint(fn, *inputs) -> str | None:
    """NaN input gradient (torch's is finite for these inputs): sqrt(0) in the backward."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    fn(*inputs).sum().backward()
    for param in getattr(fn, "parameters", list)():
        param.grad = None  # leave the module as it was for the comparison that follows
    if torch.isnan(inputs[0].grad).any():
        return NAN_GRAD_HINT
    return None


# -- strategies --------------------------------------------------------------------------------


@st.composite
def norm_cases(draw):
    """(batch, trailing shape, normalized_shape as given to the layer: int, tuple or list)."""
    batch = draw(batch_shapes(2, 4))
    trailing = draw(shapes(1, 2, 5))
    form = draw(
        st.sampled_from(["int", "tuple", "list"] if len(trailing) == 1 else ["tuple", "list"])
    )
    given_shape = {
        "int": lambda: trailing[0],
        "tuple": lambda: trailing,
        "list": lambda: list(trailing),
    }[form]()
    return batch, trailing, given_shape


eps_values = st.none() | st.sampled_from([1e-3, 1e-6, 0.1])


def _randomise(module, seed):
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.copy_(randn(p.shape, p.dtype, seed + i))


# -- LayerNorm ---------------------------------------------------------------------------------


@given(
    case=norm_cases(),
    affine=st.booleans(),
    bias=st.booleans(),
    eps=eps_values,
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(
    case=((), (1,), 1), affine=True, bias=True, eps=None, dtype=torch.float32, seed=0, scale=1.0
)
@example(
    case=((3,), (4,), 4), affine=True, bias=True, eps=None, dtype=torch.float32, seed=0, scale=0.01
)
@example(
    case=((2, 1), (2, 3), (2, 3)),
    affine=False,
    bias=True,
    eps=1e-3,
    dtype=torch.float64,
    seed=1,
    scale=10.0,
)
@example(
    case=((2,), (5,), [5]), affine=True, bias=False, eps=0.1, dtype=torch.float64, seed=2, scale=1.0
)
def test_layer_norm_matches_torch(case, affine, bias, eps, dtype, seed, scale):
    batch, trailing, normalized_shape = case
    kwargs = dict(elementwise_affine=affine, bias=bias) | ({} if eps is None else dict(eps=eps))
    mine = impl.nn.LayerNorm(normalized_shape, **kwargs).to(dtype)
    twin = torch.nn.LayerNorm(normalized_shape, **kwargs).to(dtype)
    assert tuple(mine.normalized_shape) == twin.normalized_shape
    assert_same_state_dict_layout(mine, twin)
    _randomise(twin, seed)
    mine.load_state_dict(twin.state_dict())
    x = randn((*batch, *trailing), dtype, seed, scale)
    with torch.no_grad():
        out = mine(x)
    assert_hint_free(layer_norm_hint(x, trailing, twin.weight, twin.bias, twin.eps, out))
    assert_hint_free(nan_gradient_hint(mine, x))
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)


@given(
    case=norm_cases(),
    affine=st.booleans(),
    bias=st.booleans(),
    eps=eps_values,
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(
    case=((), (1,), 1), affine=False, bias=False, eps=None, dtype=torch.float64, seed=0, scale=1.0
)
@example(
    case=((2, 2), (3, 2), (3, 2)),
    affine=True,
    bias=True,
    eps=None,
    dtype=torch.float32,
    seed=3,
    scale=0.01,
)
def test_functional_layer_norm_matches_torch(case, affine, bias, eps, dtype, seed, scale):
    batch, trailing, normalized_shape = case
    if isinstance(normalized_shape, int):  # only the module takes an int, as in torch
        normalized_shape = (normalized_shape,)
    x = randn((*batch, *trailing), dtype, seed, scale)
    weight = randn(trailing, dtype, seed + 1) if affine else None
    b = randn(trailing, dtype, seed + 2) if affine and bias else None
    inputs = [t for t in (x, weight, b) if t is not None]
    kwargs = {} if eps is None else dict(eps=eps)

    names = [name for name, t in (("weight", weight), ("bias", b)) if t is not None]

    def call(function):
        def run(x, *params):
            named = dict(zip(names, params, strict=True))
            return function(x, normalized_shape, **named, **kwargs)

        return run

    with torch.no_grad():
        out = call(impl.F.layer_norm)(*inputs)
    assert_hint_free(layer_norm_hint(x, trailing, weight, b, 1e-5 if eps is None else eps, out))
    assert_hint_free(nan_gradient_hint(call(impl.F.layer_norm), *inputs))
    assert_same_forward_backward(
        call(impl.F.layer_norm), call(torch.nn.functional.layer_norm), inputs, factor=FACTOR
    )


# -- RMSNorm -----------------------------------------------------------------------------------


@given(
    case=norm_cases(), affine=st.booleans(), eps=eps_values, dtype=dtypes, seed=seeds, scale=scales
)
@example(case=((), (1,), 1), affine=True, eps=None, dtype=torch.float32, seed=0, scale=1.0)
@example(case=((3,), (4,), 4), affine=True, eps=None, dtype=torch.float32, seed=0, scale=0.01)
@example(case=((3,), (4,), 4), affine=False, eps=None, dtype=torch.float64, seed=0, scale=0.01)
@example(
    case=((2, 1), (2, 3), (2, 3)), affine=False, eps=1e-3, dtype=torch.float64, seed=1, scale=10.0
)
def test_rms_norm_matches_torch(case, affine, eps, dtype, seed, scale):
    batch, trailing, normalized_shape = case
    kwargs = dict(elementwise_affine=affine) | ({} if eps is None else dict(eps=eps))
    mine = impl.nn.RMSNorm(normalized_shape, **kwargs).to(dtype)
    twin = torch.nn.RMSNorm(normalized_shape, **kwargs).to(dtype)
    assert tuple(mine.normalized_shape) == twin.normalized_shape
    assert mine.eps == twin.eps, f"eps is {mine.eps}, torch keeps {twin.eps}"
    assert_same_state_dict_layout(mine, twin)
    _randomise(twin, seed)
    mine.load_state_dict(twin.state_dict())
    x = randn((*batch, *trailing), dtype, seed, scale)
    with torch.no_grad():
        out = mine(x)
    assert_hint_free(rms_norm_hint(x, trailing, twin.weight, eps, out))
    assert_hint_free(nan_gradient_hint(mine, x))
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)


@given(
    case=norm_cases(), affine=st.booleans(), eps=eps_values, dtype=dtypes, seed=seeds, scale=scales
)
@example(case=((), (1,), 1), affine=False, eps=None, dtype=torch.float64, seed=0, scale=1.0)
@example(
    case=((2, 2), (3, 2), (3, 2)), affine=True, eps=None, dtype=torch.float32, seed=3, scale=0.01
)
def test_functional_rms_norm_matches_torch(case, affine, eps, dtype, seed, scale):
    batch, trailing, normalized_shape = case
    if isinstance(normalized_shape, int):  # only the module takes an int, as in torch
        normalized_shape = (normalized_shape,)
    x = randn((*batch, *trailing), dtype, seed, scale)
    weight = randn(trailing, dtype, seed + 1) if affine else None
    inputs = [x] if weight is None else [x, weight]
    kwargs = {} if eps is None else dict(eps=eps)

    def call(function):
        def run(x, *params):
            return function(x, normalized_shape, *params, **kwargs)

        return run

    with torch.no_grad():
        out = call(impl.F.rms_norm)(*inputs)
    assert_hint_free(rms_norm_hint(x, trailing, weight, eps, out))
    assert_hint_free(nan_gradient_hint(call(impl.F.rms_norm), *inputs))
    assert_same_forward_backward(
        call(impl.F.rms_norm), call(torch.nn.functional.rms_norm), inputs, factor=FACTOR
    )


# -- both layers: defaults, loading both ways, repr, bad input ------------------------------------


@pytest.mark.parametrize("name", ["LayerNorm", "RMSNorm"])
@pytest.mark.parametrize("normalized_shape", [4, (2, 3)])
def test_defaults(name, normalized_shape):
    """torch's eps (LayerNorm 1e-5; RMSNorm None: the dtype's machine epsilon), weight ones and
    bias zeros, float32 parameters that learn. Inputs of scale 0.01 make eps matter."""
    mine, twin = getattr(impl.nn, name)(normalized_shape), getattr(torch.nn, name)(normalized_shape)
    assert mine.eps == twin.eps, f"{name}'s eps is {mine.eps}, torch's {twin.eps}"
    assert_same_state_dict_layout(mine, twin)
    assert mine.weight.dtype == torch.float32 and mine.weight.requires_grad
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(
            mine.state_dict()[key], value, rtol=0, atol=0, msg=f"{name}'s {key} starts at {value}"
        )
    trailing = _as_tuple(normalized_shape)
    x = randn((3, *trailing), torch.float32, 0, 0.01)
    with torch.no_grad():
        out = mine(x)
    if name == "LayerNorm":
        assert_hint_free(layer_norm_hint(x, trailing, None, None, twin.eps, out))
    else:
        assert_hint_free(rms_norm_hint(x, trailing, None, None, out))
    torch.testing.assert_close(out, twin(x).detach(), **tolerance(torch.float32, FACTOR))


# (layer, constructor keyword arguments)
LAYER_CONFIGS = [
    ("LayerNorm", dict(elementwise_affine=True, bias=True)),
    ("LayerNorm", dict(elementwise_affine=True, bias=False)),
    ("LayerNorm", dict(elementwise_affine=False, bias=True)),
    ("RMSNorm", dict(elementwise_affine=True)),
    ("RMSNorm", dict(elementwise_affine=False)),
]


@pytest.mark.parametrize("name, kwargs", LAYER_CONFIGS)
def test_state_dict_loads_both_ways(name, kwargs):
    x = randn((2, 3, 4), torch.float32, 0)
    twin = getattr(torch.nn, name)(4, **kwargs)
    _randomise(twin, 5)
    mine = getattr(impl.nn, name)(4, **kwargs)
    assert_same_state_dict_layout(mine, twin)
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))
    _randomise(mine, 9)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))


@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("LayerNorm", (4,), {}),
        ("LayerNorm", ((2, 3),), dict(eps=1e-3, bias=False)),
        ("LayerNorm", (4,), dict(elementwise_affine=False)),
        ("RMSNorm", (4,), {}),
        ("RMSNorm", ((2, 3),), dict(eps=1e-3)),
        ("RMSNorm", (4,), dict(elementwise_affine=False)),
    ],
)
def test_repr_and_forward_match_torch(name, args, kwargs):
    mine, twin = getattr(impl.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(mine) == repr(twin)
    x = randn((2, *_as_tuple(args[0])), torch.float32, 0)  # and it behaves as it prints
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "name, function, normalized_shape, shape, expected",
    [
        ("LayerNorm", "layer_norm", 4, (2, 5), r"last dimension 4.*\(2, 5\)"),
        ("LayerNorm", "layer_norm", (2, 3), (4, 2, 4), r"\(2, 3\).*\(4, 2, 4\)"),
        ("RMSNorm", "rms_norm", 4, (2, 5), r"last dimension 4.*\(2, 5\)"),
    ],
)
def test_wrong_trailing_shape_names_the_layer(name, function, normalized_shape, shape, expected):
    from minimod import nn

    with pytest.raises(ValueError, match=rf"({name}|{function}).*{expected}"):
        getattr(nn, name)(normalized_shape)(torch.randn(shape))


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _layer_norm_unbiased(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(_as_tuple(normalized_shape)), 0))
    centred = x - x.mean(dims, keepdim=True)
    return _affine(centred / (x.var(dims, keepdim=True) + eps).sqrt(), weight, bias)


def _layer_norm_eps_outside(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(_as_tuple(normalized_shape)), 0))
    centred = x - x.mean(dims, keepdim=True)
    std = x.var(dims, keepdim=True, unbiased=False).sqrt()
    return _affine(centred / (std + eps), weight, bias)


def _layer_norm_last_axis(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    y = torch.nn.functional.layer_norm(x, _as_tuple(normalized_shape)[-1:], eps=eps)
    return _affine(y, weight, bias)


class _UnbiasedLayerNorm(torch.nn.LayerNorm):
    def forward(self, x):
        return _layer_norm_unbiased(x, self.normalized_shape, self.weight, self.bias, self.eps)


def _rms_norm_centred(x, normalized_shape, weight=None, eps=None):
    dims = tuple(range(-len(_as_tuple(normalized_shape)), 0))
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    centred = x - x.mean(dims, keepdim=True)
    return _affine(centred / (centred.pow(2).mean(dims, keepdim=True) + eps).sqrt(), weight, None)


def _rms_norm_fixed_eps(x, normalized_shape, weight=None, eps=None):
    return torch.nn.functional.rms_norm(x, normalized_shape, weight, 1e-5 if eps is None else eps)


def _rms_norm_eps_outside(x, normalized_shape, weight=None, eps=None):
    dims = tuple(range(-len(_as_tuple(normalized_shape)), 0))
    rms = x.pow(2).mean(dims, keepdim=True).sqrt()
    return _affine(x / (rms + eps), weight, None)


def _hint_for(wrong, x, normalized_shape, *args):
    hint_of = rms_norm_hint if "rms" in wrong.__name__ else layer_norm_hint
    return hint_of(x, normalized_shape, *args, wrong(x, normalized_shape, *args))


@pytest.mark.reference_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_hints_fire(dtype):
    x = randn((3, 2, 4), dtype, 0, 0.01)
    weight, bias = randn((2, 4), dtype, 1), randn((2, 4), dtype, 2)
    assert _hint_for(_layer_norm_unbiased, x, (4,), None, None, 1e-5) == UNBIASED_HINT
    assert _hint_for(_layer_norm_eps_outside, x, (4,), None, None, 1e-5) == EPS_OUTSIDE_HINT
    assert _hint_for(_layer_norm_last_axis, x, (2, 4), weight, bias, 1e-5) == LAST_AXIS_HINT
    right = torch.nn.functional.layer_norm
    assert _hint_for(right, x, (2, 4), weight, bias, 1e-5) is None


@pytest.mark.reference_only
def test_layer_norm_module_hint_fires():
    wrong, twin = _UnbiasedLayerNorm(4), torch.nn.LayerNorm(4)
    x = randn((3, 4), torch.float32, 0)
    with torch.no_grad():
        out = wrong(x)
    with pytest.raises(AssertionError, match=r"unbiased variance \(divide by N-1\)"):
        assert_hint_free(layer_norm_hint(x, (4,), twin.weight, twin.bias, twin.eps, out))


@pytest.mark.reference_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rms_norm_hints_fire(dtype):
    x = randn((3, 5), dtype, 0, 0.01) + 0.02  # a non-zero mean, so centring shows
    weight = randn((5,), dtype, 1)
    assert _hint_for(_rms_norm_centred, x, (5,), weight, None) == MEAN_HINT
    assert _hint_for(_rms_norm_eps_outside, x, (5,), weight, 1e-3) == EPS_OUTSIDE_HINT
    assert _hint_for(_rms_norm_fixed_eps, x, (5,), weight, None).startswith(EPS_NONE_HINT)
    assert _hint_for(torch.nn.functional.rms_norm, x, (5,), weight, None) is None


@pytest.mark.reference_only
@pytest.mark.filterwarnings(r"ignore:var\(\)")
def test_nan_gradient_hint_fires():
    x = randn((3, 1), torch.float64, 0)
    with pytest.raises(AssertionError, match="derivative of sqrt"):
        assert_hint_free(nan_gradient_hint(lambda x: _layer_norm_eps_outside(x, 1), x))
    assert nan_gradient_hint(lambda x: torch.nn.functional.layer_norm(x, (1,)), x) is None
    wrong = _UnbiasedLayerNorm(1).double()
    with torch.no_grad():
        out = wrong(x)
    hint = layer_norm_hint(x, (1,), None, None, 1e-5, out)
    assert hint.startswith(UNBIASED_HINT) and "NaN" in hint


# -- the hand-written backward (LayerNormFunction) -----------------------------------------------
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("normalized", [(5,), (3, 4)])
def test_layer_norm_backward_passes_gradcheck(affine, normalized):
    """Finite differences in float64 against LayerNormFunction's backward, for x, γ and β."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *normalized, dtype=torch.float64, generator=g).requires_grad_()
    with_weight, with_bias = affine
    weight = torch.randn(normalized, dtype=torch.float64, generator=g).requires_grad_()
    bias = torch.randn(normalized, dtype=torch.float64, generator=g).requires_grad_()
    inputs = (x, weight if with_weight else None, bias if with_bias else None)
    torch.autograd.gradcheck(
        lambda t, w, b: impl.F.layer_norm(t, normalized, w, b, eps=1e-5), inputs
    )
