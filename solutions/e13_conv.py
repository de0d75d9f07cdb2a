"""Lesson 13: Convolution as matrix products, with a hand-written backward pass

The idea
A convolution slides a small kernel over the input; at every position it multiplies the patch
under the kernel by the weights and sums. The same weights are used everywhere, so a pattern is
found wherever it appears, with far fewer parameters than a Linear over the whole image:

    out[n, o, y, x] = b[o] + Σ_c Σ_i Σ_j w[o, c, i, j] · x[n, c, y·s + i·d, x·s + j·d]
    input (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw), bias (C_out,)
    -> output (N, C_out, OH, OW);  (C_in, H, W) unbatched -> (C_out, OH, OW)

The kernel is NOT flipped: deep learning's "convolution" is the cross-correlation above.

The output size (per spatial axis; p padding, s stride, d dilation, k kernel size)
    O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1
A dilated kernel has its k taps d apart, so it spans d(k − 1) + 1 inputs; it fits at
H + 2p − span + 1 positions, of which every s-th is kept. output_size(...) is this formula.

Turn the sum around: one matrix product per kernel tap
Fix one tap (i, j). At every output position it reads the input shifted by (i·d, j·d). Lay the
P output positions out as columns: X_t (C_in, P) is what tap t = (i, j) reads there, and
W_t = weight[:, :, i, j] is a (C_out, C_in) matrix. Then
    Y = b + Σ_t W_t X_t                                     (C_out, P), k² matrix products
-- a k×k convolution is k² 1×1 convolutions (Linear layers over the positions) of shifted
inputs, added up. (Stacking all the X_t into one (C_in·k², P) matrix is "im2col"; it copies the
input k² times, which is slow for big images, so we keep the taps apart.)

Shifted inputs without copies: _channel_major, _stacked and _taps
_channel_major pads the input and lays it out channels first, (C_in, N, Hp, Wp), contiguous.
Flatten it to (C_in, N·Hp·Wp): moving the window by one row is moving Wp columns, so with
stride 1 tap (i, j) reads the flat matrix shifted by i·d·Wp + j·d columns -- a plain strided
VIEW, flat[:, shift : shift + P], no copy. Its column p is position p of the padded grid
(n, y, x); the positions with y ≥ OH or x ≥ OW straddle two rows (or two images): they are
computed and then thrown away, the price of copy-free taps. P = N·Hp·Wp − the last shift, so
that every view stays inside the buffer.
Those thrown-away columns are real work: an 8×8 image padded by 1 is a 10×10 grid, 100
columns for 64 outputs. Neighbours can SHARE their padding, because a read that runs off the
right edge of a row lands at the start of the next row: if that start holds zeros, they serve
as this row's right padding too. _stacked(input, pads, reach) stacks the padded images into
one tall image (C_in, R, Wr): every row is [left zeros][W pixels][right − shared zeros] and
every image [top zero rows][H rows][bottom − shared zero rows], where the shared padding is
min(before, after, d(k − 1)) per axis (a window reaches at most d(k − 1) past an edge). So
Wr = left + W + right − shared_w, each image takes Hr = top + H + bottom − shared_h rows, and
zero rows at the end (the last image's shared rows, plus one for the reads that wrap past its
last row) give R = N·Hr + shared_h + 1. The 8×8 image now takes a 9×9 grid, 81 columns for 64
outputs. Nothing else changes: _taps flattens whatever buffer it gets, and tap (i, j) is the
shift i·d·Wr + j·d; output (n, y, x) is column (n·Hr + y)·Wr + x. _images(stack, N, Hr) views
the first N·Hr rows of any such stack as the N images (·, N, Hr, Wr).
With a stride s > 1 a tap reads every s-th position:
buffer[:, :, i·d : i·d + s(OH − 1) + 1 : s, j·d : …] (C_in, N, OH, OW) of _channel_major's
buffer, a strided view that the product has to copy (reshape) into a matrix, once: the
backward reuses the copies. The outputs are then exactly the (OH, OW) grid.

_Conv2dFunction.forward (torch.autograd.Function)
    stride 1: x, Hr = _stacked(input, pads, reach)    reach = (d_h(kh − 1), d_w(kw − 1))
              grid = (R, Hr, Wr)                      the stack's rows, rows per image, width
    else:     x = _channel_major(input, *pads);  grid = (N·OH, OH, OW)
    taps = each view of _taps(x, ...) reshaped to (C_in, P): free at stride 1, a copy otherwise
    result (C_out, grid rows, grid width), new_empty: the outputs laid out like the stack
    product = result's first P columns viewed as (groups, C_out/groups, P); bias in it (or not)
    for each tap: product.baddbmm_(W_t, X_t) -- in place, "+= W_t @ X_t", batched over groups
    output = _images(result, N, grid[1])[:, :, :OH, :OW] as (N, C_out, OH, OW), contiguous
weight rearranged "(g o) c kh kw -> (kh kw) g o c" gives every W_t, group by group. Pass
beta=0 to the first baddbmm_ when there is no bias: result is uninitialised (new_empty).
The output must be a new tensor (contiguous()), not a view: autograd forbids editing a view
made inside a Function in place. Your forward ends by leaving for the given backward:
    ctx.save_for_backward(weight, *taps)   weight as given (C_out, C_in/g, kh, kw), then the
                                       k² matrices X_t (C_in, P) in the compute dtype
    ctx.geometry = (input.shape, x.shape, pads, stride, dilation, groups, out_size, grid): the
        input's shape (N, C_in, H, W); the buffer's shape (the stack's (C_in, R, Wr) at stride
        1, (C_in, N, Hp, Wp) otherwise); pads (top, bottom, left, right); stride, dilation and
        out_size (OH, OW) as pairs; groups an int; grid as above -- the backward's first given
        lines unpack exactly these eight
    ctx.dtypes = (input.dtype, weight.dtype, bias.dtype or None): each gradient goes back in
        its input's dtype
and returns output.

The backward pass by hand: each tap is a Linear layer
Where it comes from. Y = b + Σ_t W_t X_t, and each term is a Linear layer Y = W X, whose
backward you know from lesson 2: dW = dY Xᵀ and dX = Wᵀ dY. X_t is not a new variable but a
selection of x (a shifted window: x read at the positions tap t reads), and a selection's
backward puts each gradient back where it was read, adding it up (as indexing's backward does,
lesson 5). x is read by every tap, and the chain rule SUMS the gradients of all of a
variable's uses, so dx = Σ_t (dX_t put back at tap t's window). In 1-D, w = (1, 2),
x = (1, 2, 3, 4): y_p = w₀ x_p + w₁ x_(p+1) = (5, 8, 11). With dY = (1, 1, 1): db = 3,
dw₀ = Σ_p dY_p x_p = 1 + 2 + 3 = 6, dw₁ = 2 + 3 + 4 = 9, and dx = (1, 1 + 2, 1 + 2, 2) =
(1, 3, 3, 2): x₁ was read by tap 0 at p = 1 (weight 1) and by tap 1 at p = 0 (weight 2).
Given dY (N, C_out, OH, OW), laid out like the forward's product (channel-major on the grid:
a zero stack, dY written into _images of it, so it is zero at the positions that were thrown
away), as (groups, C_out/groups, P):
    dW_t = dY X_tᵀ            (C_out, C_in) per tap, stacked back to (C_out, C_in, kh, kw)
    db   = Σ_p dY             the bias was added at every position
    dX_t = W_tᵀ dY            and it is ADDED into the view of a zero buffer that tap t read
The last line is the heart: the taps read overlapping windows of x, so each input position
collects the gradients of every tap that read it. _taps of a zero buffer of x's shape gives
the very same views; _add_product adds in place (a matrix view) or through a copy (a strided
view). At stride 1 the buffer is the stack: _images turns it back into the padded images.
Crop the padding off and transpose back: dX (N, C_in, H, W). Compute only the
gradients asked for (ctx.needs_input_grad), in the compute dtype, and convert each to its
input's dtype (ctx.dtypes) before returning them (None for stride, pads, dilation, groups).

Under autocast the products run in bfloat16, as torch's convolution (_compute_dtype, given).
The backward is once_differentiable: a second derivative through it raises an error.

groups: several independent convolutions side by side
The channels split into g groups; output group i sees only input group i. Every product is
batched over the groups: X_t viewed as (g, C_in/g, P), W_t as (g, C_out/g, C_in/g), baddbmm_.
groups = C_in ("depthwise") gives every channel its own filters, as in MobileNet.

padding="same" (stride 1 only): pad so that O = H. The total padding per axis is d(k − 1);
same_padding puts half of it (rounded down) before and the rest after, so an odd total (an
even kernel) pads one more at the bottom and right, as torch does. "valid" means no padding.

The layers, torch.nn's parameters
Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
bias=True): weight (out_channels, in_channels // groups, kh, kw) and bias (out_channels,), or
bias registered as None (register_parameter) when bias=False. Default init as Linear
(lesson 2): kaiming_uniform_(weight, a=√5), i.e. U(±1/√fan_in), and the bias U(±1/√fan_in),
with fan_in = (in_channels / groups) · kh · kw = weight[0].numel(). Conv1d is the same on
(N, C, L): conv1d adds a height-1 axis and calls conv2d (given).

What you write
same_padding; _taps; _Conv2dFunction's forward and backward; _ConvNd's weight and bias in
__init__ and reset_parameters. pair, pad2d, output_size, conv2d (the arguments), conv1d,
_compute_dtype, _channel_major, _stacked, _images, _add_product, the input checks and the
modules are given.

Classic pitfalls
- Flipping the kernel (the mathematicians' convolution): the tests recognise it.
- Dilation: the taps are d apart, so the shifts are i·d·Wr + j·d, and a window spans d(k − 1) + 1.
- Ignoring groups: every output channel would see every input channel.
- "same" with the odd extra padding before instead of after.
- Backward: dX_t assigned (=) instead of added (+=) -- overlapping windows lose gradient; dX_t
  added at the mirrored tap; dW_t paired with another tap's input; dY not zero at the thrown-
  away grid positions (their garbage would reach dW).
- fan_in without the kernel area, or without dividing in_channels by groups.

Run it
Once `minimod exercises check 13` passes, your convolution -- Conv1d is your conv2d on a
height-1 input, forward and hand-written backward -- runs every layer while a 1-D CNN (lesson
16's AudioCNN: Conv1d, BatchNorm1d, ReLU, global average pooling) learns the Free Spoken Digit
Dataset's real recordings, as MFCC frames (after `make real`; --use-mine swaps in every lesson
that passes and says which):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e13
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test accuracy
0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the per-class table
(about 40 s on 2 cores shared with other jobs).
Next: lesson 14 (Pooling: max, average and adaptive)

Check it: minimod exercises check 13
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e13_conv import Conv2d, conv1d, conv2d
    >>> x = torch.arange(5.0).view(1, 1, 5)
    >>> conv1d(x, torch.tensor([[[1.0, 0.0, -1.0]]])).tolist()  # x[i] − x[i + 2]: not flipped
    [[[-2.0, -2.0, -2.0]]]
    >>> conv1d(x, torch.ones(1, 1, 3), padding="same").tolist()
    [[[1.0, 3.0, 6.0, 9.0, 7.0]]]
    >>> conv1d(x, torch.ones(1, 1, 2), dilation=3).tolist()  # x[i] + x[i + 3]
    [[[3.0, 5.0]]]
    >>> conv = Conv2d(4, 8, 3, stride=2, padding=1, groups=2)
    >>> tuple(conv.weight.shape), tuple(conv(torch.randn(2, 4, 7, 7)).shape)
    ((8, 2, 3, 3), (2, 8, 4, 4))
    >>> image = torch.ones(1, 1, 3, 3, requires_grad=True)
    >>> conv2d(image, torch.ones(1, 1, 3, 3), padding=1).sum().backward()
    >>> image.grad[0, 0].tolist()  # how many output windows saw each pixel
    [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
"""

