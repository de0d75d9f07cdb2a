"""Activations (F.relu, gelu, silu, sigmoid, tanh, softmax, log_softmax and their modules) against
torch.nn.functional and torch.nn.

Tolerances: strategies.TOLERANCES (float32 rtol 1e-4 / atol 1e-5, float64 rtol 1e-9 /
atol 1e-10) for values and input gradients; softmax sums over at most 5 entries, so no extra
factor. Logits go up to ±1e4: torch stays finite there and so must the implementation.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_module_matches_twin, assert_same_forward_backward, tolerance
from strategies import dtypes, seeds, shapes

OVERFLOW_HINT = (
    "exp overflowed to inf for large logits: subtract the max along dim before exp "
    "(softmax(x) = softmax(x - max(x)), and log-sum-exp likewise)"
)
LOG_OF_SOFTMAX_HINT = (
    "log_softmax gave -inf for very negative logits: it looks like log(softmax(x)), and softmax "
    "underflows to 0 there; compute (x - m) - log(sum(exp(x - m))) with m = max(x) instead"
)
WRONG_DIM_HINT = "normalised over the wrong dim"
GELU_TANH_HINT = (
    "the tanh approximation is 0.5·x·(1 + tanh(sqrt(2/pi)·(x + 0.044715·x³))); check the "
    "constants sqrt(2/pi) ≈ 0.79788 and 0.044715"
)
GELU_IGNORED_HINT = "approximate='tanh' was ignored: your output equals the exact (erf) GELU"
GELU_TANH_FOR_NONE_HINT = (
    "approximate='none' (the default) is the exact GELU 0.5·x·(1 + erf(x/sqrt(2))); your output "
    "equals the tanh approximation"
)

# ±1e4 logits on top of the shared scales: the stability cases.
LOGIT_SCALES = st.sampled_from([1.0, 0.01, 10.0, 1e4])
ELEMENTWISE = ("relu", "gelu", "silu", "sigmoid", "tanh")


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


@st.composite
def shapes_and_dims(draw, min_dims: int = 0, max_dims: int = 4):
    """A shape of any rank and a dim in [-rank, rank) (a 0-d tensor accepts dim 0 and -1)."""
    shape = draw(shapes(min_dims, max_dims, 5))
    size = max(len(shape), 1)
    return shape, draw(st.integers(-size, size - 1))


def _close(a: torch.Tensor, b: torch.Tensor, factor: float = 1.0) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, **tolerance(b.dtype, factor))


def value_and_grad(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fn(x) and the gradient of (fn(x) * w).sum() for a fixed random w."""
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    w = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(99))
    (out * w).sum().backward()
    return out.detach(), x.grad


def assert_finite_like_torch(what: str, x: torch.Tensor, out, grad, ref, ref_grad) -> None:
    big = x.abs().max().item() if x.numel() else 0.0
    if torch.isfinite(ref).all():
        assert torch.isfinite(out).all(), (
            f"{what} has NaN/inf for inputs up to |x| = {big:.3g}; torch's is finite"
        )
    if ref_grad is not None and torch.isfinite(ref_grad).all():
        assert grad is not None, f"{what}: the input got no gradient"
        assert torch.isfinite(grad).all(), (
            f"the gradient of {what} has NaN/inf for inputs up to |x| = {big:.3g}; torch's is "
            "finite (an intermediate such as exp(-x) probably overflowed)"
        )


# -- elementwise activations ---------------------------------------------------------------


def _gelu_tanh(x: torch.Tensor, c1: float, c2: float, outside: bool = False) -> torch.Tensor:
    inner = c1 * x + c2 * x**3 if outside else c1 * (x + c2 * x**3)
    return 0.5 * x * (1 + torch.tanh(inner))


_WRONG_GELU_CONSTANTS = (
    (2 / math.pi, 0.044715, False, "you used 2/pi instead of sqrt(2/pi)"),
    (math.sqrt(math.pi / 2), 0.044715, False, "you used sqrt(pi/2) instead of sqrt(2/pi)"),
    (math.sqrt(2 * math.pi), 0.044715, False, "you used sqrt(2·pi) instead of sqrt(2/pi)"),
    (math.sqrt(2 / math.pi), 0.0, False, "the 0.044715·x³ term is missing"),
    (math.sqrt(2 / math.pi), 0.44715, False, "you used 0.44715 instead of 0.044715"),
    (math.sqrt(2 / math.pi), 0.044715, True, "sqrt(2/pi) must multiply (x + 0.044715·x³)"),
)


