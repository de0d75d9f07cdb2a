"""Conv1d / Conv2d and F.conv1d / F.conv2d against their torch.nn twins.

Geometry (kernel, stride, padding, dilation, groups) is drawn first, then an input just big
enough for it, so every drawn combination is valid.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): a weight gradient sums up to batch · output positions (≤ 300) products.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import (
    assert_module_matches_twin,
    assert_same_forward_backward,
    assert_same_state_dict_layout,
    tolerance,
)
from strategies import dtypes, scales, seeds

# torch warns that padding="same" with an even kernel copies the input; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

FACTOR = 10.0
FLIP_HINT = (
    "your output equals a true convolution (kernel flipped); deep-learning 'convolution' is "
    "cross-correlation: out[i] = Σ_j w[j] · x[i·s + j·d], the kernel is not flipped"
)
SIZE_HINT = "the output size is off by one: O = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1"
DILATION_HINT = (
    "dilation was ignored: with dilation d the kernel taps are d apart, x[i·s + j·d], and the "
    "window spans d·(k − 1) + 1 inputs"
)
GROUPS_HINT = (
    "groups mix channels across groups: with groups g, output channels of group i (the i-th "
    "block of out_channels/g) may only see input channels of group i (the i-th block of "
    "in_channels/g)"
)
SAME_HINT = (
    'padding="same" with an odd total d·(k − 1): the extra column goes after (right/bottom), '
    "total // 2 before"
)
FAN_IN_HINT = "default init: U(±1/√fan_in) with fan_in = in_channels / groups · kernel area"


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


# -- geometry: draw the layer first, then an input big enough -------------------------------


@st.composite
def geometries(draw, dims: int) -> dict:
    """Channels, kernel, stride, padding, dilation, groups and an input size that fits them."""
    if draw(st.booleans()):  # depthwise: one group per input channel
        groups = draw(st.integers(1, 4))
        in_channels, out_channels = groups, groups * draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        in_channels = groups * draw(st.integers(1, 2))
        out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if kind == "same":
        padding, stride = "same", (1,) * dims
        pads = (0,) * dims  # "same" always fits: the output has the input's size
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        if kind == "valid":
            padding, pads = "valid", (0,) * dims
        elif kind == "int":
            padding = draw(st.integers(0, 2))
            pads = (padding,) * dims
        else:
            pads = padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    spatial = []
    for k, d, p in zip(kernel, dilation, pads, strict=True):
        smallest = 1 if padding == "same" else max(1, d * (k - 1) + 1 - 2 * p)
        spatial.append(draw(st.integers(smallest, min(smallest + 4, 10))))
    batch = draw(st.sampled_from([(), (1,), (2,), (3,)]))
    return dict(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        input_shape=(*batch, in_channels, *spatial),
    )


def options(g: dict) -> dict:
    """The keyword arguments of F.conv*d / nn.Conv*d for geometry ``g``."""
    return dict(
        stride=g["stride"], padding=g["padding"], dilation=g["dilation"], groups=g["groups"]
    )


def weight_shape(g: dict) -> tuple:
    return (g["out_channels"], g["in_channels"] // g["groups"], *g["kernel"])


def _torch_conv(dims: int):
    return TF.conv1d if dims == 1 else TF.conv2d


# -- hints: name the classic mistake that an output equals ----------------------------------


def _matches(out: torch.Tensor, candidate: torch.Tensor) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out, candidate, **tolerance(candidate.dtype, FACTOR)
    )


def _groups_mix(conv, x: torch.Tensor, dims: int, groups: int, out_channels: int) -> bool:
    """Does some output group respond to input channels outside its own group?"""
    channel_dim = x.dim() - dims - 1
    per_in, per_out = x.shape[channel_dim] // groups, out_channels // groups
    baseline = conv(torch.zeros_like(x))
    for g in range(groups):
        index = [slice(None)] * x.dim()
        index[channel_dim] = slice(g * per_in, (g + 1) * per_in)
        only_g = torch.zeros_like(x)
        only_g[tuple(index)] = x[tuple(index)]
        moved = (conv(only_g) - baseline).abs()
        for other in range(groups):
            index[channel_dim] = slice(other * per_out, (other + 1) * per_out)
            if other != g and moved[tuple(index)].max() > 1e-4 * (1 + x.abs().max()):
                return True
    return False


def _same_pads(g: dict, extra_before: bool = False) -> list[int]:
    """padding="same" as TF.pad's list (last dimension first): total // 2 before and the odd
    extra after, or (``extra_before``, the classic mistake) the other way round."""
    pads = []
    for k, d in reversed(list(zip(g["kernel"], g["dilation"], strict=True))):
        total = d * (k - 1)
        pair = (
            [total - total // 2, total // 2] if extra_before else [total // 2, total - total // 2]
        )
        pads += pair
    return pads


def conv_hint(conv, x: torch.Tensor, weight, bias, g: dict, dims: int) -> str | None:
    """Name the classic mistake ``conv`` (x -> output) makes, or None if it matches torch."""
    reference = _torch_conv(dims)
    with torch.no_grad():
        out = conv(x)
        right = reference(x, weight, bias, **options(g))
        if _matches(out, right):
            return None
        if any(d != 1 for d in g["dilation"]):
            # The taps of dilation 1 on the dilated layer's padding and output grid.
            padded = TF.pad(x, _same_pads(g)) if g["padding"] == "same" else x
            padding = 0 if g["padding"] == "same" else g["padding"]
            undilated = reference(
                padded, weight, bias, **{**options(g), "dilation": 1, "padding": padding}
            )
            if out.dim() == undilated.dim():
                undilated = undilated[(..., *(slice(0, n) for n in out.shape[-dims:]))]
            if _matches(out, undilated):
                return f"{DILATION_HINT} (your output equals the convolution with dilation 1)"
        if g["padding"] == "same":
            swapped = TF.pad(x, _same_pads(g, extra_before=True))
            swapped = reference(swapped, weight, bias, **{**options(g), "padding": 0})
            if not _matches(right, swapped) and _matches(out, swapped):
                return SAME_HINT
        if out.shape != right.shape:
            got, want = tuple(out.shape[-dims:]), tuple(right.shape[-dims:])
            if len(got) == len(want) and all(
                abs(a - b) <= 1 for a, b in zip(got, want, strict=True)
            ):
                return f"{SIZE_HINT}: expected spatial size {want}, got {got}"
            return None
        if any(k > 1 for k in g["kernel"]):
            flipped = weight.flip(list(range(-dims, 0)))
            if _matches(out, reference(x, flipped, bias, **options(g))):
                return FLIP_HINT
        if g["groups"] > 1:
            if _groups_mix(conv, x, dims, g["groups"], g["out_channels"]):
                return GROUPS_HINT
    return None


def assert_conv_function_matches(function, dims: int, x, weight, bias, g: dict) -> None:
    """``function`` (F.conv1d / F.conv2d's signature) against torch: hint, values, gradients."""
    opts = options(g)
    hint = conv_hint(lambda t: function(t, weight, bias, **opts), x, weight, bias, g, dims)
    assert hint is None, hint
    reference = _torch_conv(dims)
    inputs = [x, weight] + ([] if bias is None else [bias])
    assert_same_forward_backward(
        lambda *a: function(*a, **opts), lambda *a: reference(*a, **opts), inputs, factor=FACTOR
    )


def make_conv(module_type, g: dict, bias: bool, dims: int):
    conv_type = getattr(module_type, f"Conv{dims}d")
    return conv_type(
        g["in_channels"],
        g["out_channels"],
        g["kernel"] if dims > 1 else g["kernel"][0],
        bias=bias,
        **options(g),
    )


def assert_conv_module_matches(mine, twin, x: torch.Tensor, g: dict, dims: int) -> None:
    expected = tuple(twin.weight.shape)
    assert tuple(mine.weight.shape) == expected, (
        f"weight should be (out_channels, in_channels / groups, *kernel_size) = {expected}, "
        f"got {tuple(mine.weight.shape)}"
    )
    twin.load_state_dict(mine.state_dict())
    bias = None if twin.bias is None else twin.bias.detach()
    hint = conv_hint(mine, x, twin.weight.detach(), bias, g, dims)
    assert hint is None, hint
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)


