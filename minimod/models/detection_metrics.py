"""Detection metrics: average precision (AP) per class and its means, mAP@0.5 and COCO's
mAP@[.5:.95], computed as COCO's evaluation (``pycocotools``' COCOeval) computes them. They live
beside ``minimod.models.boxes``, whose IoU they use (``minimod.train`` may not import models).

A detector gives, per image, boxes with scores and classes; the truth is boxes with classes.
For one class and one IoU threshold t:
1. each image's detections of the class, by decreasing score (equal scores: input order), at most
   ``max_detections`` of them (COCO: 100);
2. greedy matching, in that order: a detection takes the still-unmatched true box of its class and
   image that it overlaps most, if that IoU is ≥ t (equal IoUs: the later true box, as COCO's
   loop does); matched: a true positive, otherwise a false positive;
3. all images' detections pooled by decreasing score (stable); at rank k, with TP_k true
   positives among the first k and G true boxes in all:
       recall_k = TP_k / G        precision_k = TP_k / k
4. the precision envelope: precision_k := max over j ≥ k of precision_j (so the curve never rises);
5. AP = its mean at the 101 recall levels 0, 0.01, …, 1, each read at the first rank whose recall
   reaches the level (0 where the recall never does).
mAP@0.5 is the mean of AP at t = 0.5 over the classes that have true boxes; COCO-style
mAP@[.5:.95] the mean over those classes and the 10 thresholds 0.5, 0.55, …, 0.95. This is
COCO's area range "all" with no crowd boxes. IoU does not depend on the units, so boxes may be
in pixels or in [0, 1] (as ``minimod.data.detection`` makes them), (x_min, y_min, x_max, y_max).
A box with x_max < x_min (or y) is empty, as in ``box_iou``: it matches nothing (COCO, given
such a box as a negative width, would leave the detection out instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from minimod.models.boxes import box_iou_matrix


def _linspace(start: float, stop: float, num: int) -> tuple[float, ...]:
    """numpy.linspace's values to the last bit (COCO makes its levels with it), so an IoU or a
    recall that lands exactly on a level is judged as COCO judges it."""
    step = (stop - start) / (num - 1)
    return tuple(start + i * step for i in range(num - 1)) + (stop,)


COCO_IOU_THRESHOLDS = _linspace(0.5, 0.95, 10)
RECALL_LEVELS = _linspace(0.0, 1.0, 101)
# COCO adds numpy's spacing(1) (the float64 machine epsilon) to the precision's denominator.
_EPS = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class DetectionAP:
    """ap (10, C) float64: AP per IoU threshold (``COCO_IOU_THRESHOLDS``) and class; NaN for a
    class with no true box (left out of every mean, as COCO leaves it out)."""

    ap: torch.Tensor

    @property
    def map(self) -> float:
        """COCO-style mAP@[.5:.95]: the mean over the 10 thresholds and the classes present."""
        return self.ap[:, ~self.ap[0].isnan()].mean().item()

    @property
    def map_50(self) -> float:
        """mAP@0.5: the mean over the classes present of AP at IoU threshold 0.5."""
        return self.ap[0, ~self.ap[0].isnan()].mean().item()

    @property
    def per_class(self) -> torch.Tensor:
        """(C,) each class's AP@[.5:.95] (NaN for a class with no true box)."""
        return self.ap.mean(dim=0)


