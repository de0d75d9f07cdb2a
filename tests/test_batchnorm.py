"""BatchNorm1d / BatchNorm2d and F.batch_norm against their torch.nn twins.

A module test runs several training steps and then evaluation on both, comparing after every
step the output, the gradients of the input, weight and bias, and the buffers running_mean,
running_var and num_batches_tracked.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): normalising divides by a standard deviation as small as ~0.01 (inputs of scale
0.01), which magnifies rounding in the input gradient.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, load_into_twin, tolerance
from strategies import dtypes, scales, seeds

FACTOR = 10.0
UNBIASED_NORM_HINT = (
    "looks like you normalised with the unbiased variance (divide by n-1); in training batch "
    "norm normalises with the biased variance of the batch (divide by n)"
)
BIASED_RUNNING_HINT = (
    "running_var looks updated with the biased batch variance (divide by n); the running "
    "estimate uses the unbiased one (divide by n-1), as torch"
)
MOMENTUM_HINT = (
    "momentum is applied the wrong way round: running = (1 - momentum) * running + "
    "momentum * batch_statistic (momentum is the weight of the NEW value)"
)
CUMULATIVE_HINT = (
    "momentum=None means a cumulative average: the factor is 1 / num_batches_tracked "
    "(counting this batch)"
)
EVAL_UPDATE_HINT = "the running statistics changed in eval mode; update them only while training"
EVAL_STATS_HINT = (
    "in eval mode (with track_running_stats=True) normalise with running_mean and running_var, "
    "not with the batch's statistics"
)
BATCH_AXIS_HINT = (
    "the statistics are per channel over every other axis: for images n = N · H · W values "
    "per channel, not the N of the batch axis alone"
)
UNTRACKED_HINT = (
    "with track_running_stats=False there are no running statistics: use the batch's "
    "statistics in eval mode too"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, **tolerance(b.dtype, FACTOR))


def _stats(x: torch.Tensor):
    """Per-channel mean, biased and unbiased variance over every axis but dim 1."""
    dims = [0] + list(range(2, x.dim()))
    n = x.numel() // x.shape[1]
    biased = x.var(dims, correction=0)
    unbiased = biased * n / (n - 1) if n > 1 else torch.full_like(biased, float("nan"))
    return x.mean(dims), biased, unbiased


def _batch_axis_only(x, weight, bias, eps):
    """The classic mistake: statistics over the batch axis alone, one per (C, H, W) position."""
    mean, var = x.mean(0, keepdim=True), x.var(0, keepdim=True, correction=0)
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - mean) / (var + eps).sqrt()
    y = y if weight is None else y * weight.view(shape)
    return y if bias is None else y + bias.view(shape)


def _normalise(x, mean, var, weight, bias, eps):
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - mean.view(shape)) / (var.view(shape) + eps).sqrt()
    y = y if weight is None else y * weight.view(shape)
    return y if bias is None else y + bias.view(shape)


# -- hints -----------------------------------------------------------------------------------


def output_hint(out, x, twin, old_mean, old_var) -> str | None:
    """Name the classic mistake ``out`` (minimod's output for x) makes, if it is wrong.

    ``twin`` is the torch module after the same step; old_* minimod's buffers before the step."""
    with torch.no_grad():
        weight = None if twin.weight is None else twin.weight.detach()
        bias = None if twin.bias is None else twin.bias.detach()
        mean, biased, unbiased = _stats(x)
        batch = _normalise(x, mean, biased, weight, bias, twin.eps)
        if twin.training or not twin.track_running_stats:
            if _close(out, batch):
                return None
            if mean.numel() and x.numel() > x.shape[1]:
                if _close(out, _normalise(x, mean, unbiased, weight, bias, twin.eps)):
                    return UNBIASED_NORM_HINT
            if not twin.track_running_stats:
                if _close(out, _normalise(x, 0 * mean, 1 + 0 * mean, weight, bias, twin.eps)):
                    return UNTRACKED_HINT
            if x.dim() > 2 and _close(out, _batch_axis_only(x, weight, bias, twin.eps)):
                return BATCH_AXIS_HINT
            return None
        if _close(out, batch) and not _close(
            out, _normalise(x, old_mean, old_var, weight, bias, twin.eps)
        ):
            return EVAL_STATS_HINT
    return None


def running_stats_hint(x, old_mean, old_var, new_mean, new_var, twin) -> str | None:
    """Name the classic mistake in minimod's running statistics after one training step."""
    with torch.no_grad():
        mean, biased, unbiased = _stats(x)
        n = int(twin.num_batches_tracked)
        factor = 1.0 / n if twin.momentum is None else twin.momentum

        def update(old, new, f):
            return (1 - f) * old + f * new

        if _close(new_mean, update(old_mean, mean, factor)) and _close(
            new_var, update(old_var, unbiased, factor)
        ):
            return None
        if _close(new_mean, update(old_mean, mean, factor)) and _close(
            new_var, update(old_var, biased, factor)
        ):
            return BIASED_RUNNING_HINT
        if _close(new_mean, update(old_mean, mean, 1 - factor)):
            return MOMENTUM_HINT
        if twin.momentum is None and _close(new_mean, update(old_mean, mean, 0.1)):
            return f"{CUMULATIVE_HINT}; your update used 0.1"
        if twin.momentum is None and _close(new_mean, update(old_mean, mean, 1 / (n + 1))):
            return f"{CUMULATIVE_HINT}; yours was 1 / (num_batches_tracked + 1)"
    return None


# -- the comparison: several training steps, then eval --------------------------------------


def _buffers(module) -> dict:
    return {k: v.detach().clone() for k, v in module.named_buffers()}


def _compare_step(mine, twin, x: torch.Tensor, step: str) -> None:
    """One forward/backward of both; outputs, every gradient, then the buffers."""
    old = _buffers(mine)
    ours_in = x.detach().clone().requires_grad_(True)
    theirs_in = x.detach().clone().requires_grad_(True)
    theirs = twin(theirs_in)
    try:
        ours = mine(ours_in)
    except ValueError as error:  # torch's layer raises nothing here: a batch of one in eval
        if twin.training or not twin.track_running_stats:
            raise
        raise AssertionError(f"{step}: {EVAL_STATS_HINT} ({error})") from error
    hint = output_hint(ours.detach(), x, twin, old.get("running_mean"), old.get("running_var"))
    assert hint is None, f"{step}: {hint}"
    assert ours.shape == theirs.shape, f"{step}: output shape {tuple(ours.shape)}"
    assert ours.dtype == theirs.dtype, f"{step}: output dtype {ours.dtype} != {theirs.dtype}"
    tol = tolerance(theirs.dtype, FACTOR)
    torch.testing.assert_close(ours, theirs, **tol, msg=lambda m: f"{step}: forward differs\n{m}")
    weights = randn(theirs.shape, theirs.dtype, 1234)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    if twin.training and not _close(ours_in.grad, theirs_in.grad):
        hint = input_gradient_hint(ours_in.grad, x, weights, twin.weight, twin.eps)
        assert hint is None, f"{step}: {hint}"
    torch.testing.assert_close(
        ours_in.grad, theirs_in.grad, **tol, msg=lambda m: f"{step}: input gradient differs\n{m}"
    )
    theirs_params = dict(twin.named_parameters())
    for name, param in mine.named_parameters():
        assert param.grad is not None, f"{step}: {name} got no gradient"
        torch.testing.assert_close(
            param.grad,
            theirs_params[name].grad,
            **tol,
            msg=lambda m, n=name: f"{step}: gradient of {n} differs\n{m}",
        )
    mine.zero_grad()
    twin.zero_grad()
    _compare_buffers(mine, twin, x, old, step)


def _compare_buffers(mine, twin, x, old: dict, step: str) -> None:
    ours, theirs = _buffers(mine), _buffers(twin)
    assert sorted(ours) == sorted(theirs), f"{step}: buffers {sorted(ours)} != {sorted(theirs)}"
    if not theirs:
        return
    if not twin.training:
        changed = [k for k in ours if not torch.equal(ours[k], old[k])]
        assert not changed, f"{step}: {EVAL_UPDATE_HINT} ({', '.join(changed)})"
    else:
        hint = running_stats_hint(
            x,
            old["running_mean"],
            old["running_var"],
            ours["running_mean"],
            ours["running_var"],
            twin,
        )
        assert hint is None, f"{step}: {hint}"
    assert ours["num_batches_tracked"].dtype == torch.int64, "num_batches_tracked is int64"
    assert int(ours["num_batches_tracked"]) == int(theirs["num_batches_tracked"]), (
        f"{step}: num_batches_tracked is {int(ours['num_batches_tracked'])}, torch's "
        f"{int(theirs['num_batches_tracked'])} (count every training forward pass)"
    )
    for name in ("running_mean", "running_var"):
        torch.testing.assert_close(
            ours[name],
            theirs[name],
            **tolerance(theirs[name].dtype, FACTOR),
            msg=lambda m, n=name: f"{step}: {n} differs\n{m}",
        )


def assert_batch_norm_matches(mine, twin, train_inputs, eval_input) -> None:
    """Same weights and buffers, then each training step and one eval step compared."""
    load_into_twin(mine, twin)
    for i, x in enumerate(train_inputs):
        mine.train()
        twin.train()
        _compare_step(mine, twin, x, f"training step {i + 1}")
    mine.eval()
    twin.eval()
    _compare_step(mine, twin, eval_input, "eval")


# -- properties ------------------------------------------------------------------------------


@st.composite
def bn_cases(draw) -> dict:
    """A BatchNorm1d/2d configuration and input shapes with > 1 value per channel."""
    kind = draw(st.sampled_from(["1d (N, C)", "1d (N, C, L)", "2d"]))
    channels = draw(st.integers(1, 4))
    if kind == "1d (N, C)":
        shape = (draw(st.integers(2, 4)), channels)
    elif kind == "1d (N, C, L)":
        shape = (draw(st.integers(1, 4)), channels, draw(st.integers(1, 5)))
    else:
        shape = (
            draw(st.integers(1, 3)),
            channels,
            draw(st.integers(1, 4)),
            draw(st.integers(1, 4)),
        )
    if shape[0] * torch.Size(shape[2:]).numel() < 2:  # one value per channel: make it two
        shape = (2, *shape[1:])
    return dict(
        kind=kind,
        shape=shape,
        momentum=draw(st.sampled_from([0.1, 0.5, None, 1.0])),
        eps=draw(st.sampled_from([1e-5, 1e-3])),
        affine=draw(st.booleans()),
        bias=draw(st.booleans()),
        track_running_stats=draw(st.booleans()),
        eval_batch=draw(st.sampled_from([1, shape[0]])),
    )


def make_batch_norm(namespace, case: dict, dtype):
    name = "BatchNorm2d" if case["kind"] == "2d" else "BatchNorm1d"
    options = {k: case[k] for k in ("momentum", "eps", "affine", "track_running_stats")}
    return getattr(namespace, name)(case["shape"][1], bias=case["bias"], **options).to(dtype)


def _inputs(case, dtype, seed, scale, steps=3):
    """Training batches (each with its own offset and scale per channel) and an eval batch."""
    shape, channels = case["shape"], case["shape"][1]
    view = [1, -1] + [1] * (len(shape) - 2)
    batches = []
    for i in range(steps + 1):
        offset = randn((channels,), dtype, seed + 100 + i, 2.0).view(view)
        spread = (1 + randn((channels,), dtype, seed + 200 + i).abs()).view(view)
        batches.append(randn(shape, dtype, seed + i, scale) * spread + offset * scale)
    eval_batch = case["eval_batch"] if case["track_running_stats"] else shape[0]
    return batches[:steps], batches[steps][:eval_batch]


@given(case=bn_cases(), dtype=dtypes, seed=seeds, scale=scales)
@example(
    case=dict(
        kind="1d (N, C)",
        shape=(2, 3),
        momentum=None,
        eps=1e-5,
        affine=True,
        bias=True,
        track_running_stats=True,
        eval_batch=1,
    ),
    dtype=torch.float64,
    seed=0,
    scale=1.0,
)
@example(
    case=dict(
        kind="2d",
        shape=(1, 2, 3, 2),
        momentum=0.1,
        eps=1e-5,
        affine=True,
        bias=False,
        track_running_stats=True,
        eval_batch=1,
    ),
    dtype=torch.float32,
    seed=1,
    scale=1.0,
)
@example(
    case=dict(
        kind="1d (N, C, L)",
        shape=(1, 4, 2),
        momentum=0.5,
        eps=1e-3,
        affine=False,
        bias=True,
        track_running_stats=False,
        eval_batch=1,
    ),
    dtype=torch.float64,
    seed=2,
    scale=0.01,
)
def test_batch_norm_matches_torch_over_training_and_eval(case, dtype, seed, scale):
    mine, twin = make_batch_norm(impl.nn, case, dtype), make_batch_norm(torch.nn, case, dtype)
    # distinctive affine parameters, so a swapped weight and bias would show
    with torch.no_grad():
        for i, p in enumerate(twin.parameters()):
            p.copy_(randn(p.shape, dtype, seed + 300 + i))
    mine.load_state_dict(twin.state_dict())
    train_inputs, eval_input = _inputs(case, dtype, seed, scale)
    assert_batch_norm_matches(mine, twin, train_inputs, eval_input)


@given(
    shape=st.sampled_from([(2, 3), (1, 2, 4), (3, 1, 2), (2, 2, 2, 3), (1, 3, 1, 2)]),
    training=st.booleans(),
    running=st.booleans(),
    affine=st.sampled_from(["both", "weight", "none"]),
    momentum=st.sampled_from([0.1, 0.3, 1.0]),
    eps=st.sampled_from([1e-5, 1e-2]),
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(
    shape=(2, 3),
    training=False,
    running=True,
    affine="both",
    momentum=0.1,
    eps=1e-5,
    dtype=torch.float64,
    seed=0,
    scale=1.0,
)
def test_functional_batch_norm_matches_torch(
    shape, training, running, affine, momentum, eps, dtype, seed, scale
):
    running = running or not training  # eval needs running statistics
    channels = shape[1]
    x = randn(shape, dtype, seed, scale)
    mean = randn((channels,), dtype, seed + 1)
    var = randn((channels,), dtype, seed + 2).abs() + 0.5
    buffers = {"mine": (mean.clone(), var.clone()), "torch": (mean.clone(), var.clone())}
    params = []
    if affine != "none":
        params.append(randn((channels,), dtype, seed + 3))
    if affine == "both":
        params.append(randn((channels,), dtype, seed + 4))

    def call(function, key):
        def run(x, *params):
            weight, bias = (list(params) + [None, None])[:2]
            stats = buffers[key] if running else (None, None)
            return function(x, *stats, weight, bias, training, momentum, eps)

        return run

    out = call(impl.F.batch_norm, "mine")(x, *params).detach()
    buffers["mine"] = (mean.clone(), var.clone())  # undo the update of that extra call
    if training:
        hint = output_hint(out, x, _FunctionalTwin(params, eps, training), None, None)
        assert hint is None, hint
    assert_same_forward_backward(
        call(impl.F.batch_norm, "mine"), call(TF.batch_norm, "torch"), [x, *params], factor=FACTOR
    )
    for name, ours, theirs in zip(
        ("running_mean", "running_var"), buffers["mine"], buffers["torch"], strict=True
    ):
        torch.testing.assert_close(
            ours, theirs, **tolerance(dtype, FACTOR), msg=lambda m, n=name: f"{n} differs\n{m}"
        )


class _FunctionalTwin:
    """Just what output_hint reads from a module, for a call of F.batch_norm in training."""

    def __init__(self, params, eps, training):
        self.weight, self.bias = (list(params) + [None, None])[:2]
        self.eps, self.training, self.track_running_stats = eps, training, True


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 2, 1, 1)])
def test_one_value_per_channel_in_training_is_an_error(shape):
    name = "BatchNorm2d" if len(shape) == 4 else "BatchNorm1d"
    x = randn(shape, torch.float32, 0)
    with pytest.raises(ValueError):
        getattr(torch.nn, name)(shape[1])(x)  # torch refuses too
    with pytest.raises(ValueError, match=r"(?i)more than 1 value per channel"):
        getattr(impl.nn, name)(shape[1])(x)
    with pytest.raises(ValueError, match=r"(?i)more than 1 value per channel"):
        impl.F.batch_norm(x, None, None, training=True)
    # evaluation normalises one example with the running statistics: no error
    mine, twin = getattr(impl.nn, name)(shape[1]).eval(), getattr(torch.nn, name)(shape[1]).eval()
    assert_same_forward_backward(mine, twin, [x], factor=FACTOR)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("BatchNorm1d", (0, 3)),
        ("BatchNorm1d", (0, 3, 4)),
        ("BatchNorm1d", (2, 3, 0)),
        ("BatchNorm2d", (0, 3, 2, 2)),
        ("BatchNorm2d", (2, 3, 0, 5)),
    ],
)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_empty_batch_in_training_matches_torch(name, shape, momentum):
    """An empty batch gives an empty output (torch's); the running statistics stay as they
    were, num_batches_tracked still counts the batch, and weight and bias get zero gradients."""
    mine = getattr(impl.nn, name)(3, momentum=momentum)
    twin = getattr(torch.nn, name)(3, momentum=momentum)
    first = randn((4, 3) + shape[2:], torch.float64, 0) if 0 not in shape[2:] else None
    mine.double(), twin.double()
    if first is not None:  # real statistics first, so "unchanged" is not just the defaults
        mine(first), twin(first)
    assert_same_forward_backward(
        mine,
        twin,
        [torch.zeros(shape, dtype=torch.float64)],
        list(mine.named_parameters()),
        list(twin.named_parameters()),
    )
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(mine.state_dict()[key], value, msg=f"{key} differs")


