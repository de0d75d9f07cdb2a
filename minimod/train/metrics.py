"""Classification metrics from predicted and true labels (1-D integer tensors of equal length).

Everything follows from the confusion matrix M, with M[i, j] = how many examples of true class
i were predicted as class j (rows: truth, columns: prediction, as scikit-learn). For class c:

    TP = M[c, c]       FP = column c's sum − TP       FN = row c's sum − TP
    precision = TP / (TP + FP)     of the examples predicted c, the fraction that are c
    recall    = TP / (TP + FN)     of the examples that are c, the fraction found
    F1        = 2·TP / (2·TP + FP + FN)   (the harmonic mean of precision and recall)

A ratio whose denominator is 0 (a class never predicted, or never present) is
``zero_division`` (0 by default, as scikit-learn). Accuracy alone misleads on imbalanced data --
always predicting the majority class of a 95/5 split scores 95% -- so report macro-F1 (every
class counts the same) and look at the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def _check_labels(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int | None, where: str
) -> int:
    """Validate the two label tensors; return the number of classes (given, or max label + 1)."""
    for name, labels in (("pred", pred), ("target", target)):
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise ValueError(f"{where}: {name} must be a 1-D tensor of class indices, got {shape}")
        if labels.is_floating_point() or labels.is_complex():
            raise TypeError(
                f"{where}: {name} must hold integer class indices, got {labels.dtype} "
                "(for scores, take .argmax(dim=-1) first)"
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"{where}: pred and target must have the same length, got {len(pred)} and {len(target)}"
        )
    both = torch.cat([pred, target])
    if num_classes is None:
        return int(both.max()) + 1 if len(both) else 0
    if len(both) and (both.min() < 0 or both.max() >= num_classes):
        raise ValueError(
            f"{where}: labels must be in [0, {num_classes}), got values from "
            f"{int(both.min())} to {int(both.max())}"
        )
    return num_classes


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The fraction of examples whose predicted label is the true one."""
    _check_labels(pred, target, None, "accuracy")
    if len(target) == 0:
        raise ValueError("accuracy: no examples")
    return (pred == target).double().mean().item()


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts; [i, j] = true class i predicted as j."""
    num_classes = _check_labels(pred, target, num_classes, "confusion_matrix")
    # BEGIN SOLUTION
    # Each (true, predicted) pair gets its own bin: true · C + predicted.
    pairs = target.long() * num_classes + pred.long()
    counts = torch.bincount(pairs.cpu(), minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
    # END SOLUTION


def precision_recall_f1(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    zero_division: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class precision, recall and F1, each a float64 tensor of length num_classes; a ratio
    whose denominator is 0 is ``zero_division``."""
    # BEGIN SOLUTION
    matrix = confusion_matrix(pred, target, num_classes).double()
    tp = matrix.diagonal()
    predicted, actual = matrix.sum(dim=0), matrix.sum(dim=1)  # TP + FP, TP + FN

    def ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
        safe = denominator.clamp(min=1)
        return torch.where(denominator > 0, numerator / safe, torch.full_like(safe, zero_division))

    return ratio(tp, predicted), ratio(tp, actual), ratio(2 * tp, predicted + actual)
    # END SOLUTION


def macro_f1(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    zero_division: float = 0.0,
) -> float:
    """The plain mean of the per-class F1 scores, over the classes that occur among the true
    or predicted labels (as scikit-learn's f1_score(average="macro") with no labels given)."""
    _, _, f1 = precision_recall_f1(pred, target, num_classes, zero_division)
    if len(target) == 0:
        raise ValueError("macro_f1: no examples")
    # BEGIN SOLUTION
    present = torch.zeros(len(f1), dtype=torch.bool)
    present[torch.cat([pred, target]).long().cpu()] = True
    return f1[present].mean().item()
    # END SOLUTION


def classification_metrics(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int | None = None
) -> dict[str, float]:
    """{"accuracy", "macro_f1"}: what an ``evaluate`` function typically returns."""
    return {"accuracy": accuracy(pred, target), "macro_f1": macro_f1(pred, target, num_classes)}


