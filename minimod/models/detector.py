"""A one-stage, anchor-free detector: every cell of a backbone's feature map says "which class
is here, if any" and "how far are the object's edges", and non-maximum suppression keeps the
best of the overlapping answers (FCOS, Tian et al. 2019, at a single stride).

    images (N, C, H, W)
      -> body's feature map (N, F, h, w)          one cell = stride × stride pixels
      -> head.classes: (N, classes + 1, h, w)     logits; the last class is "background"
         head.boxes:   (N, 4, h, w)               log distances from the cell's centre to the
                                                  box's left, top, right, bottom edges, in cells
      -> detect: per image (boxes (K, 4), scores (K,), labels (K,)) after per-class NMS

Why this design: the images are small (64 × 64) and hold a few objects of similar sizes, so
one feature map at stride 4 (16 × 16 cells) sees every object, and no feature pyramid is
needed. Anchor-free, because anchors add what this data does not need: a set of box shapes
to choose, and an IoU-based matching of anchors to objects; here a cell near an object's
centre simply predicts that object. The class scores are one softmax per cell over the
classes and background, trained with minimod's (softmax) focal loss, so the ~250 background
cells of an image do not drown its few object cells. A box is the cell centre plus four
distances (always a valid box, any size), trained with an L1 loss on the encoded distances
plus 1 - IoU on the decoded box.

Target assignment (``assign_targets``): a cell is positive for an object when its centre lies
inside the object's box and within ``radius`` cells of the box's centre (FCOS's "centre
sampling"), or when it is the cell holding the box's centre (so every object has a cell,
however small); a cell several objects claim predicts the smallest. Boxes are
(x_min, y_min, x_max, y_max) in [0, 1], as ``minimod.data.detection`` makes them.

Like ``BoxRegressor``, a Detector is ``body`` + ``head``, so ``load_pretrained`` fills its body
from a classification or detection run.

An ImageNet body (``MobileNetV2Body``, ``finetune cnn --from mobilenet_v2 --task
detect-digits``): MobileNetV2's last feature map has stride 32, 2 × 2 cells on a 64 × 64
canvas, far too coarse for five digits. The body is cut instead: ``features[:7]``, the
32-channel blocks of stride 8 (8 × 8 cells of 8 pixels, narrower than the smallest digit, 14
pixels), keeping the single-stride design. Cutting rather than
upscaling the canvases to 256 × 256 (then 8 × 8 cells at stride 32): the same grid for ~16
times less compute, and the early blocks' edges and strokes are what digits need; the deep
blocks' ImageNet categories are not. The body reads images in [0, 1] (grey repeated into
three channels) and normalises them with ImageNet's statistics itself, so a run's model takes
the same pixels as a ResNet detector's, and ``minimod detect``'s image files need nothing more.
"""

from __future__ import annotations

import math

import torch

from minimod import nn
from minimod.models.boxes import batched_nms, box_iou
from minimod.models.heads import _feature_body
from minimod.models.mobilenet import MobileNetV2, MobileNetV2Config
from minimod.nn import functional as F

# Raw distances are clamped here before exp: e^8 cells is far off any image, and no overflow.
MAX_LOG_DISTANCE = 8.0
# The foreground probability the classifier starts with (RetinaNet's prior): training does not
# begin with every cell shouting "object".
PRIOR = 0.01


def cell_centres(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """The centres (h·w, 2) (x, y) in [0, 1] of an h × w grid's cells, row by row."""
    ys = (torch.arange(h, device=device) + 0.5) / h
    xs = (torch.arange(w, device=device) + 0.5) / w
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)], dim=-1).reshape(h * w, 2)


def encode_distances(
    boxes: torch.Tensor, centres: torch.Tensor, cell: torch.Tensor
) -> torch.Tensor:
    """Boxes (..., 4) seen from cell centres (..., 2) -> raw (..., 4): the log distances from the
    centre to the left, top, right and bottom edges, in cells (``cell`` (2,): a cell's width and
    height). A centre on or outside an edge encodes that distance as a hundredth of a cell."""
    # BEGIN SOLUTION
    near = torch.cat([centres - boxes[..., :2], boxes[..., 2:] - centres], dim=-1)
    return torch.log((near / cell.repeat(2)).clamp(min=0.01))
    # END SOLUTION


def decode_distances(raw: torch.Tensor, centres: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """The inverse of ``encode_distances``: raw (..., 4) at cell centres (..., 2) -> boxes (..., 4)
    (x_min, y_min, x_max, y_max), valid for any raw (each distance is positive)."""
    # BEGIN SOLUTION
    distances = torch.exp(raw.clamp(max=MAX_LOG_DISTANCE)) * cell.repeat(2)
    return torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1)
    # END SOLUTION


