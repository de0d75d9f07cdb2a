"""Convolution as unfold + matrix multiply ("im2col").

Slide a kernel of size k over the input; at each position multiply the patch under it by the
weights and sum. ``Tensor.unfold`` lays every patch out as its own axis (no copying: a strided
view), and one einsum does all the multiply-adds at once:

    output size  O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1     (per spatial axis)
    input (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw) -> (N, C_out, OH, OW)

1-D convolution is the 2-D one on inputs of height 1.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange

from minimod.nn import init
from minimod.nn._checks import describe, expect_floating
from minimod.nn.module import Module, Parameter


def pair(value: int | tuple[int, ...], n: int = 2) -> tuple[int, ...]:
    """3 -> (3, 3); (3, 1) stays (3, 1)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


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
    # BEGIN SOLUTION
    x = pad2d(input, top, bottom, left, right)
    # Each patch spans d·(k − 1) + 1 input positions; unfold makes one view axis per offset.
    span_h, span_w = (d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    patches = x.unfold(2, span_h, stride[0]).unfold(3, span_w, stride[1])
    patches = patches[..., :: dilation[0], :: dilation[1]]  # (N, C_in, OH, OW, kh, kw)
    patches = rearrange(patches, "n (g c) oh ow kh kw -> n g c oh ow kh kw", g=groups)
    kernels = rearrange(weight, "(g o) c kh kw -> g o c kh kw", g=groups)
    out = torch.einsum("ngchwij,gocij->ngohw", patches, kernels)
    out = rearrange(out, "n g o oh ow -> n (g o) oh ow")
    if bias is not None:
        out = out + bias[:, None, None]
    return out
    # END SOLUTION


def conv1d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple = 1,
    padding: int | tuple | str = 0,
    dilation: int | tuple = 1,
    groups: int = 1,
) -> torch.Tensor:
    """1-D convolution: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k)."""
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
        where = describe(self)
        expect_floating(where, x)
        if x.dim() not in (self.dims + 1, self.dims + 2):
            raise ValueError(
                f"{where}: expected a {self.dims + 2}-D (batched) or "
                f"{self.dims + 1}-D (unbatched) input, got shape {tuple(x.shape)}"
            )
        channels = x.shape[-self.dims - 1]
        if channels != self.in_channels:
            raise ValueError(
                f"{where}: expected {self.in_channels} input channels, got "
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
                f"{where}: input of spatial size {tuple(sizes)} is too small for "
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """torch.nn.Conv1d: weight (out_channels, in_channels/groups, k), bias (out_channels,)."""

    dims = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return conv1d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
