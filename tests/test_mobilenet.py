"""MobileNetV2 (minimod.models.mobilenet) against an independent torch.nn MobileNetV2, and the
ImageNet preprocessing (minimod.data.images) against PIL.

The reference: torchvision cannot be installed beside this project's torch (each torchvision
release pins one torch version, and the one matching ours is not installable here), so
``benchmarks.twins.TwinMobileNetV2`` is torchvision's model rewritten with torch.nn -- the same
module tree (``features``: Conv2dNormActivation-style Sequentials and InvertedResidual blocks with
``.conv``; ``classifier``: Dropout + Linear), hence the same state_dict keys -- and loaded with
the same weights. Logits agree within 1e-4 (float32, eval mode; measured ≈ 1e-5 on the real
weights and photos).

Preprocessing: torchvision resizes a PIL image with PIL's own BILINEAR resampling, which works
in 8-bit integers and rounds to uint8 after each axis; minimod's ``resize`` is the same filter
in float64 without the rounding. Two roundings of at most half a grey level each (the second
axis averages the first's errors with weights summing to 1) bound the difference by one grey
level, 1/255, which is what the photos reach; after normalisation (÷ std ≥ 0.224) that is
≤ 0.0176.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.twins import TwinMobileNetV2, twin_make_divisible
from minimod import nn
from minimod.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    center_window,
    imagenet_class_names,
    imagenet_preprocess,
    read_image,
    resize,
    short_side_size,
)
from minimod.models import mobilenet
from minimod.models.heads import FeatureClassifier
from minimod.models.mobilenet import MobileNetV2, MobileNetV2Config, _make_divisible
from minimod.models.pretrained import MissingExtraError

pytestmark = pytest.mark.reference_only

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
GREY_LEVEL = 1.0 + 1e-3  # PIL's two roundings to uint8 (see the module docstring), in 0..255


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Distinctive weights and batch-norm statistics (fresh ones are 0 / 1 everywhere)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.rand(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise)
            elif name.endswith("weight") and tensor.dim() == 1:  # batch norm's γ
                tensor.copy_(0.5 + noise)
            else:
                tensor.copy_((noise - 0.5) * 0.2)


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("width_mult", [0.35, 0.5, 0.75, 1.0, 1.3])
def test_state_dict_keys_and_shapes_are_torchvisions(width_mult):
    mine = MobileNetV2(MobileNetV2Config(width_mult=width_mult))
    twin = TwinMobileNetV2(width_mult=width_mult)
    ours = [(k, tuple(v.shape)) for k, v in mine.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in twin.state_dict().items()]
    assert ours == theirs
    assert mine.feature_dim == twin.last_channel


@pytest.mark.parametrize("value", [0.35 * 16, 0.35 * 24, 0.5 * 32, 0.75 * 96, 1.3 * 160, 3, 100])
def test_make_divisible_is_torchvisions(value):
    assert _make_divisible(value) == twin_make_divisible(value)


def test_table_shapes_for_a_224_image():
    model = MobileNetV2().eval()
    x = _images(1, 224, 0)
    shapes = []
    with torch.no_grad():
        for layer in model.features:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (32, 112, 112)
    # the last block of each row of the docstring's table
    assert [shapes[i] for i in (1, 3, 6, 10, 13, 16, 17)] == [
        (16, 112, 112),
        (24, 56, 56),
        (32, 28, 28),
        (64, 14, 14),
        (96, 14, 14),
        (160, 7, 7),
        (320, 7, 7),
    ]
    assert shapes[18:] == [(1280, 7, 7), (1280, 1, 1), (1280,)]
    residual = [i for i, block in enumerate(model.features[1:18], 1) if block.use_residual]
    assert residual == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


# -- equivalence with random weights --------------------------------------------------------


def test_random_weights_move_both_ways_and_give_the_same_logits():
    twin = TwinMobileNetV2(num_classes=10)
    _randomise(twin, 0)
    mine = MobileNetV2(MobileNetV2Config(num_classes=10))
    mine.load_state_dict(twin.state_dict())  # torch -> minimod, strictly
    x = _images(2, 48, 1)
    mine.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(mine(x), twin(x), rtol=1e-4, atol=1e-4)
    back = TwinMobileNetV2(num_classes=10)
    back.load_state_dict(mine.state_dict())  # minimod -> torch, strictly
    for key, value in twin.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_training_mode_forward_and_gradients_match():
    """Batch statistics, the running-statistics update and every parameter's gradient (no
    dropout, so both sides compute the same thing)."""
    twin = TwinMobileNetV2(num_classes=7, width_mult=0.5, dropout=0.0).double()
    _randomise(twin, 2)
    mine = MobileNetV2(MobileNetV2Config(num_classes=7, width_mult=0.5, dropout=0.0)).double()
    mine.load_state_dict(twin.state_dict())
    x = _images(2, 32, 3).double()
    ours, theirs = mine(x), twin(x)
    torch.testing.assert_close(ours, theirs)
    weights = torch.randn(
        ours.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )
    (ours * weights).sum().backward(), (theirs * weights).sum().backward()
    twin_parameters = dict(twin.named_parameters())
    for name, parameter in mine.named_parameters():
        torch.testing.assert_close(parameter.grad, twin_parameters[name].grad, msg=name)
    twin_state = twin.state_dict()
    for name, buffer in mine.state_dict().items():
        torch.testing.assert_close(buffer, twin_state[name], msg=name)


# -- features and head ----------------------------------------------------------------------


def test_features_and_feature_map():
    model = MobileNetV2(MobileNetV2Config(num_classes=5, width_mult=0.35)).eval()
    x = _images(2, 70, 5)
    with torch.no_grad():
        pooled, maps = model.features(x), model.feature_map(x)
        assert pooled.shape == (2, model.feature_dim) == (2, 1280)
        assert maps.shape == (2, 1280, 3, 3)  # 70 -> 35 -> 18 -> 9 -> 5 -> 3
        torch.testing.assert_close(pooled, maps.mean((2, 3)))
        torch.testing.assert_close(model(x), model.head(pooled))


def test_head_is_the_classifier_under_another_name():
    model = MobileNetV2(MobileNetV2Config(width_mult=0.35))
    assert model.head is model.classifier
    model.head = nn.Linear(model.feature_dim, 10)
    assert model.head is model.classifier and "head" not in dict(model.named_children())
    keys = [k for k in model.state_dict() if not k.startswith("features.")]
    assert keys == ["classifier.weight", "classifier.bias"]
    with torch.no_grad():
        assert model.eval()(_images(1, 32, 6)).shape == (1, 10)


def test_feature_classifier_drops_the_imagenet_head():
    body = MobileNetV2(MobileNetV2Config(width_mult=0.35))
    model = FeatureClassifier(body, num_classes=3)
    keys = list(model.state_dict())
    assert not [k for k in keys if k.startswith("body.classifier.1")]
    assert [k for k in keys if not k.startswith("body.features.")] == [
        "head.linear.weight",
        "head.linear.bias",
    ]
    with torch.no_grad():
        assert model.eval()(_images(2, 32, 7)).shape == (2, 3)


def test_a_checkpoint_that_does_not_fit_is_refused_with_the_table(tmp_path):
    twin = TwinMobileNetV2(num_classes=10, width_mult=0.5)
    path = tmp_path / "mobilenet.pth"
    torch.save(twin.state_dict(), path)
    with pytest.raises(RuntimeError, match=r"(?s)does not fit MobileNetV2.*classifier\.1\.weight"):
        mobilenet.from_pretrained(path)  # a width-1.0, 1000-class model


def test_missing_weights_package_says_make_real(monkeypatch):
    monkeypatch.setattr(mobilenet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match="make real"):
        mobilenet.mobilenet_v2_path()


# -- preprocessing --------------------------------------------------------------------------


def _pil_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 (3, H, W) -> PIL's BILINEAR resize, as torchvision's Resize does on PIL images."""
    from PIL import Image

    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    resized = np.array(pil.resize((width, height), Image.BILINEAR))
    return torch.from_numpy(resized).permute(2, 0, 1).double()