@pytest.mark.reference_only  # given code (no lesson writes it)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("stats", [False, True])
def test_functional_batch_norm_on_an_empty_1d_input_matches_torch(training, stats):
    x = torch.zeros(0)
    running = (torch.zeros(0), torch.ones(0)) if stats else (None, None)
    expected = TF.batch_norm(x, *running, training=training)
    out = impl.F.batch_norm(x, *running, training=training)
    assert out.shape == expected.shape == (0,)


@pytest.mark.reference_only
def test_functional_batch_norm_on_a_1d_input_is_a_value_error():
    with pytest.raises(ValueError, match=r"batch_norm.*\(4,\)"):
        impl.F.batch_norm(torch.randn(4), None, None, training=True)


# -- state_dict, defaults, repr ----------------------------------------------------------------

CONFIGS = [
    dict(),
    dict(affine=False),
    dict(bias=False),
    dict(track_running_stats=False),
    dict(momentum=None, eps=1e-3),
]


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dict_keys_shapes_and_dtypes(name, config, dtype):
    mine = getattr(impl.nn, name)(5, **config).to(dtype)
    twin = getattr(torch.nn, name)(5, **config).to(dtype)
    ours = {k: (tuple(v.shape), v.dtype) for k, v in mine.state_dict().items()}
    theirs = {k: (tuple(v.shape), v.dtype) for k, v in twin.state_dict().items()}
    assert ours == theirs, f"state_dict differs:\n minimod: {ours}\n torch:   {theirs}"
    assert list(mine.state_dict()) == list(twin.state_dict()), "key order differs from torch"
    # fresh values: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0
    for key, value in twin.state_dict().items():
        assert torch.equal(mine.state_dict()[key], value), f"initial {key} differs from torch's"
    assert (mine.num_features, mine.eps, mine.momentum) == (
        twin.num_features,
        twin.eps,
        twin.momentum,
    )
    assert (mine.affine, mine.track_running_stats) == (twin.affine, twin.track_running_stats)
    assert mine.training, "a new module is in training mode"
    # and after a training step the values still agree (and keep their dtypes)
    x = randn((3, 5, 2, 2) if name == "BatchNorm2d" else (3, 5), dtype, 0, 2.0) + 1
    mine(x), twin(x)
    for key, value in twin.state_dict().items():
        ours = mine.state_dict()[key]
        assert ours.dtype == value.dtype, f"{key} became {ours.dtype} after a step"
        torch.testing.assert_close(ours, value, **tolerance(dtype, FACTOR), msg=key)


