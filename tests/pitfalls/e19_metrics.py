"""Lesson 19's pitfalls: confusion matrix, precision, recall, F1."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_metrics.py::"

MUTANTS = [
    Mutant(
        "Rows and columns swapped (M[pred, true])",
        "pairs = target.long() * num_classes + pred.long()",
        "pairs = pred.long() * num_classes + target.long()",
        "rows are true classes",
        (T + "test_metrics_match_brute_force_loops",),
    ),
    Mutant(
        "bincount without minlength",
        "counts = torch.bincount(pairs.cpu(), minlength=num_classes * num_classes)",
        "counts = torch.bincount(pairs.cpu())",
        "minlength=C·C",
        (T + "test_metrics_match_brute_force_loops",),
    ),
    Mutant(
        "Averaging precision and recall arithmetically",
        "ratio(2 * tp, predicted + actual)",
        "(ratio(tp, predicted) + ratio(tp, actual)) / 2",
        "the harmonic mean",
        (T + "test_metrics_match_brute_force_loops",),
    ),
    Mutant(
        "Macro-F1 over all C classes",
        "return f1[present].mean().item()",
        "return f1.mean().item()",
        "present in pred or target only",
        (T + "test_metrics_match_brute_force_loops",),
    ),
    Mutant(
        "Dividing by zero and getting nan instead of zero_division",
        "return torch.where(denominator > 0, numerator / safe, torch.full_like(safe, zero_division))",
        "return numerator / denominator",
        "give zero_division",
        (T + "test_metrics_match_brute_force_loops",),
    ),
]