def gelu_hint(x: torch.Tensor, approximate: str, out: torch.Tensor) -> str | None:
    """Name the classic GELU mistake when ``out`` is wrong and equals what that mistake gives."""
    with torch.no_grad():
        if _close(out, F.gelu(x, approximate=approximate)):
            return None
        if approximate == "tanh" and _close(out, F.gelu(x)):
            return GELU_IGNORED_HINT
        if approximate == "none" and _close(out, F.gelu(x, approximate="tanh")):
            return GELU_TANH_FOR_NONE_HINT
        if approximate == "tanh":
            for c1, c2, outside, what in _WRONG_GELU_CONSTANTS:
                if _close(out, _gelu_tanh(x, c1, c2, outside)):
                    return f"{GELU_TANH_HINT}: {what}"
            return f"{GELU_TANH_HINT} (and the cube: x³, not x²)"
    return None


def check_elementwise(fn, twin, x: torch.Tensor, what: str, hint=None) -> None:
    """Hint for a recognisable mistake, finiteness where torch is finite, then values + grads."""
    with torch.no_grad():
        shape = fn(x).shape
    assert shape == x.shape, (
        f"{what} works elementwise: its output has the input's shape {tuple(x.shape)}, got "
        f"{tuple(shape)} (torch.max(x, 0) is a reduction over dim 0; use x.clamp_min(0))"
    )
    out, grad = value_and_grad(fn, x)
    ref, ref_grad = value_and_grad(twin, x)
    if hint is not None:
        message = hint(x, out)
        assert message is None, message
    assert_finite_like_torch(what, x, out, grad, ref, ref_grad)
    if grad is not None and ref_grad is not None and x.numel() > 1:
        slope = _derivative(twin, x)  # the gradient for an incoming gradient of ones
        assert not (_close(grad, slope) and not _close(ref_grad, slope)), (
            f"the gradient of {what} is dy/dx, whatever the incoming gradient: the backward "
            "forgot to multiply by the incoming gradient (return grad_output * dy/dx)"
        )
    assert_same_forward_backward(fn, twin, [x])


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(shape=shapes(0, 4, 5), dtype=dtypes, seed=seeds, scale=LOGIT_SCALES)
@example(shape=(), dtype=torch.float32, seed=0, scale=1.0)
@example(shape=(1,), dtype=torch.float64, seed=1, scale=1e4)
@example(shape=(2, 1, 3), dtype=torch.float32, seed=2, scale=1e4)
def test_elementwise_matches_torch(name, shape, dtype, seed, scale):
    x = randn(shape, dtype, seed, scale)
    mine = getattr(impl.F, name)
    check_elementwise(mine, getattr(F, name), x, f"F.{name}")


def _derivative(fn, x: torch.Tensor) -> torch.Tensor | None:
    """Elementwise derivative: the gradient of fn(x).sum()."""
    x = x.detach().clone().requires_grad_()
    fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_at_exactly_zero_matches_torch(name, dtype):
    """x = 0 exactly is common (zero-initialised logits, padding); kinks and branches sit there.

    torch: relu'(0) = 0, sigmoid'(0) = 1/4, silu'(0) = 1/2, gelu'(0) = 1/2, tanh'(0) = 1.
    """
    x = torch.tensor([-1.0, 0.0, 0.0, 2.0], dtype=dtype)
    grad, expected = _derivative(getattr(impl.F, name), x), _derivative(getattr(F, name), x)
    torch.testing.assert_close(
        grad,
        expected,
        **tolerance(dtype),
        msg=lambda m: (
            f"d {name}(x)/dx at x = [-1, 0, 0, 2] differs from torch's "
            f"{expected.tolist()} (check the branch or kink at x = 0)\n{m}"
        ),
    )
    check_elementwise(getattr(impl.F, name), getattr(F, name), x, f"F.{name}")