@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_loads_both_ways(config):
    def steps(module, seed):
        module.train()
        for i in range(3):
            module(randn((4, 3, 2, 2), torch.float32, seed + i, 3.0) + i)
        return module.eval()

    x = randn((2, 3, 2, 2), torch.float32, 99)
    # torch -> minimod: a trained twin with distinctive affine parameters
    twin = torch.nn.BatchNorm2d(3, **config)
    with torch.no_grad():
        for i, p in enumerate(twin.parameters()):
            p.copy_(randn(p.shape, p.dtype, 7 + i))
    steps(twin, 0)
    mine = impl.nn.BatchNorm2d(3, **config).eval()
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))
    # minimod -> torch: trained minimod buffers
    mine = steps(impl.nn.BatchNorm2d(3, **config), 10)
    twin = torch.nn.BatchNorm2d(3, **config).eval()
    twin.load_state_dict(mine.state_dict())
    for key, value in mine.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value), f"{key} did not load into torch"
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))


def test_defaults_match_torch():
    x = randn((4, 3, 5), torch.float32, 0, 2.0) + 1
    mine, twin = impl.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert_batch_norm_matches(mine, twin, [x, x * 2], x[:1])


@pytest.mark.reference_only
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("config", CONFIGS)
def test_repr_matches_torch(name, config):
    from minimod import nn

    assert repr(getattr(nn, name)(5, **config)) == repr(getattr(torch.nn, name)(5, **config))


