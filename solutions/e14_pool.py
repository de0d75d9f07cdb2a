"""Lesson 14: Pooling -- max, average and adaptive

The idea
Pooling summarises each window of a feature map by one number, per channel: its maximum (is
the feature there somewhere in the window?) or its mean. It has no parameters, shrinks the map
(a 2×2 window with stride 2 halves H and W) and makes the output a little insensitive to small
shifts. The windows are a convolution's (lesson 13), taken channel by channel:
    input (N, C, H, W) or (C, H, W) -> (N, C, OH, OW);  stride defaults to kernel_size
    _windows(padded x, ...) -> (..., OH, OW, kh·kw)    every window as the last axis (given)

Max pooling
Pad with −∞ (it never wins a max), take the max over the window axis. The gradient of a max
goes to ONE element per window, the first maximum, as torch: x.max(dim=-1) does that;
amax shares it between tied maxima (after a ReLU, windows full of zeros tie all the time).
values, positions = windows.max(dim=-1) gives the maxima and where each one sits in its
window. return_indices=True returns (values, indices) instead, indices as torch's: each
maximum's place in its flattened (H·W) input map, which the given
_input_indices(input, positions, kernel, stride, dilation, out_size, pads) computes by pooling
a map of the indices themselves. max_unpool2d / MaxUnpool2d (given) undo the pooling with
them: every maximum back at its index, zeros elsewhere (a scatter into (H', W')).

Average pooling and count_include_pad
Sum each window (padding with zeros) and divide. What the divisor counts:
- count_include_pad=True (default): every position of the window inside the padded input,
  zero padding included -- a corner window over 1 real value and 3 zeros divides by 4;
- count_include_pad=False: only the real input values in the window.
A neat way to get the divisor: pool a map that is 1 where a position counts and 0 elsewhere.
divisor_override=d (torch's, avg_pool2d only) replaces all of that: every window's sum / d.

The output size and ceil_mode
The convolution's formula, O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1, drops a last partial
window. ceil_mode=True rounds up (⌈…⌉) to keep it, with one rule: the last window must START
inside the input or the left padding; if (O − 1)·s ≥ H + p, drop it (O − 1).
pool_output_size returns (O, extra): the padding needed after the input so that the last
window fits, max(0, (O − 1)·s + span − (H + 2p)), span = d(k − 1) + 1. That extra part is
never counted by an average, even with count_include_pad (it hangs past the padding).
Padding may be at most half the kernel (given check). Integer ceiling: −((−a) // b).

Adaptive average pooling: choose the output size, the windows adapt
Output i of O along an axis of size H averages positions ⌊i·H/O⌋ up to ⌈(i + 1)·H/O⌉ − 1,
so the windows cover everything, can overlap and may differ in size (H = 5, O = 3: 0-1, 1-3,
3-4; O > H repeats inputs). Averaging along one axis is a matrix A (O, H) whose row i holds
1/len on its window: _adaptive_matrix. Both axes at once: A_h @ x @ A_wᵀ, (…, H, W) ->
(…, OH, OW). output_size=1 is global average pooling, which turns any image size into one
vector per channel (lesson 16): that is just the mean over (H, W), a shortcut worth taking (the
ResNet pools this way every step). None keeps that axis' size (given).

What you write
pool_output_size's output size and extra padding (after the given checks), max_pool2d (with
return_indices), avg_pool2d with its divisor (and divisor_override), _adaptive_matrix and
adaptive_avg_pool2d. _windows, _arguments, _input_indices, unpooling, the 1-D functions (the
2-D ones on a height-1 input) and the modules are given; the modules take torch's arguments in
torch's order (MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode)).

Classic pitfalls
- Zero padding for max pooling: a window of negative values then returns 0.
- The divisor always the kernel area, or never counting the padding: read count_include_pad.
- ceil_mode keeping a last window that starts in the right padding.
- amax instead of max: the gradient is split between tied maxima.
- Adaptive windows from ⌊(i + 1)·H/O⌋ (floor): the last inputs of a window are missed.

Run it
Once `minimod exercises check 14` passes, your adaptive_avg_pool2d (under AdaptiveAvgPool1d)
averages the last feature maps over time while a 1-D CNN (lesson 16's AudioCNN: Conv1d,
BatchNorm1d, ReLU, global average pooling) learns the Free Spoken Digit Dataset's real
recordings, as MFCC frames (after `make real`; --use-mine swaps in every lesson that passes and
says which):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e14
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test accuracy
0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the per-class table
(about 40 s on 2 cores shared with other jobs).
Next: lesson 15 (Batch normalisation: batch statistics and running estimates)

Check it: minimod exercises check 14
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e14_pool import AdaptiveAvgPool2d, avg_pool2d, max_pool2d
    >>> from exercises.e14_pool import pool_output_size
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> max_pool2d(x, 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    >>> pool_output_size(5, 2, 2, 0, 1, ceil_mode=False), pool_output_size(5, 2, 2, 0, 1, True)
    ((2, 0), (3, 1))
    >>> ones = torch.ones(1, 1, 2, 2)
    >>> avg_pool2d(ones, 2, stride=1, padding=1).flatten().tolist()  # the zero padding counts
    [0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]
    >>> avg_pool2d(ones, 2, stride=1, padding=1, count_include_pad=False).unique().tolist()
    [1.0]
    >>> AdaptiveAvgPool2d((1, 2))(x).tolist()  # columns 0-1 and 2-3, all rows
    [[[[6.5, 8.5]]]]
"""

