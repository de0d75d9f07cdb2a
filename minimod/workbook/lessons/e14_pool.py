TEXT = """Lesson 14: Pooling -- max, average and adaptive

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
