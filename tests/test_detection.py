"""Detection primitives against independent references.

- ``box_iou_matrix``, ``nms``, ``batched_nms`` (minimod.models.boxes): equal to torchvision's
  outputs saved in fixtures/detection_ops.json (made by fixtures/make_detection_fixtures.py), and,
  on random boxes, to a greedy NMS written here with Python floats and lists.
  ``nms``/``batched_nms`` and ``mean_average_precision`` are lesson 35's, reached through
  ``impl.boxes`` and ``impl.detection_metrics``; the rest is minimod's own (reference_only).
- ``mean_average_precision`` (minimod.models.detection_metrics): equal to pycocotools' COCOeval
  (a test-only reference from the `interop` extra) on random predictions, and to hand-worked AP.
- ``make_scenes``, ``make_digit_canvases`` (minimod.data.detection): boxes tight around the
  pixels drawn, labels right, seeded, cached; the digits need `make real` (marked `real`).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from minimod.data import MissingDataError, detection
from minimod.data.detection import make_digit_canvases, make_scenes
from minimod.data.splits import split_by_hash
from minimod.models.boxes import box_iou_matrix
from minimod.models.detection_metrics import COCO_IOU_THRESHOLDS, RECALL_LEVELS

FIXTURES = Path(__file__).parent / "fixtures" / "detection_ops.json"
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 1.0)
SORT_HINT = (
    "greedy NMS visits the boxes by decreasing score (a stable sort: equal scores keep their "
    "order) and a box is only suppressed by a box kept before it"
)
ENVELOPE_HINT = (
    "AP reads the precision envelope: at each recall level, the best precision at that rank or "
    "any later one, not the precision of the rank itself"
)
ONCE_HINT = (
    "each true box is matched by one detection at most: a second detection of a box already "
    "matched is a false positive"
)


@pytest.fixture(scope="module")
def torchvision_outputs() -> dict:
    return json.loads(FIXTURES.read_text(encoding="utf-8"))


def as_boxes(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)  # [] is no box


# ============================================================================ IoU and NMS


@pytest.mark.reference_only
def test_box_iou_matrix_equals_torchvision(torchvision_outputs):
    for case in torchvision_outputs["box_iou"]:
        a, b = as_boxes(case["a"]), as_boxes(case["b"])
        # torchvision divides 0 by 0 for two zero-area boxes (NaN, saved as None); minimod's
        # box_iou says 0 there
        rows = [[0.0 if iou is None else iou for iou in row] for row in case["iou"]]
        expected = torch.tensor(rows, dtype=torch.float32).reshape(len(a), len(b))
        assert torch.equal(box_iou_matrix(a, b), expected)


def test_nms_equals_torchvision(torchvision_outputs):
    for case in torchvision_outputs["nms"]:
        boxes, scores = as_boxes(case["boxes"]), torch.tensor(case["scores"], dtype=torch.float32)
        classes = torch.tensor(case["classes"], dtype=torch.int64)
        for expected in case["kept"]:
            threshold = expected["threshold"]
            assert impl.boxes.nms(boxes, scores, threshold).tolist() == expected["nms"], threshold
            kept = impl.boxes.batched_nms(boxes, scores, classes, threshold).tolist()
            assert kept == expected["batched_nms"], (len(boxes), threshold)


def plain_iou(a: list[float], b: list[float]) -> float:
    def area(box):
        return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)

    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    union = area(a) + area(b) - w * h
    return w * h / union if union > 0 else 0.0


def plain_nms(boxes: list, scores: list, classes: list, threshold: float) -> list[int]:
    """The greedy algorithm as written in the papers: best first, keep unless a kept box of the
    same class overlaps it by more than the threshold."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: (-scores[i], i)):
        if all(
            classes[k] != classes[i] or plain_iou(boxes[k], boxes[i]) <= threshold for k in kept
        ):
            kept.append(i)
    return kept


