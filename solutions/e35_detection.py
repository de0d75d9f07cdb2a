"""Lesson 35: One-stage detection -- centres, assignment, NMS and average precision

From one box to many
Lesson 20's BoxRegressor predicts one box per image: a pooled feature vector, a Linear, four
numbers. A scene holds any number of objects, of several classes, anywhere. A one-stage
detector keeps the feature MAP instead of pooling it: each cell of the backbone's last feature
map (N, F, h, w) answers two questions about the patch of image it sits on --
    "which class is here, if any?"   head.classes: (N, classes + 1, h, w) logits (the last one
                                     is "background")
    "where are its edges?"           head.boxes:   (N, 4, h, w) raw distances
-- and non-maximum suppression (NMS) keeps the best of the many overlapping answers. One
forward pass, no proposals, no second stage: that is what "one-stage" means (YOLO, SSD,
RetinaNet, FCOS).

Anchors or centres: why anchor-free at one stride
The first one-stage detectors put ANCHORS on every cell: a few fixed boxes (3 sizes × 3
aspect ratios) that the head learns to nudge, each anchor matched to an object when their IoU
is high enough. That brings choices this data does not need: the anchor shapes (tuned per
dataset), the matching IoU thresholds, and 9 times as many predictions. FCOS (Tian et al.,
2019) drops them: a cell near an object's centre predicts the object directly, as four
distances from the cell's centre to the box's edges. Large detectors add a feature pyramid
(stride 8 for small objects, 128 for large ones). Our images are 64 × 64 with a few shapes of
similar sizes, so a single feature map at stride 4 (16 × 16 cells, each 4 × 4 pixels) sees
every object: the body is lesson 16's ResNet (its stages, before pooling) and the head is two
small conv branches (DetectionHead: conv 3×3, ReLU, conv 1×1). Detector, DetectionHead and
detect are given; you write the box encoding, the targets, the loss, NMS and the metric.

The encoding: log distances, in cells
Boxes are (x_min, y_min, x_max, y_max) in [0, 1]; cell_centres(h, w) gives each cell's centre
(x, y), row by row, and _cell_size(h, w) the cell's (width, height) = (1/w, 1/h). Seen from a
centre (cx, cy) a box is four distances, left, top, right, bottom:
    (cx − x_min, cy − y_min, x_max − cx, y_max − cy) / (cell width, height, width, height)
and encode_distances returns their LOGS, each distance first clamped to at least 0.01 cells (a
centre on or outside an edge). decode_distances inverts it: exp, times the cell size, then
(cx − left, cy − top, cx + right, cy + bottom); raw is first clamped at MAX_LOG_DISTANCE = 8
(e⁸ cells is far off any image) so exp never overflows. Why logs and cells:
- exp(raw) > 0 for ANY raw, so every output of the head decodes to a valid box (x_min ≤ x_max);
- in cells, the numbers a head must produce are of order 1 whatever the image size (an object
  2.5 cells wide encodes to log 2.5 = 0.92), and raw = 0 means "one cell on every side";
- in logs, an error of 0.1 means "10% too wide" for a small box and a large one alike, which
  is how IoU judges boxes; a plain difference would let the large boxes dominate the L1 loss.
Worked example: a 16 × 16 grid, cell = (0.0625, 0.0625); the cell in row 5, column 6 has its
centre at (6.5/16, 5.5/16) = (0.40625, 0.34375). The box (0.25, 0.25, 0.5, 0.5) is then
(0.15625, 0.09375, 0.09375, 0.15625) away = (2.5, 1.5, 1.5, 2.5) cells, encoded as
(log 2.5, log 1.5, log 1.5, log 2.5) = (0.916, 0.405, 0.405, 0.916).

Assignment: which cells learn which object
Training needs, for every cell, a target class (an object's, or background) and, for positive
cells, the box. assign_targets(boxes (N, K, 4), labels (N, K), h, w, background, radius) works
on every (cell, object) pair at once, with (N, h·w, K) masks:
- inside: the cell's centre lies strictly inside the box;
- near (FCOS's "centre sampling"): the centre is within radius = 1.5 cells of the box's centre
  on both axes. Cells at the rim of a box see mostly background, and their box is far off
  centre; only the cells near the middle are asked to fire;
- own: the cell that holds the box's centre, floor(centre · (w, h)) clamped to the grid, is
  always a candidate -- so a box smaller than a cell, which holds no cell centre, still has
  one cell that learns it;
- candidate = (inside and near) or own, and only for real objects: labels ≥ 0 (the data pads
  each image to K slots with label −1 and the empty box (0, 0, 0, 0));
- a cell several objects claim predicts the SMALLEST of them (its area; non-candidates count
  as area inf): a large box has other cells, a small one inside it may have only this one.
The cell's class is its object's label (background where no candidate: smallest area still inf)
and its target box the object's box (zeros on background). With no object slots at all (K = 0)
every cell is background.

The loss: focal loss with a prior, normalised by positives
detection_loss(logits, raw, boxes, labels) = classification + box_weight · box terms:
- classification: lesson 23's focal_loss (F.focal_loss, a softmax over the C classes and
  background per cell), SUMMED over every cell and divided by the number of positive cells.
  An image has 256 cells and a few objects, so ~240 cells are background. Cross-entropy would be
  dominated by those easy negatives; the focal factor (1 − p)^γ, γ = 2, silences the ones
  already right. Dividing by the positives (RetinaNet's normalisation; at least 1), not by all
  cells, keeps the loss's scale independent of the image size and of how much of it is empty.
- the prior: DetectionHead (given) starts its class bias so that softmax gives background
  1 − PRIOR = 0.99 and each class PRIOR / C. Started at zero, every cell would say "object" with
  probability C / (C + 1), and the first steps' loss -- 240 confident false alarms -- would swamp
  the gradient of the few objects.
- boxes, on the positive cells only: the L1 distance between raw and the encoded target
  (encode_distances at the cell's centre), plus the mean of 1 − box_iou(decoded prediction,
  target) (lesson 20's box_iou): L1 pulls every edge even when the boxes do not overlap yet;
  1 − IoU judges the box as the metric will.
When no cell is positive the box terms are left out (their mean would be NaN).

NMS, and why per class
A trained detector fires on several cells around each object, each with a slightly different
box. Greedy NMS keeps the best of each cluster: visit the boxes from the highest score down
(equal scores: the lower index first -- a STABLE sort); keep a box unless a box already kept
overlaps it with IoU > iou_threshold. Written plainly it is one IoU per (kept, later) pair in a
Python loop. _greedy_nms computes box_iou_matrix of the score-sorted boxes once, thresholds it
into over[i, j] = "box i would suppress box j", keeps only j > i (triu(diagonal=1): only a
better box suppresses), and the loop walks the rows: a row still kept removes everything it
suppresses with one tensor operation (keep &= ~over[i]). Return the kept indices, best first.
nms and batched_nms are given; they check their inputs and call _greedy_nms. batched_nms
(torchvision's name) does NMS within each class: over is and-ed with "same class" first. Why
per class: a cat on a sofa overlaps the sofa; class-agnostic NMS would delete whichever scored
lower. The detector's detect takes each cell's likeliest class, drops scores ≤
score_threshold, then calls batched_nms.

Average precision, step by step
A detector's output is a ranked list, so it is judged by a curve, not one threshold. For one
class and one IoU threshold t (mean_average_precision, given, feeds each image's detections of
the class by decreasing score, at most 100, to _match, then pools all images in _class_ap):
1. _match(detections (n, 4), truth (m, 4), thresholds (T,)) -> hit (T, n): greedy, best
   detection first, each takes the still-unmatched true box it overlaps most (box_iou_matrix;
   equal IoUs: the later true box, as COCO's loop does) if that IoU ≥ t: a true positive (TP),
   and that true box is taken; otherwise a false positive. All 10 thresholds at once: taken is
   (T, m), and a taken box's IoU is masked to −1 so argmax skips it.
2. _class_ap(scores, hit, n_true): sort all images' detections by decreasing score (stable);
   at rank k, TP_k = cumulative hits, recall_k = TP_k / G (G true boxes), precision_k =
   TP_k / (k + _EPS) (COCO adds the machine epsilon; TP + FP = k).
3. the precision ENVELOPE: precision_k := max over j ≥ k of precision_j (a reversed cummax), so
   the curve never rises. Any user can stop reading the list later and get that precision.
4. read it at the 101 recall levels RECALL_LEVELS = 0, 0.01, ..., 1, each at the first rank
   whose recall reaches the level (searchsorted), 0 where recall never does; AP is their mean.
mAP@0.5 is the mean AP at t = 0.5 over the classes that have true boxes; COCO's mAP@[.5:.95]
(COCO_IOU_THRESHOLDS) the mean over those classes and 10 thresholds 0.5, 0.55, ..., 0.95.
Worked example: one class, true boxes A = (0, 0, 10, 10), B = (20, 20, 30, 30); detections
by score: (0, 0, 10, 10) 0.9, (50, 50, 60, 60) 0.8, (20, 20, 30, 31) 0.7.
  IoUs: the first is A exactly (1.0), the second touches nothing (0), the third B with
  100 / 110 = 0.909.  At t = 0.5: hit, miss, hit.
  rank k:       1      2      3
  TP_k:         1      1      2
  recall:      0.5    0.5    1.0
  precision:   1.0    0.5    0.667
  envelope:    1.0    0.667  0.667
  levels 0 .. 0.50 (51 of them) first reach recall at rank 1: 1.0; levels 0.51 .. 1 (50) at
  rank 3: 0.667.  AP = (51 · 1 + 50 · 2/3) / 101 = 0.835.
  At t = 0.95 the third is a miss: recall stops at 0.5, AP = 51 / 101 = 0.505; t = 0.5 .. 0.9
  give 0.835, so AP@[.5:.95] = (9 · 0.835 + 0.505) / 10 = 0.802.
Where the envelope matters: detections miss, hit, hit give precision 0, 0.5, 0.667 at recall
0, 0.5, 1; the envelope is 0.667 at every rank, AP = 0.667. Without it, level 0 would read 0
and levels up to 0.5 would read 0.5: (0 + 50 · 0.5 + 50 · 0.667) / 101 = 0.578.

Classic pitfalls
- Swapping x and y: boxes are (x_min, y_min, x_max, y_max), centres (x, y) and the cell size
  (width, height), but a tensor's grid is indexed [row, column] = [y, x]. Dividing x distances by
  the cell's height is invisible on square grids and square cells and wrong everywhere else.
- Letting empty boxes compete: the padding slots are the empty box (0, 0, 0, 0), whose area 0
  is the smallest of all, so unless candidates require labels ≥ 0 a padding slot wins cell
  (0, 0) with class −1. Empty boxes need care in IoU too: two boxes of zero area have a union
  of 0, and box_iou returns 0 there, not 0 / 0 = NaN.
- NMS without sorting, or with an unstable sort: greedy NMS must visit the boxes best first,
  and only a box kept before another may suppress it; in input order a weak box suppresses a
  strong one. Equal scores need a fixed order (stable sort: the lower index first) to match
  torchvision.
- Reading AP from the raw precision instead of its envelope: the raw precision zigzags (each
  miss lowers it, each hit raises it), and COCO and Pascal VOC both read the best precision at
  that recall or beyond -- 0.578 instead of 0.667 in the example above.
- Counting a true box twice: once a detection matches a true box, that box is taken; a second
  detection of the same object (one NMS let through) is a false positive. Otherwise duplicates
  raise the recall above 1 and the AP towards 1.
- Class-agnostic NMS in a multi-class detector: two overlapping objects of different classes
  would suppress each other; batched_nms compares only boxes of one class.

Run it
Train the tiny detector on the synthetic shapes (add --use-mine, once `minimod exercises
check 35` passes, to train with your own code), then look at what it finds:
    minimod pretrain cnn --task detect-shapes --preset tiny --max-steps 100 --out runs/det
about 35 s on 2 shared cores; it prints the loss (about 2.2 after 100 steps), then the
held-out mAP@0.5 (about 0.16) and mAP@[.5:.95] (about 0.05) and a table of AP per shape: the
ring and the triangle come first, the diamond last. Then
    minimod detect --from runs/det --held-out 4 --out det.png
prints, per held-out image, the objects it found above the default score threshold 0.5 --
after 100 steps none yet: the prior holds the scores low -- and the mAP on those 4 images
(about 0.2), and draws the true boxes dashed in det.png. Add --score-threshold 0.1 to see the
candidates: several triangles around one object, which is why NMS exists. 100 steps only
start the training; a longer run (more --max-steps) lifts the scores above the threshold.
A feature pyramid (strides 4, 8, 16), each object assigned to the level its size fits, is the
natural next step.
Next: lesson 36 (Depthwise and grouped convolution, inverted residuals)

Check it: minimod exercises check 35
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e35_detection import encode_distances, mean_average_precision, nms
    >>> centre, cell = torch.tensor([6.5 / 16, 5.5 / 16]), torch.tensor([1 / 16, 1 / 16])
    >>> raw = encode_distances(torch.tensor([0.25, 0.25, 0.5, 0.5]), centre, cell)
    >>> [round(r, 3) for r in raw.tolist()]
    [0.916, 0.405, 0.405, 0.916]
    >>> boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]])
    >>> scores, labels = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0])
    >>> truth = (torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]))
    >>> result = mean_average_precision([(boxes, scores, labels)], [truth], 1)
    >>> round(result.map_50, 3), round(result.map, 3)
    (0.835, 0.802)
    >>> nms(torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]), scores, 0.5)
    tensor([0, 2])
"""