# -- properties ------------------------------------------------------------------------------

EDGE_2D = [
    # 1×1 kernel, batch of 1
    dict(
        in_channels=2,
        out_channels=3,
        kernel=(1, 1),
        stride=(1, 1),
        padding=0,
        dilation=(1, 1),
        groups=1,
        input_shape=(1, 2, 1, 1),
    ),
    # unbatched, depthwise, stride 2
    dict(
        in_channels=3,
        out_channels=6,
        kernel=(3, 2),
        stride=(2, 2),
        padding=(1, 0),
        dilation=(1, 1),
        groups=3,
        input_shape=(3, 5, 4),
    ),
    # "same" with an even kernel and dilation: the odd total padding goes after
    dict(
        in_channels=2,
        out_channels=2,
        kernel=(2, 3),
        stride=(1, 1),
        padding="same",
        dilation=(2, 2),
        groups=2,
        input_shape=(2, 2, 4, 3),
    ),
    # the input exactly as large as the dilated kernel
    dict(
        in_channels=1,
        out_channels=2,
        kernel=(3, 3),
        stride=(3, 2),
        padding="valid",
        dilation=(2, 1),
        groups=1,
        input_shape=(2, 1, 5, 3),
    ),
]
EDGE_1D = [
    dict(
        in_channels=1,
        out_channels=1,
        kernel=(1,),
        stride=(1,),
        padding=0,
        dilation=(1,),
        groups=1,
        input_shape=(1, 1, 1),
    ),
    dict(
        in_channels=4,
        out_channels=4,
        kernel=(2,),
        stride=(1,),
        padding="same",
        dilation=(3,),
        groups=4,
        input_shape=(4, 5),
    ),
    dict(
        in_channels=4,
        out_channels=2,
        kernel=(3,),
        stride=(2,),
        padding=(2,),
        dilation=(2,),
        groups=2,
        input_shape=(3, 4, 2),
    ),
]