def test_elementwise_at_extreme_inputs():
    x = torch.tensor([-1e4, -800.0, -100.0, -30.0, -1e-3, 30.0, 100.0, 800.0, 1e4])
    for dtype in (torch.float32, torch.float64):
        for name in ("sigmoid", "silu", "tanh", "gelu"):
            check_elementwise(getattr(impl.F, name), getattr(F, name), x.to(dtype), f"F.{name}")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(shape=shapes(0, 3, 5), dtype=dtypes, seed=seeds, scale=LOGIT_SCALES)
@example(shape=(6,), dtype=torch.float64, seed=0, scale=1.0)
@example(shape=(2, 3), dtype=torch.float32, seed=1, scale=10.0)
def test_gelu_approximations_match_torch(approximate, shape, dtype, seed, scale):
    x = randn(shape, dtype, seed, scale)
    check_elementwise(
        lambda t: impl.F.gelu(t, approximate=approximate),
        lambda t: F.gelu(t, approximate=approximate),
        x,
        f"F.gelu(approximate={approximate!r})",
        hint=lambda t, out: gelu_hint(t, approximate, out),
    )


@given(shape=shapes(1, 3, 5), dtype=dtypes, seed=seeds)
def test_gelu_default_is_exact(shape, dtype, seed):
    x = randn(shape, dtype, seed)
    check_elementwise(
        impl.F.gelu, F.gelu, x, "F.gelu", hint=lambda t, out: gelu_hint(t, "none", out)
    )


# -- softmax and log_softmax ---------------------------------------------------------------


def _sums_to_one(probs: torch.Tensor, dim: int) -> bool:
    sums = probs.sum(dim) if probs.dim() else probs
    return bool(torch.allclose(sums, torch.ones_like(sums), **tolerance(probs.dtype, 10)))


def softmax_hint(x: torch.Tensor, dim: int, out: torch.Tensor, log: bool) -> str | None:
    """Name the classic softmax / log_softmax mistake that ``out`` shows, if any."""
    name = "log_softmax" if log else "softmax"
    with torch.no_grad():
        if out.shape != x.shape:
            return f"{name} keeps the input's shape {tuple(x.shape)}; got {tuple(out.shape)}"
        if not torch.isfinite(out).all():  # torch's softmax and log_softmax are always finite
            only_minus_inf = log and not torch.isnan(out).any() and not (out == math.inf).any()
            return LOG_OF_SOFTMAX_HINT if only_minus_inf else f"{name}: {OVERFLOW_HINT}"
        probs = out.exp() if log else out
        if _sums_to_one(probs, dim):
            return None
        for other in range(x.dim()):
            if x.shape[other] > 1 and other != dim % x.dim() and _sums_to_one(probs, other):
                return (
                    f"{name} {WRONG_DIM_HINT}: your probabilities sum to 1 along dim "
                    f"{other}, but dim={dim} was asked for"
                )
        return f"{name} along dim={dim} must give probabilities that sum to 1; yours do not"


def check_softmax(fn, twin, x: torch.Tensor, dim: int, log: bool) -> None:
    name = "log_softmax" if log else "softmax"
    out, grad = value_and_grad(fn, x)
    ref, ref_grad = value_and_grad(twin, x)
    hint = softmax_hint(x, dim, out, log)
    assert hint is None, hint
    assert_finite_like_torch(f"{name}(dim={dim})", x, out, grad, ref, ref_grad)
    assert_same_forward_backward(fn, twin, [x])


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@given(shape_dim=shapes_and_dims(), dtype=dtypes, seed=seeds, scale=LOGIT_SCALES)
@example(shape_dim=((), 0), dtype=torch.float64, seed=0, scale=1.0)
@example(shape_dim=((1,), -1), dtype=torch.float32, seed=0, scale=1e4)
@example(shape_dim=((3, 1), -1), dtype=torch.float64, seed=1, scale=1.0)
@example(shape_dim=((2, 3, 4), 1), dtype=torch.float32, seed=2, scale=1e4)
@example(shape_dim=((2, 3, 4), -3), dtype=torch.float32, seed=3, scale=1e4)
@example(shape_dim=((2, 1, 2, 5), 3), dtype=torch.float64, seed=4, scale=1e4)
def test_softmax_matches_torch(log, shape_dim, dtype, seed, scale):
    shape, dim = shape_dim
    x = randn(shape, dtype, seed, scale)
    name = "log_softmax" if log else "softmax"
    mine, twin = getattr(impl.F, name), getattr(F, name)
    check_softmax(lambda t: mine(t, dim=dim), lambda t: twin(t, dim=dim), x, dim, log)


