"""Lesson 14's pitfalls: max, average and adaptive pooling."""

from pitfalls import Mutant

T = "tests/test_pool.py::"
CHOSEN = (T + "test_pool_matches_torch_on_chosen_geometries",)

MUTANTS = [
    Mutant(
        "Zero padding for max pooling",
        'pad2d(input, *pads, value=float("-inf"))',
        "pad2d(input, *pads)",
        "pads with −inf, not 0",
        (T + "test_pool_matches_torch",),
    ),
    Mutant(
        "The divisor always the kernel area",
        "    if count_include_pad:\n        ones =",
        "    if not count_include_pad:\n        ones =",
        "count_include_pad misunderstood",
        CHOSEN,
    ),
    Mutant(
        "ceil_mode keeping a last window that starts in the right padding",
        "    if ceil_mode and (out - 1) * stride >= size + padding:\n"
        "        out -= 1  # the last window must start inside the input or the left padding\n",
        "",
        "ceil_mode gave one window too many",
        CHOSEN,
    ),
    Mutant(
        "amax instead of max",
        "    values, positions = windows.max(dim=-1)\n    if not return_indices:",
        "    values, positions = windows.amax(dim=-1), windows.argmax(dim=-1)\n"
        "    if not return_indices:",
        "split among tied maxima",
        (T + "test_max_pool_ties_route_the_gradient_like_torch",),
    ),
    Mutant(
        "Adaptive windows from ⌊(i + 1)·H/O⌋ (floor)",
        "end = (i * size) // out, -((-(i + 1) * size) // out)",
        "end = (i * size) // out, max(((i + 1) * size) // out, (i * size) // out + 1)",
        "its end rounded UP",
        (T + "test_adaptive_avg_pool1d_matches_torch",),
    ),
]