@st.composite
def box_sets(draw, max_boxes: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes with integer corners on a small grid (so duplicates, zero areas and IoUs exactly at
    a threshold are common), scores from a few levels (ties) and up to 3 classes; float64, so the
    Python floats of the reference compute the same IoUs to the bit."""
    n = draw(st.integers(0, max_boxes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    side = draw(st.sampled_from([4, 10, 30]))
    low = torch.randint(side, (n, 2), generator=g)
    size = torch.randint(side // 2 + 1, (n, 2), generator=g)
    boxes = torch.cat([low, low + size], dim=1).double()
    levels = draw(st.sampled_from([1, 3, 1000]))
    scores = torch.randint(levels, (n,), generator=g).double() / levels
    classes = torch.randint(draw(st.integers(1, 3)), (n,), generator=g)
    return boxes, scores, classes


@given(box_sets(), st.sampled_from(THRESHOLDS) | st.floats(0, 1))
def test_nms_equals_plain_greedy(data, threshold):
    boxes, scores, classes = data
    plain = [boxes.tolist(), scores.tolist(), [0] * len(boxes), threshold]
    assert impl.boxes.nms(boxes, scores, threshold).tolist() == plain_nms(*plain), SORT_HINT
    plain[2] = classes.tolist()
    kept = impl.boxes.batched_nms(boxes, scores, classes, threshold).tolist()
    assert kept == plain_nms(*plain), "batched_nms: a box only suppresses boxes of its class"


@given(box_sets(max_boxes=12), box_sets(max_boxes=12))
@pytest.mark.reference_only
def test_box_iou_matrix_equals_plain_floats(a, b):
    a, b = a[0], b[0]
    result = box_iou_matrix(a, b)
    assert result.shape == (len(a), len(b))
    assert result.tolist() == [[plain_iou(x, y) for y in b.tolist()] for x in a.tolist()]


def test_nms_empty_and_dtype():
    for kept in (
        impl.boxes.nms(torch.zeros(0, 4), torch.zeros(0), 0.5),
        impl.boxes.batched_nms(
            torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5
        ),
    ):
        assert kept.dtype == torch.int64 and kept.shape == (0,)
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]])
    assert impl.boxes.nms(boxes, torch.tensor([0.5, 0.9, 0.5]), 0.5).tolist() == [1]
    # class 0 holds two duplicates of equal score: the lower index wins; class 1 cannot touch them
    kept = impl.boxes.batched_nms(
        boxes, torch.tensor([0.5, 0.9, 0.5]), torch.tensor([0, 1, 0]), 0.5
    )
    assert kept.tolist() == [1, 0]


@pytest.mark.reference_only
def test_nms_errors_are_one_sentence():
    with pytest.raises(ValueError, match=r"nms: expected boxes \(N, 4\) and scores \(N,\)"):
        impl.boxes.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="nms: scores must not be NaN"):
        impl.boxes.nms(torch.zeros(1, 4), torch.tensor([float("nan")]), 0.5)
    with pytest.raises(ValueError, match="batched_nms: expected integer classes of shape"):
        impl.boxes.batched_nms(torch.zeros(2, 4), torch.zeros(2), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"box_iou_matrix: expected b of shape \(N, 4\)"):
        box_iou_matrix(torch.zeros(2, 4), torch.zeros(4))


# ============================================================================ mAP


def test_average_precision_by_hand():
    truth = [(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]))]
    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    result = impl.detection_metrics.mean_average_precision(
        [(boxes, scores, torch.tensor([0, 0, 0]))], truth, 1
    )
    # ranks: hit, miss, hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; the envelope is 1 up
    # to recall 0.5 (51 levels: 0, 0.01, ..., 0.5) and 2/3 above (50 levels). The third box's
    # IoU is 100/110 = 0.909: a hit up to threshold 0.9, a miss at 0.95 (AP = 51/101 there).
    assert result.ap[:9, 0].tolist() == pytest.approx([(51 + 50 * 2 / 3) / 101] * 9)
    assert result.ap[9, 0].item() == pytest.approx(51 / 101)
    assert result.map_50 == pytest.approx((51 + 50 * 2 / 3) / 101)
    perfect = impl.detection_metrics.mean_average_precision(
        [(truth[0][0], torch.ones(2), truth[0][1])], truth, 3
    )
    assert perfect.map == perfect.map_50 == 1.0
    assert perfect.per_class[1:].isnan().all()  # classes without true boxes: left out
    nothing = [(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))]
    assert impl.detection_metrics.mean_average_precision(nothing, truth, 1).map == 0.0


def test_average_precision_uses_the_precision_envelope():
    # two true boxes; by score: a miss, then the two hits -> precision 0, 1/2, 2/3 at recall 0,
    # 1/2, 1. The envelope is 2/3 everywhere (the best precision at or after each rank): AP 2/3;
    # the raw precision would give (0 + 50 · 1/2 + 50 · 2/3) / 101 = 0.578.
    truth = [(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]))]
    boxes = torch.tensor([[50.0, 50, 60, 60], [0, 0, 10, 10], [20, 20, 30, 30]])
    prediction = (boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0]))
    result = impl.detection_metrics.mean_average_precision([prediction], truth, 1)
    assert result.map_50 == pytest.approx(2 / 3), ENVELOPE_HINT


def test_a_true_box_is_matched_once():
    # the first true box found twice: hit, miss, hit -> AP@0.5 (51 + 50 · 2/3) / 101; counting
    # the copy as a hit would reach recall 1 at rank 2 with precision 1 (AP 1)
    truth = [(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 0]))]
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    prediction = (boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0]))
    result = impl.detection_metrics.mean_average_precision([prediction], truth, 1)
    assert result.map_50 == pytest.approx((51 + 50 * 2 / 3) / 101), ONCE_HINT


@pytest.mark.reference_only
def test_average_precision_errors():
    empty = (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    nothing = (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="the targets hold no true box"):
        impl.detection_metrics.mean_average_precision([nothing], [empty], 2)
    with pytest.raises(ValueError, match="1 predictions for 2 images"):
        impl.detection_metrics.mean_average_precision([nothing], [empty, empty], 2)
    bad = (torch.zeros(1, 4), torch.zeros(1), torch.tensor([2]))
    with pytest.raises(
        ValueError, match=r"image 0: prediction labels must be integers in \[0, 2\)"
    ):
        impl.detection_metrics.mean_average_precision([bad], [empty], 2)


def coco_stats(predictions, targets, num_classes):
    """COCOeval's bbox results: (stats[0] mAP@[.5:.95], stats[1] mAP@0.5, AP (10, C))."""
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")

    def xywh(box):
        x0, y0, x1, y1 = box
        return [x0, y0, x1 - x0, y1 - y0]

    annotations, detections = [], []
    for image, ((boxes, scores, labels), (true_boxes, true_labels)) in enumerate(
        zip(predictions, targets, strict=True), start=1
    ):
        for box, label in zip(true_boxes.tolist(), true_labels.tolist(), strict=True):
            bbox = xywh(box)
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image, category_id=label + 1, bbox=bbox,
                     area=bbox[2] * bbox[3], iscrowd=0)
            )  # fmt: skip
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            detections.append(
                dict(image_id=image, category_id=label + 1, bbox=xywh(box), score=score)
            )
    with contextlib.redirect_stdout(io.StringIO()):  # COCO reports every step on stdout
        truth = coco.COCO()
        truth.dataset = dict(
            images=[dict(id=i + 1) for i in range(len(targets))],
            annotations=annotations,
            categories=[dict(id=c + 1) for c in range(num_classes)],
        )
        truth.createIndex()
        evaluation = cocoeval.COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # precision: (thresholds, recall levels, classes, area ranges, max detections); "all", 100
    precision = torch.from_numpy(evaluation.eval["precision"][:, :, :, 0, 2])
    ap = precision.mean(dim=1).masked_fill(precision[:, 0] < 0, float("nan"))
    return evaluation.stats[0], evaluation.stats[1], ap


