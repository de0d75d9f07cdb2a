"""Max, average and adaptive average pooling (functions and modules) against torch.nn.

Geometry (kernel, stride, padding ≤ kernel/2, dilation, ceil_mode) is drawn first, then an
input big enough for it. Windows made only of padding (possible with dilation > 1) are left
out: torch gives −∞ there and routes the gradient to an arbitrary element.

Tolerance: strategies.TOLERANCES (float32 rtol 1e-4 / atol 1e-5, float64 rtol 1e-9 /
atol 1e-10): pooling sums at most 9 values.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, tolerance
from strategies import dtypes, scales, seeds

COUNT_INCLUDE_PAD_HINT = (
    "count_include_pad misunderstood: with count_include_pad=True the divisor is the whole "
    "window including its zero padding (kernel area, less any part past the padding in "
    "ceil_mode); with False it counts only the real input elements in the window"
)
CEIL_HINT = (
    "ceil_mode gave one window too many: a last window that would start in the right "
    "padding (at or beyond input size + left padding) is dropped"
)
ZERO_PAD_HINT = (
    "max pooling pads with −inf, not 0: a window of negative values that reaches into the "
    "padding must still return its largest value, not 0"
)
ADAPTIVE_HINT = (
    "adaptive pooling: window i covers ⌊i·H/O⌋ … ⌈(i + 1)·H/O⌉ − 1, its end rounded UP (with "
    "a floor the last inputs of a window are missed)"
)
TIES_HINT = (
    "max pooling sends each window's gradient to exactly one element (the first maximum, as "
    "torch); your gradient is split among tied maxima (amax does that, max(dim).values does not)"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def _windows_touch_input(size, kernel, stride, padding, dilation, ceil_mode) -> bool:
    """Does every pooling window along one axis contain at least one real input element?"""
    pooled = TF.max_pool1d(
        torch.zeros(1, 1, size), kernel, stride or kernel, padding, dilation, ceil_mode
    )
    return bool(torch.isfinite(pooled).all())


def _maybe_int(draw, values: tuple):
    """Pass equal per-axis values as a plain int half of the time (both forms are allowed)."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


