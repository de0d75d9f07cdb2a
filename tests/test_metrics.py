"""Classification metrics (minimod.train.metrics) against hand-made cases and brute-force
loops written independently of the implementation (scikit-learn is not a dependency).

Lesson 19's tests: confusion_matrix, precision_recall_f1 and macro_f1 come from ``impl.metrics``."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from minimod.train.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    format_confusion_matrix,
)


@st.composite
def label_pairs(draw):
    """(pred, target, num_classes): equal-length label lists, 1 to 5 classes."""
    num_classes = draw(st.integers(1, 5))
    n = draw(st.integers(1, 12))
    labels = st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)
    return draw(labels), draw(labels), num_classes


def brute_force(pred: list[int], target: list[int], num_classes: int, zero_division=0.0):
    """Per-class counts by looping over examples, then the textbook formulas."""
    precision, recall, f1 = [], [], []
    for c in range(num_classes):
        tp = sum(p == c and t == c for p, t in zip(pred, target, strict=True))
        fp = sum(p == c and t != c for p, t in zip(pred, target, strict=True))
        fn = sum(p != c and t == c for p, t in zip(pred, target, strict=True))
        precision.append(tp / (tp + fp) if tp + fp else zero_division)
        recall.append(tp / (tp + fn) if tp + fn else zero_division)
        p, r = precision[-1], recall[-1]
        if tp + fp + fn == 0:
            f1.append(zero_division)
        else:
            f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return precision, recall, f1


@given(label_pairs())
@example(([0, 0], [0, 0], 1))  # one class
@example(([2, 2, 2], [0, 1, 0], 3))  # a class only predicted, others never predicted
def test_metrics_match_brute_force_loops(case):
    pred, target, num_classes = case
    p, t = torch.tensor(pred), torch.tensor(target)
    try:
        matrix = impl.metrics.confusion_matrix(p, t, num_classes)
    except NotImplementedError:  # a stub: the learner has not written it yet
        raise
    except RuntimeError as error:
        raise AssertionError(
            f"confusion_matrix failed where a class never occurs ({error}): "
            "bincount(..., minlength=C·C) keeps a bin for every (true, predicted) pair"
        ) from error
    for i in range(num_classes):
        for j in range(num_classes):
            count = sum(tt == i and pp == j for pp, tt in zip(pred, target, strict=True))
            assert matrix[i, j] == count, (
                "rows are true classes, columns predicted ones: M[true, pred] (swapped, "
                "precision and recall trade places)"
            )
    assert matrix.dtype == torch.int64 and matrix.sum() == len(pred)
    correct = sum(a == b for a, b in zip(pred, target, strict=True))
    assert accuracy(p, t) == pytest.approx(correct / len(pred))
    for zero_division in (0.0, 1.0):
        expected = brute_force(pred, target, num_classes, zero_division)
        got = impl.metrics.precision_recall_f1(p, t, num_classes, zero_division)
        for name, want, have in zip(("precision", "recall", "F1"), expected, got, strict=True):
            message = f"{name} per class is {have.tolist()}, expected {want}"
            if torch.isnan(have).any():
                message += f": nan where a denominator is 0, give zero_division={zero_division}"
            elif name == "F1":
                message += ": F1 is the harmonic mean 2·P·R / (P + R), not (P + R) / 2"
            assert have.tolist() == pytest.approx(want), message
    present = sorted(set(pred) | set(target))
    f1 = brute_force(pred, target, num_classes)[2]
    assert impl.metrics.macro_f1(p, t, num_classes) == pytest.approx(
        sum(f1[c] for c in present) / len(present)
    ), "macro-F1 averages over the classes present in pred or target only, not all C"


def test_a_known_example():
    # scikit-learn's documented example: f1_score(..., average="macro") == 0.2666...
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    pred = torch.tensor([0, 2, 1, 0, 0, 1])
    precision, recall, f1 = impl.metrics.precision_recall_f1(pred, target)
    assert precision.tolist() == pytest.approx([2 / 3, 0, 0])
    assert recall.tolist() == pytest.approx([1, 0, 0])
    assert f1.tolist() == pytest.approx([0.8, 0, 0])
    assert impl.metrics.macro_f1(pred, target) == pytest.approx(0.26666666666666666)
    assert classification_metrics(pred, target) == pytest.approx(
        {"accuracy": 1 / 3, "macro_f1": 0.26666666666666666}
    )
    assert impl.metrics.confusion_matrix(pred, target).tolist() == [[2, 0, 0], [1, 0, 1], [0, 2, 0]]


def test_accuracy_is_not_enough_on_imbalanced_data():
    target = torch.tensor([0] * 19 + [1])
    majority = torch.zeros(20, dtype=torch.long)
    assert accuracy(majority, target) == 0.95
    assert impl.metrics.macro_f1(majority, target) == pytest.approx(
        (2 * 19 / (2 * 19 + 1) + 0.0) / 2
    )


@pytest.mark.reference_only
def test_confusion_matrix_table():
    matrix = torch.tensor([[5, 1], [0, 12]])
    table = format_confusion_matrix(matrix, ["cat", "dog"])
    assert table.splitlines() == [
        "true\\pred  cat  dog",
        "cat          5    1",
        "dog          0   12",
    ]
    assert format_confusion_matrix(torch.tensor([[3]])).splitlines()[1].split() == ["0", "3"]


@pytest.mark.reference_only
def test_bad_labels_fail_clearly():
    with pytest.raises(ValueError, match="same length"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(TypeError, match="argmax"):
        confusion_matrix(torch.rand(3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="1-D"):
        confusion_matrix(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match="no examples"):
        accuracy(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="square"):
        format_confusion_matrix(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="labels"):
        format_confusion_matrix(torch.zeros(2, 2), ["a"])