@st.composite
def detections(draw):
    """Up to 12 images: true boxes on a pixel grid, detections that are jittered copies (some of
    another class) and random boxes, scores with ties."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    num_classes = draw(st.integers(1, 4))
    levels = draw(st.sampled_from([2, 5, 10_000]))
    predictions, targets = [], []
    for _ in range(draw(st.integers(1, 12))):
        m = int(torch.randint(7, (), generator=g))
        low = torch.randint(60, (m, 2), generator=g)
        true_boxes = torch.cat([low, low + 1 + torch.randint(30, (m, 2), generator=g)], dim=1)
        true_labels = torch.randint(num_classes, (m,), generator=g)
        copies = true_boxes[torch.rand(m, generator=g) < 0.8].repeat(2, 1)
        copies = copies + torch.randint(-3, 4, copies.shape, generator=g)
        # no inverted boxes: COCO ignores a detection of negative area, minimod counts it empty
        copies[:, 2:] = torch.maximum(copies[:, 2:], copies[:, :2])
        low = torch.randint(60, (int(torch.randint(5, (), generator=g)), 2), generator=g)
        extra = torch.cat([low, low + torch.randint(30, low.shape, generator=g)], dim=1)
        boxes = torch.cat([copies, extra]).double()
        labels = torch.randint(num_classes, (len(boxes),), generator=g)
        scores = torch.randint(levels, (len(boxes),), generator=g).double() / levels
        predictions.append((boxes, scores, labels))
        targets.append((true_boxes.double(), true_labels))
    return predictions, targets, num_classes


@given(detections())
def test_map_equals_pycocotools(data):
    predictions, targets, num_classes = data
    if not any(len(t[0]) for t in targets) or not any(len(p[0]) for p in predictions):
        return  # COCO reports -1 (and cannot load zero detections); minimod raises, tested above
    map_all, map_50, ap = coco_stats(predictions, targets, num_classes)
    result = impl.detection_metrics.mean_average_precision(predictions, targets, num_classes)
    assert abs(result.map - map_all) < 1e-6 and abs(result.map_50 - map_50) < 1e-6
    torch.testing.assert_close(result.ap, ap, rtol=0, atol=1e-12, equal_nan=True)


def test_map_keeps_100_detections_per_image_like_coco():
    g = torch.Generator().manual_seed(0)
    predictions, targets = [], []
    for _ in range(3):
        low = torch.randint(50, (130, 2), generator=g)
        boxes = torch.cat([low, low + 1 + torch.randint(20, (130, 2), generator=g)], dim=1)
        labels = torch.randint(2, (130,), generator=g)
        predictions.append((boxes.double(), torch.rand(130, generator=g).double(), labels))
        targets.append((boxes[:40].double(), labels[:40]))
    map_all, map_50, ap = coco_stats(predictions, targets, 2)
    result = impl.detection_metrics.mean_average_precision(predictions, targets, 2)
    assert abs(result.map - map_all) < 1e-6 and abs(result.map_50 - map_50) < 1e-6


@pytest.mark.reference_only
def test_thresholds_and_recall_levels_are_cocos_to_the_bit():
    params = pytest.importorskip("pycocotools.cocoeval").Params("bbox")
    assert COCO_IOU_THRESHOLDS == tuple(params.iouThrs.tolist())
    assert RECALL_LEVELS == tuple(params.recThrs.tolist())


# ============================================================================ data


def tight_box(mask: torch.Tensor) -> list[float]:
    """The pixel-edge box around a (H, W) mask's True pixels, over the side: plain indexing."""
    rows, cols = mask.nonzero().T.tolist()
    h, w = mask.shape
    return [min(cols) / w, min(rows) / h, (max(cols) + 1) / w, (max(rows) + 1) / h]