def _cell_size(h: int, w: int, device: torch.device) -> torch.Tensor:
    return torch.tensor([1 / w, 1 / h], device=device)


def assign_targets(
    boxes: torch.Tensor, labels: torch.Tensor, h: int, w: int, background: int, radius: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cell's target: boxes (N, K, 4), labels (N, K) (-1: padding, as
    ``minimod.data.detection`` pads) on an h × w grid -> classes (N, h, w) int64 (``background``
    where no object) and the box each cell predicts (N, h, w, 4) (zeros on background).

    See the module's docstring for the rule; it is computed for every (cell, object) pair at
    once: (N, h·w, K) masks, then the smallest box among each cell's candidates."""
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:2]:
        raise ValueError(
            f"assign_targets: expected boxes (N, K, 4) and labels (N, K), got "
            f"{tuple(boxes.shape)} and {tuple(labels.shape)}"
        )
    # BEGIN SOLUTION
    n, device = len(boxes), boxes.device
    centres = cell_centres(h, w, device)  # (P, 2)
    cell = _cell_size(h, w, device)
    c = centres[None, :, None, :]  # (1, P, 1, 2) against objects (N, 1, K, 2)
    low, high = boxes[:, None, :, :2], boxes[:, None, :, 2:]
    middle = (low + high) / 2
    inside = ((c > low) & (c < high)).all(dim=-1)  # (N, P, K)
    near = ((c - middle).abs() <= radius * cell).all(dim=-1)
    # The cell holding the box's centre, as (column, row) compared with each cell's own.
    holding = (middle * torch.tensor([w, h], device=device)).floor()
    holding = torch.minimum(holding.clamp(min=0), torch.tensor([w - 1, h - 1], device=device))
    grid = (centres * torch.tensor([w, h], device=device)).floor()[None, :, None, :]
    own = (grid == holding).all(dim=-1)
    candidate = ((inside & near) | own) & (labels >= 0)[:, None, :]
    area = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))[:, None, :]
    area = torch.where(candidate, area, math.inf)  # (N, P, K)
    if area.shape[-1] == 0:  # no object slots at all: every cell is background
        classes = torch.full((n, h * w), background, dtype=torch.int64, device=device)
        return classes.view(n, h, w), torch.zeros(n, h, w, 4, device=device)
    smallest, matched = area.min(dim=-1)  # (N, P)
    positive = smallest.isfinite()
    classes = torch.where(positive, labels.gather(1, matched), background)
    targets = boxes.gather(1, matched[..., None].expand(n, h * w, 4))
    targets = torch.where(positive[..., None], targets, 0.0)
    return classes.view(n, h, w), targets.view(n, h, w, 4)
    # END SOLUTION