@st.composite
def pool_geometries(draw, dims: int, kind: str) -> dict:
    """kind "max" (with dilation) or "avg" (with count_include_pad)."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = None if draw(st.booleans()) else tuple(draw(st.integers(1, 3)) for _ in kernel)
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in kernel) if kind == "max" else (1,) * dims
    ceil_mode = draw(st.booleans())
    sizes = []
    for i, (k, p, d) in enumerate(zip(kernel, padding, dilation, strict=True)):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        size = draw(st.integers(smallest, smallest + 5))
        s = kernel[i] if stride is None else stride[i]
        assume(_windows_touch_input(size, k, s, p, d, ceil_mode))
        sizes.append(size)
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    args = dict(
        kernel_size=_maybe_int(draw, kernel),
        stride=None if stride is None else _maybe_int(draw, stride),
        padding=_maybe_int(draw, padding),
        ceil_mode=ceil_mode,
    )
    if kind == "max":
        args["dilation"] = _maybe_int(draw, dilation)
    else:
        args["count_include_pad"] = draw(st.booleans())
    return dict(args=args, input_shape=(*batch, draw(st.integers(1, 3)), *sizes))


def _matches(out: torch.Tensor, candidate: torch.Tensor) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out, candidate, **tolerance(candidate.dtype)
    )


def pool_hint(out: torch.Tensor, x: torch.Tensor, kind: str, dims: int, args: dict) -> str | None:
    """Name the classic pooling mistake ``out`` equals, or None if it matches torch."""
    reference = getattr(TF, f"{kind}_pool{dims}d")
    with torch.no_grad():
        right = reference(x, **args)
        if _matches(out, right):
            return None
        padding = args.get("padding", 0)
        if kind == "max" and padding and padding != (0,) * dims:
            sides = (padding,) * dims if isinstance(padding, int) else tuple(padding)
            if len(sides) == 1:
                sides = sides * dims
            zero_padded = TF.pad(x, [p for side in reversed(sides) for p in (side, side)])
            if _matches(out, reference(zero_padded, **{**args, "padding": 0})):
                return ZERO_PAD_HINT
        if kind == "avg":
            flipped = {**args, "count_include_pad": not args["count_include_pad"]}
            if _matches(out, reference(x, **flipped)):
                return f"{COUNT_INCLUDE_PAD_HINT} (count_include_pad={args['count_include_pad']})"
        if args["ceil_mode"] and out.dim() == right.dim():
            extra = [a - b for a, b in zip(out.shape, right.shape, strict=True)]
            if set(extra) <= {0, 1} and 1 in extra:
                return f"{CEIL_HINT}: got shape {tuple(out.shape)}, torch {tuple(right.shape)}"
    return None


def assert_pool_matches(function, x: torch.Tensor, kind: str, dims: int, args: dict) -> None:
    reference = getattr(TF, f"{kind}_pool{dims}d")
    with torch.no_grad():
        hint = pool_hint(function(x, **args), x, kind, dims, args)
    assert hint is None, hint
    assert_same_forward_backward(lambda t: function(t, **args), lambda t: reference(t, **args), [x])


# -- max and average pooling -----------------------------------------------------------------


POOLINGS = [("max", 2), ("max", 1), ("avg", 2), ("avg", 1)]
# Chosen geometries, run on top of the drawn ones: ceil_mode's last window dropped or kept,
# kernels, strides and dilations that differ per axis, padding that is (not) counted.
CHOSEN_GEOMETRIES = [
    ("max", 2, dict(kernel_size=2, stride=3, padding=1, dilation=1, ceil_mode=True), (1, 1, 4, 4)),
    (
        "max",
        2,
        dict(kernel_size=(1, 3), stride=None, padding=(0, 1), dilation=(1, 2), ceil_mode=False),
        (2, 1, 3),
    ),
    ("max", 1, dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True), (2, 3, 6)),
    (
        "avg",
        2,
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
        (1, 2, 4, 5),
    ),
    (
        "avg",
        2,
        dict(
            kernel_size=(2, 3),
            stride=None,
            padding=(1, 1),
            ceil_mode=False,
            count_include_pad=False,
        ),
        (2, 3, 3),
    ),
    (
        "avg",
        1,
        dict(kernel_size=2, stride=3, padding=1, ceil_mode=True, count_include_pad=False),
        (1, 1, 4),
    ),
]


@pytest.mark.parametrize("kind, dims", POOLINGS)
@given(data=st.data(), dtype=dtypes, seed=seeds, scale=scales)
def test_pool_matches_torch(kind, dims, data, dtype, seed, scale):
    g = data.draw(pool_geometries(dims, kind), label="geometry")
    x = randn(g["input_shape"], dtype, seed, scale)
    assert_pool_matches(getattr(impl.F, f"{kind}_pool{dims}d"), x, kind, dims, g["args"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind, dims, args, shape", CHOSEN_GEOMETRIES)
def test_pool_matches_torch_on_chosen_geometries(kind, dims, args, shape, dtype):
    x = randn(shape, dtype, 0)
    assert_pool_matches(getattr(impl.F, f"{kind}_pool{dims}d"), x, kind, dims, args)


def test_functional_defaults():
    """stride defaults to the kernel size, no padding, no dilation, floor mode, count pads."""
    x = randn((2, 3, 7, 6), torch.float64, 0)
    defaults = (
        "differs from torch's with the defaults: stride = kernel size, padding 0, dilation 1, "
        "ceil_mode=False, count_include_pad=True (no padding here: the divisor is the window's "
        "size)"
    )
    for mine, twin in (
        (impl.F.max_pool2d, TF.max_pool2d),
        (impl.F.avg_pool2d, TF.avg_pool2d),
    ):
        for kernel in (2, (3, 2)):
            torch.testing.assert_close(
                mine(x, kernel),
                twin(x, kernel),
                **tolerance(torch.float64),
                msg=lambda m, twin=twin: f"{twin.__name__} {defaults}\n{m}",
            )
    x1 = randn((2, 3, 7), torch.float64, 1)
    for mine, twin in (
        (impl.F.max_pool1d, TF.max_pool1d),
        (impl.F.avg_pool1d, TF.avg_pool1d),
    ):
        torch.testing.assert_close(mine(x1, 3), twin(x1, 3), **tolerance(torch.float64))
    x_pad = randn((1, 1, 5, 5), torch.float64, 2)
    torch.testing.assert_close(
        impl.F.avg_pool2d(x_pad, 3, 2, 1),
        TF.avg_pool2d(x_pad, 3, 2, 1),
        **tolerance(torch.float64),
        msg=lambda m: (
            "avg_pool2d(x, 3, 2, 1) differs from torch's: count_include_pad "
            f"misunderstood? By default (True) the zero padding counts in the divisor\n{m}"
        ),
    )


# -- ties: max pooling routes each window's gradient to one element ------------------------


@given(
    shape=st.sampled_from([(2, 2, 6, 6), (1, 3, 4, 6), (3, 5, 5)]),
    kernel=st.integers(2, 3),
    stride=st.integers(1, 3),
    integers=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
@example(shape=(1, 1, 4, 4), kernel=2, stride=2, integers=False, dtype=torch.float32, seed=0)
def test_max_pool_ties_route_the_gradient_like_torch(shape, kernel, stride, integers, dtype, seed):
    """ReLU'd inputs are full of zeros (tied maxima); small integers tie too."""
    x = randn(shape, dtype, seed)
    x = x.round().clamp(0, 2) if integers else x.relu()
    with torch.no_grad():
        x_grad = _ones_gradient(impl.F.max_pool2d, x, kernel, kernel)
    hint = ties_hint(x_grad)
    assert hint is None, hint
    assert_same_forward_backward(
        lambda t: impl.F.max_pool2d(t, kernel, stride),
        lambda t: TF.max_pool2d(t, kernel, stride),
        [x],
    )
    x1 = x.flatten(-2)
    assert_same_forward_backward(
        lambda t: impl.F.max_pool1d(t, kernel, stride),
        lambda t: TF.max_pool1d(t, kernel, stride),
        [x1],
    )


