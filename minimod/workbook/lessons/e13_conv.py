TEXT = """Lesson 13: Convolution as matrix products, with a hand-written backward pass

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