def _with_examples(edge_cases):
    def decorate(test):
        for i, g in enumerate(edge_cases):
            dtype = torch.float32 if i % 2 else torch.float64
            test = example(g=g, bias=bool(i % 2 == 0), dtype=dtype, seed=i, scale=1.0)(test)
        return test

    return decorate


@given(g=geometries(2), bias=st.booleans(), dtype=dtypes, seed=seeds, scale=scales)
@_with_examples(EDGE_2D)
def test_functional_conv2d_matches_torch(g, bias, dtype, seed, scale):
    x = randn(g["input_shape"], dtype, seed, scale)
    weight = randn(weight_shape(g), dtype, seed + 1)
    b = randn((g["out_channels"],), dtype, seed + 2) if bias else None
    assert_conv_function_matches(impl.F.conv2d, 2, x, weight, b, g)


@given(g=geometries(1), bias=st.booleans(), dtype=dtypes, seed=seeds, scale=scales)
@_with_examples(EDGE_1D)
def test_functional_conv1d_matches_torch(g, bias, dtype, seed, scale):
    x = randn(g["input_shape"], dtype, seed, scale)
    weight = randn(weight_shape(g), dtype, seed + 1)
    b = randn((g["out_channels"],), dtype, seed + 2) if bias else None
    assert_conv_function_matches(impl.F.conv1d, 1, x, weight, b, g)


@given(g=geometries(2), bias=st.booleans(), dtype=dtypes, seed=seeds, scale=scales)
@_with_examples(EDGE_2D)
def test_conv2d_matches_torch(g, bias, dtype, seed, scale):
    mine = make_conv(impl.nn, g, bias, 2).to(dtype)
    twin = make_conv(torch.nn, g, bias, 2).to(dtype)
    assert_conv_module_matches(mine, twin, randn(g["input_shape"], dtype, seed, scale), g, 2)


@given(g=geometries(1), bias=st.booleans(), dtype=dtypes, seed=seeds, scale=scales)
@_with_examples(EDGE_1D)
def test_conv1d_matches_torch(g, bias, dtype, seed, scale):
    mine = make_conv(impl.nn, g, bias, 1).to(dtype)
    twin = make_conv(torch.nn, g, bias, 1).to(dtype)
    assert_conv_module_matches(mine, twin, randn(g["input_shape"], dtype, seed, scale), g, 1)


def test_functional_defaults():
    x, weight = randn((2, 4, 5, 5), torch.float64, 0), randn((6, 4, 3, 3), torch.float64, 1)
    torch.testing.assert_close(
        impl.F.conv2d(x, weight), TF.conv2d(x, weight), **tolerance(torch.float64)
    )
    x1, weight1 = randn((2, 4, 7), torch.float64, 2), randn((6, 4, 3), torch.float64, 3)
    torch.testing.assert_close(
        impl.F.conv1d(x1, weight1), TF.conv1d(x1, weight1), **tolerance(torch.float64)
    )


