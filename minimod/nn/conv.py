"""Convolution as matrix products, with a hand-written backward pass.

Slide a kernel over the input; at each position multiply the patch under it by the weights and
sum. Turned around: kernel tap (i, j) meets, at every output position, the input shifted by
(i, j). So a k×k convolution is k² matrix products, weight[:, :, i, j] (C_out, C_in) times
the shifted input (C_in, positions), added up -- and its backward pass is k² Linear layers'.

    output size  O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1     (per spatial axis)
    input (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw) -> (N, C_out, OH, OW)

1-D convolution is the 2-D one on inputs of height 1.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_floating
from minimod.nn._function import run
from minimod.nn.module import Module, Parameter


def pair(value: int | tuple[int, ...], n: int = 2) -> tuple[int, ...]:
    """3 -> (3, 3); (3, 1) stays (3, 1); (3,) -> (3, 3): one value for every axis, as torch."""
    if not isinstance(value, (tuple, list)):
        return (value,) * n
    return tuple(value) * n if len(value) == 1 else tuple(value)


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
    # BEGIN SOLUTION
    total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    return total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2
    # END SOLUTION


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
    # BEGIN SOLUTION
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
    # END SOLUTION


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
        # BEGIN SOLUTION
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
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        weight, *taps = ctx.saved_tensors
        input_shape, x_shape, pads, stride, dilation, groups, out_size, grid = ctx.geometry
        n, _, height, width = input_shape
        kernel = tuple(weight.shape[-2:])
        grad_input = grad_weight = grad_bias = None
        # BEGIN SOLUTION
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
        # END SOLUTION


def _phases(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """Padded (N, C, Hp, Wp), Hp and Wp multiples of the stride (sh, sw) -> its polyphase
    layout (N·C, sh, sw, Hp/sh, Wp/sw), contiguous: phase (a, b) holds x[..., a::sh, b::sw].
    One copy at stride > 1; at stride 1 a view (one phase, the input itself)."""
    n, c, hp, wp = x.shape
    (sh, sw) = stride
    # BEGIN SOLUTION
    return x.reshape(n * c, hp // sh, sh, wp // sw, sw).permute(0, 2, 4, 1, 3).contiguous()
    # END SOLUTION


def _phase_taps(phases: torch.Tensor, kernel, stride, dilation) -> list[torch.Tensor]:
    """What each kernel tap (i, j) reads at every output position, in weight[:, 0, i, j] order:
    one (N·C, P) view of ``phases`` (N·C, sh, sw, Hq, Wq) per tap, unit stride along P.

    Tap (i, j) reads the input at (y·sh + i·dh, x·sw + j·dw): row y·sh + i·dh is row
    y + (i·dh) // sh of phase (i·dh) % sh, so in its phase tap (i, j) is a stride-1 tap at the
    offset ((i·dh) // sh, (j·dw) // sw): the flattened phase shifted by
    ((i·dh) // sh)·Wq + (j·dw) // sw. Column p = y·Wq + x is output (y, x); the columns with
    x ≥ OW straddle two rows and are computed, then thrown away. P = Hq·Wq − the last tap's
    shift, so that every view stays inside its phase.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    # BEGIN SOLUTION
    flat, width = phases.flatten(-2), phases.shape[-1]
    reads = [
        ((i * dh) % sh, (j * dw) % sw, (i * dh) // sh * width + (j * dw) // sw)
        for i in range(kh)
        for j in range(kw)
    ]
    columns = flat.shape[-1] - reads[-1][2]
    return [flat[:, a, b, shift : shift + columns] for a, b, shift in reads]
    # END SOLUTION


class _DepthwiseConv2dFunction(torch.autograd.Function):
    """conv2d with groups = C_in = C_out (each channel convolved with its own kh×kw filter)
    as k² broadcast multiply-adds over shifted views, with a hand-written backward.

    With X_t (N, C, P) what tap t reads (_phase_taps) and w_t = weight[:, 0, i, j] (C,):
        forward    Y = b + Σ_t w_t ⊙ X_t                   (w_t broadcast over N and P)
        backward   dw_t = Σ_{n,p} X_t ⊙ dY,   db = Σ_{n,p} dY,   dX_t = w_t ⊙ dY, added back
                   where X_t was read
    A stride-s convolution reads each of the s² phases of the input at stride 1, so every view
    is contiguous along P (a strided read is several times slower). Keeps the phases of the
    padded input. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, stride, pads, dilation):
        n, channels, height, width = input.shape
        kernel = tuple(weight.shape[-2:])
        dtype = _compute_dtype(input, weight)
        padded = (height + pads[0] + pads[1], width + pads[2] + pads[3])
        out_size = tuple(
            output_size(padded[a], kernel[a], stride[a], 0, dilation[a]) for a in (0, 1)
        )
        # Zero rows and columns after the padding make each size a multiple of the stride.
        extra = (-padded[0] % stride[0], -padded[1] % stride[1])
        # BEGIN SOLUTION
        x = pad2d(input.to(dtype), pads[0], pads[1] + extra[0], pads[2], pads[3] + extra[1])
        phases = _phases(x, stride)  # (N·C, sh, sw, Hq, Wq)
        taps = _phase_taps(phases, kernel, stride, dilation)
        result = x.new_zeros(n, channels, *phases.shape[-2:])  # the (Hq, Wq) grid
        if bias is not None:
            result += bias.to(dtype).view(channels, 1, 1)
        product = result.view(n, channels, -1)[..., : taps[0].shape[-1]]
        w = weight.to(dtype).view(channels, -1)  # (C, kh·kw)
        for t, x_t in enumerate(taps):
            product.addcmul_(x_t.view(n, channels, -1), w[:, t, None])
        output = result[:, :, : out_size[0], : out_size[1]]
        # A new tensor, not a view (autograd forbids editing a Function's view in place).
        output = result if output.shape == result.shape else output.contiguous()
        ctx.save_for_backward(phases, weight)
        ctx.geometry = (input.shape, pads, stride, dilation, out_size)
        ctx.dtypes = (input.dtype, weight.dtype, None if bias is None else bias.dtype)
        return output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        phases, weight = ctx.saved_tensors
        (n, channels, height, width), pads, stride, dilation, out_size = ctx.geometry
        kernel, grid = tuple(weight.shape[-2:]), phases.shape[-2:]
        grad_input = grad_weight = grad_bias = None
        # BEGIN SOLUTION
        taps = _phase_taps(phases, kernel, stride, dilation)
        # dY on the (Hq, Wq) grid, zero at the positions thrown away: (N, C, P).
        dy = pad2d(grad_output.to(phases.dtype), 0, grid[0] - out_size[0], 0, grid[1] - out_size[1])
        dy = dy.reshape(n, channels, -1)[..., : taps[0].shape[-1]]
        if ctx.needs_input_grad[1]:  # dw_t = Σ_{n,p} X_t ⊙ dY, per channel
            # One buffer for the k² products: a fresh large temporary per tap costs page faults.
            product = torch.empty_like(dy)
            per_tap = [
                torch.mul(x_t.view(n, channels, -1), dy, out=product).sum((0, 2)) for x_t in taps
            ]
            grad_weight = torch.stack(per_tap, dim=1).view(weight.shape)
        if ctx.needs_input_grad[2]:  # db = Σ_{n,p} dY
            grad_bias = dy.sum((0, 2))
        if ctx.needs_input_grad[0]:  # dX_t = w_t ⊙ dY, added where tap t read the input
            grad_phases = torch.zeros_like(phases)
            views = _phase_taps(grad_phases, kernel, stride, dilation)
            w = weight.to(phases.dtype).view(channels, -1)
            for t, view in enumerate(views):
                view.view(n, channels, -1).addcmul_(dy, w[:, t, None])
            # Back from the phases to the padded grid, then the padding cut off.
            sh, sw = stride
            grad_x = grad_phases.permute(0, 3, 1, 4, 2).reshape(
                n, channels, grid[0] * sh, grid[1] * sw
            )
            grad_input = grad_x[:, :, pads[0] : pads[0] + height, pads[2] : pads[2] + width]
        grads = (grad_input, grad_weight, grad_bias)
        grads = [
            g if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes, strict=True)
        ]
        return (*grads, None, None, None)
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.weight = Parameter(torch.empty(shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        # As torch.nn: U(±1/√fan_in), fan_in = (in_channels / groups) · kernel area.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)
        # END SOLUTION

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
