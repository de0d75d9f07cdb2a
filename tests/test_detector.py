"""The one-stage detector (minimod.models.detector, lesson 35): box encoding and decoding, target
assignment on hand-made boxes, the loss, and ``detect``'s output. The lesson's functions are
reached through ``impl.detector``; the grid, the model and its errors are minimod's own
(reference_only)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from minimod.data.images import IMAGENET_MEAN, IMAGENET_STD
from minimod.models.boxes import box_iou
from minimod.models.cnn import ResNet, ResNetConfig
from minimod.models.detector import Detector, MobileNetV2Body, cell_centres
from minimod.models.mobilenet import MobileNetV2
from minimod.optim import AdamW

BACKGROUND = 3  # three classes in these tests: 0, 1, 2
XY_HINT = (
    "boxes are (x_min, y_min, x_max, y_max) and cell is (width, height): x distances are in "
    "cell widths, y distances in cell heights -- x before y everywhere"
)
PADDING_HINT = (
    "a padding slot (label -1, the empty box 0, 0, 0, 0) must never be assigned: its area 0 is "
    "the smallest of all, so without labels ≥ 0 it wins cell (0, 0)"
)


def tiny_detector(num_classes: int = 3) -> Detector:
    torch.manual_seed(0)
    return Detector(ResNet(ResNetConfig(3, 10, (8, 16), (1, 1))), num_classes, head_width=16)


@pytest.mark.reference_only
def test_cell_centres_row_by_row():
    centres = cell_centres(2, 4)
    assert centres.shape == (8, 2)
    assert centres[:4, 1].eq(0.25).all() and centres[4:, 1].eq(0.75).all()
    assert centres[:4, 0].tolist() == [0.125, 0.375, 0.625, 0.875]


@given(
    st.floats(0.05, 0.95), st.floats(0.05, 0.95),  # centre
    st.floats(0.01, 0.5), st.floats(0.01, 0.5), st.floats(0.01, 0.5), st.floats(0.01, 0.5),
)  # fmt: skip
def test_encode_decode_round_trip(cx, cy, left, top, right, bottom):
    centres = torch.tensor([[cx, cy]], dtype=torch.float64)
    box = torch.tensor([[cx - left, cy - top, cx + right, cy + bottom]], dtype=torch.float64)
    cell = torch.tensor([1 / 16, 1 / 8], dtype=torch.float64)
    raw = impl.detector.encode_distances(box, centres, cell)
    torch.testing.assert_close(impl.detector.decode_distances(raw, centres, cell), box)


def test_encoding_is_log_distance_in_cells():
    cell = torch.tensor([0.25, 0.5])
    box, centre = torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0.5, 0.5])
    raw = impl.detector.encode_distances(box, centre, cell)
    torch.testing.assert_close(
        raw, torch.log(torch.tensor([2.0, 1.0, 2.0, 1.0])), msg=XY_HINT + " (encoding)"
    )
    # raw zeros: a box one cell from the centre on every side
    box = impl.detector.decode_distances(torch.zeros(4), centre, cell)
    torch.testing.assert_close(box, torch.tensor([0.25, 0.0, 0.75, 1.0]), msg=XY_HINT)


def test_decoded_boxes_are_valid_for_any_raw():
    raw = torch.randn(100, 4) * 20
    boxes = impl.detector.decode_distances(raw, torch.rand(100, 2), torch.tensor([0.1, 0.1]))
    assert boxes.isfinite().all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_assignment_on_hand_made_boxes():
    # a 4 × 4 grid (cells 0.25 wide, centres at 0.125, 0.375, ...): one large box on the left
    # half, one small box around the centre of cell (row 3, column 3), and a padding slot
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 1.0], [0.8, 0.8, 0.95, 0.95], [0.0, 0.0, 0.0, 0.0]]])
    labels = torch.tensor([[1, 2, -1]])
    classes, targets = impl.detector.assign_targets(boxes, labels, 4, 4, BACKGROUND, radius=1.5)
    expected = torch.full((4, 4), BACKGROUND)
    expected[:, :2] = 1  # every cell centre inside the large box lies within 1.5 cells of its
    expected[3, 3] = 2  # centre; the small box holds no cell centre, but it gets its own cell
    assert (classes >= 0).all(), PADDING_HINT
    assert classes[0].tolist() == expected.tolist()
    assert targets[0, 0, 0].tolist() == [0.0, 0.0, 0.5, 1.0]
    torch.testing.assert_close(targets[0, 3, 3], boxes[0, 1])
    assert targets[0, 0, 3].eq(0).all()  # background: zeros


def test_assignment_radius_and_smallest_box_wins():
    # an 8 × 8 grid; a box covering everything, and a small one inside it
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.5, 0.5]]])
    labels = torch.tensor([[0, 1]])
    classes, _ = impl.detector.assign_targets(boxes, labels, 8, 8, BACKGROUND, radius=1.0)
    # the large box: centres within one cell (0.125) of (0.5, 0.5): rows/columns 3 and 4; the
    # small box holds the centres of cells (2..3, 2..3); cell (3, 3), claimed by both, goes to
    # the smaller box
    assert classes[0, 3:5, 3:5].tolist() == [[1, 0], [0, 0]]
    assert (classes[0, 2:4, 2:4] == 1).all()
    assert (classes == 0).sum() == 3 and (classes == 1).sum() == 4


def test_assignment_with_no_objects_is_all_background():
    no_labels = torch.zeros(2, 0, dtype=torch.long)
    classes, targets = impl.detector.assign_targets(
        torch.zeros(2, 0, 4), no_labels, 3, 3, BACKGROUND
    )
    assert classes.eq(BACKGROUND).all() and targets.eq(0).all()
    classes, _ = impl.detector.assign_targets(
        torch.zeros(1, 2, 4), torch.full((1, 2), -1), 3, 3, BACKGROUND
    )
    assert classes.eq(BACKGROUND).all()


@pytest.mark.reference_only
def test_assignment_rejects_bad_shapes():
    with pytest.raises(ValueError, match="assign_targets"):
        impl.detector.assign_targets(
            torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), 3, 3, BACKGROUND
        )


@pytest.mark.reference_only
def test_detector_shapes_and_initial_prior():
    model = tiny_detector()
    logits, raw = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 4, 16, 16) and raw.shape == (2, 4, 16, 16)  # stride 2
    assert "head.classes.0.weight" in model.state_dict()
    assert not any(key.startswith("body.head") for key in model.state_dict())
    # the classifier's bias starts every cell near background
    model.eval()
    assert model.detect(torch.rand(2, 3, 32, 32), score_threshold=0.5)[0][0].shape == (0, 4)


@pytest.mark.reference_only
def test_detector_refuses_a_body_without_features():
    with pytest.raises(TypeError, match="Detector"):
        Detector(torch.nn.Linear(2, 2), 3)


@pytest.mark.reference_only
@pytest.mark.parametrize(("stride", "channels"), [(8, 32), (16, 96)])
def test_mobilenet_body_is_cut_at_its_stride(stride, channels):
    torch.manual_seed(0)
    body = MobileNetV2Body(stride=stride, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert body.feature_dim == channels and body.stride == stride
    model = Detector(body, 10, head_width=16)
    logits, raw = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 11, 64 // stride, 64 // stride) and raw.shape[1] == 4
    # torchvision's names up to the cut: ImageNet weights load by name into body.features.*
    whole = set(MobileNetV2().state_dict())
    body_keys = {key.removeprefix("body.") for key in model.state_dict() if key.startswith("body.")}
    assert body_keys < whole and "features.0.0.weight" in body_keys
    assert f"features.{6 if stride == 8 else 13}.conv.3.weight" in body_keys
    assert not any(key.startswith(f"features.{7 if stride == 8 else 14}.") for key in body_keys)


@pytest.mark.reference_only
def test_mobilenet_body_normalises_images_itself():
    torch.manual_seed(0)
    body = MobileNetV2Body(mean=IMAGENET_MEAN, std=IMAGENET_STD).eval()
    images = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    expected = body.features((images - mean) / std)
    torch.testing.assert_close(body.feature_map(images), expected)
    with pytest.raises(ValueError, match="stride must be one of"):
        MobileNetV2Body(stride=32, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def scene_batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from minimod.data.detection import make_scenes

    scenes = make_scenes(n, seed=3, size=32, classes=("square", "circle", "triangle"))
    return scenes.images, scenes.boxes, scenes.labels


def overfit(model: Detector, batch: tuple, steps: int) -> list[float]:
    images, boxes, labels = batch
    optimizer = AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = impl.detector.detection_loss(*model(images), boxes, labels)
        assert math.isfinite(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_loss_is_finite_and_decreases_when_overfitting_one_batch():
    losses = overfit(tiny_detector(), scene_batch(2), 12)
    assert losses[-1] < 0.5 * losses[0], losses


def test_loss_without_objects_is_the_classification_term_only():
    model = tiny_detector()
    logits, raw = model(torch.rand(1, 3, 32, 32))
    loss = impl.detector.detection_loss(logits, raw, torch.zeros(1, 1, 4), torch.full((1, 1), -1))
    assert math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()  # a gradient for the classifier, none needed for the boxes
    with pytest.raises(ValueError, match="raw boxes"):
        impl.detector.detection_loss(
            logits, raw[:, :2], torch.zeros(1, 1, 4), torch.zeros(1, 1).long()
        )


@pytest.mark.slow
def test_detect_after_overfitting_finds_the_boxes():
    images, boxes, labels = batch = scene_batch(2)
    model = tiny_detector()
    overfit(model, batch, 100)
    model.eval()
    found = model.detect(images, score_threshold=0.3, iou_threshold=0.5, max_detections=10)
    assert len(found) == len(images)
    for (b, s, lab), truth_boxes, truth_labels in zip(found, boxes, labels, strict=True):
        assert b.shape[1] == 4 and s.shape == lab.shape == b.shape[:1]
        assert (s[:-1] >= s[1:]).all() and (b >= 0).all() and (b <= 1).all()
        for box, label in zip(truth_boxes, truth_labels, strict=True):
            if label < 0:
                continue
            same = lab == label
            assert same.any(), "a true object was not detected"
            assert box_iou(b[same], box.expand(int(same.sum()), 4)).max() > 0.5
