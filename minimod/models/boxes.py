"""Boxes: their geometry (decoding, IoU, a loss, non-maximum suppression) and a one-box
regressor on an image body.

A box is (x_min, y_min, x_max, y_max) in [0, 1], as ``minimod.data.shapes`` makes them.

    images, one box:  BoxRegressor(ResNet)
        x -> body.features(x) -> Linear -> 4 raw numbers -> decode_boxes -> (N, 4) corners

Like the heads of ``minimod.models.heads``, a BoxRegressor is ``body`` + ``head``, so
``minimod.models.loading.load_pretrained`` fills its body from a pretraining checkpoint.
"""

from __future__ import annotations

import torch

from minimod import nn
from minimod.models.heads import _feature_body


def decode_boxes(raw: torch.Tensor) -> torch.Tensor:
    """Any real numbers raw (..., 4) -> valid boxes (..., 4) (x_min, y_min, x_max, y_max).

    raw's columns are (place x, place y, size w, size h). Per axis, first the size, then where
    the box sits in the room the size leaves:
        w = σ(raw_w)                  in (0, 1)
        x_min = (1 - w) · σ(raw_x)    in (0, 1 - w)
        x_max = x_min + w             in (w, 1)
    so 0 ≤ x_min ≤ x_max ≤ 1 for every input, and every box of size in (0, 1) is reachable.
    raw = 0 gives the centred box of half the side: (0.25, 0.25, 0.75, 0.75).
    """
    if raw.shape[-1:] != (4,):
        raise ValueError(f"decode_boxes: expected raw of shape (..., 4), got {tuple(raw.shape)}")
    # BEGIN SOLUTION
    place, size = torch.sigmoid(raw[..., :2]), torch.sigmoid(raw[..., 2:])
    low = (1 - size) * place  # (x_min, y_min)
    return torch.cat([low, low + size], dim=-1)
    # END SOLUTION