@pytest.mark.parametrize("dims", [1, 2])
def test_module_defaults_and_attributes(dims):
    mine = getattr(impl.nn, f"Conv{dims}d")(4, 6, 3)
    twin = getattr(torch.nn, f"Conv{dims}d")(4, 6, 3)
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"):
        assert getattr(mine, name) == getattr(twin, name), (
            f"{name}: {getattr(mine, name)!r}, torch has {getattr(twin, name)!r}"
        )
    assert mine.groups == twin.groups == 1
    assert mine.bias is not None, "bias=True is the default"
    assert mine.weight.dtype == torch.float32 and mine.weight.requires_grad
    assert getattr(impl.nn, f"Conv{dims}d")(4, 6, 3, bias=False).bias is None
    assert_same_state_dict_layout(mine, twin)
    x = randn((2, 4) + (6,) * dims, torch.float32, 0)
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_loads_both_ways(dims, bias):
    kwargs = dict(kernel_size=3, stride=2, padding=1, groups=2, bias=bias)
    x = randn((2, 4) + (5,) * dims, torch.float32, 0)
    # torch -> minimod: give the twin distinctive weights first.
    twin = getattr(torch.nn, f"Conv{dims}d")(4, 6, **kwargs)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(randn(p.shape, p.dtype, 7))
    mine = getattr(impl.nn, f"Conv{dims}d")(4, 6, **kwargs)
    assert_same_state_dict_layout(mine, twin)
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))
    # minimod -> torch
    mine = getattr(impl.nn, f"Conv{dims}d")(4, 6, **kwargs)
    twin = getattr(torch.nn, f"Conv{dims}d")(4, 6, **kwargs)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(torch.float32, FACTOR))
    assert list(mine.state_dict()) == list(twin.state_dict()), "key order differs from torch"


# MobileNet's layers: depthwise 3×3 (groups = C_in, channel multiplier 1 and 2; stride 1 and 2)
# and a grouped 3×3 (4 groups of 2 channels -> 3 channels each).
GROUPED_2D = [
    (8, 8, 8, 1),
    (8, 8, 8, 2),
    (8, 16, 8, 1),
    (8, 16, 8, 2),
    (8, 12, 4, 1),
]


@pytest.mark.parametrize("in_channels, out_channels, groups, stride", GROUPED_2D)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_depthwise_and_grouped_conv2d_match_torch(
    in_channels, out_channels, groups, stride, bias, dtype
):
    """Forward, input / weight / bias gradients and the state_dict both ways."""
    kwargs = dict(kernel_size=3, stride=stride, padding=1, groups=groups, bias=bias)
    twin = torch.nn.Conv2d(in_channels, out_channels, **kwargs).to(dtype)
    mine = impl.nn.Conv2d(in_channels, out_channels, **kwargs).to(dtype)
    assert_same_state_dict_layout(mine, twin)
    x = randn((2, in_channels, 11, 12), dtype, 3)
    assert_module_matches_twin(mine, twin, [x], factor=FACTOR)  # minimod -> torch
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(randn(p.shape, dtype, 7))
    mine.load_state_dict(twin.state_dict())  # torch -> minimod
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), **tolerance(dtype, FACTOR))