MIXED_LOGITS = [
    [1e4, -1e4, 0.0, 1.0],
    [-1e4, -1e4, 5.0, -5.0],
    [1e4, 1e4, -1e4, 3.0],
    [-1e4, -1e4, -1e4, -1e4],
]


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_mixed_huge_and_small_logits(log, dtype, dim):
    """Huge and ordinary logits side by side: finite values, finite gradients equal to torch's."""
    x = torch.tensor(MIXED_LOGITS, dtype=dtype)
    name = "log_softmax" if log else "softmax"
    mine, twin = getattr(impl.F, name), getattr(F, name)
    check_softmax(lambda t: mine(t, dim=dim), lambda t: twin(t, dim=dim), x, dim, log)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_softmax_without_dim_uses_torchs_implicit_dim(name, rank):
    """dim=None is the default: torch then picks dim 0 for ranks 0, 1, 3 and dim 1 otherwise."""
    x = randn((3, 4, 2, 5)[:rank], torch.float64, rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about the implicit dim
        assert_same_forward_backward(getattr(impl.F, name), getattr(F, name), [x])
        module = "Softmax" if name == "softmax" else "LogSoftmax"
        mine, twin = getattr(impl.nn, module)(), getattr(torch.nn, module)()
        assert mine.dim is None and twin.dim is None
        assert_module_matches_twin(mine, twin, [x])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_input_matches_torch(name):
    """NaN in, NaN out, and the gradient at NaN is torch's (relu passes it through: torch
    zeroes the gradient only where x <= 0, which NaN is not)."""
    x = torch.tensor([float("nan"), -1.0, 0.0, 2.0], dtype=torch.float64)
    tol = dict(equal_nan=True, **tolerance(torch.float64))
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = getattr(impl.F, name)(mine), getattr(F, name)(theirs)
    torch.testing.assert_close(out, expected, **tol)
    out.sum().backward(), expected.sum().backward()
    torch.testing.assert_close(
        mine.grad,
        theirs.grad,
        **tol,
        msg=lambda m: (
            f"the gradient of {name} at x = [nan, -1, 0, 2] is {mine.grad.tolist()}, torch's "
            f"{theirs.grad.tolist()}: a NaN input must get torch's gradient (relu's backward "
            f"zeroes it only where y <= 0, which NaN is not)\n{m}"
        ),
    )


@pytest.mark.reference_only  # given code (no lesson writes it)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [((2, 0), 1), ((0, 3), 1), ((0, 3), 0), ((0,), 0)])
def test_softmax_over_an_empty_dim_matches_torch(log, shape, dim):
    name = "log_softmax" if log else "softmax"
    assert_same_forward_backward(
        lambda t: getattr(impl.F, name)(t, dim),
        lambda t: getattr(F, name)(t, dim),
        [torch.zeros(shape)],
    )


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_softmax_dtype_argument_matches_torch(log, dtype):
    """dtype= casts the input first (float32 logits, float64 probabilities), as torch."""
    name = "log_softmax" if log else "softmax"
    x = randn((3, 5), torch.float32 if dtype == torch.float64 else torch.float64, 0, 10.0)
    assert_same_forward_backward(
        lambda t: getattr(impl.F, name)(t, -1, dtype=dtype),
        lambda t: getattr(F, name)(t, -1, dtype=dtype),
        [x],
    )


# -- modules -------------------------------------------------------------------------------

ELEMENTWISE_MODULES = [
    ("ReLU", {}),
    # Lesson 3 does not teach ReLU6 (MobileNetV2's activation): minimod's own check.
    pytest.param("ReLU6", {}, marks=pytest.mark.reference_only),
    ("GELU", {}),
    ("GELU", {"approximate": "tanh"}),
    ("GELU", {"approximate": "none"}),
    ("SiLU", {}),
    ("Tanh", {}),
    ("Sigmoid", {}),
]


def assert_parameter_free_twin(mine, twin, x: torch.Tensor) -> None:
    assert list(mine.parameters()) == [], "activations have no parameters"
    assert dict(mine.state_dict()) == {} == dict(twin.state_dict()), (
        f"activations have an empty state_dict, like torch; got keys {list(mine.state_dict())}"
    )
    assert_module_matches_twin(mine, twin, [x])
    mine.eval(), twin.eval()
    assert_module_matches_twin(mine, twin, [x])


@pytest.mark.parametrize("name,kwargs", ELEMENTWISE_MODULES)
@given(shape=shapes(0, 4, 5), dtype=dtypes, seed=seeds, scale=LOGIT_SCALES)
@example(shape=(2, 3), dtype=torch.float64, seed=0, scale=1.0)
def test_elementwise_modules_match_torch(name, kwargs, shape, dtype, seed, scale):
    mine, twin = getattr(impl.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    if name == "GELU":
        assert mine.approximate == twin.approximate, (
            f"GELU.approximate should be {twin.approximate!r} (torch's default is 'none')"
        )
    assert_parameter_free_twin(mine, twin, randn(shape, dtype, seed, scale))


@pytest.mark.reference_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu6_at_its_kinks_matches_torch(dtype):
    """torch's ReLU6 is hardtanh(x, 0, 6): gradient 0 at exactly 0 and exactly 6 (both kinks),
    1 strictly between. (No NaN here: torch's gradient at NaN is 1 or 0 depending on which of
    its vectorised or scalar loops handles the element.)"""
    inf = float("inf")
    x = torch.tensor([-1.0, 0.0, 0.0, 3.0, 6.0, 6.0, 7.0, inf, -inf], dtype=dtype)
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = impl.nn.ReLU6()(mine), torch.nn.ReLU6()(theirs)
    torch.testing.assert_close(out, expected, **tolerance(dtype))
    out.sum().backward(), expected.sum().backward()
    torch.testing.assert_close(
        mine.grad,
        theirs.grad,
        **tolerance(dtype),
        msg=lambda m: (
            f"d relu6(x)/dx at x = {x.tolist()} should be torch's {theirs.grad.tolist()} "
            f"(0 at the kinks x = 0 and x = 6)\n{m}"
        ),
    )


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@given(shape_dim=shapes_and_dims(1), dtype=dtypes, seed=seeds, scale=LOGIT_SCALES)
@example(shape_dim=((2, 5), -1), dtype=torch.float32, seed=0, scale=1e4)
@example(shape_dim=((4, 3), 0), dtype=torch.float32, seed=0, scale=1e4)
def test_softmax_modules_match_torch(name, shape_dim, dtype, seed, scale):
    shape, dim = shape_dim
    mine, twin = getattr(impl.nn, name)(dim), getattr(torch.nn, name)(dim=dim)
    assert mine.dim == dim, f"{name}(dim) should store dim as .dim, like torch"
    x = randn(shape, dtype, seed, scale)
    check_softmax(mine, twin, x, dim, log=name == "LogSoftmax")
    assert_parameter_free_twin(mine, twin, x)


@pytest.mark.reference_only
def test_bad_arguments_raise():
    from minimod.nn import GELU
    from minimod.nn.functional import gelu, softmax

    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh'.*'erf'"):
        gelu(torch.randn(3), approximate="erf")
    with pytest.raises(ValueError, match="approximate"):
        GELU("fast")(torch.randn(3))
    with pytest.raises(IndexError, match=r"softmax: dim 2 is out of range for a 2-D input"):
        softmax(torch.randn(2, 3), dim=2)


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _naive_softmax(x, dim):  # no max subtraction: exp(1e4) = inf
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def _log_of_softmax(x, dim):  # stable softmax, but log(0) = -inf for very negative logits
    return torch.softmax(x, dim).log()


def _softmax_last_dim(x, dim):  # ignores dim
    return torch.softmax(x, -1)


@pytest.mark.reference_only
def test_hint_softmax_overflow_fires():
    x = torch.tensor(MIXED_LOGITS)
    with pytest.raises(AssertionError, match="subtract the max along dim"):
        check_softmax(lambda t: _naive_softmax(t, 1), lambda t: F.softmax(t, 1), x, 1, log=False)
    naive_log = lambda t: _naive_softmax(t, 1).log()  # noqa: E731
    with pytest.raises(AssertionError, match="subtract the max along dim"):
        check_softmax(naive_log, lambda t: F.log_softmax(t, 1), x, 1, log=True)


@pytest.mark.reference_only
def test_hint_log_of_softmax_fires():
    x = torch.tensor(MIXED_LOGITS, dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"looks like log\(softmax\(x\)\)"):
        check_softmax(
            lambda t: _log_of_softmax(t, -1), lambda t: F.log_softmax(t, -1), x, -1, log=True
        )


@pytest.mark.reference_only
def test_hint_wrong_dim_fires():
    x = randn((3, 4), torch.float64, 0)
    with pytest.raises(AssertionError, match=r"wrong dim: .*sum to 1 along dim 1, but dim=0"):
        check_softmax(lambda t: _softmax_last_dim(t, 0), lambda t: F.softmax(t, 0), x, 0, log=False)
    wrong_log = lambda t: torch.log_softmax(t, 1)  # noqa: E731
    with pytest.raises(AssertionError, match=r"log_softmax normalised over the wrong dim"):
        check_softmax(wrong_log, lambda t: F.log_softmax(t, -2), x, -2, log=True)


@pytest.mark.reference_only
@pytest.mark.parametrize("c1,c2,outside,what", _WRONG_GELU_CONSTANTS)
def test_hint_gelu_tanh_constants_fire(c1, c2, outside, what):
    x = randn((50,), torch.float64, 0, 2.0)
    with pytest.raises(AssertionError, match=r"sqrt\(2/pi\) ≈ 0\.79788.*" + re.escape(what)):
        check_elementwise(
            lambda t: _gelu_tanh(t, c1, c2, outside),
            lambda t: F.gelu(t, approximate="tanh"),
            x,
            "gelu",
            hint=lambda t, out: gelu_hint(t, "tanh", out),
        )


@pytest.mark.reference_only
def test_hint_gelu_approximate_mixups_fire():
    x = randn((50,), torch.float32, 0, 2.0)
    with pytest.raises(AssertionError, match="approximate='tanh' was ignored"):
        check_elementwise(
            F.gelu,
            lambda t: F.gelu(t, approximate="tanh"),
            x,
            "gelu",
            hint=lambda t, out: gelu_hint(t, "tanh", out),
        )
    with pytest.raises(AssertionError, match="equals the tanh approximation"):
        check_elementwise(
            lambda t: F.gelu(t, approximate="tanh"),
            F.gelu,
            x,
            "gelu",
            hint=lambda t, out: gelu_hint(t, "none", out),
        )


@pytest.mark.reference_only
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_checks_accept_torch_itself(dim):
    """The hint logic must not reject torch's own functions (no false alarms)."""
    x = torch.tensor(MIXED_LOGITS)
    check_softmax(lambda t: F.softmax(t, dim), lambda t: F.softmax(t, dim), x, dim, False)
    check_softmax(lambda t: F.log_softmax(t, dim), lambda t: F.log_softmax(t, dim), x, dim, True)
    y = randn((40,), torch.float64, 1, 3.0)
    for approximate in ("none", "tanh"):
        assert gelu_hint(y, approximate, F.gelu(y, approximate=approximate)) is None


# -- the hand-written backward (GELUFunction) ----------------------------------------------------
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_passes_gradcheck(approximate):
    """Finite differences in float64 against GELUFunction's hand-written backward."""
    x = torch.linspace(-6, 6, 41, dtype=torch.float64).reshape(41, 1).requires_grad_()
    torch.autograd.gradcheck(lambda t: impl.F.gelu(t, approximate=approximate), (x,))