def _torchvision_pipeline(image: torch.Tensor) -> torch.Tensor:
    """torchvision's Resize(256), CenterCrop(224), ToTensor, Normalize, on a PIL image."""
    height, width = image.shape[1:]
    short, long = sorted((height, width))
    size = (256, int(256 * long / short))
    size = size if height <= width else size[::-1]
    resized = _pil_resize(image, *size)
    top, left = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    pixels = resized[:, top : top + 224, left : left + 224] / 255
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[:, None, None]
    return ((pixels - mean) / std).float()


@pytest.mark.parametrize("size", [(300, 451), (207, 301), (640, 256), (97, 120)])
def test_resize_is_pils_bilinear_within_one_grey_level(size):
    generator = torch.Generator().manual_seed(sum(size))
    smooth = torch.rand(3, size[0] // 8 + 1, size[1] // 8 + 1, generator=generator) * 255
    noise = torch.rand(3, *size, generator=generator) * 60
    image = (resize(smooth, size) * 0.8 + noise).round().clamp(0, 255).to(torch.uint8)
    for target in [(256, 384), (224, 224), (size[0] * 2, size[1] + 3), (31, 17)]:
        ours, pils = resize(image, target), _pil_resize(image, *target)
        assert ours.shape == pils.shape
        assert (ours - pils).abs().max() <= GREY_LEVEL, target


def test_a_window_is_that_part_of_the_whole_resize():
    image = torch.rand(2, 3, 90, 130, generator=torch.Generator().manual_seed(9)) * 255
    whole = resize(image, (64, 100))
    torch.testing.assert_close(resize(image, (64, 100), (5, 30, 40, 50)), whole[..., 5:45, 30:80])
    with pytest.raises(ValueError, match="does not fit"):
        resize(image, (64, 100), (30, 0, 40, 10))


def test_resize_weights_rows_are_averages():
    image = torch.full((1, 50, 70), 200, dtype=torch.uint8)
    torch.testing.assert_close(resize(image, (13, 111)), torch.full((1, 13, 111), 200.0).double())


def test_short_side_and_crop_follow_torchvision():
    assert short_side_size(300, 451, 256) == (256, 384)
    assert short_side_size(451, 300, 256) == (384, 256)
    assert center_window(9, 10, 4) == (2, 3, 4, 4)  # round(2.5) = 2, round(3.0) = 3
    assert center_window(256, 384, 224) == (16, 80, 224, 224)
    with pytest.raises(ValueError, match="smaller than 224×224"):
        center_window(200, 300, 224)
    with pytest.raises(ValueError, match=r"expected an RGB image \(3, H, W\)"):
        imagenet_preprocess(torch.zeros(1, 300, 300, dtype=torch.uint8))


def test_preprocessing_matches_torchvision_on_a_pil_image():
    image = torch.randint(0, 256, (3, 233, 317), generator=torch.Generator().manual_seed(8))
    image = image.to(torch.uint8)
    ours, theirs = imagenet_preprocess(image), _torchvision_pipeline(image)
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert (ours - theirs).abs().max() <= GREY_LEVEL / 255 / min(IMAGENET_STD)


def test_class_names():
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000
    assert (names[0], names[281], names[967], names[999]) == (
        "tench",
        "tabby",
        "espresso",
        "toilet tissue",
    )


# -- the real weights and photos (`make real`) ----------------------------------------------


def _photo(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs scikit-image's sample photos: run `make real`")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


@pytest.mark.real
def test_real_photos_preprocess_like_torchvision():
    for name in PHOTOS:
        image = read_image(_photo(name))
        ours, theirs = imagenet_preprocess(image), _torchvision_pipeline(image)
        assert ours.shape == theirs.shape == (3, 224, 224)
        assert (ours - theirs).abs().max() <= GREY_LEVEL / 255 / min(IMAGENET_STD), name


@pytest.mark.real
def test_imagenet_weights_give_the_reference_logits():
    mine = mobilenet.from_pretrained()
    twin = TwinMobileNetV2().eval()
    twin.load_state_dict(torch.load(mobilenet.mobilenet_v2_path(), weights_only=True))
    photos = torch.stack([imagenet_preprocess(read_image(_photo(name))) for name in PHOTOS])
    with torch.no_grad():
        ours, theirs = mine(photos), twin(photos)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)
    names = imagenet_class_names()
    assert names[ours[PHOTOS.index("chelsea.png")].argmax()] in (
        "tabby",
        "tiger cat",
        "Egyptian cat",
    )
    assert names[ours[PHOTOS.index("coffee.png")].argmax()] in ("espresso", "cup", "coffee mug")