@pytest.mark.reference_only
def test_bad_input_names_the_layer():
    from minimod.nn import BatchNorm1d, BatchNorm2d

    with pytest.raises(ValueError, match=r"BatchNorm2d\(3, eps=1e-05.*4-D.*\(3, 4, 4\)"):
        BatchNorm2d(3)(torch.randn(3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3, .*2 or 3-D.*\(2, 3, 4, 4\)"):
        BatchNorm1d(3)(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3, .*3 channels on dim 1.*got 4"):
        BatchNorm1d(3)(torch.randn(2, 4))


# -- the hints fire on deliberately wrong implementations ------------------------------------


class _WrongBatchNorm(torch.nn.BatchNorm1d):
    """A batch norm written by hand with one classic mistake."""

    def __init__(self, num_features, mistake, **kwargs):
        super().__init__(num_features, **kwargs)
        self.mistake = mistake

    def forward(self, x):
        mean, biased, unbiased = _stats(x)
        if self.training:
            self.num_batches_tracked += 1
        factor = 1 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
        old_mean, old_var = self.running_mean.clone(), self.running_var.clone()
        if self.training or self.mistake == "update in eval":
            new_var = biased if self.mistake == "biased running" else unbiased
            if self.mistake == "swapped momentum":
                factor = 1 - factor
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(factor * mean)
                self.running_var.mul_(1 - factor).add_(factor * new_var)
        if self.training:
            var = unbiased if self.mistake == "unbiased norm" else biased
            return _normalise(x, mean, var, self.weight, self.bias, self.eps)
        return _normalise(x, old_mean, old_var, self.weight, self.bias, self.eps)


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "mistake, momentum, hint",
    [
        ("unbiased norm", 0.1, "normalised with the unbiased variance"),
        ("biased running", 0.1, "updated with the biased batch variance"),
        ("update in eval", 0.1, "changed in eval mode"),
        ("swapped momentum", 0.1, "wrong way round"),
        ("swapped momentum", None, "wrong way round"),
    ],
)
def test_hints_fire_on_wrong_implementations(mistake, momentum, hint):
    x = [randn((4, 3), torch.float64, i, 2.0) + i for i in range(3)]
    wrong = _WrongBatchNorm(3, mistake, momentum=momentum).double()
    twin = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    with pytest.raises(AssertionError, match=hint):
        assert_batch_norm_matches(wrong, twin, x[:2], x[2])


@pytest.mark.reference_only
def test_hints_accept_a_correct_hand_written_batch_norm():
    x = [randn((4, 3, 2), torch.float64, i, 2.0) + i for i in range(3)]
    for momentum in (0.1, None):
        right = _WrongBatchNorm(3, "none", momentum=momentum).double()
        twin = torch.nn.BatchNorm1d(3, momentum=momentum).double()
        assert_batch_norm_matches(right, twin, x[:2], x[2])


# -- the hand-written backward (training mode) -----------------------------------------------

CONSTANT_STATS_HINT = (
    "the input gradient looks like γ·dy/√(σ² + ε): μ and σ² depend on every x of the channel, "
    "so dx = (γ·r / n)·(n·dy − Σ dy − x̂·Σ dy·x̂) (r = 1/√(σ² + ε), sums over the channel's n values)"
)
NO_VARIANCE_PATH_HINT = (
    "the input gradient subtracts the mean of dy but misses the path through σ²: "
    "dx = (γ·r / n)·(n·dy − Σ dy − x̂·Σ dy·x̂)"
)


def input_gradient_hint(grad, x, dy, weight, eps) -> str | None:
    """Name the classic mistake of a hand-written batch-norm input gradient, if ``grad`` (the
    gradient of (y·dy).sum() w.r.t. x in training) makes one."""
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean, biased, _ = _stats(x)
    r = torch.rsqrt(biased + eps).view(shape)
    gamma_r = r if weight is None else r * weight.view(shape)
    if _close(grad, gamma_r * dy):
        return CONSTANT_STATS_HINT
    if _close(grad, gamma_r * (dy - dy.mean(dims, keepdim=True))):
        return NO_VARIANCE_PATH_HINT
    return None


def assert_training_gradients_match(batch_norm, x, weight, bias, eps=1e-5) -> None:
    """batch_norm(x, None, None, weight, bias, True, 0.1, eps) against torch: values, gradients
    and, for a wrong input gradient, the mistake it makes."""
    ours, theirs = [
        [None if t is None else t.detach().clone().requires_grad_(True) for t in (x, weight, bias)]
        for _ in range(2)
    ]
    out = batch_norm(ours[0], None, None, ours[1], ours[2], True, 0.1, eps)
    expected = TF.batch_norm(theirs[0], None, None, theirs[1], theirs[2], True, 0.1, eps)
    if x.dim() > 2 and not _close(out, expected):
        assert not _close(out, _batch_axis_only(x, weight, bias, eps)), BATCH_AXIS_HINT
    torch.testing.assert_close(out, expected, **tolerance(x.dtype, FACTOR))
    dy = randn(x.shape, x.dtype, 99)
    (out * dy).sum().backward()
    (expected * dy).sum().backward()
    if not _close(ours[0].grad, theirs[0].grad):
        hint = input_gradient_hint(ours[0].grad, x, dy, weight, eps)
        assert hint is None, hint
    for name, a, b in zip(("input", "weight", "bias"), ours, theirs, strict=True):
        if b is not None:
            torch.testing.assert_close(
                a.grad, b.grad, **tolerance(x.dtype, FACTOR), msg=lambda m, n=name: f"d{n}\n{m}"
            )


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_batch_norm_backward_passes_gradcheck(shape, affine):
    x = randn(shape, torch.float64, 0).requires_grad_(True)
    params = [randn(shape[1:2], torch.float64, i + 1).requires_grad_(True) for i in range(2)]
    params = {"both": params, "weight": params[:1], "none": []}[affine]

    def training(x, *params):
        weight, bias = (list(params) + [None, None])[:2]
        return impl.F.batch_norm(x, None, None, weight, bias, True)

    torch.autograd.gradcheck(training, (x, *params))


@given(
    shape=st.sampled_from([(5, 2), (2, 3, 4), (3, 2, 3, 2), (4, 1, 1, 2)]),
    affine=st.booleans(),
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
def test_training_gradients_match_torch_with_hints(shape, affine, dtype, seed, scale):
    x = randn(shape, dtype, seed, scale) + 3.0 * scale  # an offset: μ matters
    weight = randn(shape[1:2], dtype, seed + 1) if affine else None
    bias = randn(shape[1:2], dtype, seed + 2) if affine else None
    assert_training_gradients_match(impl.F.batch_norm, x, weight, bias)


def test_batch_norm_double_backward_is_refused_clearly():
    x = randn((4, 3), torch.float64, 0).requires_grad_(True)
    loss = impl.F.batch_norm(x, None, None, training=True).pow(3).sum()
    (grad_x,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad_x.sum().backward()


class _WrongBackwardBatchNorm(torch.autograd.Function):
    """Training batch norm (no affine) with a classic mistake in the input gradient."""

    @staticmethod
    def forward(ctx, x, mistake):
        mean, biased, _ = _stats(x)
        y = _normalise(x, mean, biased, None, None, 1e-5)
        ctx.save_for_backward(x)
        ctx.mistake = mistake
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        dims = [0] + list(range(2, x.dim()))
        r = torch.rsqrt(_stats(x)[1] + 1e-5).view([1, -1] + [1] * (x.dim() - 2))
        if ctx.mistake == "constant statistics":
            return r * dy, None
        return r * (dy - dy.mean(dims, keepdim=True)), None


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "mistake, hint",
    [("constant statistics", "μ and σ² depend"), ("no variance path", "misses the path")],
)
def test_gradient_hints_fire_on_wrong_backward_passes(mistake, hint):
    def wrong(x, running_mean, running_var, weight, bias, training, momentum, eps):
        return _WrongBackwardBatchNorm.apply(x, mistake)

    x = randn((6, 3, 2), torch.float64, 0) + 2.0
    with pytest.raises(AssertionError, match=hint):
        assert_training_gradients_match(wrong, x, None, None)


@pytest.mark.reference_only
def test_gradient_hints_stay_quiet_on_torch():
    x = randn((6, 3, 2), torch.float64, 0) + 2.0
    assert_training_gradients_match(TF.batch_norm, x, None, None)
    assert_training_gradients_match(TF.batch_norm, x, randn((3,), torch.float64, 1), None)


def test_bfloat16_layer_computes_statistics_in_float32_and_returns_bfloat16():
    x = randn((8, 3, 2, 2), torch.float32, 0) * 3.0 + 5.0  # an offset: bfloat16 sums lose it
    mine = impl.nn.BatchNorm2d(3).to(torch.bfloat16)
    twin = torch.nn.BatchNorm2d(3).to(torch.bfloat16)
    out, expected = mine(x.bfloat16()), twin(x.bfloat16())
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), rtol=0.02, atol=0.03)
    torch.testing.assert_close(mine.running_mean, twin.running_mean, rtol=0.02, atol=0.02)
