"""Multi-object detection: the tasks of ``minimod pretrain cnn --task detect-shapes|detect-digits``
(their builders, run by ``tasks.pretrain``; ``minimod detect`` is ``tasks.detect_images``).

    detect-shapes  synthetic scenes of 1..max_objects shapes (``data.detection.make_scenes``)
    detect-digits  black canvases with 1..max_objects real MNIST digits (``make_digit_canvases``,
                   make real), grey repeated into three channels so a body trained on the
                   shapes (``--init RUN``) reads them

Both train ``models.detector.Detector`` on a ResNet body (detect-digits from ``finetune cnn
--from mobilenet_v2``: on ``MobileNetV2Body``, settings["body"]); the held-out metrics are COCO's
mAP@0.5 (best.pt keeps the best), mAP@[.5:.95] and every class's AP (the table printed after
the run). The sets: train (seed 0 / the digits' train split), val (seed 1 / val split: the
evaluations), test (seed 2 / test split: ``minimod detect --held-out``, never trained on nor
used to choose best.pt).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from minimod.data.detection import Detections, make_digit_canvases, make_scenes
from minimod.data.images import IMAGENET_MEAN, IMAGENET_STD
from minimod.data.splits import MissingDataError
from minimod.models.cnn import ResNet, ResNetConfig
from minimod.models.detection_metrics import DetectionAP, mean_average_precision
from minimod.models.detector import Detector, MobileNetV2Body, detection_loss
from minimod.models.mobilenet import MobileNetV2Config
from minimod.tasks.common import TaskData, UsageError, device_of

SEEDS = {"train": 0, "val": 1, "test": 2}
# mAP ranks every detection by score, so the evaluation keeps the unlikely ones too (COCO's
# convention); ``minimod detect``'s picture shows only the confident ones (its threshold).
EVAL_SCORE_THRESHOLD = 0.05
MAX_DETECTIONS = 100  # per image, as COCO counts them


def shapes_data(settings: dict[str, Any], split: str, n: int) -> Detections:
    return make_scenes(
        n, seed=SEEDS[split], size=settings["image_size"], max_objects=settings["max_objects"],
        cache=True,
    )  # fmt: skip


def digits_data(settings: dict[str, Any], split: str, n: int) -> Detections:
    try:
        data = make_digit_canvases(
            n, split=split, seed=SEEDS[split], size=settings["image_size"],
            max_digits=settings["max_objects"], digit_sizes=tuple(settings["digit_sizes"]),
            cache=True,
        )  # fmt: skip
    except MissingDataError as error:
        raise UsageError(str(error)) from None
    data.images = data.images.expand(-1, 3, -1, -1)  # grey as RGB: one body for both tasks
    return data


DATA: dict[str, Callable[[dict[str, Any], str, int], Detections]] = {
    "detect-shapes": shapes_data,
    "detect-digits": digits_data,
}


def detect_all(
    model: Detector, images: torch.Tensor, score_threshold: float, iou_threshold: float = 0.5
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``model.detect`` over ``images`` in chunks of 128, on the model's device; results on
    the CPU."""
    device = device_of(model)
    found = []
    for chunk in images.split(128):
        for boxes, scores, labels in model.detect(
            chunk.to(device), score_threshold, iou_threshold, MAX_DETECTIONS
        ):
            found.append((boxes.cpu(), scores.cpu(), labels.cpu()))
    return found


def average_precision(model: Detector, data: Detections) -> DetectionAP:
    """The model's AP per class and IoU threshold on ``data``."""
    found = detect_all(model, data.images, EVAL_SCORE_THRESHOLD)
    return mean_average_precision(found, data.targets(), len(data.class_names), MAX_DETECTIONS)


def ap_table(ap: DetectionAP, names: Sequence[str]) -> str:
    """Every class's AP@0.5 and AP@[.5:.95], then the means (a class with no true box: -)."""
    width = max(len("mean"), *(len(name) for name in names))
    lines = [f"{'AP':<{width}}  @0.5  @[.5:.95]"]

    def row(name: str, at_50: float, coco: float) -> str:
        if math.isnan(at_50):
            return f"{name:<{width}}     -          -"
        return f"{name:<{width}}  {at_50:.3f}  {coco:9.3f}"

    lines += [row(n, a, c) for n, a, c in zip(names, ap.ap[0].tolist(), ap.per_class.tolist(),
                                              strict=True)]  # fmt: skip
    lines.append(row("mean", ap.map_50, ap.map))
    return "\n".join(lines)


def body_builder(settings: dict[str, Any], num_classes: int) -> tuple[Any, Callable[[], Any]]:
    """(model config, a function building a fresh body): the ResNet of settings["model"], or
    with settings["body"] "mobilenet_v2" a ``MobileNetV2Body`` cut at settings["stride"]."""
    if settings.get("body", "resnet") == "mobilenet_v2":
        mobilenet = MobileNetV2Config(**settings["model"])
        return mobilenet, lambda: MobileNetV2Body(
            mobilenet, settings["stride"], mean=IMAGENET_MEAN, std=IMAGENET_STD
        )
    config = ResNetConfig(in_channels=3, num_classes=num_classes, **settings["model"])
    return config, lambda: ResNet(config)


def _builder(task: str) -> Callable[..., TaskData]:
    def build_task(
        settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool
    ) -> TaskData:
        if data is not None:
            raise UsageError(f"{task} trains on generated images; --data is for gpt and bert")
        train = DATA[task](settings, "train", settings["n_train"])
        val = DATA[task](settings, "val", settings["n_val"])
        names = train.class_names
        config, body = body_builder(settings, len(names))
        generator = torch.Generator().manual_seed(settings["seed"])

        def batches(index: int):
            rows = torch.randint(len(train), (settings["batch_size"],), generator=generator)
            return train.images[rows], train.boxes[rows], train.labels[rows]

        def loss_fn(model: Detector, batch: tuple) -> torch.Tensor:
            images, boxes, labels = batch
            return detection_loss(*model(images), boxes, labels, gamma=settings["gamma"],
                                  box_weight=settings["box_weight"])  # fmt: skip

        def evaluate(model: Detector, batches: int | None = None) -> dict[str, float]:
            ap = average_precision(model, val)
            return {"map50": ap.map_50, "map": ap.map}

        def table(model: Detector) -> str:
            model.eval()
            return ap_table(average_precision(model, val), names)

        return TaskData(
            config=config,
            build=lambda: Detector(body(), len(names), settings["head_width"]),
            batches=batches,
            data_state=generator,
            evaluate=evaluate,
            loss_fn=loss_fn,
            eval_metric="map50",
            eval_mode="max",
            class_names=names,
            confusion=table,
        )

    build_task.__name__ = build_task.__qualname__ = task.replace("-", "_")
    return build_task


detect_shapes = _builder("detect-shapes")
detect_digits = _builder("detect-digits")