@pytest.mark.reference_only
@pytest.mark.parametrize("size, most", [(48, 5), (24, 30)])  # 24: some shapes hidden wholly
def test_scenes_boxes_are_tight_around_the_pixels_each_object_shows(size, most):
    scenes = make_scenes(30, seed=1, size=size, max_objects=most)
    assert scenes.images.shape == (30, 3, size, size) and scenes.boxes.shape == (30, most, 4)
    assert len(set(scenes.counts.tolist())) > 3 and scenes.counts.max() <= most
    shape_pixels = scenes.images.amax(dim=1) > 0.475  # shapes.py's gap: shapes are brighter
    torch.testing.assert_close(shape_pixels, scenes.instances >= 0, rtol=0, atol=0)
    for i in range(len(scenes)):
        boxes, labels = scenes.objects(i)
        assert len(boxes) == scenes.counts[i] and (labels >= 0).all()
        for j, box in enumerate(boxes.tolist()):
            assert box == pytest.approx(tight_box(scenes.instances[i] == j))
        assert (scenes.labels[i, len(boxes) :] == -1).all()
        assert (scenes.boxes[i, len(boxes) :] == 0).all()


@pytest.mark.reference_only
def test_scenes_labels_name_the_shape_drawn():
    # an object that no other overlaps fills its box as its class does: a square wholly, a
    # diamond about half
    scenes = make_scenes(60, seed=5, classes=("square", "diamond"), max_objects=3)
    fills = {0: [], 1: []}
    for i in range(len(scenes)):
        boxes, labels = scenes.objects(i)
        overlaps = box_iou_matrix(boxes, boxes) > 0
        for j in range(len(boxes)):
            if overlaps[j].sum() == 1:  # only itself
                x0, y0, x1, y1 = (boxes[j] * 64).round().long().tolist()
                shown = scenes.instances[i, y0:y1, x0:x1] == j
                fills[int(labels[j])].append(shown.double().mean().item())
    assert min(fills[0]) == 1.0 and len(fills[0]) > 10
    assert 0.35 < min(fills[1]) and max(fills[1]) < 0.75 and len(fills[1]) > 10


