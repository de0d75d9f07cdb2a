"""Lesson 36's pitfalls: the depthwise fast path (forward, phases, backward) and the inverted
residual."""

from pitfalls import Mutant

D = "tests/test_depthwise.py::"

MUTANTS = [
    Mutant(
        "Taps in the wrong order",
        "        for i in range(kh)\n        for j in range(kw)\n",
        "        for j in range(kw)\n        for i in range(kh)\n",
        "kernel transposed",
        (D + "test_taps_in_weight_order",),
    ),
    Mutant(
        "Reading a strided tap from the wrong place",
        "(i * dh) // sh * width + (j * dw) // sw)",
        "i * dh * width + j * dw)",
        "right at stride 1, wrong at stride s > 1",
        (D + "test_taps_in_weight_order", D + "test_strided_taps_read_the_phases"),
    ),
    Mutant(
        "Assigning the input gradient",
        "view.view(n, channels, -1).addcmul_(dy, w[:, t, None])",
        "view.view(n, channels, -1).copy_(dy * w[:, t, None])",
        "must be added (+=)",
        (D + "test_input_gradient_adds_every_tap",),
    ),
    Mutant(
        "Forgetting the batch in dw",
        "torch.mul(x_t.view(n, channels, -1), dy, out=product).sum((0, 2))",
        "torch.mul(x_t.view(n, channels, -1), dy, out=product)[0].sum(1)",
        "the first image's sum only",
        (D + "test_weight_gradient_sums_the_batch",),
    ),
    Mutant(
        "A ReLU after the projection",
        "            nn.BatchNorm2d(out_channels),\n",
        "            nn.BatchNorm2d(out_channels),\n            nn.ReLU6(),\n",
        "the 1×1 projection is linear",
        (D + "test_block_matches_torchvision",),
    ),
    Mutant(
        "The shortcut on a block that changes the shape",
        "self.use_residual = stride == 1 and in_channels == out_channels",
        "self.use_residual = stride == 1",
        "only when stride is 1 and in_channels == out_channels",
        (D + "test_block_matches_torchvision",),
    ),
    Mutant(
        "A full 3×3 convolution in the middle",
        "conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)",
        "conv_bn_relu6(hidden, hidden, 3, stride)",
        "must be depthwise",
        (D + "test_block_layout_is_torchvisions",),
    ),
    Mutant(
        "An expansion layer when t = 1",
        "if expand_ratio != 1 else []",
        "if expand_ratio > 0 else []",
        "no 1×1 expansion",
        (D + "test_block_layout_is_torchvisions",),
    ),
]