def calibration(probabilities: torch.Tensor, target: torch.Tensor, bins: int = 10) -> dict:
    """How far a classifier's confidence is from its accuracy (Guo et al., 2017).

    probabilities (N, C), each row summing to 1; target (N,) the true classes. A prediction's
    confidence is its top probability; bin b of ``bins`` equal widths holds the predictions with
    confidence in (b/bins, (b+1)/bins] (the first bin includes 0). The expected calibration error
    is ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|: 0 when, in every bin, the predictions
    made with confidence p are right a fraction p of the time. Returns {"ece", "count",
    "confidence", "accuracy"}, the last three per bin (None for an empty bin): the reliability
    diagram's points.
    """
    if not isinstance(probabilities, torch.Tensor) or probabilities.dim() != 2:
        shape = getattr(probabilities, "shape", type(probabilities).__name__)
        raise ValueError(f"calibration: probabilities must be (N, C), got {tuple(shape)}")
    _check_labels(target, target, probabilities.shape[1], "calibration")
    if len(target) != len(probabilities) or len(target) == 0:
        raise ValueError(
            f"calibration: {len(probabilities)} rows of probabilities for {len(target)} targets "
            "(need the same number, at least one)"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"calibration: bins must be an int ≥ 1, got {bins!r}")
    confidence, pred = probabilities.detach().double().cpu().max(dim=1)
    correct = (pred == target.cpu()).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins)
    total_confidence = torch.bincount(index, weights=confidence, minlength=bins)
    total_correct = torch.bincount(index, weights=correct, minlength=bins)
    ece = float((total_correct - total_confidence).abs().sum() / len(target))

    def means(totals: torch.Tensor) -> list[float | None]:
        return [float(t / n) if n else None for t, n in zip(totals, count, strict=True)]

    return {"ece": ece, "count": count.tolist(), "confidence": means(total_confidence),
            "accuracy": means(total_correct)}  # fmt: skip


def format_confusion_matrix(matrix: torch.Tensor, labels: Sequence[str] | None = None) -> str:
    """A text table: one row per true class, one column per predicted class.

    true\\pred  cat  dog
    cat          5    1
    dog          0    7
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"format_confusion_matrix: expected a square matrix, got {matrix.shape}")
    n = matrix.shape[0]
    labels = [str(i) for i in range(n)] if labels is None else [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"format_confusion_matrix: {len(labels)} labels for {n} classes")
    cells = [["true\\pred", *labels]]
    cells += [
        [label, *(str(int(value)) for value in row)]
        for label, row in zip(labels, matrix.tolist(), strict=True)
    ]
    widths = [max(len(row[j]) for row in cells) for j in range(n + 1)]
    lines = [
        row[0].ljust(widths[0])
        + "".join(f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True))
        for row in cells
    ]
    return "\n".join(lines)


def plot_confusion_matrix(
    matrix: torch.Tensor,
    labels: Sequence[str] | None,
    path: str | Path,
    *,
    normalize: bool = False,
    title: str | None = None,
) -> str:
    """Draw ``matrix`` (C, C) -- rows: true class, columns: predicted -- as a PNG at ``path``
    with every cell's count written in it; ``normalize`` colours each row by its share (the
    diagonal is then each class's recall). Returns a line saying where the picture is, or,
    when matplotlib is missing, how to get it (``pip install 'minimod[plot]'``)."""
    if (
        not isinstance(matrix, torch.Tensor)
        or matrix.dim() != 2
        or matrix.shape[0] != matrix.shape[1]
    ):
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(f"plot_confusion_matrix: expected a square (C, C) matrix, got {shape}")
    n = matrix.shape[0]
    labels = [str(i) for i in range(n)] if labels is None else [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"plot_confusion_matrix: {len(labels)} labels for {n} classes")
    path = Path(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no {path.name}: matplotlib is not installed (pip install 'minimod[plot]')"
    counts = matrix.detach().cpu().double()
    shown = counts / counts.sum(dim=1, keepdim=True).clamp(min=1) if normalize else counts
    size = min(12.0, 2.5 + 0.6 * n)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(shown.numpy(), cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(n), labels, rotation=45, ha="right")
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)
    threshold = float(shown.max()) / 2 if n else 0.0
    for i in range(n):
        for j in range(n):
            text = f"{int(counts[i, j])}"
            if normalize:
                text += f"\n{float(shown[i, j]):.0%}"
            color = "white" if float(shown[i, j]) > threshold else "black"
            axes.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"confusion matrix: {path}"