def mean_average_precision(
    predictions: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    targets: Sequence[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    max_detections: int = 100,
) -> DetectionAP:
    """AP per class and threshold of one detector's output on a set of images.

    predictions: per image ``(boxes (N_i, 4), scores (N_i,), labels (N_i,))``; targets: per
    image ``(boxes (M_i, 4), labels (M_i,))``, labels integers in [0, num_classes).
    Raises ValueError when no image has a true box (there is nothing to find)."""
    if len(predictions) != len(targets):
        raise ValueError(
            f"mean_average_precision: {len(predictions)} predictions for {len(targets)} images"
        )
    if num_classes < 1 or max_detections < 1:
        raise ValueError(
            "mean_average_precision: num_classes and max_detections must be ≥ 1, got "
            f"{num_classes} and {max_detections}"
        )
    thresholds = torch.tensor(COCO_IOU_THRESHOLDS, dtype=torch.float64)
    scores: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    hits: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    n_true = [0] * num_classes
    for image, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
        boxes, score, labels = _check_image(image, prediction, target, num_classes)
        true_boxes, true_labels = target
        for c in range(num_classes):
            truth = true_boxes[true_labels == c].double()
            n_true[c] += len(truth)
            mine = labels == c
            order = torch.sort(-score[mine], stable=True).indices[:max_detections]
            scores[c].append(score[mine][order])
            hits[c].append(_match(boxes[mine][order], truth, thresholds))
    if not any(n_true):
        raise ValueError("mean_average_precision: the targets hold no true box")
    ap = torch.full((len(thresholds), num_classes), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        if n_true[c]:
            ap[:, c] = _class_ap(torch.cat(scores[c]), torch.cat(hits[c], dim=1), n_true[c])
    return DetectionAP(ap)


def _check_image(
    image: int, prediction: tuple, target: tuple, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate one image's prediction and target; return the prediction in float64."""
    if len(prediction) != 3 or len(target) != 2:
        raise ValueError(
            f"mean_average_precision: image {image}: expected a prediction (boxes, scores, "
            "labels) and a target (boxes, labels)"
        )
    (boxes, scores, labels), (true_boxes, true_labels) = prediction, target
    for name, box, label in (("prediction", boxes, labels), ("target", true_boxes, true_labels)):
        if box.dim() != 2 or box.shape[1] != 4 or label.shape != box.shape[:1]:
            raise ValueError(
                f"mean_average_precision: image {image}: {name} boxes must be (N, 4) with labels "
                f"(N,), got {tuple(box.shape)} and {tuple(label.shape)}"
            )
        if label.is_floating_point() or (
            len(label) and not 0 <= label.min() <= label.max() < num_classes
        ):
            raise ValueError(
                f"mean_average_precision: image {image}: {name} labels must be integers in "
                f"[0, {num_classes})"
            )
    if scores.shape != labels.shape:
        raise ValueError(
            f"mean_average_precision: image {image}: scores must be ({len(labels)},), "
            f"got {tuple(scores.shape)}"
        )
    return boxes.double(), scores.double(), labels


def _match(detections: torch.Tensor, truth: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Greedy matching of one image's detections of one class (by decreasing score) (n, 4) to
    its true boxes (m, 4), at every threshold (T,) at once -> (T, n) bool, True: matched."""
    # BEGIN SOLUTION
    hit = torch.zeros(len(thresholds), len(detections), dtype=torch.bool)
    if len(truth) == 0:
        return hit
    iou = box_iou_matrix(detections, truth)  # (n, m)
    taken = torch.zeros(len(thresholds), len(truth), dtype=torch.bool)  # matched, per threshold
    last = len(truth) - 1
    for d in range(len(detections)):
        free = iou[d].expand_as(taken).masked_fill(taken, -1.0)  # (T, m); IoUs are ≥ 0
        # the best free true box; among equal IoUs the later one (argmax gives the first)
        best = last - free.flip(dims=[1]).argmax(dim=1)  # (T,)
        ok = free.gather(1, best[:, None])[:, 0] >= thresholds
        hit[:, d] = ok
        taken[ok, best[ok]] = True
    return hit
    # END SOLUTION


def _class_ap(scores: torch.Tensor, hit: torch.Tensor, n_true: int) -> torch.Tensor:
    """One class's detections pooled over images: scores (n,), hit (T, n) -> AP per threshold
    (T,), from the precision envelope at the 101 recall levels."""
    # BEGIN SOLUTION
    if len(scores) == 0:
        return torch.zeros(len(hit), dtype=torch.float64)
    hit = hit[:, torch.sort(-scores, stable=True).indices].double()
    tp, fp = hit.cumsum(dim=1), (1 - hit).cumsum(dim=1)
    recall = tp / n_true
    precision = tp / (tp + fp + _EPS)
    envelope = precision.flip(dims=[1]).cummax(dim=1).values.flip(dims=[1])
    levels = torch.tensor(RECALL_LEVELS, dtype=torch.float64).expand(len(hit), -1).contiguous()
    first = torch.searchsorted(recall, levels)  # the first rank with recall ≥ the level
    reached = first < len(scores)
    sampled = envelope.gather(1, first.clamp(max=len(scores) - 1))
    return torch.where(reached, sampled, 0.0).mean(dim=1)
    # END SOLUTION
