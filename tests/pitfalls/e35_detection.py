"""Lesson 35's pitfalls: box encoding, target assignment, NMS and average precision."""

from pitfalls import Mutant

R = "tests/test_detector.py::"
D = "tests/test_detection.py::"
NMS = (D + "test_nms_equals_plain_greedy",)

MUTANTS = [
    Mutant(
        "Swapping x and y",
        "return torch.log((near / cell.repeat(2)).clamp(min=0.01))",
        "return torch.log((near / cell.flip(0).repeat(2)).clamp(min=0.01))",
        "x before y",
        (R + "test_encoding_is_log_distance_in_cells",),
    ),
    Mutant(
        "Letting empty boxes compete",
        "candidate = ((inside & near) | own) & (labels >= 0)[:, None, :]",
        "candidate = (inside & near) | own",
        "a padding slot",
        (R + "test_assignment_on_hand_made_boxes",),
    ),
    Mutant(
        "NMS without sorting",
        "order = torch.sort(scores, descending=True, stable=True).indices",
        "order = torch.arange(len(scores), device=scores.device)",
        "by decreasing score",
        NMS,
    ),
    Mutant(
        "Reading AP from the raw precision",
        "envelope = precision.flip(dims=[1]).cummax(dim=1).values.flip(dims=[1])",
        "envelope = precision",
        "the precision envelope",
        (D + "test_average_precision_uses_the_precision_envelope",),
    ),
    Mutant(
        "Counting a true box twice",
        "taken[ok, best[ok]] = True",
        "taken[ok, best[ok]] = False",
        "matched by one detection at most",
        (D + "test_a_true_box_is_matched_once",),
    ),
    Mutant(
        "Class-agnostic NMS",
        "over &= sorted_classes[:, None] == sorted_classes[None, :]",
        "over &= sorted_classes[:, None] == sorted_classes[:, None]",
        "only suppresses boxes of its class",
        NMS,
    ),
]