@pytest.mark.parametrize(
    "kwargs", [dict(padding=(1,)), dict(stride=(2,), padding=(1,), dilation=(2,))]
)
def test_one_element_tuples_mean_every_axis_like_torch(kwargs):
    """torch reads (1,) as 1 on every axis; the shared padding helper must too."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, generator=generator)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=generator)
    assert_same_forward_backward(
        lambda x, w: impl.F.conv2d(x, w, **kwargs),
        lambda x, w: TF.conv2d(x, w, **kwargs),
        [x, weight],
    )


# -- default initialisation ------------------------------------------------------------------


def conv_init_hint(layer, in_channels: int, groups: int, kernel_area: int) -> str | None:
    """None if weight and bias look like U(±1/√fan_in), fan_in = in/groups · kernel area."""
    fan_in = in_channels // groups * kernel_area
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.detach().double().flatten()
    max_abs, std = w.abs().max().item(), w.std().item()
    if max_abs <= bound * (1 + 1e-6) and abs(std - bound / math.sqrt(3)) < 0.03 * bound:
        b = layer.bias.detach().double()
        if b.abs().max().item() <= bound * (1 + 1e-6) and b.abs().max().item() > 0.9 * bound:
            if abs(b.std().item() - bound / math.sqrt(3)) < 0.08 * bound / math.sqrt(3):
                return None
        return (
            f"{FAN_IN_HINT}: the bias should be ~ U(±{bound:.4g}) as well; got max|b| = "
            f"{b.abs().max().item():.4g}, std {b.std().item():.4g}"
        )
    for wrong_fan_in, mistake in (
        (in_channels * kernel_area, "groups were ignored in fan_in"),
        (in_channels // groups, "the kernel area was left out of fan_in"),
        (layer.weight.shape[0] * kernel_area, "fan_in used out_channels"),
    ):
        if abs(max_abs - 1 / math.sqrt(wrong_fan_in)) < 0.02 / math.sqrt(wrong_fan_in):
            return f"{FAN_IN_HINT} = {fan_in}; {mistake} (max|w| ≈ 1/√{wrong_fan_in})"
    return (
        f"{FAN_IN_HINT} = {fan_in}: U(±{bound:.4g}), std {bound / math.sqrt(3):.4g}; got "
        f"max|w| = {max_abs:.4g}, std {std:.4g}"
    )


@pytest.mark.parametrize(
    "dims, in_channels, out_channels, kernel, groups",
    [(2, 8, 2048, 3, 2), (1, 24, 1536, 5, 3), (2, 6, 1024, 1, 1)],
)
def test_default_init_is_torchs_uniform(dims, in_channels, out_channels, kernel, groups):
    layer = getattr(impl.nn, f"Conv{dims}d")(in_channels, out_channels, kernel, groups=groups)
    hint = conv_init_hint(layer, in_channels, groups, kernel**dims)
    assert hint is None, hint
    bound = 1 / math.sqrt(in_channels // groups * kernel**dims)
    w = layer.weight.detach().double()
    assert w.abs().max().item() > 0.99 * bound, "weights do not fill their range"
    assert abs(w.mean().item()) < 0.01 * bound, "weights are not centred on 0"


@pytest.mark.reference_only
def test_init_check_accepts_torchs_own_conv():
    layer = torch.nn.Conv2d(8, 2048, 3, groups=2)
    assert conv_init_hint(layer, 8, 2, 9) is None


@pytest.mark.reference_only
def test_hint_init_ignoring_groups_fires():
    wrong = torch.nn.Conv2d(8, 2048, 3, groups=2)
    with torch.no_grad():
        wrong.weight.uniform_(-1 / math.sqrt(72), 1 / math.sqrt(72))
    hint = conv_init_hint(wrong, 8, 2, 9)
    assert hint is not None and "groups were ignored" in hint


# -- repr and bad input (minimod's own behaviour) ----------------------------------------------


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "dims, args, kwargs",
    [
        (2, (3, 6, 3), {}),
        (2, (4, 8, (3, 1)), dict(stride=2, padding=(1, 0), dilation=2, groups=4, bias=False)),
        (2, (3, 6, 2), dict(padding="same", dilation=(1, 2))),
        (1, (3, 6, 5), dict(padding="valid", groups=3)),
        (1, (2, 2, 1), dict(stride=3, padding=2, bias=False)),
    ],
)
def test_repr_matches_torch(dims, args, kwargs):
    name = f"Conv{dims}d"
    from minimod import nn

    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(
        getattr(torch.nn, name)(*args, **kwargs)
    )


@pytest.mark.reference_only
def test_wrong_channel_count_names_the_layer():
    from minimod.nn import Conv1d, Conv2d

    with pytest.raises(
        ValueError, match=r"Conv2d\(3, 6, kernel_size=\(3, 3\).*3 input channels.*4"
    ):
        Conv2d(3, 6, 3)(torch.randn(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"Conv1d\(3, 6.*3 input channels.*\(5, 9\)"):
        Conv1d(3, 6, 3)(torch.randn(5, 9))  # unbatched (C, L) with C = 5
    with pytest.raises(ValueError, match=r"Conv2d\(3, 6.*4-D \(batched\) or 3-D.*\(8, 8\)"):
        Conv2d(3, 6, 3)(torch.randn(8, 8))


@pytest.mark.reference_only
def test_input_too_small_for_the_kernel_names_the_layer():
    from minimod.nn import Conv1d, Conv2d

    with pytest.raises(ValueError, match=r"Conv2d\(1, 2, kernel_size=\(5, 5\).*\(4, 9\).*small"):
        Conv2d(1, 2, 5)(torch.randn(1, 1, 4, 9))
    with pytest.raises(ValueError, match=r"Conv1d\(1, 2.*dilation=\(3,\).*\(6,\).*small"):
        Conv1d(1, 2, 3, dilation=3)(torch.randn(1, 1, 6))
    Conv1d(1, 2, 3, dilation=3)(torch.randn(1, 1, 7))  # exactly fits: no error


@pytest.mark.reference_only
def test_functional_input_too_small_is_a_clear_error():
    from minimod.nn import functional as F

    with pytest.raises(ValueError, match=r"conv: input of spatial size \(2, 9\).*too small"):
        F.conv2d(torch.randn(1, 1, 2, 9), torch.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv: .*too small.*dilation \(1, 3\)"):
        F.conv1d(torch.randn(1, 1, 6), torch.randn(1, 1, 3), dilation=3)
    assert (
        F.conv1d(torch.randn(1, 1, 6), torch.randn(1, 1, 3), dilation=3, padding=1).shape[-1] == 2
    )


@pytest.mark.reference_only
def test_bad_construction_arguments_name_the_layer():
    from minimod.nn import Conv1d, Conv2d

    with pytest.raises(ValueError, match=r"Conv2d.*padding.*'full'"):
        Conv2d(3, 6, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv2d.*padding='same' needs stride 1"):
        Conv2d(3, 6, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match=r"Conv1d.*padding='same' needs stride 1"):
        Conv1d(3, 6, 3, padding="same", stride=(2,))
    with pytest.raises(ValueError, match=r"Conv2d.*in_channels 4.*divisible by groups 3"):
        Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"Conv1d.*out_channels 5.*divisible by groups 2"):
        Conv1d(4, 5, 3, groups=2)


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _flipped_conv2d(x, weight, bias=None, **opts):
    return TF.conv2d(x, weight.flip(-2, -1), bias, **opts)


def _off_by_one_conv2d(x, weight, bias=None, **opts):
    return TF.conv2d(x, weight, bias, **opts)[..., :-1, :-1]


def _undilated_conv2d(x, weight, bias=None, **opts):
    return TF.conv2d(x, weight, bias, **{**opts, "dilation": 1})


def _groups_ignored_conv2d(x, weight, bias=None, groups=1, **opts):
    """Every output channel sees every input channel (the weight repeated over the groups)."""
    return TF.conv2d(x, weight.repeat(1, groups, 1, 1), bias, **opts)


HINT_GEOMETRY = dict(
    in_channels=4,
    out_channels=4,
    kernel=(3, 2),
    stride=(1, 2),
    padding=1,
    dilation=(2, 1),
    groups=2,
    input_shape=(2, 4, 7, 6),
)


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_flipped_conv2d, "kernel flipped"),
        (_off_by_one_conv2d, "off by one"),
        (_undilated_conv2d, "dilation was ignored"),
        (_groups_ignored_conv2d, "groups mix channels"),
    ],
)
def test_hints_fire_on_wrong_implementations(wrong, hint):
    g = HINT_GEOMETRY
    x = randn(g["input_shape"], torch.float64, 0)
    weight, bias = randn(weight_shape(g), torch.float64, 1), randn((4,), torch.float64, 2)
    with pytest.raises(AssertionError, match=hint):
        assert_conv_function_matches(wrong, 2, x, weight, bias, g)


@pytest.mark.reference_only
def test_hints_stay_quiet_on_torch():
    g = HINT_GEOMETRY
    x = randn(g["input_shape"], torch.float64, 0)
    weight, bias = randn(weight_shape(g), torch.float64, 1), randn((4,), torch.float64, 2)
    assert (
        conv_hint(lambda t: TF.conv2d(t, weight, bias, **options(g)), x, weight, bias, g, 2) is None
    )
