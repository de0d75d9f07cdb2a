"""Pooling: summarise each window of a feature map by its maximum or its average.

The windows are the same as a convolution's (``Tensor.unfold``), so the output size follows the
same formula ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1 (⌈…⌉ with ceil_mode). Adaptive pooling instead
fixes the output size and lets the windows adapt: output i averages input positions
⌊i·H/O⌋ … ⌈(i + 1)·H/O⌉ − 1.
"""

from __future__ import annotations

import math

import torch

from minimod.nn._checks import can_read_back, expect_tensor
from minimod.nn.conv import pad2d, pair
from minimod.nn.module import Module


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> tuple[int, int]:
    """(output size, extra padding after the input that ceil_mode's last window needs)."""
    if padding > kernel // 2:
        raise ValueError(
            f"pooling: padding {padding} must be at most half the kernel size {kernel}"
        )
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    if room < 0:
        raise ValueError(
            f"pooling: input size {size} with padding {padding} is smaller than the window {span}"
        )
    # BEGIN SOLUTION
    out = (math.ceil(room / stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or the left padding
    return out, max(0, (out - 1) * stride + span - (size + 2 * padding))
    # END SOLUTION


def _windows(x: torch.Tensor, kernel, stride, dilation, out_size) -> torch.Tensor:
    """The pooling windows of an already padded x (..., H, W): (..., OH, OW, kh·kw)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
    windows = x.unfold(-2, dh * (kh - 1) + 1, sh).unfold(-2, dw * (kw - 1) + 1, sw)
    return windows[..., :oh, :ow, ::dh, ::dw].flatten(-2)


def _stride(stride, kernel_size):
    """torch's default stride, the kernel size, for a stride of None, () or []."""
    return kernel_size if stride is None or stride in ((), []) else stride


def _arguments(input, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = pair(kernel_size)
    stride = pair(_stride(stride, kernel))
    padding, dilation = pair(padding), pair(dilation)
    (oh, eh), (ow, ew) = (
        pool_output_size(
            input.shape[-2 + i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode
        )
        for i in range(2)
    )
    # pad2d's order: top, bottom, left, right (bottom/right also get ceil_mode's extra).
    pads = (padding[0], padding[0] + eh, padding[1], padding[1] + ew)
    return kernel, stride, padding, dilation, (oh, ow), pads


def _input_indices(input, positions, kernel, stride, dilation, out_size, pads) -> torch.Tensor:
    """Each maximum's position in its window (..., OH, OW) -> its index in the flattened input
    map (H·W), as torch's return_indices: pool a map of the indices themselves."""
    height, width = input.shape[-2:]
    flat = torch.arange(height * width, device=input.device).view(height, width)
    windows = _windows(pad2d(flat, *pads, value=-1), kernel, stride, dilation, out_size)
    windows = windows.expand(*positions.shape, windows.shape[-1])  # (..., OH, OW, kh·kw)
    return windows.gather(-1, positions.unsqueeze(-1)).squeeze(-1)


def max_pool2d(
    input: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """The maximum of each window of input (N, C, H, W) or (C, H, W); padding counts as −∞.
    return_indices=True returns (maxima, indices): where each maximum is, as an index into its
    flattened (H·W) input map (what max_unpool2d takes)."""
    expect_tensor("max_pool2d", input)
    kernel, stride, _, dilation, out_size, pads = _arguments(
        input, kernel_size, stride, padding, dilation, ceil_mode
    )
    # BEGIN SOLUTION
    windows = _windows(pad2d(input, *pads, value=float("-inf")), kernel, stride, dilation, out_size)
    # max (not amax) sends a window's whole gradient to one element, as torch does; positions:
    # that element's place in its window.
    values, positions = windows.max(dim=-1)
    if not return_indices:
        return values
    return values, _input_indices(input, positions, kernel, stride, dilation, out_size, pads)
    # END SOLUTION


def avg_pool2d(
    input: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> torch.Tensor:
    """The mean of each window. The divisor counts the zero padding if count_include_pad (but
    never the part of a ceil_mode window hanging past the padding); otherwise real inputs only.
    divisor_override: divide every window's sum by this number instead."""
    expect_tensor("avg_pool2d", input)
    if divisor_override == 0:
        raise ValueError("avg_pool2d: divisor_override must not be 0")
    kernel, stride, padding, dilation, out_size, pads = _arguments(
        input, kernel_size, stride, padding, 1, ceil_mode
    )
    # BEGIN SOLUTION
    total = _windows(pad2d(input, *pads), kernel, stride, dilation, out_size).sum(-1)
    if divisor_override is not None:
        return total / divisor_override
    # The divisor: pool a map that is 1 where a position counts and 0 elsewhere.
    height, width = input.shape[-2:]
    if count_include_pad:
        ones = input.new_ones(height + 2 * padding[0], width + 2 * padding[1])
        counted = pad2d(ones, 0, pads[1] - padding[0], 0, pads[3] - padding[1])
    else:
        counted = pad2d(input.new_ones(height, width), *pads)
    divisor = _windows(counted, kernel, stride, dilation, out_size).sum(-1)
    return total / divisor
    # END SOLUTION


def _adaptive_matrix(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, size): row i averages positions ⌊i·size/out⌋ … ⌈(i+1)·size/out⌉ − 1."""
    # BEGIN SOLUTION
    matrix = like.new_zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix
    # END SOLUTION


def adaptive_avg_pool2d(input: torch.Tensor, output_size) -> torch.Tensor:
    """Average pooling to a fixed output size (OH, OW) (None keeps that axis' size): (…, H, W)
    -> (…, OH, OW). Each axis is one matrix product with an averaging matrix."""
    expect_tensor("adaptive_avg_pool2d", input)
    out_h, out_w = pair(output_size)
    height, width = input.shape[-2:]
    out_h, out_w = out_h or height, out_w or width
    # BEGIN SOLUTION
    if (out_h, out_w) == (1, 1):  # global average pooling: one mean per map
        return input.mean((-2, -1), keepdim=True)
    rows = _adaptive_matrix(height, out_h, input)  # (OH, H)
    cols = _adaptive_matrix(width, out_w, input)  # (OW, W)
    return rows @ input @ cols.T
    # END SOLUTION


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """max_pool2d on inputs of height 1: (N, C, L) or (C, L); indices are positions in L."""
    expect_tensor("max_pool1d", input)
    stride = _stride(stride, kernel_size)
    pooled = max_pool2d(
        input.unsqueeze(-2),
        (1, pair(kernel_size, 1)[0]),
        (1, pair(stride, 1)[0]),
        (0, pair(padding, 1)[0]),
        (1, pair(dilation, 1)[0]),
        ceil_mode,
        return_indices,
    )
    if return_indices:
        return pooled[0].squeeze(-2), pooled[1].squeeze(-2)
    return pooled.squeeze(-2)


def avg_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """avg_pool2d on inputs of height 1: (N, C, L) or (C, L). (torch's avg_pool1d has no
    divisor_override; AvgPool1d, like torch's, never passes one.)"""
    expect_tensor("avg_pool1d", input)
    stride = _stride(stride, kernel_size)
    return avg_pool2d(
        input.unsqueeze(-2),
        (1, pair(kernel_size, 1)[0]),
        (1, pair(stride, 1)[0]),
        (0, pair(padding, 1)[0]),
        ceil_mode,
        count_include_pad,
        divisor_override,
    ).squeeze(-2)


def adaptive_avg_pool1d(input: torch.Tensor, output_size: int) -> torch.Tensor:
    """(…, L) -> (…, output_size)."""
    expect_tensor("adaptive_avg_pool1d", input)
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, pair(output_size, 1)[0])).squeeze(-2)


def max_unpool2d(
    input: torch.Tensor,
    indices: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    output_size=None,
) -> torch.Tensor:
    """The inverse of max_pool2d(..., return_indices=True): each value back at its index in a
    map of zeros. input and indices (N, C, H, W) or (C, H, W); the output's (H', W') is
    output_size (its last two entries), else (H − 1)·s − 2p + k per axis."""
    expect_tensor("max_unpool2d", input)
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    padding = pair(padding)
    if output_size is None:
        size = tuple(
            (input.shape[-2 + i] - 1) * stride[i] - 2 * padding[i] + kernel[i] for i in range(2)
        )
    else:
        size = tuple(output_size)[-2:]
    if indices.shape != input.shape:
        raise ValueError(
            f"max_unpool2d: indices of shape {tuple(indices.shape)} do not match the input's "
            f"{tuple(input.shape)}"
        )
    if can_read_back(indices) and indices.numel() and int(indices.max()) >= size[0] * size[1]:
        raise ValueError(
            f"max_unpool2d: index {int(indices.max())} is outside the output of size {size}"
        )
    flat = input.new_zeros(input.shape[:-2] + (size[0] * size[1],))
    flat = flat.scatter(-1, indices.flatten(-2), input.flatten(-2))
    return flat.view(input.shape[:-2] + size)


def max_unpool1d(
    input: torch.Tensor,
    indices: torch.Tensor,
    kernel_size,
    stride=None,
    padding=0,
    output_size=None,
) -> torch.Tensor:
    """max_unpool2d on inputs of height 1: (N, C, L) or (C, L)."""
    expect_tensor("max_unpool1d", input)
    stride = kernel_size if stride is None else stride
    out = None if output_size is None else (1, tuple(pair(output_size, 1))[-1])
    return max_unpool2d(
        input.unsqueeze(-2),
        indices.unsqueeze(-2),
        (1, pair(kernel_size, 1)[0]),
        (1, pair(stride, 1)[0]),
        (0, pair(padding, 1)[0]),
        out,
    ).squeeze(-2)


class _Pool(Module):
    """Holds the arguments (torch's, in torch's order); forward calls the function."""

    function = staticmethod(max_pool2d)

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices=False,
        ceil_mode=False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = kernel_size if stride is None else stride
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: torch.Tensor):
        window = (self.kernel_size, self.stride, self.padding, self.dilation)
        return self.function(input, *window, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_Pool):
    function = staticmethod(max_pool2d)


class MaxPool1d(_Pool):
    function = staticmethod(max_pool1d)


class _AvgPool(Module):
    function = staticmethod(avg_pool2d)

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.padding, self.ceil_mode = kernel_size, padding, ceil_mode
        self.stride = kernel_size if stride is None else stride
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        window = (self.kernel_size, self.stride, self.padding, self.ceil_mode)
        return self.function(input, *window, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPool):
    function = staticmethod(avg_pool2d)


class AvgPool1d(_AvgPool):
    function = staticmethod(avg_pool1d)

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
    ) -> None:
        # torch keeps AvgPool1d's sizes as 1-tuples (its repr shows kernel_size=(2,)).
        stride = None if stride is None else pair(stride, 1)
        super().__init__(
            pair(kernel_size, 1), stride, pair(padding, 1), ceil_mode, count_include_pad
        )


class _MaxUnpool(Module):
    """Holds torch's arguments; forward(input, indices, output_size=None) calls the function."""

    function = staticmethod(max_unpool2d)
    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, self.dims)
        self.stride = self.kernel_size if stride is None else pair(stride, self.dims)
        self.padding = pair(padding, self.dims)

    def forward(self, input: torch.Tensor, indices: torch.Tensor, output_size=None):
        return self.function(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(_MaxUnpool):
    function = staticmethod(max_unpool2d)


class MaxUnpool1d(_MaxUnpool):
    function = staticmethod(max_unpool1d)
    dims = 1


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return adaptive_avg_pool1d(input, self.output_size)