def _ones_gradient(function, x, kernel, stride) -> torch.Tensor:
    """The input gradient of function(x).sum() (non-overlapping windows when stride = kernel)."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        function(x, kernel, stride).sum().backward()
    return x.grad


def ties_hint(x_grad: torch.Tensor) -> str | None:
    """With non-overlapping windows and an all-ones upstream gradient, torch's input gradient
    is 0 or 1 everywhere; fractions mean a window's gradient was split among ties."""
    fractional = (x_grad - x_grad.round()).abs() > 1e-6
    if fractional.any():
        return f"{TIES_HINT} (gradient values {sorted(set(x_grad[fractional].tolist()))[:4]})"
    return None


# -- torch's other arguments: 1-element tuples, return_indices, divisor_override, unpooling ------


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    "args",
    [dict(kernel_size=3, padding=(1,)), dict(kernel_size=(3,), stride=(2,), padding=(1,))],
)
def test_one_element_tuples_mean_both_axes_like_torch(kind, args):
    x = randn((2, 3, 6, 5), torch.float64, 0)
    assert_pool_matches(getattr(impl.F, f"{kind}_pool2d"), x, kind, 2, args)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [(), []])
def test_an_empty_stride_means_the_kernel_size_like_torch(kind, dims, stride):
    x = randn((2, 3) + (7,) * dims, torch.float64, 0)
    args = dict(kernel_size=2, stride=stride, padding=0, ceil_mode=False)
    args |= dict(dilation=1) if kind == "max" else dict(count_include_pad=True)
    assert_pool_matches(getattr(impl.F, f"{kind}_pool{dims}d"), x, kind, dims, args)
    name = f"{kind.capitalize()}Pool{dims}d"
    mine, twin = getattr(impl.nn, name)(2, stride), getattr(torch.nn, name)(2, stride)
    assert_same_forward_backward(mine, twin, [x])