# Lesson 14 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math

import torch

from minimod.nn._checks import can_read_back, expect_tensor
from minimod.nn.conv import pad2d, pair
from minimod.nn.module import Module
from minimod.nn.pool import _stride

# ---- from minimod/nn/pool.py ----------------------------------------


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
    # BEGIN YOUR CODE
    out = (math.ceil(room / stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or the left padding
    return out, max(0, (out - 1) * stride + span - (size + 2 * padding))
    # END YOUR CODE


def _windows(x: torch.Tensor, kernel, stride, dilation, out_size) -> torch.Tensor:
    """The pooling windows of an already padded x (..., H, W): (..., OH, OW, kh·kw)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
    windows = x.unfold(-2, dh * (kh - 1) + 1, sh).unfold(-2, dw * (kw - 1) + 1, sw)
    return windows[..., :oh, :ow, ::dh, ::dw].flatten(-2)


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
    # BEGIN YOUR CODE
    windows = _windows(pad2d(input, *pads, value=float("-inf")), kernel, stride, dilation, out_size)
    # max (not amax) sends a window's whole gradient to one element, as torch does; positions:
    # that element's place in its window.
    values, positions = windows.max(dim=-1)
    if not return_indices:
        return values
    return values, _input_indices(input, positions, kernel, stride, dilation, out_size, pads)
    # END YOUR CODE


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
    # BEGIN YOUR CODE
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
    # END YOUR CODE


def _adaptive_matrix(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, size): row i averages positions ⌊i·size/out⌋ … ⌈(i+1)·size/out⌉ − 1."""
    # BEGIN YOUR CODE
    matrix = like.new_zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix
    # END YOUR CODE


def adaptive_avg_pool2d(input: torch.Tensor, output_size) -> torch.Tensor:
    """Average pooling to a fixed output size (OH, OW) (None keeps that axis' size): (…, H, W)
    -> (…, OH, OW). Each axis is one matrix product with an averaging matrix."""
    expect_tensor("adaptive_avg_pool2d", input)
    out_h, out_w = pair(output_size)
    height, width = input.shape[-2:]
    out_h, out_w = out_h or height, out_w or width
    # BEGIN YOUR CODE
    if (out_h, out_w) == (1, 1):  # global average pooling: one mean per map
        return input.mean((-2, -1), keepdim=True)
    rows = _adaptive_matrix(height, out_h, input)  # (OH, H)
    cols = _adaptive_matrix(width, out_w, input)  # (OW, W)
    return rows @ input @ cols.T
    # END YOUR CODE


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