@pytest.mark.reference_only
def test_scenes_are_seeded_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMOD_CACHE", str(tmp_path))
    first = make_scenes(8, seed=1, cache=True)
    assert len(list(tmp_path.glob("scenes-v*.pt"))) == 1
    monkeypatch.setattr(detection, "_draw_scenes", lambda *args: pytest.fail("cache missed"))
    again = make_scenes(8, seed=1, cache=True)
    for name in ("images", "boxes", "labels", "counts", "instances"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert again.class_names == first.class_names and isinstance(again, detection.Scenes)
    monkeypatch.undo()
    assert torch.equal(make_scenes(8, seed=1).images, first.images)
    assert not torch.equal(make_scenes(8, seed=2).images, first.images)


@pytest.mark.reference_only
def test_scenes_errors():
    with pytest.raises(ValueError, match="make_scenes: need distinct known shapes"):
        make_scenes(2, classes=("circle", "blob"))
    with pytest.raises(
        ValueError, match="make_scenes: need n ≥ 0, size in 16..128 and 1..100 objects"
    ):
        make_scenes(2, size=8)


@pytest.mark.real
@pytest.mark.reference_only
def test_digit_canvases_boxes_labels_and_split():
    canvases = make_digit_canvases(40, split="test", seed=2, size=64)
    digits, digit_labels = detection.mnist_5k()
    assert digits.shape == (5000, 28, 28) and canvases.images.shape == (40, 1, 64, 64)
    assert set(canvases.counts.tolist()) >= {1, 2, 3}
    rows = [row.numpy().tobytes() for row in (digits * 255).round().to(torch.uint8)]
    test_rows = set(split_by_hash(rows, digit_labels.tolist(), "test"))
    ink = canvases.images[:, 0] > 0
    for i in range(len(canvases)):
        boxes, labels = canvases.objects(i)
        sources = canvases.sources[i, : len(boxes)]
        assert set(sources.tolist()) <= test_rows  # held-out canvases: held-out handwriting
        assert torch.equal(labels, digit_labels[sources])
        inside = torch.zeros(64, 64, dtype=torch.bool)
        for x0, y0, x1, y1 in (boxes * 64).round().long().tolist():
            inside[y0:y1, x0:x1] = True
            # tight: ink on each of the box's four edges
            assert ink[i, y0:y1, x0].any() and ink[i, y0:y1, x1 - 1].any()
            assert ink[i, y0, x0:x1].any() and ink[i, y1 - 1, x0:x1].any()
        assert not (ink[i] & ~inside).any()  # no ink outside the boxes
        if len(boxes) == 1:
            assert boxes[0].tolist() == pytest.approx(tight_box(ink[i]))


@pytest.mark.real
@pytest.mark.reference_only
def test_digit_canvases_are_seeded_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMOD_CACHE", str(tmp_path))
    first = make_digit_canvases(6, seed=4, cache=True, digit_sizes=(10, 20))
    monkeypatch.setattr(detection, "_draw_digits", lambda *args: pytest.fail("cache missed"))
    again = make_digit_canvases(6, seed=4, cache=True, digit_sizes=(10, 20))
    for name in ("images", "boxes", "labels", "counts", "sources"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    monkeypatch.undo()
    assert torch.equal(make_digit_canvases(6, seed=4, digit_sizes=(10, 20)).images, first.images)
    assert not torch.equal(
        make_digit_canvases(6, seed=5, digit_sizes=(10, 20)).images, first.images
    )


@pytest.mark.reference_only
def test_digit_canvases_say_run_make_real(monkeypatch):
    with pytest.raises(ValueError, match=r"digit_sizes must be \(low, high\) with 4 ≤ low"):
        make_digit_canvases(1, digit_sizes=(20, 10))
    with pytest.raises(ValueError, match="make_digit_canvases: split must be one of"):
        make_digit_canvases(1, split="dev")
    monkeypatch.setattr(detection.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match="run `make real`"):
        make_digit_canvases(1)