@given(g=pool_geometries(2, "max"), dims=st.sampled_from([1, 2]), dtype=dtypes, seed=seeds)
@example(
    g=dict(
        args=dict(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False),
        input_shape=(1, 1, 3, 3),
    ),
    dims=2,
    dtype=torch.float32,
    seed=0,
)
def test_max_pool_return_indices_match_torch(g, dims, dtype, seed):
    """Indices into each input map, flattened (H·W for 2-D, L for 1-D), as torch's; the values
    and their gradient as without return_indices. Small integers make ties common: the first
    maximum of a window wins, as in torch."""
    args = dict(g["args"])
    shape = g["input_shape"]
    if dims == 1:
        args = {k: v if isinstance(v, (int, bool)) or v is None else v[-1] for k, v in args.items()}
        shape = shape[:-2] + shape[-1:]
    x = torch.randint(-2, 3, shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    function, reference = getattr(impl.F, f"max_pool{dims}d"), getattr(TF, f"max_pool{dims}d")
    values, indices = function(x, **args, return_indices=True)
    expected_values, expected_indices = reference(x, **args, return_indices=True)
    torch.testing.assert_close(values, expected_values)
    assert torch.equal(indices, expected_indices), f"{indices} != torch's {expected_indices}"
    assert_same_forward_backward(
        lambda t: function(t, **args, return_indices=True)[0],
        lambda t: reference(t, **args, return_indices=True)[0],
        [x],
    )
    name = f"MaxPool{dims}d"
    mine = getattr(impl.nn, name)(**args, return_indices=True)
    twin = getattr(torch.nn, name)(**args, return_indices=True)
    for a, b in zip(mine(x), twin(x), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dims", [1, 2])
def test_return_indices_false_is_accepted(dims):
    x = randn((2, 3) + (6,) * dims, torch.float32, 0)
    out = getattr(impl.F, f"max_pool{dims}d")(x, 2, return_indices=False)
    torch.testing.assert_close(out, getattr(TF, f"max_pool{dims}d")(x, 2))
    module = getattr(impl.nn, f"MaxPool{dims}d")(2, 2, 0, 1, False, False)  # torch's order
    torch.testing.assert_close(module(x), out)


@pytest.mark.reference_only  # given code (no lesson writes it)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize(
    "kernel, stride, padding, size, output_size",
    [(2, None, 0, 6, None), (3, 2, 1, 7, None), (2, None, 0, 7, 7), (3, 2, 1, 6, 6)],
)
def test_max_unpool_matches_torch(dims, kernel, stride, padding, size, output_size):
    x = randn((2, 3) + (size,) * dims, torch.float64, 0)
    pool_args = dict(kernel_size=kernel, stride=stride, padding=padding, return_indices=True)
    values, indices = getattr(TF, f"max_pool{dims}d")(x, **pool_args)
    out_size = None if output_size is None else (output_size,) * dims
    args = dict(kernel_size=kernel, stride=stride, padding=padding, output_size=out_size)
    assert_same_forward_backward(
        lambda v: getattr(impl.F, f"max_unpool{dims}d")(v, indices, **args),
        lambda v: getattr(TF, f"max_unpool{dims}d")(v, indices, **args),
        [values],
    )
    name = f"MaxUnpool{dims}d"
    mine = getattr(impl.nn, name)(kernel, stride, padding)
    twin = getattr(torch.nn, name)(kernel, stride, padding)
    torch.testing.assert_close(
        mine(values, indices, output_size=out_size), twin(values, indices, output_size=out_size)
    )
    torch.testing.assert_close(
        mine(input=values, indices=indices, output_size=out_size),
        twin(values, indices, output_size=out_size),
    )
    assert repr(mine) == repr(twin)


@pytest.mark.parametrize("divisor", [1, 3, 7])
@pytest.mark.parametrize("padding, count_include_pad", [(0, True), (1, True), (1, False)])
def test_avg_pool2d_divisor_override_matches_torch(divisor, padding, count_include_pad):
    x = randn((2, 3, 5, 6), torch.float64, 0)
    args = dict(
        kernel_size=3,
        stride=2,
        padding=padding,
        ceil_mode=True,
        count_include_pad=count_include_pad,
        divisor_override=divisor,
    )
    assert_same_forward_backward(
        lambda t: impl.F.avg_pool2d(t, **args), lambda t: TF.avg_pool2d(t, **args), [x]
    )
    assert_same_forward_backward(impl.nn.AvgPool2d(**args), torch.nn.AvgPool2d(**args), [x])


@pytest.mark.reference_only
def test_avg_pool2d_divisor_override_zero_is_a_value_error():
    with pytest.raises(ValueError, match=r"divisor_override"):
        impl.F.avg_pool2d(torch.randn(1, 1, 4, 4), 2, divisor_override=0)


# -- adaptive average pooling ----------------------------------------------------------------

output_sides = st.integers(1, 8)


@given(
    batch=st.sampled_from([(), (1,), (2,)]),
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    output_size=st.one_of(
        output_sides,
        st.tuples(st.none() | output_sides, st.none() | output_sides),
    ),
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(batch=(1,), size=(3, 5), output_size=1, dtype=torch.float32, seed=0, scale=1.0)
@example(batch=(2,), size=(6, 4), output_size=(1, 1), dtype=torch.float64, seed=3, scale=10.0)
@example(batch=(), size=(1, 4), output_size=(None, 1), dtype=torch.float64, seed=4, scale=1.0)
@example(batch=(), size=(2, 3), output_size=(7, None), dtype=torch.float64, seed=1, scale=1.0)
@example(batch=(2,), size=(5, 5), output_size=(3, 2), dtype=torch.float64, seed=2, scale=1.0)
def test_adaptive_avg_pool2d_matches_torch(batch, size, output_size, dtype, seed, scale):
    x = randn((*batch, 2, *size), dtype, seed, scale)
    with torch.no_grad():
        out, expected = (
            impl.F.adaptive_avg_pool2d(x, output_size),
            TF.adaptive_avg_pool2d(x, output_size),
        )
    assert _matches(out, expected), ADAPTIVE_HINT
    assert_same_forward_backward(
        lambda t: impl.F.adaptive_avg_pool2d(t, output_size),
        lambda t: TF.adaptive_avg_pool2d(t, output_size),
        [x],
    )


@given(
    batch=st.sampled_from([(), (1,), (3,)]),
    size=st.integers(1, 8),
    output_size=output_sides,
    dtype=dtypes,
    seed=seeds,
    scale=scales,
)
@example(batch=(2,), size=3, output_size=8, dtype=torch.float64, seed=0, scale=1.0)
@example(batch=(1,), size=7, output_size=3, dtype=torch.float32, seed=1, scale=1.0)
def test_adaptive_avg_pool1d_matches_torch(batch, size, output_size, dtype, seed, scale):
    x = randn((*batch, 2, size), dtype, seed, scale)
    with torch.no_grad():
        out, expected = (
            impl.F.adaptive_avg_pool1d(x, output_size),
            TF.adaptive_avg_pool1d(x, output_size),
        )
    assert _matches(out, expected), ADAPTIVE_HINT
    assert_same_forward_backward(
        lambda t: impl.F.adaptive_avg_pool1d(t, output_size),
        lambda t: TF.adaptive_avg_pool1d(t, output_size),
        [x],
    )


# -- modules ---------------------------------------------------------------------------------


@given(
    g=pool_geometries(2, "max"),
    kind=st.sampled_from(["max", "avg"]),
    dims=st.sampled_from([1, 2]),
    dtype=dtypes,
    seed=seeds,
)
def test_pool_modules_match_torch(g, kind, dims, dtype, seed):
    """The modules with the geometry of a drawn 2-D max pooling (1-D: its last axis)."""
    args = dict(g["args"])
    if dims == 1:
        args = {k: v if isinstance(v, (int, bool)) or v is None else v[-1] for k, v in args.items()}
        shape = g["input_shape"][:-2] + g["input_shape"][-1:]
    else:
        shape = g["input_shape"]
    if kind == "avg":
        del args["dilation"]
        args["count_include_pad"] = seed % 2 == 0
        assume(_avg_fits(shape, dims, args))
    name = f"{kind.capitalize()}Pool{dims}d"
    mine, twin = getattr(impl.nn, name)(**args), getattr(torch.nn, name)(**args)
    x = randn(shape, dtype, seed)
    assert_same_forward_backward(mine, twin, [x])


def _avg_fits(shape, dims, args) -> bool:
    """Average pooling has no dilation: is the input still at least one window?"""
    try:
        getattr(TF, f"avg_pool{dims}d")(torch.zeros(shape), **args)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("dims", [1, 2])
def test_module_defaults(dims):
    x = randn((2, 3) + (7,) * dims, torch.float32, 0)
    for kind in ("Max", "Avg"):
        mine, twin = (
            getattr(impl.nn, f"{kind}Pool{dims}d")(2),
            getattr(torch.nn, f"{kind}Pool{dims}d")(2),
        )
        assert_same_forward_backward(mine, twin, [x])
    mine = getattr(impl.nn, f"AdaptiveAvgPool{dims}d")(3)
    twin = getattr(torch.nn, f"AdaptiveAvgPool{dims}d")(3)
    assert_same_forward_backward(mine, twin, [x])
    assert list(mine.state_dict()) == [], "pooling has no parameters or buffers"


@given(
    output_size=st.one_of(
        output_sides, st.tuples(st.none() | output_sides, st.none() | output_sides)
    ),
    dims=st.sampled_from([1, 2]),
    dtype=dtypes,
    seed=seeds,
)
def test_adaptive_modules_match_torch(output_size, dims, dtype, seed):
    if dims == 1:
        output_size = output_size if isinstance(output_size, int) else output_size[0] or 2
    x = randn((2, 3) + (5,) * dims, dtype, seed)
    mine = getattr(impl.nn, f"AdaptiveAvgPool{dims}d")(output_size)
    twin = getattr(torch.nn, f"AdaptiveAvgPool{dims}d")(output_size)
    assert_same_forward_backward(mine, twin, [x])


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "name, args",
    [
        ("MaxPool2d", dict(kernel_size=2)),
        ("MaxPool2d", dict(kernel_size=(2, 3), stride=1, padding=1, dilation=2, ceil_mode=True)),
        ("MaxPool1d", dict(kernel_size=3, stride=2)),
        ("AvgPool2d", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
        ("AvgPool1d", dict(kernel_size=2)),
        ("AvgPool1d", dict(kernel_size=3, stride=2, padding=1)),
        ("AdaptiveAvgPool2d", dict(output_size=1)),
        ("AdaptiveAvgPool2d", dict(output_size=(None, 3))),
        ("AdaptiveAvgPool1d", dict(output_size=4)),
    ],
)
def test_repr_matches_torch(name, args):
    from minimod import nn

    assert repr(getattr(nn, name)(**args)) == repr(getattr(torch.nn, name)(**args))


@pytest.mark.reference_only
def test_bad_padding_is_a_value_error():
    from minimod.nn import functional as F

    x = torch.randn(1, 1, 6, 6)
    with pytest.raises(ValueError, match=r"padding 2 must be at most half the kernel size 3"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"input size 2.*smaller than the window 5"):
        F.avg_pool1d(torch.randn(1, 1, 2), 5)


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _flipped_count_avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
):
    return TF.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, not count_include_pad)