def _check_boxes(who: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.shape[-1:] != (4,):
        raise ValueError(
            f"{who}: expected two box tensors of the same shape (..., 4), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of paired boxes: a, b (..., 4) -> (...,), each in [0, 1].

    Boxes are (x_min, y_min, x_max, y_max); box i of a is compared with box i of b (not every
    pair). A box with x_max < x_min (or y) counts as empty. Disjoint boxes give 0, and so does
    a pair whose union has no area (no division by zero, no NaN gradient)."""
    _check_boxes("box_iou", a, b)

    # BEGIN SOLUTION
    def area(box: torch.Tensor) -> torch.Tensor:
        return (box[..., 2] - box[..., 0]).clamp(min=0) * (box[..., 3] - box[..., 1]).clamp(min=0)

    low = torch.maximum(a[..., :2], b[..., :2])  # the intersection's (x_min, y_min)
    high = torch.minimum(a[..., 2:], b[..., 2:])  # and its (x_max, y_max)
    side = (high - low).clamp(min=0)  # no overlap on an axis: 0, not a negative length
    inter = side[..., 0] * side[..., 1]
    union = area(a) + area(b) - inter  # the overlap was counted twice
    positive = union > 0
    return torch.where(positive, inter / torch.where(positive, union, 1.0), 0.0)
    # END SOLUTION


def box_iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every pair: a (N, 4), b (M, 4) -> (N, M), [i, j] = IoU of a[i]
    and b[j] (``torchvision.ops.box_iou``), with ``box_iou``'s rules for empty boxes: a pair
    whose union has no area (two zero-area boxes) gives 0, where torchvision gives NaN."""
    for name, box in (("a", a), ("b", b)):
        if box.dim() != 2 or box.shape[1] != 4:
            raise ValueError(
                f"box_iou_matrix: expected {name} of shape (N, 4), got {tuple(box.shape)}"
            )
    n, m = len(a), len(b)
    # Every pair side by side (views, no copies), then the elementwise IoU.
    return box_iou(a[:, None].expand(n, m, 4), b[None].expand(n, m, 4))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: boxes (N, 4), scores (N,) -> the indices (K,) int64 of
    the boxes kept, by decreasing score (``torchvision.ops.nms``).

    The greedy loop: visit the boxes from the highest score down (equal scores: the lower index
    first); keep a box unless a box kept before it overlaps it with IoU > ``iou_threshold``.
    Written plainly, that is one IoU per (kept box, later box) pair inside a Python loop. Here
    the IoU matrix of the sorted boxes is computed once and thresholded into "row i would
    suppress column j"; the loop then walks the rows, and each kept row removes all the boxes it
    suppresses with one tensor operation (1,000 boxes: tens of milliseconds on a CPU). The
    matrix takes N² memory, so a detector keeps its best few hundred boxes before NMS. A
    zero-area box overlaps nothing (IoU 0), so it is never suppressed and suppresses nothing.
    Empty input gives an empty result."""
    return _greedy_nms("nms", boxes, scores, None, iou_threshold)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Non-maximum suppression within each class: boxes (N, 4), scores (N,), classes (N,)
    integer -> the indices (K,) int64 of the boxes kept, by decreasing score over all classes
    (``torchvision.ops.batched_nms``).

    ``nms``'s greedy loop, where a box only suppresses boxes of its own class: the thresholded
    IoU matrix is and-ed with "same class" before the loop, so all classes are done in one pass
    (torchvision instead shifts each class's boxes by its own offset so that classes never
    overlap; that moves the coordinates, and rounding can then decide a pair right at the
    threshold differently)."""
    if classes.shape != scores.shape or classes.is_floating_point() or classes.is_complex():
        raise ValueError(
            f"batched_nms: expected integer classes of shape {tuple(scores.shape)}, "
            f"got {classes.dtype} {tuple(classes.shape)}"
        )
    return _greedy_nms("batched_nms", boxes, scores, classes, iou_threshold)


def _greedy_nms(
    who: str,
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor | None,
    iou_threshold: float,
) -> torch.Tensor:
    if boxes.dim() != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"{who}: expected boxes (N, 4) and scores (N,), got {tuple(boxes.shape)} and "
            f"{tuple(scores.shape)}"
        )
    if scores.isnan().any():
        raise ValueError(f"{who}: scores must not be NaN")
    # BEGIN SOLUTION
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    # over[i, j]: box i (higher score) would suppress box j; only later boxes can be suppressed.
    over = (box_iou_matrix(sorted_boxes, sorted_boxes) > iou_threshold).triu(diagonal=1)
    if classes is not None:
        sorted_classes = classes[order]
        over &= sorted_classes[:, None] == sorted_classes[None, :]
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for i in range(len(order)):
        if keep[i]:  # kept: nothing before it suppressed it
            keep &= ~over[i]
    return order[keep]
    # END SOLUTION


def box_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A scalar loss for box regression: pred, target (N, 4) -> mean L1 + mean (1 - IoU).

        loss = mean over boxes and coordinates of |pred - target|
             + mean over boxes of (1 - box_iou(pred, target))

    The L1 term pulls every corner towards its target even when the boxes do not overlap (the
    IoU term has no gradient then); the IoU term weighs errors by the box's size, so a few
    pixels off a small box cost more than off a large one. Both terms lie in [0, 1]."""
    _check_boxes("box_loss", pred, target)
    # BEGIN SOLUTION
    l1 = (pred - target).abs().mean()
    return l1 + (1 - box_iou(pred, target)).mean()
    # END SOLUTION


class BoxRegressor(nn.Module):
    """One box per image: x -> boxes (N, 4) (x_min, y_min, x_max, y_max) in [0, 1].

    body: a ResNet (anything with features(x) and feature_dim); its own head is replaced by
    ``nn.Identity()`` as in ``FeatureClassifier``. head: ``Linear(feature_dim, 4)`` giving raw
    numbers, which ``decode_boxes`` turns into boxes that are valid by construction."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        feature_dim = _feature_body("BoxRegressor", body)
        body.head = nn.Identity()
        self.body = body
        self.head = nn.Linear(feature_dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decode_boxes(self.head(self.body.features(x)))