class DetectionHead(nn.Module):
    """Two small convolutional branches on the feature map: classes (conv 3×3, ReLU, conv 1×1
    -> classes + 1 logits) and boxes (the same -> 4 raw distances)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.classes = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, num_classes + 1, 1),
        )
        self.boxes = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 4, 1),
        )
        with torch.no_grad():  # softmax then gives background 1 - PRIOR, each class PRIOR / C
            bias = self.classes[2].bias
            bias.zero_()
            bias[-1] = math.log((1 - PRIOR) / PRIOR * num_classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classes(features), self.boxes(features)


# How many of MobileNetV2's ``features`` a MobileNetV2Body keeps, by the stride it ends at (see
# the table in models.mobilenet): 7 ends with the 32-channel blocks, 14 with the 96-channel ones.
MOBILENET_CUTS = {8: 7, 16: 14}


class MobileNetV2Body(MobileNetV2):
    """MobileNetV2 cut at ``stride`` (8 or 16; see the module's docstring) for a Detector:
    images (N, 3, H, W) in [0, 1] -> ``feature_map`` (N, feature_dim, ⌈H/stride⌉, ⌈W/stride⌉),
    normalised first with the per-channel ``mean`` and ``std`` its weights were trained with
    (ImageNet's for torchvision's weights: the task passes ``data.images.IMAGENET_MEAN`` /
    ``IMAGENET_STD``). Its keys are torchvision's ``features.0`` up to the cut, so ImageNet
    weights load by name (the deeper blocks and the classifier are skipped), and ``finetune``'s
    layer-wise lr decay and gradual unfreezing see its blocks."""

    def __init__(
        self,
        config: MobileNetV2Config | None = None,
        stride: int = 8,
        *,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        if stride not in MOBILENET_CUTS:
            raise ValueError(
                f"MobileNetV2Body: stride must be one of {sorted(MOBILENET_CUTS)}, got {stride}"
            )
        super().__init__(config)
        self.features = self.features[: MOBILENET_CUTS[stride]]
        self.classifier = nn.Identity()
        norms = [m for m in self.features.modules() if isinstance(m, nn.BatchNorm2d)]
        self.feature_dim = norms[-1].num_features  # the last block's output channels
        self.stride = stride
        self.mean, self.std = tuple(mean), tuple(std)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
        return self.features((x - mean) / std)


class Detector(nn.Module):
    """images (N, C, H, W) -> (class logits (N, num_classes + 1, h, w), raw boxes (N, 4, h, w)).

    body: a ResNet (its feature map is the stages' output, stride 2^(stages - 1)) or anything
    with ``feature_map(x)`` and ``feature_dim`` (``MobileNetV2Body``: stride 8 or 16; a whole
    MobileNetV2: stride 32, for larger images); its own head is replaced by ``nn.Identity()``,
    as in ``FeatureClassifier``."""

    def __init__(self, body: nn.Module, num_classes: int, head_width: int = 64) -> None:
        super().__init__()
        feature_dim = _feature_body("Detector", body)
        if not (callable(getattr(body, "feature_map", None)) or hasattr(body, "stages")):
            raise TypeError(
                f"Detector: body must be a ResNet or have feature_map(x), got {type(body).__name__}"
            )
        if num_classes < 1:
            raise ValueError(f"Detector: num_classes must be ≥ 1, got {num_classes}")
        body.head = nn.Identity()
        self.body = body
        self.head = DetectionHead(feature_dim, num_classes, head_width)
        self.num_classes = num_classes

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> the body's last feature map (N, feature_dim, h, w)."""
        if callable(getattr(self.body, "feature_map", None)):
            return self.body.feature_map(x)
        return self.body.stages(self.body.stem(x))  # a ResNet, before its pooling

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.feature_map(x))

    @torch.no_grad()
    def detect(
        self,
        images: torch.Tensor,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.5,
        max_detections: int = 100,
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per image (boxes (K, 4) in [0, 1], scores (K,), labels (K,) int64), by decreasing
        score: each cell's likeliest class other than background, its probability as the
        score, cells scoring at most ``score_threshold`` dropped, then ``batched_nms`` and the
        best ``max_detections``. Call ``eval()`` first (batch norm's running statistics)."""
        logits, raw = self(images)
        n, _, h, w = logits.shape
        probabilities = F.softmax(logits, dim=1)[:, :-1].flatten(2)  # (N, C, P), no background
        scores, labels = probabilities.max(dim=1)  # (N, P)
        centres = cell_centres(h, w, images.device)
        cell = _cell_size(h, w, images.device)
        boxes = decode_distances(raw.flatten(2).transpose(1, 2), centres, cell).clamp(0, 1)
        found = []
        for i in range(n):
            keep = scores[i] > score_threshold
            b, s, lab = boxes[i][keep], scores[i][keep], labels[i][keep]
            kept = batched_nms(b, s, lab, iou_threshold)[:max_detections]
            found.append((b[kept], s[kept], lab[kept]))
        return found


def detection_loss(
    logits: torch.Tensor,
    raw: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    gamma: float = 2.0,
    box_weight: float = 1.0,
    radius: float = 1.5,
) -> torch.Tensor:
    """A scalar loss: the Detector's output (logits (N, C + 1, h, w), raw (N, 4, h, w)) against
    the truth (boxes (N, K, 4), labels (N, K), -1 for padding).

        loss = focal loss summed over every cell / number of positive cells
             + box_weight · (L1(raw, encoded target) + mean (1 - IoU(decoded, target)))
                            over the positive cells

    Dividing by the positives (RetinaNet's normalisation), not by all cells, keeps the loss's
    scale independent of the image size and of how much of it is background."""
    n, classes_and_background, h, w = logits.shape
    if raw.shape != (n, 4, h, w):
        raise ValueError(
            f"detection_loss: expected raw boxes of shape {(n, 4, h, w)}, got {tuple(raw.shape)}"
        )
    # BEGIN SOLUTION
    classes, targets = assign_targets(boxes, labels, h, w, classes_and_background - 1, radius)
    positive = classes != classes_and_background - 1  # (N, h, w)
    count = positive.sum().clamp(min=1)
    loss = F.focal_loss(logits, classes, gamma, reduction="sum") / count
    if positive.any():
        centres = cell_centres(h, w, raw.device).view(h, w, 2).expand(n, h, w, 2)[positive]
        cell = _cell_size(h, w, raw.device)
        predicted = raw.permute(0, 2, 3, 1)[positive]  # (P+, 4)
        target = targets[positive]
        l1 = (predicted - encode_distances(target, centres, cell)).abs().mean()
        overlap = box_iou(decode_distances(predicted, centres, cell), target)
        loss = loss + box_weight * (l1 + (1 - overlap).mean())
    return loss
    # END SOLUTION
