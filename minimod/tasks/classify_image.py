"""``minimod classify``: ImageNet classes of photographs, with a real pretrained model in
minimod's own code -- MobileNetV2 with torchvision's ImageNet weights (``make real`` installs
them), each photo preprocessed as torchvision does (``data.images.imagenet_preprocess``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from minimod.data.images import imagenet_class_names, imagenet_preprocess, read_image
from minimod.models import mobilenet
from minimod.models.pretrained import MissingExtraError
from minimod.nn import functional as F
from minimod.tasks.common import UsageError
from minimod.tasks.run import one_line, pick_device

# --from NAME -> the function that builds the pretrained model.
MODELS = {"mobilenet_v2": mobilenet.from_pretrained}
IMAGENET_CLASSES = 1000


def load_images(paths: Sequence[str | Path]) -> torch.Tensor:
    """The files at ``paths``, preprocessed for ImageNet: (N, 3, 224, 224). One UsageError
    naming the first file that is missing or is not an image."""
    images = []
    for path in paths:
        try:
            images.append(imagenet_preprocess(read_image(path)))
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path}: is a folder, not an image") from None
        except OSError as error:  # PIL's "cannot identify image file", a truncated file, ...
            raise UsageError(f"{path}: not an image PIL can read ({one_line(error)})") from None
        except ImportError as error:
            raise UsageError(one_line(error)) from None
    return torch.stack(images)


def classify_images(
    paths: Sequence[str | Path], model: str = "mobilenet_v2", top: int = 5, device: str = "cpu"
) -> list[list[tuple[str, float]]]:
    """For each image, its ``top`` most probable ImageNet classes as (name, probability), the
    most probable first."""
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if not 1 <= top <= IMAGENET_CLASSES:
        raise UsageError(f"--top must be between 1 and {IMAGENET_CLASSES}, got {top}")
    if not paths:
        raise UsageError("give at least one image")
    images = load_images(paths)
    target = pick_device(device)
    try:
        network = MODELS[model]().to(target)
    except MissingExtraError as error:
        raise UsageError(one_line(error)) from None
    with torch.no_grad():
        probabilities = F.softmax(network(images.to(target)), dim=-1).cpu()
    values, indices = probabilities.topk(top, dim=-1)
    names = imagenet_class_names()
    return [
        [(names[index], value) for index, value in zip(row.tolist(), scores.tolist(), strict=True)]
        for row, scores in zip(indices, values, strict=True)
    ]
