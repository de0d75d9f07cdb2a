TEXT = """Lesson 13: Convolution as unfold + matrix multiply

The idea
A convolution slides a small kernel over the input; at every position it multiplies the patch
under the kernel by the weights and sums. The same weights are used everywhere, so a pattern is
found wherever it appears, with far fewer parameters than a Linear over the whole image:

    out[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v w[o, c, u, v] · x[n, c, i·s + u·d, j·s + v·d]
    input (N, C_in, H, W), weight (C_out, C_in / groups, kh, kw), bias (C_out,)
    -> output (N, C_out, OH, OW);  (C_in, H, W) unbatched -> (C_out, OH, OW)

The kernel is NOT flipped: deep learning's "convolution" is the cross-correlation above.

The output size (per spatial axis; p padding, s stride, d dilation, k kernel size)
    O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1
A dilated kernel has its k taps d apart, so it spans d(k − 1) + 1 inputs; it fits at
H + 2p − span + 1 positions, of which every s-th is kept. output_size(...) is this formula.

The im2col picture: convolution is one big matrix multiply
Lay every patch out as a column of C_in·kh·kw numbers ("image to columns"): the convolution is
then weight viewed as (C_out, C_in·kh·kw) times a (C_in·kh·kw, OH·OW) matrix of patches. No loop
is needed, and Tensor.unfold builds the patches as a strided VIEW (no copy):
    x = pad2d(input, top, bottom, left, right)                  zeros around (N, C_in, H, W)
    x.unfold(2, span_h, s_h).unfold(3, span_w, s_w)             (N, C_in, OH, OW, span_h, span_w)
    [..., ::d_h, ::d_w]                                         the taps: (N, C_in, OH, OW, kh, kw)
    torch.einsum("nchwij,ocij->nohw", patches, weight)          (N, C_out, OH, OW)
then add bias[:, None, None]. Autograd differentiates through unfold, slicing and einsum.

groups: several independent convolutions side by side
The channels split into g groups; output group i sees only input group i. Name the group axis
and the einsum does them all at once:
    rearrange(patches, "n (g c) oh ow kh kw -> n g c oh ow kh kw", g=groups)
    rearrange(weight, "(g o) c kh kw -> g o c kh kw", g=groups)
    einsum "ngchwij,gocij->ngohw", then "n g o oh ow -> n (g o) oh ow"
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
same_padding; conv2d from the padded input to the output (the argument handling above your
region is given); _ConvNd's weight and bias in __init__ and reset_parameters. pair, pad2d,
output_size, conv1d, the input checks and the modules' forward are given.

Classic pitfalls
- Flipping the kernel (the mathematicians' convolution): the tests recognise it.
- unfold with size k and dilation d > 1: the window must span d(k − 1) + 1, then keep every d-th.
- Ignoring groups: every output channel would see every input channel (and the weight's
  C_in / groups axis would not match).
- "same" with the odd extra padding before instead of after.
- fan_in without the kernel area, or without dividing in_channels by groups.
- bias added along the wrong axis: it belongs to the channel axis, (C_out, 1, 1).

Check it: minimod exercises check 13
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e13_conv import Conv2d, conv1d
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
"""
