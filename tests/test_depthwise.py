"""Lesson 36: the depthwise convolution's fast path and MobileNetV2's inverted residual.

The fast path (_DepthwiseConv2dFunction: groups = C_in = C_out, k² broadcast multiply-adds over
the input's phases) against torch.nn.functional.conv2d(groups=C) in float32 and float64: values
and every gradient over drawn shapes, strides, paddings and dilations, gradcheck in float64, the
lesson's worked example; conv2d sends depthwise calls to it and everything else (a channel
multiplier, other groups) to lesson 13's path. The inverted residual against
benchmarks.twins.TwinInvertedResidual (torchvision's block, the same keys and weights).

Tolerance: strategies.TOLERANCES times 10, as tests/test_conv.py (a weight gradient sums up to
batch · output positions products).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import impl
from benchmarks.twins import TwinInvertedResidual
from compare import assert_module_matches_twin, assert_same_forward_backward, tolerance
from minimod.nn.conv import pair
from strategies import dtypes, seeds

FACTOR = 10.0
ORDER_HINT = (
    "the output is the convolution with the kernel transposed: tap t = i·kw + j (row i, column "
    "j, rows outer) must meet weight[:, 0, i, j]"
)
PHASE_HINT = (
    "right at stride 1, wrong at stride s > 1: tap (i, j) reads phase ((i·d) mod s, (j·d) mod "
    "s) of the input, shifted by ((i·d) div s)·Wq + (j·d) div s in that phase's (Hq, Wq) grid"
)
ADD_HINT = (
    "dX: every input position is read by several taps, so each tap's w_t ⊙ dY must be ADDED "
    "(+=) into the view it read, not assigned"
)
BATCH_HINT = (
    "dw holds the first image's sum only: dw_t = Σ over the batch AND the positions of X_t ⊙ dY"
)
LINEAR_HINT = (
    "the block's output is never negative: the 1×1 projection is linear (batch norm, no ReLU6 "
    "after it) -- the linear bottleneck"
)
SHORTCUT_HINT = (
    "the shortcut x + F(x) applies only when stride is 1 and in_channels == out_channels (the "
    "block keeps the shape); otherwise the block is F(x) alone"
)
DEPTHWISE_HINT = (
    "the 3×3 convolution must be depthwise: groups = its channels, weight (C, 1, 3, 3), one "
    "filter per channel"
)
EXPAND_HINT = (
    "no 1×1 expansion when the expansion factor t is 1 (torchvision's blocks: depthwise, then "
    "projection)"
)


def randn(shape, dtype=torch.float64, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def depthwise(x, weight, bias=None, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """The lesson's Function with conv2d's arguments (the same padding on both sides)."""
    (ph, pw) = pair(padding)
    return impl.conv._DepthwiseConv2dFunction.apply(
        x, weight, bias, pair(stride), (ph, ph, pw, pw), pair(dilation)
    )


def reference(x, weight, bias=None, **opts) -> torch.Tensor:
    return TF.conv2d(x, weight, bias, groups=x.shape[1], **opts)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, **tolerance(b.dtype, FACTOR))


def depthwise_hint(x: torch.Tensor, weight: torch.Tensor, opts: dict) -> str | None:
    """The classic mistake behind a wrong forward pass, or None."""
    expected = reference(x, weight, **opts)
    try:
        out = depthwise(x, weight, **opts)
    except (RuntimeError, IndexError) as error:
        if isinstance(error, NotImplementedError) or pair(opts["stride"]) == (1, 1):
            raise
        return f"{PHASE_HINT} (it raised {type(error).__name__}: {error})"
    if _close(out, expected):
        return None
    if weight.shape[-1] == weight.shape[-2]:
        transposed = reference(x, weight.transpose(-1, -2), **opts)
        if _close(out, transposed):
            return ORDER_HINT
    if pair(opts["stride"]) != (1, 1):
        plain = dict(opts, stride=1)
        if _close(depthwise(x, weight, **plain), reference(x, weight, **plain)):
            return PHASE_HINT
    return None


@st.composite
def geometries(draw) -> dict:
    """A depthwise layer and an input just big enough for it."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(
        max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 5))
        for k, d, p in zip(kernel, dilation, padding, strict=True)
    )
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), *size)
    return dict(shape=shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


@given(g=geometries(), bias=st.booleans(), dtype=dtypes, seed=seeds)
def test_depthwise_matches_torch(g, bias, dtype, seed):
    channels = g["shape"][1]
    x = randn(g["shape"], dtype, seed)
    weight = randn((channels, 1, *g["kernel"]), dtype, seed + 1)
    opts = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
    hint = depthwise_hint(x, weight, opts)
    assert hint is None, hint
    inputs = [x, weight] + ([randn((channels,), dtype, seed + 2)] if bias else [])
    assert_same_forward_backward(
        lambda *a: depthwise(*a, **opts), lambda *a: reference(*a, **opts), inputs, factor=FACTOR
    )


def test_the_lessons_worked_example():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3).requires_grad_(True)
    weight = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    out = depthwise(x, weight)
    assert out.tolist() == [[[[37.0, 47.0], [67.0, 77.0]]]]
    out.sum().backward()
    assert weight.grad.tolist() == [[[[12.0, 16.0], [24.0, 28.0]]]], BATCH_HINT
    assert x.grad.tolist() == [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]], ADD_HINT


