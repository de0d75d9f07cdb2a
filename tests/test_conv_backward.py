"""conv2d / conv1d's hand-written backward pass (the _Conv2dFunction of lesson 13).

test_conv.py compares outputs and gradients with torch over random geometries; here:
- torch.autograd.gradcheck (float64 finite differences; fast mode, i.e. random projections of
  the Jacobians, over stride, padding, dilation, groups, 1×1 kernels, unbatched inputs, conv1d,
  with and without bias; every Jacobian entry on two tiny inputs);
- one gradient at a time (the backward skips the others), inputs in unusual memory layouts,
  an output that may be edited in place;
- double backward is refused with a clear error (the backward is once_differentiable);
- under autocast the products run in bfloat16, as torch's convolution, and the gradients come
  back in the parameters' dtype;
- hints name the classic mistakes of a hand-written backward (each proven to fire below).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import impl
from compare import tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
ASSIGN_HINT = (
    "dX: neighbouring windows read the same input position through different taps, so their "
    "gradients must be ADDED into the view each tap read (+=), not assigned"
)
MIRROR_HINT = (
    "dX looks like dY spread back through the flipped kernel: add W_tᵀ·dY into exactly the "
    "view of the input that tap t read in the forward pass (the same shift), not the mirrored one"
)
WEIGHT_FLIP_HINT = (
    "dW looks flipped: dW[:, :, i, j] = dY·X_tᵀ pairs dY with the input view read by the SAME "
    "tap (i, j)"
)

# (input shape, weight shape, options): every path of the backward.
GEOMETRIES = [
    pytest.param((2, 3, 5, 6), (4, 3, 3, 3), dict(padding=1), id="3x3-stride1"),
    pytest.param((2, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1), id="3x3-stride2"),
    pytest.param((2, 4, 5, 3), (2, 4, 1, 1), dict(), id="1x1"),
    pytest.param((2, 4, 6, 5), (6, 4, 1, 1), dict(stride=2), id="1x1-stride2"),
    pytest.param(
        (1, 4, 7, 7),
        (4, 2, 3, 2),
        dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
        id="groups-dilation-stride(1,2)",
    ),
    pytest.param(
        (2, 2, 6, 7), (4, 1, 2, 3), dict(padding="same", dilation=2, groups=2), id="same-even"
    ),
    pytest.param((3, 5, 6), (2, 3, 2, 2), dict(stride=(2, 1)), id="unbatched-valid"),
    # One group per input channel, two filters each: groups = C_out would take conv2d to
    # lesson 36's depthwise Function, not this one.
    pytest.param((2, 3, 4, 4), (6, 1, 3, 3), dict(padding=2, groups=3), id="depthwise-pad2"),
    # Stride 1 stacks the images and lets neighbours share their padding (_stacked): padding
    # beyond what a window can reach, and one pixel whose reads wrap past the last row.
    pytest.param((2, 2, 3, 4), (3, 2, 3, 3), dict(padding=3), id="padding-beyond-reach"),
    pytest.param((1, 2, 1, 1), (3, 2, 3, 3), dict(padding=2, dilation=2), id="one-pixel"),
]


def randn(shape, dtype=torch.float64, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def leaves(*tensors: torch.Tensor | None) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors if t is not None]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape, weight_shape, opts", GEOMETRIES)
def test_conv2d_backward_passes_gradcheck(input_shape, weight_shape, opts, bias):
    inputs = leaves(randn(input_shape), randn(weight_shape, seed=1))
    if bias:
        inputs += leaves(randn((weight_shape[0],), seed=2))
    torch.autograd.gradcheck(lambda *a: impl.F.conv2d(*a, **opts), tuple(inputs), fast_mode=True)


@pytest.mark.parametrize(
    "input_shape, weight_shape, opts",
    [
        ((1, 2, 4, 3), (2, 2, 3, 2), dict(padding=1, dilation=(1, 2))),
        ((2, 2, 5, 4), (4, 1, 3, 3), dict(stride=2, padding=(1, 0), groups=2)),
    ],
)
def test_conv2d_backward_passes_full_gradcheck_on_tiny_inputs(input_shape, weight_shape, opts):
    """Every entry of the Jacobians (the test above checks random projections of them)."""
    inputs = leaves(
        randn(input_shape), randn(weight_shape, seed=1), randn(weight_shape[:1], seed=2)
    )
    torch.autograd.gradcheck(lambda *a: impl.F.conv2d(*a, **opts), tuple(inputs))


@pytest.mark.parametrize(
    "input_shape, weight_shape, opts",
    [
        ((2, 4, 9), (4, 2, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
        ((4, 7), (3, 4, 3), dict(padding="same")),
    ],
)
def test_conv1d_backward_passes_gradcheck(input_shape, weight_shape, opts):
    inputs = leaves(
        randn(input_shape), randn(weight_shape, seed=1), randn(weight_shape[:1], seed=2)
    )
    torch.autograd.gradcheck(lambda *a: impl.F.conv1d(*a, **opts), tuple(inputs), fast_mode=True)


@given(
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    kernel=st.integers(1, 3),
    dtype=dtypes,
    seed=seeds,
)
def test_each_gradient_alone_matches_torch(stride, padding, dilation, kernel, dtype, seed):
    """Only the input, only the weight, only the bias needs a gradient: the others stay None."""
    side = dilation * (kernel - 1) + 3
    x, weight, bias = (
        randn((2, 3, side, side + 1), dtype, seed),
        randn((4, 3, kernel, kernel), dtype, seed + 1),
        randn((4,), dtype, seed + 2),
    )
    opts = dict(stride=stride, padding=padding, dilation=dilation)
    for wanted in range(3):
        ours = [
            t.detach().clone().requires_grad_(i == wanted) for i, t in enumerate((x, weight, bias))
        ]
        theirs = [
            t.detach().clone().requires_grad_(i == wanted) for i, t in enumerate((x, weight, bias))
        ]
        dy = randn(TF.conv2d(x, weight, bias, **opts).shape, dtype, seed + 3)
        (impl.F.conv2d(*ours, **opts) * dy).sum().backward()
        (TF.conv2d(*theirs, **opts) * dy).sum().backward()
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            if i != wanted:
                assert a.grad is None
            else:
                torch.testing.assert_close(a.grad, b.grad, **tolerance(dtype, FACTOR))


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda t: t.contiguous(memory_format=torch.channels_last), id="channels-last"),
        pytest.param(lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2), id="transposed"),
        pytest.param(lambda t: t.transpose(0, 1).contiguous().transpose(0, 1), id="channel-major"),
    ],
)
def test_inputs_in_any_memory_layout(layout):
    x, weight = randn((2, 3, 6, 5)), randn((4, 3, 3, 3), seed=1)
    ours, theirs = leaves(layout(x), weight), leaves(x, weight)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    out, expected = impl.F.conv2d(*ours, padding=1), TF.conv2d(*theirs, padding=1)
    torch.testing.assert_close(out, expected, **tolerance(torch.float64, FACTOR))
    dy = randn(expected.shape, seed=2)
    (out * dy).sum().backward()
    (expected * dy).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, **tolerance(torch.float64, FACTOR))


@pytest.mark.reference_only
def test_stride_one_shares_the_padding_between_neighbours():
    # 8×8 images padded by 1 for a 3×3 kernel: rows of 9 and images of 9 rows (not 10 and 10),
    # then one shared row for the last image and one for the reads that wrap past it.
    stack, pitch = impl.conv._stacked(torch.ones(2, 3, 8, 8), (1, 1, 1, 1), (2, 2))
    assert (tuple(stack.shape), pitch) == ((3, 2 * 9 + 2, 9), 9)
    images = impl.conv._images(stack, 2, pitch)
    assert images.sum() == 3 * 2 * 64 and images[:, :, 1:, 1:].sum() == 3 * 2 * 64


def test_output_is_an_ordinary_tensor_that_can_be_edited_in_place():
    x, weight = leaves(randn((2, 3, 5, 5)), randn((4, 3, 3, 3), seed=1))
    out = impl.F.conv2d(x, weight, padding=1)
    assert out.is_contiguous(), "conv2d should return a contiguous (N, C_out, OH, OW) tensor"
    out.mul_(2.0)  # fails if the output were a view made inside the autograd Function
    out.sum().backward()
    x2, weight2 = leaves(randn((2, 3, 5, 5)), randn((4, 3, 3, 3), seed=1))
    (2.0 * TF.conv2d(x2, weight2, padding=1)).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, **tolerance(torch.float64, FACTOR))
    torch.testing.assert_close(weight.grad, weight2.grad, **tolerance(torch.float64, FACTOR))


def test_double_backward_is_refused_clearly():
    x, weight = leaves(randn((1, 2, 4, 4)), randn((3, 2, 3, 3), seed=1))
    loss = impl.F.conv2d(x, weight).square().sum()  # dY = 2·Y depends on x: a real 2nd order
    (grad_x,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad_x.sum().backward()


def test_no_grad_gives_the_same_output():
    x, weight, bias = randn((2, 3, 5, 4)), randn((4, 3, 2, 3), seed=1), randn((4,), seed=2)
    with torch.no_grad():
        out = impl.F.conv2d(x, weight, bias, stride=(2, 1), padding=1)
    expected = TF.conv2d(x, weight, bias, stride=(2, 1), padding=1)
    torch.testing.assert_close(out, expected, **tolerance(torch.float64, FACTOR))


@pytest.mark.parametrize("stride", [1, 2])
def test_autocast_computes_in_bfloat16_like_torch(stride):
    x, weight, bias = leaves(
        randn((2, 3, 6, 6), torch.float32), randn((4, 3, 3, 3), torch.float32, 1)
    ) + leaves(randn((4,), torch.float32, 2))
    theirs = leaves(x, weight, bias)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = impl.F.conv2d(x, weight, bias, stride=stride, padding=1)
        expected = TF.conv2d(*theirs, stride=stride, padding=1)
    assert out.dtype == expected.dtype == torch.bfloat16, (
        f"under autocast a convolution computes in bfloat16 (as torch's), got {out.dtype}"
    )
    torch.testing.assert_close(out.float(), expected.float(), rtol=0.02, atol=0.05)
    out.float().sum().backward()
    expected.float().sum().backward()
    for ours, twin in zip((x, weight, bias), theirs, strict=True):
        assert ours.grad.dtype == torch.float32, "gradients come back in the parameters' dtype"
        torch.testing.assert_close(ours.grad, twin.grad, rtol=0.02, atol=0.1)


# -- hints: the classic mistakes of a hand-written backward ------------------------------------


def _input_grad_by_taps(dy, weight, input_shape, opts, accumulate=True) -> torch.Tensor:
    """Reference dX (groups 1, int padding): spread W[:, :, i, j]ᵀ·dY back onto the input
    positions tap (i, j) read, added (or, the mistake, assigned)."""
    (sh, sw), (ph, pw), (dh, dw) = (
        (opts.get(k, d),) * 2 if isinstance(opts.get(k, d), int) else opts[k]
        for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))
    )
    n, c, h, w = input_shape
    oh, ow = dy.shape[-2:]
    grad = dy.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            part = torch.einsum("nohw,oc->nchw", dy, weight[:, :, i, j])
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            if accumulate:
                grad[:, :, rows, cols] += part
            else:
                grad[:, :, rows, cols] = part
    return grad[:, :, ph : ph + h, pw : pw + w]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, **tolerance(b.dtype, FACTOR))


def assert_conv_gradients_match(conv, x, weight, opts) -> None:
    """conv(x, weight, **opts)'s gradients against torch's, naming a recognised mistake."""
    ours, theirs = leaves(x, weight), leaves(x, weight)
    out, expected = conv(*ours, **opts), TF.conv2d(*theirs, **opts)
    torch.testing.assert_close(out, expected, **tolerance(x.dtype, FACTOR))
    dy = randn(expected.shape, x.dtype, 7)
    (out * dy).sum().backward()
    (expected * dy).sum().backward()
    (grad_x, grad_w), (true_x, true_w) = (t.grad for t in ours), (t.grad for t in theirs)
    if not _close(grad_x, true_x):
        if _close(grad_x, _input_grad_by_taps(dy, weight, x.shape, opts, accumulate=False)):
            raise AssertionError(ASSIGN_HINT)
        mirrored = leaves(x)[0]
        (TF.conv2d(mirrored, weight.flip(-2, -1), **opts) * dy).sum().backward()
        if _close(grad_x, mirrored.grad):
            raise AssertionError(MIRROR_HINT)
    if not _close(grad_w, true_w) and _close(grad_w, true_w.flip(-2, -1)):
        raise AssertionError(WEIGHT_FLIP_HINT)
    torch.testing.assert_close(grad_x, true_x, **tolerance(x.dtype, FACTOR), msg="dX differs")
    torch.testing.assert_close(grad_w, true_w, **tolerance(x.dtype, FACTOR), msg="dW differs")


HINT_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 2, 7, 7), (3, 2, 2, 3), dict(padding=(1, 2), dilation=2)),
]


@pytest.mark.parametrize("input_shape, weight_shape, opts", HINT_CASES)
def test_gradients_match_torch_with_hints(input_shape, weight_shape, opts):
    x, weight = randn(input_shape), randn(weight_shape, seed=1)
    assert_conv_gradients_match(impl.F.conv2d, x, weight, opts)


class _WrongBackward(torch.autograd.Function):
    """torch's convolution forward, a backward with one classic mistake."""

    @staticmethod
    def forward(ctx, x, weight, opts, mistake):
        ctx.save_for_backward(x, weight)
        ctx.opts, ctx.mistake = opts, mistake
        return TF.conv2d(x, weight, **opts)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        opts, mistake = ctx.opts, ctx.mistake
        with torch.enable_grad():
            xs, ws = leaves(x, weight)
            grad_x, grad_w = torch.autograd.grad(TF.conv2d(xs, ws, **opts), (xs, ws), dy)
        if mistake == "assigned":
            grad_x = _input_grad_by_taps(dy, weight, x.shape, opts, accumulate=False)
        elif mistake == "mirrored":
            with torch.enable_grad():
                xs = leaves(x)[0]
                (grad_x,) = torch.autograd.grad(TF.conv2d(xs, weight.flip(-2, -1), **opts), xs, dy)
        elif mistake == "flipped dW":
            grad_w = grad_w.flip(-2, -1)
        return grad_x, grad_w, None, None


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("assigned", "must be ADDED"),
        ("mirrored", "flipped kernel"),
        ("flipped dW", "dW looks flipped"),
    ],
)
@pytest.mark.parametrize("input_shape, weight_shape, opts", HINT_CASES)
def test_hints_fire_on_wrong_backward_passes(mistake, hint, input_shape, weight_shape, opts):
    x, weight = randn(input_shape), randn(weight_shape, seed=1)

    def wrong(x, weight, **opts):
        return _WrongBackward.apply(x, weight, opts, mistake)

    with pytest.raises(AssertionError, match=hint):
        assert_conv_gradients_match(wrong, x, weight, opts)


@pytest.mark.reference_only
def test_hints_stay_quiet_on_torch():
    for input_shape, weight_shape, opts in HINT_CASES:
        x, weight = randn(input_shape), randn(weight_shape, seed=1)
        assert_conv_gradients_match(TF.conv2d, x, weight, opts)
