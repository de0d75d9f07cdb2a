"""Lesson 13's pitfalls: convolution, forward and backward."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T, B = "tests/test_conv.py::", "tests/test_conv_backward.py::"

MUTANTS = [
    Mutant(
        "Flipping the kernel",
        'weights = rearrange(weight.to(dtype), "(g o) c kh kw -> (kh kw) g o c", g=groups)',
        "weights = rearrange(\n"
        '            weight.flip(-2, -1).to(dtype), "(g o) c kh kw -> (kh kw) g o c", g=groups\n'
        "        )",
        "kernel flipped",
        (),
    ),
    Mutant(
        "Dilation: the taps are d apart",
        "shifts = [i * dh * width + j * dw for i in range(kh) for j in range(kw)]",
        "shifts = [i * width + j for i in range(kh) for j in range(kw)]",
        "dilation was ignored",
        (),
    ),
    Mutant(
        '"same" with the odd extra padding before instead of after',
        "return total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2",
        "return total[0] - total[0] // 2, total[0] // 2, total[1] - total[1] // 2, total[1] // 2",
        "the extra column goes after",
        (),
    ),
    Mutant(
        "Backward: dX_t assigned (=) instead of added (+=)",
        "per_tap = [dy @ x_t.reshape(groups, -1, columns).transpose(1, 2) for x_t in taps]",
        "per_tap = [\n"
        "                dy @ x_t.reshape(groups, -1, columns).transpose(1, 2) for x_t in taps[::-1]\n"
        "            ]",
        "dW looks flipped",
        (B + "test_gradients_match_torch_with_hints",),
    ),
    Mutant(
        "fan_in without the kernel area",
        "fan_in = self.weight[0].numel()",
        "fan_in = self.weight.shape[1]",
        "kernel area",
        (),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Ignoring groups",
        "the weight's shape (out_channels, in_channels / groups, kh, kw) is set by the lesson's "
        "own layout, so a forward that ignores groups cannot run on it: no single edit of the "
        "solution both ignores groups and runs (the tests' GROUPS_HINT names it for a twin "
        "whose weights are full)",
    ),
]
