"""Classification pretraining on generated data: shapes (``cnn``, a ResNet) and spoken
keywords (``audio``, a 1-D CNN on log-mel features of the first five keywords). Both datasets
are synthetic and seeded: the training set uses seed 0, the held-out set seed 1, so
``evaluate`` rebuilds the same one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minimod.data import keyword_features, make_shapes
from minimod.data.audio import WORD_NAMES
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.nn import functional as F
from minimod.tasks.common import TaskData, UsageError, device_of
from minimod.train.metrics import classification_metrics, confusion_matrix, format_confusion_matrix

TRAIN_SEED, VAL_SEED = 0, 1
# Audio pretraining learns the first five keywords; fine-tuning (``minimod finetune audio
# --task keywords``) puts a new head on the body for the other three, from few examples.
PRETRAIN_WORDS, NEW_WORDS = WORD_NAMES[:5], WORD_NAMES[5:]


def _classifier(
    settings: dict[str, Any],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    class_names: tuple[str, ...],
    config: Any,
    build: Any,
) -> TaskData:
    batch_size = settings["batch_size"]
    generator = torch.Generator().manual_seed(settings["seed"])

    def batches(index: int):
        rows = torch.randint(len(train[1]), (batch_size,), generator=generator)
        return train[0][rows], train[1][rows]

    def predict(model: Any) -> torch.Tensor:
        device = device_of(model)
        chunks = val[0].split(256)
        return torch.cat([model(chunk.to(device)).argmax(-1).cpu() for chunk in chunks])

    def evaluate(model: Any, batches: int | None = None) -> dict[str, float]:
        return classification_metrics(predict(model), val[1], len(class_names))

    def confusion(model: Any) -> str:
        model.eval()
        with torch.no_grad():
            matrix = confusion_matrix(predict(model), val[1], len(class_names))
        return format_confusion_matrix(matrix, class_names)

    return TaskData(
        config=config,
        build=build,
        batches=batches,
        data_state=generator,
        evaluate=evaluate,
        loss_fn=lambda model, batch: F.cross_entropy(model(batch[0]), batch[1]),
        eval_metric="accuracy",
        eval_mode="max",
        class_names=class_names,
        confusion=confusion,
    )


def _no_data(data: str | None, task: str) -> None:
    if data is not None:
        raise UsageError(f"{task} trains on generated data; --data is for gpt and bert")


def cnn(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    _no_data(data, "cnn")
    size = settings["image_size"]
    train = make_shapes(settings["n_train"], seed=TRAIN_SEED, size=size)
    val = make_shapes(settings["n_val"], seed=VAL_SEED, size=size)
    config = ResNetConfig(in_channels=3, num_classes=len(train.class_names), **settings["model"])
    return _classifier(
        settings,
        (train.images, train.labels),
        (val.images, val.labels),
        train.class_names,
        config,
        lambda: ResNet(config),
    )


def audio(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    _no_data(data, "audio")
    kind = settings.get("features", "log_mel")  # 40 log-mel bands, or 13 MFCCs
    train = keyword_features(settings["n_train"], seed=TRAIN_SEED, kind=kind, words=PRETRAIN_WORDS)
    val = keyword_features(settings["n_val"], seed=VAL_SEED, kind=kind, words=PRETRAIN_WORDS)
    config = AudioCNNConfig(
        n_features=train.features.shape[-1], num_classes=len(train.word_names), **settings["model"]
    )
    return _classifier(
        settings,
        (train.features, train.labels),
        (val.features, val.labels),
        train.word_names,
        config,
        lambda: AudioCNN(config),
    )