@pytest.mark.parametrize("stride", [1, 2])
def test_taps_in_weight_order(stride):
    x, weight = randn((2, 3, 7, 8)), randn((3, 1, 3, 3), seed=1)
    hint = depthwise_hint(x, weight, dict(stride=stride, padding=1, dilation=1))
    assert hint is None, hint


@pytest.mark.parametrize("stride, dilation", [(2, 1), (3, 1), (2, 2), ((2, 3), (2, 1))])
def test_strided_taps_read_the_phases(stride, dilation):
    x, weight = randn((2, 3, 11, 12)), randn((3, 1, 3, 3), seed=1)
    hint = depthwise_hint(x, weight, dict(stride=stride, padding=1, dilation=dilation))
    assert hint is None, hint
    torch.testing.assert_close(
        depthwise(x, weight, stride=stride, padding=1, dilation=dilation),
        reference(x, weight, stride=stride, padding=1, dilation=dilation),
        msg=lambda m: f"{PHASE_HINT}\n{m}",
    )


@pytest.mark.parametrize("stride", [1, 2])
def test_input_gradient_adds_every_tap(stride):
    x, weight = randn((2, 3, 6, 7)).requires_grad_(True), randn((3, 1, 3, 3), seed=1)
    dy = randn(reference(x, weight, stride=stride, padding=1).shape, seed=2)
    (expected,) = torch.autograd.grad(reference(x, weight, stride=stride, padding=1), x, dy)
    (got,) = torch.autograd.grad(depthwise(x, weight, stride=stride, padding=1), x, dy)
    torch.testing.assert_close(got, expected, msg=lambda m: f"{ADD_HINT}\n{m}")


def test_weight_gradient_sums_the_batch():
    x, weight = randn((3, 2, 5, 6)), randn((2, 1, 3, 3), seed=1).requires_grad_(True)
    dy = randn((3, 2, 5, 6), seed=2)
    (expected,) = torch.autograd.grad(reference(x, weight, padding=1), weight, dy)
    (got,) = torch.autograd.grad(depthwise(x, weight, padding=1), weight, dy)
    (first,) = torch.autograd.grad(reference(x[:1], weight, padding=1), weight, dy[:1])
    assert not (_close(got, first) and not _close(got, expected)), BATCH_HINT
    torch.testing.assert_close(got, expected)


GRADCHECK = [
    pytest.param((2, 3, 5, 6), (3, 1, 3, 3), dict(padding=1), id="3x3"),
    pytest.param((1, 2, 7, 6), (2, 1, 3, 3), dict(stride=2, padding=1), id="3x3-stride2"),
    pytest.param(
        (2, 2, 7, 8), (2, 1, 2, 3), dict(stride=(2, 3), padding=(2, 0), dilation=(2, 1)), id="mixed"
    ),
    pytest.param((1, 3, 4, 4), (3, 1, 1, 1), dict(), id="1x1"),
]


@pytest.mark.parametrize("input_shape, weight_shape, opts", GRADCHECK)
def test_backward_passes_gradcheck(input_shape, weight_shape, opts):
    inputs = tuple(
        t.requires_grad_(True)
        for t in (randn(input_shape), randn(weight_shape, seed=1), randn(weight_shape[:1], seed=2))
    )
    torch.autograd.gradcheck(lambda *a: depthwise(*a, **opts), inputs)


def test_one_gradient_at_a_time():
    x, weight, bias = randn((2, 3, 5, 5)), randn((3, 1, 3, 3), seed=1), randn((3,), seed=2)
    for wanted in range(3):
        inputs = [t.clone().requires_grad_(i == wanted) for i, t in enumerate((x, weight, bias))]
        twins = [t.clone().requires_grad_(i == wanted) for i, t in enumerate((x, weight, bias))]
        depthwise(*inputs, padding=1).square().sum().backward()
        reference(*twins, padding=1).square().sum().backward()
        torch.testing.assert_close(inputs[wanted].grad, twins[wanted].grad)
        assert all(t.grad is None for i, t in enumerate(inputs) if i != wanted)


