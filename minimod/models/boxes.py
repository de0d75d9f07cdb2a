"""Boxes: their geometry (decoding, IoU, a loss) and a one-box regressor on an image body.

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
