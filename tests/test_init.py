"""minimod.nn.init against the distributions torch.nn.init documents.

Random draws are not compared with torch's; each initialiser fills a large tensor (≥ 70k values)
and its spread is checked against the theory: standard deviation within REL = 3 % (the sampling
error is ≤ 0.5 %), uniform bounds never exceeded and nearly reached, means near their value.
Fans are computed here, independently: a weight (out, in, *kernel) has
fan_in = in · prod(kernel) and fan_out = out · prod(kernel).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import impl

REL = 0.03
SHAPES = [(300, 400), (128, 64, 3, 3)]  # a Linear weight and a Conv2d weight
MODE_HINT = (
    "mode picks the fan: fan_in = tensor.shape[1] * receptive field, "
    "fan_out = tensor.shape[0] * receptive field"
)
RECEPTIVE_HINT = (
    "the fan includes the receptive field (kernel size): fan_in = in_channels * kh * kw"
)
SQRT3_HINT = "a uniform on [-b, b] has std b / sqrt(3): the bound is sqrt(3) times the target std"
GAIN_HINT = "the gain is missing: scale by calculate_gain(nonlinearity, a)"
XAVIER_HINT = "Xavier/Glorot uses both fans: std = gain * sqrt(2 / (fan_in + fan_out))"
NO_GRAD_HINT = (
    "initialisers must fill the tensor under torch.no_grad() (an in-place op on a "
    "leaf that requires grad is an error, and init must not be recorded)"
)
CLAMP_HINT = (
    "values pile up at a or b: truncation redraws (or inverts the CDF); clamping is not truncation"
)


def fans(shape: tuple) -> tuple[int, int]:
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def spread_hint(tensor: torch.Tensor, expected_std: float, candidates=()) -> str | None:
    """None if the std is right; otherwise the first mistake whose std it matches."""
    observed = tensor.detach().double().std().item()
    if abs(observed / expected_std - 1) < REL:
        return None
    for hint, wrong_std in candidates:
        if abs(wrong_std / expected_std - 1) > 2 * REL and abs(observed / wrong_std - 1) < REL:
            return f"{hint} (std {observed:.4g}, expected {expected_std:.4g})"
    return f"std {observed:.4g}, expected {expected_std:.4g}"


def assert_spread(tensor, expected_std, candidates=()) -> None:
    hint = spread_hint(tensor, expected_std, candidates)
    assert hint is None, hint


def assert_uniform_within(tensor: torch.Tensor, low: float, high: float) -> None:
    t = tensor.detach().double()
    slack = 1e-6 * max(abs(low), abs(high))
    assert t.min().item() >= low - slack and t.max().item() <= high + slack, (
        f"values must lie in [{low:.4g}, {high:.4g}], got [{t.min().item():.4g}, "
        f"{t.max().item():.4g}]"
    )
    width = high - low
    assert t.min().item() < low + 0.01 * width and t.max().item() > high - 0.01 * width, (
        "the values do not fill their range"
    )
    assert abs(t.mean().item() - (low + high) / 2) < 0.02 * width, "the mean is off-centre"


def assert_normal_mean(tensor: torch.Tensor, mean: float, std: float) -> None:
    t = tensor.detach().double()
    limit = 6 * std / math.sqrt(t.numel())
    assert abs(t.mean().item() - mean) < limit, f"mean {t.mean().item():.4g}, expected {mean}"


def _fill(fn, shape, dtype=torch.float32, **kwargs) -> torch.Tensor:
    tensor = torch.empty(shape, dtype=dtype)
    out = fn(tensor, **kwargs)
    assert out is tensor, "initialisers work in place and return the tensor they were given"
    return tensor


# -- calculate_gain ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose1d", None),
        ("conv_transpose2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("selu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
    ],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    args = (nonlinearity,) if param is None else (nonlinearity, param)
    assert impl.init.calculate_gain(*args) == pytest.approx(expected, rel=1e-12), (
        f"calculate_gain{args}"
    )


def test_calculate_gain_rejects_unknown_nonlinearity():
    with pytest.raises(ValueError):
        impl.init.calculate_gain("swish")


@pytest.mark.parametrize("slope", ["0.2", True])
def test_calculate_gain_rejects_a_slope_that_is_not_a_number(slope):
    # As torch: a bool is an int to Python, but not a slope.
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain("leaky_relu", slope)
    with pytest.raises(ValueError):
        impl.init.calculate_gain("leaky_relu", slope)


# -- simple fills ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_(dtype):
    t = _fill(impl.init.uniform_, (300, 400), dtype, a=-3.0, b=5.0)
    assert t.dtype == dtype
    assert_uniform_within(t, -3.0, 5.0)
    assert_spread(t, 8 / math.sqrt(12))
    t = _fill(impl.init.uniform_, (300, 400), dtype)  # defaults: U(0, 1)
    assert_uniform_within(t, 0.0, 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_(dtype):
    t = _fill(impl.init.normal_, (300, 400), dtype, mean=2.0, std=0.5)
    assert t.dtype == dtype
    assert_normal_mean(t, 2.0, 0.5)
    assert_spread(t, 0.5)
    t = _fill(impl.init.normal_, (300, 400), dtype)  # defaults: N(0, 1)
    assert_normal_mean(t, 0.0, 1.0)
    assert_spread(t, 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_zeros_ones(dtype):
    for fn, kwargs, value in [
        (impl.init.constant_, dict(val=0.25), 0.25),
        (impl.init.zeros_, {}, 0.0),
        (impl.init.ones_, {}, 1.0),
    ]:
        t = _fill(fn, (3, 4, 5), dtype, **kwargs)
        assert t.dtype == dtype
        assert torch.equal(t, torch.full((3, 4, 5), value, dtype=dtype)), fn.__name__


# -- kaiming -----------------------------------------------------------------------------------


def kaiming_candidates(shape, a, mode, nonlinearity, uniform: bool):
    fan_in, fan_out = fans(shape)
    fan, other = (fan_in, fan_out) if mode == "fan_in" else (fan_out, fan_in)
    gain = torch.nn.init.calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    candidates = [(MODE_HINT, gain / math.sqrt(other))]
    if len(shape) > 2:
        candidates.append(
            (RECEPTIVE_HINT, gain / math.sqrt(shape[1] if mode == "fan_in" else shape[0]))
        )
    if uniform:
        candidates.append((SQRT3_HINT, std / math.sqrt(3)))
    candidates.append((GAIN_HINT, 1 / math.sqrt(fan)))
    return std, candidates


def check_kaiming(fn, shape, a, mode, nonlinearity, uniform: bool) -> None:
    t = _fill(fn, shape, a=a, mode=mode, nonlinearity=nonlinearity)
    std, candidates = kaiming_candidates(shape, a, mode, nonlinearity, uniform)
    assert_spread(t, std, candidates)
    if uniform:
        assert_uniform_within(t, -math.sqrt(3) * std, math.sqrt(3) * std)
    else:
        assert_normal_mean(t, 0.0, std)


KAIMING_CASES = [
    (0, "leaky_relu"),
    (math.sqrt(5), "leaky_relu"),
    (0.2, "leaky_relu"),
    (0, "relu"),
    (0, "tanh"),
    (0, "linear"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("a, nonlinearity", KAIMING_CASES)
def test_kaiming_uniform_(shape, mode, a, nonlinearity):
    check_kaiming(impl.init.kaiming_uniform_, shape, a, mode, nonlinearity, uniform=True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("a, nonlinearity", KAIMING_CASES)
def test_kaiming_normal_(shape, mode, a, nonlinearity):
    check_kaiming(impl.init.kaiming_normal_, shape, a, mode, nonlinearity, uniform=False)


@pytest.mark.parametrize("shape", SHAPES)
def test_kaiming_defaults_are_fan_in_leaky_relu_a0(shape):
    std = math.sqrt(2 / fans(shape)[0])  # gain sqrt(2 / (1 + 0²)) = sqrt(2)
    t = _fill(impl.init.kaiming_uniform_, shape)
    assert_spread(t, std)
    assert_uniform_within(t, -math.sqrt(3) * std, math.sqrt(3) * std)
    assert_spread(_fill(impl.init.kaiming_normal_, shape), std)


# -- xavier ------------------------------------------------------------------------------------


def xavier_candidates(shape, gain, uniform: bool):
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    candidates = [(XAVIER_HINT, gain / math.sqrt(fan_in)), (XAVIER_HINT, gain / math.sqrt(fan_out))]
    if len(shape) > 2:
        candidates.append((RECEPTIVE_HINT, gain * math.sqrt(2 / (shape[0] + shape[1]))))
    if uniform:
        candidates.append((SQRT3_HINT, std / math.sqrt(3)))
    return std, candidates


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [None, 1.0, 2.0, 5 / 3])
def test_xavier_uniform_and_normal(shape, gain, dtype):
    kwargs = {} if gain is None else dict(gain=gain)
    std, candidates = xavier_candidates(shape, 1.0 if gain is None else gain, uniform=True)
    t = _fill(impl.init.xavier_uniform_, shape, dtype, **kwargs)
    assert_spread(t, std, candidates)
    assert_uniform_within(t, -math.sqrt(3) * std, math.sqrt(3) * std)
    std, candidates = xavier_candidates(shape, 1.0 if gain is None else gain, uniform=False)
    t = _fill(impl.init.xavier_normal_, shape, dtype, **kwargs)
    assert_spread(t, std, candidates)
    assert_normal_mean(t, 0.0, std)


# -- trunc_normal_ -----------------------------------------------------------------------------


def truncated_normal_moments(mean, std, a, b) -> tuple[float, float]:
    """Mean and standard deviation of N(mean, std²) restricted to [a, b]."""
    alpha, beta = (a - mean) / std, (b - mean) / std

    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return (1 + math.erf(x / math.sqrt(2))) / 2

    z = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / z
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - shift**2
    return mean + std * shift, std * math.sqrt(variance)


def check_trunc_normal(fn, mean, std, a, b, dtype=torch.float32, defaults=False) -> None:
    kwargs = {} if defaults else dict(mean=mean, std=std, a=a, b=b)
    t = _fill(fn, (250, 400), dtype, **kwargs).double()
    low, high = (torch.tensor(v, dtype=dtype).item() for v in (a, b))  # a, b rounded to dtype
    at_edges = ((t == low) | (t == high)).double().mean().item()
    assert at_edges < 1e-3, f"{CLAMP_HINT}: {at_edges:.2%} of the values equal a or b"
    assert t.min().item() >= min(a, low) and t.max().item() <= max(b, high), (
        f"values must lie in [a, b] = [{a}, {b}], got [{t.min().item():.4g}, {t.max().item():.4g}]"
    )
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    assert_normal_mean(t, expected_mean, expected_std)
    assert_spread(t, expected_std)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "mean, std, a, b",
    [
        (0.0, 1.0, -2.0, 2.0),  # the defaults
        (0.0, 0.02, -0.04, 0.04),  # GPT-style: ±2 std
        (1.0, 0.5, 0.0, 3.0),
        (0.0, 1.0, -1.0, 0.5),  # asymmetric
        (0.0, 1.0, 1.0, 3.0),  # only a tail
        (0.0, 1.0, -10.0, 10.0),  # barely truncated
    ],
)
def test_trunc_normal_(mean, std, a, b, dtype):
    check_trunc_normal(impl.init.trunc_normal_, mean, std, a, b, dtype)


def test_trunc_normal_defaults():
    check_trunc_normal(impl.init.trunc_normal_, 0.0, 1.0, -2.0, 2.0, defaults=True)


# -- in place, no graph, generator -------------------------------------------------------------

ALL = [
    ("uniform_", dict(a=-1.0, b=1.0)),
    ("normal_", dict(mean=0.0, std=1.0)),
    ("constant_", dict(val=0.5)),
    ("zeros_", {}),
    ("ones_", {}),
    ("kaiming_uniform_", {}),
    ("kaiming_normal_", {}),
    ("xavier_uniform_", {}),
    ("xavier_normal_", {}),
    ("trunc_normal_", dict(std=0.02, a=-0.04, b=0.04)),
]
RANDOM = [(name, kwargs) for name, kwargs in ALL if name not in ("constant_", "zeros_", "ones_")]


def check_in_place_without_graph(fn, tensor: torch.Tensor, **kwargs) -> None:
    try:
        out = fn(tensor, **kwargs)
    except RuntimeError as error:
        if "requires grad" in str(error):
            raise AssertionError(f"{NO_GRAD_HINT}\n{error}") from error
        raise
    assert out is tensor, "initialisers work in place and return the tensor they were given"
    assert tensor.is_leaf and tensor.grad_fn is None and tensor.requires_grad, (
        f"{NO_GRAD_HINT}: the tensor must stay a leaf that requires grad"
    )


@pytest.mark.parametrize("name, kwargs", ALL)
def test_in_place_on_tensor_that_requires_grad(name, kwargs):
    fn = getattr(impl.init, name)
    check_in_place_without_graph(fn, torch.zeros(20, 30, requires_grad=True), **kwargs)
    param = impl.nn.Parameter(torch.zeros(20, 30))
    check_in_place_without_graph(fn, param, **kwargs)
    assert isinstance(param, impl.nn.Parameter)
    if name != "zeros_":
        assert bool((param.detach() != 0).any()), f"{name} did not fill the parameter"


@pytest.mark.parametrize("name, kwargs", RANDOM)
def test_generator_gives_reproducible_draws(name, kwargs):
    fn = getattr(impl.init, name)

    def draw(seed, global_seed):
        torch.manual_seed(global_seed)  # the global RNG's state must not matter
        return fn(torch.empty(20, 30), **kwargs, generator=torch.Generator().manual_seed(seed))

    first = draw(7, global_seed=1)
    assert torch.equal(first, draw(7, global_seed=2)), (
        f"{name}: the same generator seed must give the same values (use generator=, "
        "not the global random state)"
    )
    assert not torch.equal(first, draw(8, global_seed=1)), (
        f"{name}: another generator seed must give other values"
    )


def _uniform_ignoring_generator(tensor, a=0.0, b=1.0, generator=None):
    with torch.no_grad():
        return tensor.uniform_(a, b)


@pytest.mark.reference_only
def test_generator_check_catches_an_ignored_generator(monkeypatch):
    monkeypatch.setattr(impl, "init", SimpleNamespace(uniform_=_uniform_ignoring_generator))
    with pytest.raises(AssertionError, match="use generator="):
        test_generator_gives_reproducible_draws("uniform_", dict(a=-1.0, b=1.0))


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _kaiming_uniform_swapped_mode(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = fans(tuple(tensor.shape))
    fan = fan_out if mode == "fan_in" else fan_in
    bound = math.sqrt(3) * torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return torch.nn.init.uniform_(tensor, -bound, bound)


def _kaiming_uniform_no_receptive_field(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = tensor.shape[1] if mode == "fan_in" else tensor.shape[0]
    bound = math.sqrt(3) * torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return torch.nn.init.uniform_(tensor, -bound, bound)


def _kaiming_uniform_std_as_bound(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = fans(tuple(tensor.shape))[0 if mode == "fan_in" else 1]
    bound = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return torch.nn.init.uniform_(tensor, -bound, bound)


def _kaiming_normal_without_gain(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan = fans(tuple(tensor.shape))[0 if mode == "fan_in" else 1]
    return torch.nn.init.normal_(tensor, 0.0, 1 / math.sqrt(fan))


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "wrong, shape, uniform, nonlinearity, hint",
    [
        (_kaiming_uniform_swapped_mode, (300, 400), True, "relu", MODE_HINT),
        (_kaiming_uniform_no_receptive_field, (128, 64, 3, 3), True, "relu", RECEPTIVE_HINT),
        (_kaiming_uniform_std_as_bound, (300, 400), True, "relu", SQRT3_HINT),
        (_kaiming_normal_without_gain, (128, 64, 3, 3), False, "tanh", GAIN_HINT),
    ],
)
def test_kaiming_hints_fire(wrong, shape, uniform, nonlinearity, hint):
    with pytest.raises(AssertionError) as failure:
        check_kaiming(wrong, shape, 0.0, "fan_in", nonlinearity, uniform)
    assert str(failure.value).startswith(hint)


@pytest.mark.reference_only
def test_xavier_hint_fires():
    std, candidates = xavier_candidates((300, 400), 1.0, uniform=False)
    wrong = torch.nn.init.normal_(torch.empty(300, 400), 0.0, 1 / math.sqrt(400))
    assert spread_hint(wrong, std, candidates).startswith(XAVIER_HINT)
    right = torch.nn.init.xavier_normal_(torch.empty(300, 400))
    assert spread_hint(right, std, candidates) is None


def _trunc_normal_by_clamping(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    with torch.no_grad():
        return tensor.normal_(mean, std).clamp_(a, b)


def _uniform_recording_a_graph(tensor, a=0.0, b=1.0):
    return tensor.uniform_(a, b)  # no torch.no_grad()


@pytest.mark.reference_only
def test_trunc_normal_clamp_hint_fires():
    with pytest.raises(AssertionError, match="clamping is not truncation"):
        check_trunc_normal(_trunc_normal_by_clamping, 0.0, 1.0, -2.0, 2.0)
    check_trunc_normal(torch.nn.init.trunc_normal_, 0.0, 1.0, -1.0, 0.5)  # torch passes


@pytest.mark.reference_only
def test_no_grad_hint_fires():
    with pytest.raises(AssertionError, match="torch.no_grad"):
        check_in_place_without_graph(
            _uniform_recording_a_graph, torch.zeros(3, 4, requires_grad=True)
        )


@pytest.mark.reference_only
def test_statistical_checks_accept_torch():
    for a, nonlinearity in KAIMING_CASES:
        for shape in SHAPES:
            check_kaiming(torch.nn.init.kaiming_uniform_, shape, a, "fan_out", nonlinearity, True)
            check_kaiming(torch.nn.init.kaiming_normal_, shape, a, "fan_in", nonlinearity, False)
