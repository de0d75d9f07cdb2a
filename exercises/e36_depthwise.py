"""Lesson 36: Depthwise and grouped convolution, inverted residuals

The idea: a grouped convolution is G convolutions side by side
Lesson 13's convolution mixes every input channel into every output channel: weight
(C_out, C_in, kh, kw). With groups G the channels split into G blocks, and block g of the
output sees only block g of the input -- G independent convolutions, each C_in/G -> C_out/G,
side by side: weight (C_out, C_in/G, kh, kw), G times fewer parameters and multiply-adds
(MACs). The extreme, G = C_in = C_out, is the DEPTHWISE convolution: each channel convolved
with its own kh×kw filter, weight (C, 1, kh, kw); it mixes space but never channels. A 1×1
("pointwise") convolution does the opposite. One after the other they make a
depthwise-separable convolution, the factorisation MobileNet is built on.

Counting: parameters and MACs
A convolution has one weight per (output channel, input channel of its group, tap) and does
that many MACs at every output position:
    standard 3×3        k²·C_in·C_out               per position
    depthwise 3×3       k²·C                        (C_in = C_out = C)
    separable           k²·C_in + C_in·C_out        depthwise, then 1×1
so separable / standard = 1/C_out + 1/k² (about 1/9 for wide layers). Worked for MobileNetV2's
features.12 (14 × 14 positions, 96 channels expanded to 576): a full 3×3 convolution 576 ->
576 would hold 9·576·576 = 2,985,984 weights and cost 585 M MACs per image (× 196 positions);
the depthwise one holds 9·576 = 5,184 and costs 1.0 M. The whole block -- 1×1 96 -> 576,
depthwise 3×3, 1×1 576 -> 96 -- holds 55,296 + 5,184 + 55,296 = 115,776 convolution weights
(+ 2,496 of batch norm: 118,272) and costs 22.7 M MACs; a standard 3×3 convolution 96 -> 96
alone holds 82,944. Cheap in MACs, but not in time: a depthwise layer does ~k² MACs per
element it reads, so it is limited by memory, not arithmetic, and matrix products are the
wrong tool for it.

Why lesson 13's path is slow here
_Conv2dFunction does one batched matrix product per tap: W_t (G, C_out/G, C_in/G) times X_t.
For G = C these are C products of a 1×1 matrix by a 1×P row, per tap -- C·k² tiny calls into
the matrix library, none of which can use its blocking. Measured on MobileNetV2 (below), that
made a training step 2.3-2.9× torch's.

The fast path: taps as broadcast multiply-adds
With one filter per channel, tap t = (i, j) of the kernel is ONE number per channel,
w_t = weight[:, 0, i, j] (C,). Lesson 13's sum over taps becomes
    Y = b + Σ_t w_t ⊙ X_t        X_t (N, C, P): what tap t reads at the P output positions
where w_t ⊙ X_t multiplies channel c of X_t by w_t[c], broadcast over the batch and the
positions. In torch that is one in-place call per tap, product.addcmul_(X_t, w_t[:, None])
("product += X_t · w_t"), k² passes over the data, no matrices at all.

Strides: the phases (_phases, _phase_taps)
At stride 1 the taps are lesson 13's shifted views: flatten each channel's padded (Hp, Wp)
grid, and tap (i, j) reads it shifted by i·d·Wp + j·d -- a view with unit stride, which the
multiply-add runs through at full speed. At stride s the same view would skip every other
element, and a strided read is several times slower. The cure is to split the input into its
s² PHASES: phase (a, b) is x[..., a::sh, b::sw], the rows ≡ a and the columns ≡ b (mod s).
Tap (i, j) reads rows y·sh + i·dh = (y + (i·dh) div sh)·sh + (i·dh) mod sh: always phase
(i·dh) mod sh, at row offset (i·dh) div sh -- a stride-1 tap in that phase's (Hq, Wq) =
(Hp/sh, Wp/sw) grid. In 1-D with s = 2 and k = 3: the even phase E = x0 x2 x4 ..., the odd
phase O = x1 x3 x5 ...; output y reads x[2y], x[2y+1], x[2y+2] = E[y], O[y], E[y+1].
    _phases(x, stride)   padded (N, C, Hp, Wp), Hp and Wp made multiples of the stride (extra
                         zero rows after the padding) -> (N·C, sh, sw, Hq, Wq), contiguous:
                         x.reshape(N·C, Hq, sh, Wq, sw).permute(0, 2, 4, 1, 3) -- one copy at
                         stride > 1, a plain view at stride 1
    _phase_taps(phases, kernel, stride, dilation) -> per tap, in weight order (i outer, j
                         inner), the (N·C, P) view flat[:, a, b, shift : shift + P] with
                         (a, b) = ((i·dh) mod sh, (j·dw) mod sw),
                         shift = ((i·dh) div sh)·Wq + (j·dw) div sw,
                         P = Hq·Wq − the last tap's shift (every view stays in its phase)
Column p = y·Wq + x of a view is output (y, x); the columns with x ≥ OW straddle two rows and
are computed, then thrown away (lesson 13's trade, now per phase).

_DepthwiseConv2dFunction.forward
    x = pad2d(input, top, bottom + extra_h, left, right + extra_w)   extra: to multiples of s
    phases = _phases(x, stride); taps = _phase_taps(...)
    result (N, C, Hq, Wq) zeros (+ bias per channel); product = its first P columns (N, C, P)
    for each tap t: product.addcmul_(X_t viewed (N, C, P), w[:, t, None])
    output = result[:, :, :OH, :OW] (a new tensor: contiguous(), unless it is all of result)
    ctx.save_for_backward(phases, weight); ctx.geometry = (input.shape, pads, stride,
    dilation, out_size); ctx.dtypes = (input.dtype, weight.dtype, bias.dtype or None)
The compute dtype is _compute_dtype's (bfloat16 under autocast, as lesson 13).

The backward pass by hand
Each term w_t ⊙ X_t is an elementwise product, so with dY (N, C, P) (zero at the thrown-away
columns):
    dw_t = Σ_{n, p} X_t ⊙ dY     per channel: sum over the batch AND the positions
    db   = Σ_{n, p} dY
    dX_t = w_t ⊙ dY              added (+=) into the view of the phases tap t read
Neighbouring outputs read the same input through different taps, so the dX_t overlap: each is
ADDED into a zeroed copy of the phases, which then go back to the padded grid (the inverse
permute) and lose the padding. The k² products for dw share one buffer (torch.mul(...,
out=product)): a fresh temporary of the activation's size per tap costs page faults.

Shapes
    input (N, C, H, W), weight (C, 1, kh, kw), bias (C,) -> output (N, C, OH, OW)
    OH = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1 (lesson 13)
conv2d sends a call here when groups = C_in = C_out > 1 (weight (C, 1, kh, kw)); a channel
multiplier (C_out = m·C_in, m > 1) and every other grouping take lesson 13's path.

Worked example
One channel, x = 1 2 3 / 4 5 6 / 7 8 9, kernel w = 1 2 / 3 4, stride 1, no padding. The four
taps read the 2 × 2 views starting at (0, 0), (0, 1), (1, 0), (1, 1):
    1·(1 2 / 4 5) + 2·(2 3 / 5 6) + 3·(4 5 / 7 8) + 4·(5 6 / 8 9) = 37 47 / 67 77
With dY = 1 everywhere: dw_t = the sum of tap t's view = 12, 16, 24, 28; dX adds each w_t
where its tap read: the corners get one tap (1, 2, 3, 4), the edges two (1 + 2 = 3, ...), the
centre all four: dX = 1 3 2 / 4 10 6 / 3 7 4.

The inverted residual (InvertedResidual, conv_bn_relu6)
lesson 16's residual block is wide -> narrow -> wide around its shortcut; MobileNetV2's is
narrow -> WIDE -> narrow, hence "inverted". InvertedResidual.__init__(in_channels,
out_channels, stride, expand_ratio) builds, with t = expand_ratio:
    expand   conv_bn_relu6(C_in, t·C_in, 1)        1×1, t times the channels (left out at t = 1)
    depth    conv_bn_relu6(t·C_in, t·C_in, 3, stride, groups=t·C_in)    the depthwise 3×3
    project  Conv2d(t·C_in, C_out, 1, bias=False), BatchNorm2d(C_out)   LINEAR: no ReLU6
    y = x + conv(x) when stride = 1 and C_in = C_out, else conv(x)
in self.conv = nn.Sequential(...) (torchvision's keys: conv.0.0.weight, ...) with
self.use_residual telling whether the shortcut applies. conv_bn_relu6 (given) is a
convolution without bias, batch norm and ReLU6, min(max(x, 0), 6): the cap keeps activations
small enough for low-precision inference. The cheap depthwise layer works in the wide space,
where a ReLU loses little; the projection back to few channels stays linear because a ReLU
there would zero whole directions of a narrow representation, information no later layer can
recover (Sandler et al., "linear bottlenecks"). The shortcut joins the narrow ends, and only
when the shapes agree: a stride-2 block or one that changes the channels has none (unlike
lesson 16, no 1×1 shortcut convolution).

What it costs, measured
benchmarks/bench.py --models mobilenet --threads 1: forward and backward of MobileNetV2
(224 × 224, train mode) against torchvision's model (benchmarks/twins.TwinMobileNetV2) with
the same weights, on 2 CPU cores shared with other jobs (load 8-9, so each figure moved by
±0.2 between runs); the ratio is minimod / torch, the median over alternating steps:
    batch 1 (--quick)      lesson 13's path 2.62-2.87×      this lesson's 1.76-2.18×
    batch 4 (the default)  lesson 13's path 2.29-2.72×      this lesson's 1.88-1.93×
Both paths in one process, alternating with torch's step: 3.24× -> 2.05× at batch 1 (8
rounds), 2.75× -> 2.16× at batch 4 (5 rounds). Where a batch-1 step goes now (torch.profiler,
1 thread): the depthwise layers 25% (forward 10%, backward 15%), lesson 13's 1×1
convolutions 27%, batch norm 18%, ReLU6's backward 23% (a mask from two comparisons, then
masked_fill: four passes where torch's hardtanh_backward makes one). torch runs each
depthwise layer as one oneDNN kernel that reads the input once; the k² multiply-adds read it
k² times.

Classic pitfalls
- Taps in the wrong order: weight[:, 0, i, j] belongs to tap t = i·kw + j (rows outer). With
  the loops swapped a square kernel acts transposed -- right on symmetric kernels only.
- Reading a strided tap from the wrong place: at stride s, tap (i, j) reads phase ((i·d) mod
  s, (j·d) mod s) at the shift ((i·d) div s)·Wq + (j·d) div s; the stride-1 shift i·d·Wp +
  j·d is right at stride 1 only, which is why a test at stride 1 never finds it.
- Assigning the input gradient: neighbouring outputs read the same input through different
  taps, so each w_t ⊙ dY must be added (+=) into its view; assigning keeps the last tap only
  (the centre of the worked example would read 4, not 10).
- Forgetting the batch in dw: dw_t sums X_t ⊙ dY over the positions AND the images; summing
  one image's positions only is right at batch 1 and wrong everywhere else.
- A ReLU after the projection: the last 1×1 convolution of the block is linear (batch norm
  only). A ReLU6 there makes the block's output (or, with the shortcut, its change) never
  negative and throws information away in the narrow space.
- The shortcut on a block that changes the shape: x + conv(x) needs stride 1 AND
  C_in = C_out; with a stride of 2 or new channels the shapes differ (an error) -- and
  forgetting it where it applies trains, but not as MobileNetV2.
- A full 3×3 convolution in the middle: without groups = channels the middle layer holds
  9·576·576 weights instead of 9·576 and torchvision's weights no longer load (weight
  (C, 1, 3, 3), not (C, C, 3, 3)).
- An expansion layer when t = 1: the first block of MobileNetV2 has no 1×1 expansion (it would
  be a 32 -> 32 layer for nothing); with one its keys are not torchvision's.

Run it
Fine-tune the real ImageNet MobileNetV2 (after `make real`) on 200 MNIST digits with your
blocks and depthwise convolutions (--use-mine takes them once `minimod exercises check 36`
passes; without it, minimod's):
    minimod finetune cnn --from mobilenet_v2 --task mnist --labels 200 --max-steps 30
        --out runs/mbv2-mnist --use-mine
about 2 minutes on one busy core (30 steps of 32 digits upsampled to 64 × 64, every layer
trained, then the 500 test digits): the loss reads about 1.6 at step 10 and 0.19 at step
30, and the test accuracy about 0.82 -- most of the misses are 2s and 3s read as 8s. The speed
table above: python benchmarks/bench.py --models mobilenet --threads 1 --quick (seconds).
Next: there is no lesson after this one -- back to lesson 35 for a detector whose body could
be this MobileNetV2 (`minimod finetune cnn --from mobilenet_v2 --task detect-digits`).

Check it: minimod exercises check 36
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e36_depthwise import InvertedResidual, _DepthwiseConv2dFunction
    >>> x = torch.arange(1.0, 10.0).view(1, 1, 3, 3).requires_grad_(True)
    >>> w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    >>> out = _DepthwiseConv2dFunction.apply(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1))
    >>> out.tolist()
    [[[[37.0, 47.0], [67.0, 77.0]]]]
    >>> out.sum().backward()
    >>> w.grad.tolist()
    [[[[12.0, 16.0], [24.0, 28.0]]]]
    >>> x.grad.tolist()
    [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]]
    >>> block = InvertedResidual(96, 96, 1, 6)
    >>> sum(p.numel() for p in block.parameters()), block.use_residual
    (118272, True)
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 36`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod import nn
from minimod.nn.conv import _compute_dtype, output_size, pad2d

# ---- from minimod/nn/conv.py ----------------------------------------


def _phases(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """Padded (N, C, Hp, Wp), Hp and Wp multiples of the stride (sh, sw) -> its polyphase
    layout (N·C, sh, sw, Hp/sh, Wp/sw), contiguous: phase (a, b) holds x[..., a::sh, b::sw].
    One copy at stride > 1; at stride 1 a view (one phase, the input itself)."""
    n, c, hp, wp = x.shape
    (sh, sw) = stride
    # BEGIN YOUR CODE
    raise NotImplementedError("e36: _phases")
    # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e36: _phase_taps")
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e36: _DepthwiseConv2dFunction.forward")
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        phases, weight = ctx.saved_tensors
        (n, channels, height, width), pads, stride, dilation, out_size = ctx.geometry
        kernel, grid = tuple(weight.shape[-2:]), phases.shape[-2:]
        grad_input = grad_weight = grad_bias = None
        # BEGIN YOUR CODE
        raise NotImplementedError("e36: _DepthwiseConv2dFunction.backward")
        # END YOUR CODE


# ---- from minimod/models/mobilenet.py ----------------------------------------


def conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution (no bias: BN's β is one), batch norm, ReLU6: torchvision's
    Conv2dNormActivation, keys ``0.weight`` and ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    """(N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride): expand (1×1, t times the
    channels; none when t = 1), depthwise 3×3 with the stride, linear 1×1 projection; the input
    is added back when stride is 1 and the channels stay. Layers in ``conv``, as torchvision."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride must be 1 or 2, got {stride}")
        # BEGIN YOUR CODE
        raise NotImplementedError("e36: InvertedResidual.__init__")
        # END YOUR CODE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e36: InvertedResidual.forward")
        # END YOUR CODE