def test_autocast_runs_in_bfloat16_and_returns_float32_gradients():
    x = randn((2, 4, 6, 6), torch.float32).requires_grad_(True)
    weight = randn((4, 1, 3, 3), torch.float32, seed=1).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = depthwise(x, weight, padding=1)
        expected = reference(x, weight, padding=1)
    assert out.dtype == expected.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad.dtype == weight.grad.dtype == torch.float32
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "weight_shape, groups, function",
    [
        ((4, 1, 3, 3), 4, "_DepthwiseConv2dFunctionBackward"),
        ((8, 1, 3, 3), 4, "_Conv2dFunctionBackward"),  # channel multiplier 2
        ((4, 2, 3, 3), 2, "_Conv2dFunctionBackward"),
        ((4, 4, 3, 3), 1, "_Conv2dFunctionBackward"),
    ],
)
def test_conv2d_takes_the_fast_path_for_depthwise_only(weight_shape, groups, function):
    x = randn((2, 4, 6, 6)).requires_grad_(True)
    weight = randn(weight_shape, seed=1)
    out = impl.F.conv2d(x, weight, padding=1, groups=groups)
    assert type(out.grad_fn).__name__ == function
    torch.testing.assert_close(out, TF.conv2d(x, weight, padding=1, groups=groups))


@pytest.mark.reference_only
def test_conv2d_module_matches_torch_on_the_fast_path():
    mine = impl.nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6)
    twin = torch.nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6)
    assert_module_matches_twin(mine, twin, [randn((2, 6, 9, 8), torch.float32)], factor=FACTOR)


# -- the inverted residual -------------------------------------------------------------------

BLOCKS = [
    pytest.param(8, 8, 1, 6, id="residual"),
    pytest.param(8, 12, 1, 6, id="wider"),
    pytest.param(8, 8, 2, 6, id="stride2"),
    pytest.param(16, 8, 1, 1, id="t1"),
]


def _block_layout_hint(mine, twin, expand_ratio: int) -> str | None:
    ours = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    if ours == theirs:
        return None
    if expand_ratio == 1 and len(ours) > len(theirs):
        return EXPAND_HINT
    grouped = [k for k, shape in ours.items() if len(shape) == 4 and shape[-1] == 3]
    if any(ours[k][1] != 1 for k in grouped):
        return DEPTHWISE_HINT
    return f"state_dict keys and shapes differ from torchvision's: {ours} != {theirs}"


@pytest.mark.parametrize("in_channels, out_channels, stride, expand_ratio", BLOCKS)
def test_block_layout_is_torchvisions(in_channels, out_channels, stride, expand_ratio):
    torch.manual_seed(0)
    mine = impl.mobilenet.InvertedResidual(in_channels, out_channels, stride, expand_ratio)
    twin = TwinInvertedResidual(in_channels, out_channels, stride, expand_ratio)
    hint = _block_layout_hint(mine, twin, expand_ratio)
    assert hint is None, hint


@pytest.mark.parametrize("in_channels, out_channels, stride, expand_ratio", BLOCKS)
def test_block_matches_torchvision(in_channels, out_channels, stride, expand_ratio):
    torch.manual_seed(0)
    mine = impl.mobilenet.InvertedResidual(in_channels, out_channels, stride, expand_ratio)
    twin = TwinInvertedResidual(in_channels, out_channels, stride, expand_ratio)
    hint = _block_layout_hint(mine, twin, expand_ratio)
    assert hint is None, hint
    x = randn((2, in_channels, 7, 6), torch.float32)
    twin.load_state_dict(mine.state_dict())
    try:
        out = mine(x)
    except RuntimeError as error:
        if isinstance(error, NotImplementedError):
            raise
        raise AssertionError(f"{SHORTCUT_HINT} (it raised {error})") from error
    expected = twin(x)
    if expected.shape == out.shape and not _close(out, expected):
        shortcut, without = twin.use_res_connect, twin.conv(x)
        branch = out - x if shortcut else out  # what the layers gave
        assert branch.min() < 0 or without.min() >= 0, LINEAR_HINT
        assert not _close(out, without if shortcut else x + without), SHORTCUT_HINT
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)


def test_parameter_count_of_a_mobilenet_block():
    """features.12 of MobileNetV2 (lesson 36's worked example): 96 -> 576 -> 96 channels."""
    block = impl.mobilenet.InvertedResidual(96, 96, 1, 6)
    convs = sum(p.numel() for name, p in block.named_parameters() if p.dim() == 4)
    assert convs == 96 * 576 + 9 * 576 + 576 * 96 == 115_776, DEPTHWISE_HINT
    assert sum(p.numel() for p in block.parameters()) == 115_776 + 2 * (576 + 576 + 96)