# Lesson 35 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from minimod.models.boxes import box_iou, box_iou_matrix
from minimod.models.detection_metrics import (
    _EPS,
    COCO_IOU_THRESHOLDS,
    RECALL_LEVELS,
    DetectionAP,
    _check_image,
)
from minimod.models.detector import MAX_LOG_DISTANCE, _cell_size, cell_centres
from minimod.nn import functional as F

# ---- from minimod/models/detector.py ----------------------------------------


def encode_distances(
    boxes: torch.Tensor, centres: torch.Tensor, cell: torch.Tensor
) -> torch.Tensor:
    """Boxes (..., 4) seen from cell centres (..., 2) -> raw (..., 4): the log distances from the
    centre to the left, top, right and bottom edges, in cells (``cell`` (2,): a cell's width and
    height). A centre on or outside an edge encodes that distance as a hundredth of a cell."""
    # BEGIN YOUR CODE
    near = torch.cat([centres - boxes[..., :2], boxes[..., 2:] - centres], dim=-1)
    return torch.log((near / cell.repeat(2)).clamp(min=0.01))
    # END YOUR CODE


def decode_distances(raw: torch.Tensor, centres: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """The inverse of ``encode_distances``: raw (..., 4) at cell centres (..., 2) -> boxes (..., 4)
    (x_min, y_min, x_max, y_max), valid for any raw (each distance is positive)."""
    # BEGIN YOUR CODE
    distances = torch.exp(raw.clamp(max=MAX_LOG_DISTANCE)) * cell.repeat(2)
    return torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], dim=-1)
    # END YOUR CODE


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
    # BEGIN YOUR CODE
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
    # END YOUR CODE


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
    # BEGIN YOUR CODE
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
    # END YOUR CODE


# ---- from minimod/models/boxes.py ----------------------------------------


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
    # BEGIN YOUR CODE
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
    # END YOUR CODE


# ---- from minimod/models/detection_metrics.py ----------------------------------------


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


def _match(detections: torch.Tensor, truth: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Greedy matching of one image's detections of one class (by decreasing score) (n, 4) to
    its true boxes (m, 4), at every threshold (T,) at once -> (T, n) bool, True: matched."""
    # BEGIN YOUR CODE
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
    # END YOUR CODE


def _class_ap(scores: torch.Tensor, hit: torch.Tensor, n_true: int) -> torch.Tensor:
    """One class's detections pooled over images: scores (n,), hit (T, n) -> AP per threshold
    (T,), from the precision envelope at the 101 recall levels."""
    # BEGIN YOUR CODE
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
    # END YOUR CODE