# Lesson 13 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_floating
from minimod.nn._function import run
from minimod.nn.conv import _DepthwiseConv2dFunction, pair
from minimod.nn.module import Module, Parameter

# ---- from minimod/nn/conv.py ----------------------------------------


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pad2d(
    x: torch.Tensor, top: int, bottom: int, left: int, right: int, value: float = 0.0
) -> torch.Tensor:
    """Pad the last two axes with a constant (autograd flows into the copied region)."""
    if top == bottom == left == right == 0:
        return x
    height, width = x.shape[-2], x.shape[-1]
    out = x.new_full(x.shape[:-2] + (top + height + bottom, left + width + right), value)
    out[..., top : top + height, left : left + width] = x
    return out


def same_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, ...]:
    """(top, bottom, left, right) that keep the size at stride 1; odd totals pad more after."""
    # BEGIN YOUR CODE
    total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    return total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2
    # END YOUR CODE


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kh, kw); bias (C_out,).
    padding: int, (ph, pw), "valid" (= 0) or "same" (output size = input size; stride 1).
    """
    if input.dim() == 3:
        return conv2d(input[None], weight, bias, stride, padding, dilation, groups)[0]
    stride, dilation = pair(stride), pair(dilation)
    kernel = tuple(weight.shape[-2:])
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise ValueError(
            f"conv: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}"
        )
    if padding == "same" and stride != (1, 1):
        raise ValueError(f"conv: padding='same' needs stride 1, got {stride}")
    if padding == "same":
        top, bottom, left, right = same_padding(kernel, dilation)
    elif padding == "valid":
        top = bottom = left = right = 0
    else:
        (top, left), (bottom, right) = pair(padding), pair(padding)
    sizes = (input.shape[-2] + top + bottom, input.shape[-1] + left + right)
    if any(output_size(n, k, 1, 0, d) < 1 for n, k, d in zip(sizes, kernel, dilation, strict=True)):
        raise ValueError(
            f"conv: input of spatial size {tuple(input.shape[-2:])} padded by "
            f"{(top, bottom, left, right)} is too small for kernel {kernel} with dilation "
            f"{dilation}"
        )
    pads = (top, bottom, left, right)
    if groups > 1 and input.shape[1] == groups and tuple(weight.shape[:2]) == (groups, 1):
        # Depthwise (each channel its own filter): per-channel multiply-adds, not C tiny
        # matrix products per tap (lesson 36).
        return run(_DepthwiseConv2dFunction, input, weight, bias, stride, pads, dilation)
    return run(_Conv2dFunction, input, weight, bias, stride, pads, dilation, groups)


def _compute_dtype(input: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """Under autocast its low dtype (as for torch's convolution), else the inputs' dtype."""
    device = input.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return torch.promote_types(input.dtype, weight.dtype)


def _channel_major(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """(N, C, H, W) -> (C, N, top + H + bottom, left + W + right): zero-padded, contiguous (one
    copy; none when x is already channel-major in memory and needs no padding)."""
    return pad2d(x.transpose(0, 1), top, bottom, left, right).contiguous()


def _images(tall: torch.Tensor, n: int, pitch: int) -> torch.Tensor:
    """The first n·pitch rows of a stack (C, R, W) as n images (C, n, pitch, W): a view."""
    return tall[:, : n * pitch].unflatten(1, (n, pitch))


def _stacked(x: torch.Tensor, pads: tuple, reach: tuple) -> tuple[torch.Tensor, int]:
    """(N, C, H, W) -> (C, R, Wr), the zero-padded images stacked into one tall image, channels
    first, contiguous (one copy), and Hr, the rows from one image to the next.

    Neighbours share their zero padding: a row's right padding is the next row's left one,
    an image's bottom padding the next image's top one, up to min(before, after, d(k − 1))
    zeros (what a window can reach past the edge). So Wr = left + W + right − shared columns,
    Hr = top + H + bottom − shared rows, and a read past the right edge lands in the next row's
    left zeros. R = N·Hr + the shared rows + 1: zero rows at the end stand in for the last
    image's shared rows and catch the reads that wrap past its last row.
    """
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    shared_h, shared_w = min(top, bottom, reach[0]), min(left, right, reach[1])
    pitch, width = top + h + bottom - shared_h, left + w + right - shared_w
    tall = x.new_zeros(c, n * pitch + shared_h + 1, width)
    _images(tall, n, pitch)[:, :, top : top + h, left : left + w] = x.transpose(0, 1)
    return tall, pitch


def _taps(buffer: torch.Tensor, kernel, stride, dilation, out_size) -> list[torch.Tensor]:
    """What each kernel tap (i, j) reads at every output position, in weight[:, :, i, j] order:
    one view of the padded, channel-major ``buffer`` per tap.

    stride 1: ``buffer`` is the stack (C, R, Wr) of _stacked, flattened to (C, R·Wr) and
    shifted by i·d·Wr + j·d, a (C, P) matrix (no copy). Its column p is position p of the
    stack's grid, image p // (Hr·Wr); the columns with y ≥ OH or x ≥ OW in their image straddle
    two rows (or images) and are computed, then thrown away. P = R·Wr − the last tap's shift,
    so that every view stays inside the buffer.
    stride s > 1: ``buffer`` is (C, N, Hp, Wp) (_channel_major), and the tap the strided
    (C, N, OH, OW) view buffer[:, :, i·d : … : s, j·d : … : s].
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
    # BEGIN YOUR CODE
    if (sh, sw) == (1, 1):
        flat, width = buffer.flatten(1), buffer.shape[-1]
        shifts = [i * dh * width + j * dw for i in range(kh) for j in range(kw)]
        columns = flat.shape[1] - shifts[-1]
        return [flat[:, shift : shift + columns] for shift in shifts]
    return [
        buffer[
            :, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw
        ]
        for i in range(kh)
        for j in range(kw)
    ]
    # END YOUR CODE


def _add_product(target: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """target += a @ b, a (G, M, K) and b (G, K, P) batched over the groups G. A (G·M, P)
    matrix target takes the products in place; a strided (G·M, N, OH, OW) view through a copy."""
    if target.dim() == 2:
        target.view(a.shape[0], -1, b.shape[-1]).baddbmm_(a, b)
    else:
        target += torch.bmm(a, b).view(target.shape)


class _Conv2dFunction(torch.autograd.Function):
    """conv2d as a sum of matrix products, one per kernel tap, with a hand-written backward.

    A k×k convolution is k² 1×1 convolutions of shifted inputs, added up. With X_t (C_in, P)
    what tap t = (i, j) reads at the P output positions (_taps) and W_t = weight[:, :, i, j]
    (C_out, C_in), each tap is a Linear layer over the positions:
        forward    Y = b + Σ_t W_t X_t                                          (C_out, P)
        backward   dW_t = dY X_tᵀ,   db = Σ_p dY,   dX_t = W_tᵀ dY, added back where X_t was read
    With groups, each product is batched over the groups (each group sees its own channels).
    Keeps the X_t: views of the padded input at stride 1, copies otherwise. Double backward is
    not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, stride, pads, dilation, groups):
        n, out_channels, kernel = input.shape[0], weight.shape[0], tuple(weight.shape[-2:])
        dtype = _compute_dtype(input, weight)
        padded = (input.shape[2] + pads[0] + pads[1], input.shape[3] + pads[2] + pads[3])
        out_size = tuple(
            output_size(padded[a], kernel[a], stride[a], 0, dilation[a]) for a in (0, 1)
        )
        # BEGIN YOUR CODE
        # The positions computed, a stack of images: grid = (rows, rows per image, columns), the
        # stacked padded images at stride 1, exactly (OH, OW) per image otherwise.
        if stride == (1, 1):
            reach = tuple(d * (k - 1) for k, d in zip(kernel, dilation, strict=True))
            x, pitch = _stacked(input.to(dtype), pads, reach)  # (C_in, R, Wr)
            grid = (x.shape[1], pitch, x.shape[2])
        else:
            x = _channel_major(input.to(dtype), *pads)  # (C_in, N, Hp, Wp)
            grid = (n * out_size[0], *out_size)
        # Each tap as a (C_in, P) matrix: a view at stride 1, a copy of the strided view otherwise;
        # the backward reuses them.
        taps = [x_t.reshape(x.shape[0], -1) for x_t in _taps(x, kernel, stride, dilation, out_size)]
        columns = taps[0].shape[1]  # P
        result = x.new_empty(out_channels, grid[0], grid[2])
        product = result.view(groups, out_channels // groups, -1)[..., :columns]
        if bias is not None:
            product.copy_(bias.to(dtype).view(groups, -1, 1))
        weights = rearrange(weight.to(dtype), "(g o) c kh kw -> (kh kw) g o c", g=groups)
        for t, (w, x_t) in enumerate(zip(weights, taps, strict=True)):
            # beta=0: the first product overwrites (result is uninitialised) unless a bias is there.
            beta = 1.0 if t > 0 or bias is not None else 0.0
            product.baddbmm_(w, x_t.view(groups, -1, columns), beta=beta)
        output = _images(result, n, grid[1])[:, :, : out_size[0], : out_size[1]]
        output = output.transpose(0, 1).contiguous()
        ctx.save_for_backward(weight, *taps)
        ctx.geometry = (input.shape, x.shape, pads, stride, dilation, groups, out_size, grid)
        ctx.dtypes = (input.dtype, weight.dtype, None if bias is None else bias.dtype)
        return output
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        weight, *taps = ctx.saved_tensors
        input_shape, x_shape, pads, stride, dilation, groups, out_size, grid = ctx.geometry
        n, _, height, width = input_shape
        kernel = tuple(weight.shape[-2:])
        grad_input = grad_weight = grad_bias = None
        # BEGIN YOUR CODE
        # dY channel-major on the computed grid, zero at the positions thrown away: (G, O/G, P).
        columns = taps[0].shape[1]
        dy = taps[0].new_zeros(grad_output.shape[1], grid[0], grid[2])
        _images(dy, n, grid[1])[:, :, : out_size[0], : out_size[1]] = grad_output.transpose(0, 1)
        dy = dy.view(groups, dy.shape[0] // groups, -1)[..., :columns]
        weights = rearrange(weight.to(dy.dtype), "(g o) c kh kw -> (kh kw) g o c", g=groups)
        if ctx.needs_input_grad[1]:  # dW_t = dY X_tᵀ
            per_tap = [dy @ x_t.reshape(groups, -1, columns).transpose(1, 2) for x_t in taps]
            grad_weight = rearrange(
                torch.stack(per_tap), "(kh kw) g o c -> (g o) c kh kw", kh=kernel[0]
            )
        if ctx.needs_input_grad[2]:  # db = Σ_p dY
            grad_bias = dy.sum(-1).flatten()
        if ctx.needs_input_grad[0]:  # dX_t = W_tᵀ dY, added where tap t read the input
            grad_x = dy.new_zeros(x_shape)
            views = _taps(grad_x, kernel, stride, dilation, out_size)
            for w, view in zip(weights, views, strict=True):
                _add_product(view, w.transpose(1, 2), dy)
            if stride == (1, 1):  # from the stack back to the padded images
                grad_x = _images(grad_x, n, grid[1])
            top, left = pads[0], pads[2]
            grad_input = grad_x[:, :, top : top + height, left : left + width].transpose(0, 1)
        grads = (grad_input, grad_weight, grad_bias)
        grads = [
            g if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)
        ]
        return (*grads, None, None, None, None)
        # END YOUR CODE


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """1-D convolution: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k); the
    arguments as ``conv2d``'s, each one number (or "valid"/"same") instead of a pair."""
    if isinstance(padding, str):
        padding2d = padding
    else:
        padding2d = (0, pair(padding, 1)[0])
    out = conv2d(
        input.unsqueeze(-2),
        weight.unsqueeze(-2),
        bias,
        (1, pair(stride, 1)[0]),
        padding2d,
        (1, pair(dilation, 1)[0]),
        groups,
    )
    return out.squeeze(-2)


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: torch.nn's parameters, initialisation and checks."""

    dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels {in_channels} and out_channels "
                f"{out_channels} must both be divisible by groups {groups}"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"{name}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}"
                )
            if padding == "same" and any(s != 1 for s in pair(stride, self.dims)):
                raise ValueError(f"{name}: padding='same' needs stride 1, got {stride}")
        if padding_mode != "zeros":
            raise ValueError(
                f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, self.dims)
        self.stride, self.dilation = pair(stride, self.dims), pair(dilation, self.dims)
        self.padding = padding if isinstance(padding, str) else pair(padding, self.dims)
        self.padding_mode = padding_mode
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        # BEGIN YOUR CODE
        self.weight = Parameter(torch.empty(shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        # END YOUR CODE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        # As torch.nn: U(±1/√fan_in), fan_in = (in_channels / groups) · kernel area.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)
        # END YOUR CODE

    def _check_input(self, x: torch.Tensor) -> None:
        expect_floating(self, x)  # (the module, described only in an error)
        if x.dim() != self.dims + 1 and x.dim() != self.dims + 2:  # (not `in`: see BatchNorm)
            raise ValueError(
                f"{describe(self)}: expected a {self.dims + 2}-D (batched) or "
                f"{self.dims + 1}-D (unbatched) input, got shape {tuple(x.shape)}"
            )
        channels = x.shape[-self.dims - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{describe(self)}: expected {self.in_channels} input channels, got "
                f"{channels} (input shape {tuple(x.shape)})"
            )
        if self.padding in ("same", "valid"):
            padding = (0,) * self.dims if self.padding == "valid" else None
        else:
            padding = self.padding
        if padding is None:
            return
        sizes = x.shape[-self.dims :]
        if any(
            output_size(n, k, s, p, d) < 1
            for n, k, s, p, d in zip(
                sizes, self.kernel_size, self.stride, padding, self.dilation, strict=True
            )
        ):
            raise ValueError(
                f"{describe(self)}: input of spatial size {tuple(sizes)} is too small for "
                f"kernel {self.kernel_size} with padding {padding} and dilation "
                f"{self.dilation}"
            )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * self.dims:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """torch.nn.Conv2d: weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,)."""

    dims = 2

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input(input)
        return conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """torch.nn.Conv1d: weight (out_channels, in_channels/groups, k), bias (out_channels,)."""

    dims = 1

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input(input)
        return conv1d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