def _ceil_without_drop_max_pool2d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """ceil_mode that keeps a last window starting in the right padding."""
    if not ceil_mode:
        return TF.max_pool2d(x, kernel_size, stride, padding, dilation)
    k, s, p = (
        torch.nn.modules.utils._pair(v) for v in (kernel_size, stride or kernel_size, padding)
    )
    d = torch.nn.modules.utils._pair(dilation)
    extra = []
    for i in range(2):
        span = d[i] * (k[i] - 1) + 1
        room = x.shape[-2 + i] + 2 * p[i] - span
        out = -(-room // s[i]) + 1
        extra.append(max(0, (out - 1) * s[i] + span - (x.shape[-2 + i] + 2 * p[i])))
    padded = TF.pad(x, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]), value=float("-inf"))
    return TF.max_pool2d(padded, kernel_size, stride, 0, dilation)


def _amax_max_pool2d(x, kernel_size, stride=None):
    """Max pooling with amax: a window's gradient is shared among its tied maxima."""
    stride = stride or kernel_size
    windows = x.unfold(-2, kernel_size, stride).unfold(-2, kernel_size, stride)
    return windows.flatten(-2).amax(-1)


@pytest.mark.reference_only
def test_hint_count_include_pad_fires():
    x = randn((1, 1, 4, 4), torch.float64, 0)
    args = dict(kernel_size=3, stride=1, padding=1, ceil_mode=False, count_include_pad=True)
    with pytest.raises(AssertionError, match="count_include_pad misunderstood"):
        assert_pool_matches(_flipped_count_avg_pool2d, x, "avg", 2, args)


@pytest.mark.reference_only
def test_hint_ceil_mode_window_in_the_padding_fires():
    x = randn((1, 1, 4, 4), torch.float64, 0)
    args = dict(kernel_size=2, stride=3, padding=1, dilation=1, ceil_mode=True)
    with pytest.raises(AssertionError, match="ceil_mode gave one window too many"):
        assert_pool_matches(_ceil_without_drop_max_pool2d, x, "max", 2, args)


@pytest.mark.reference_only
def test_hint_ties_fires():
    x = torch.zeros(1, 1, 4, 4)
    grad = _ones_gradient(_amax_max_pool2d, x, 2, 2)
    hint = ties_hint(grad)
    assert hint is not None and "exactly one element" in hint
    assert ties_hint(_ones_gradient(TF.max_pool2d, x, 2, 2)) is None


@pytest.mark.reference_only
def test_hints_stay_quiet_on_torch():
    x = randn((1, 2, 5, 4), torch.float64, 0)
    args = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    assert pool_hint(TF.avg_pool2d(x, **args), x, "avg", 2, args) is None
