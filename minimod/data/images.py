"""Photographs for ImageNet classifiers: reading a file, and torchvision's classic ImageNet
preprocessing written with tensor ops.

    read_image(path)                 a PNG/JPEG/... -> uint8 (3, H, W), RGB (PIL decodes it)
    imagenet_preprocess(image)       -> float32 (3, 224, 224), what the ImageNet weights expect:
        short_side_size(.., 256)     the short side to 256, the aspect ratio kept
        center_window(.., 224)       the middle 224×224 of that (only it is computed)
        / 255, then (x − mean) / std with ImageNet's channel means and deviations
    imagenet_class_names()           the 1000 class names, in the classifier's output order

``resize`` is PIL's bilinear resampling, which torchvision uses on PIL images: separable (one axis,
then the other), and antialiased -- when shrinking by a factor f the triangle filter is stretched
to cover f input pixels, so every input pixel counts (plain bilinear interpolation would read 2
of every f and alias). Each output pixel is then a weighted mean of the input pixels under the
filter: a matrix product per axis, ``weights_h @ image @ weights_w.T``. PIL computes in 8-bit
integers and rounds to uint8 after each axis; this is computed in float64, so it differs from
PIL's by at most one grey level (1/255) per pixel.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")


def read_image(path: str | Path) -> torch.Tensor:
    """The image file at ``path`` (any format PIL reads) as uint8 RGB (3, H, W). Raises
    FileNotFoundError, or OSError for a file that is not an image."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs pillow: pip install pillow") from None
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.view(rgb.height, rgb.width, 3).permute(2, 0, 1).contiguous()


def resize_weights(
    in_size: int, out_size: int, first: int = 0, count: int | None = None
) -> torch.Tensor:
    """(count, in_size) float64: row i holds the weights of the input pixels that make output
    pixel first + i of ``out_size`` (PIL's bilinear filter, antialiased when shrinking; each row
    sums to 1). By default every output pixel: count = out_size − first."""
    count = out_size - first if count is None else count
    scale = in_size / out_size
    stretch = max(scale, 1.0)  # shrinking by f: the triangle covers f input pixels each side
    outputs = torch.arange(first, first + count, dtype=torch.float64)
    centres = (outputs + 0.5) * scale  # in input pixels
    inputs = torch.arange(in_size, dtype=torch.float64) + 0.5
    distance = (inputs[None, :] - centres[:, None]) / stretch
    weights = (1.0 - distance.abs()).clamp_min(0.0)  # the triangle: 1 − |d| for |d| < 1
    return weights / weights.sum(1, keepdim=True)


def resize(
    image: torch.Tensor, size: tuple[int, int], window: tuple[int, int, int, int] | None = None
) -> torch.Tensor:
    """(..., H, W) -> (..., height, width) float64, ``size`` = (height, width): PIL's
    antialiased bilinear resampling, without its rounding to integers. ``window`` = (top, left,
    window height, window width): only that part of the resized image, computed alone (a crop
    of a large resize costs the crop's size)."""
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"resize: the size must be at least 1×1, got {height}×{width}")
    top, left, rows, columns = (0, 0, height, width) if window is None else window
    if top < 0 or left < 0 or top + rows > height or left + columns > width:
        raise ValueError(f"resize: window {window} does not fit in {height}×{width}")
    row_weights = resize_weights(image.shape[-2], height, top, rows)
    column_weights = resize_weights(image.shape[-1], width, left, columns)
    return row_weights @ image.to(torch.float64) @ column_weights.T


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """The (height, width) with the short side ``short`` and the long one ``short`` · long /
    short rounded down, as torchvision's ``Resize(short)``."""
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def center_window(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """(top, left, size, size): the middle ``size``×``size`` of a height×width image; an odd
    margin leaves the extra pixel where torchvision's ``CenterCrop`` does (Python's round of
    half the margin)."""
    if height < size or width < size:
        raise ValueError(f"center_window: a {height}×{width} image is smaller than {size}×{size}")
    return round((height - size) / 2), round((width - size) / 2), size, size


def imagenet_preprocess(image: torch.Tensor, resize_to: int = 256, crop: int = 224) -> torch.Tensor:
    """uint8 RGB (3, H, W) -> float32 (3, crop, crop): short side to ``resize_to``, centre crop,
    scaled to [0, 1], normalised with IMAGENET_MEAN / IMAGENET_STD per channel."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(
            f"imagenet_preprocess: expected an RGB image (3, H, W), got {tuple(image.shape)}"
        )
    size = short_side_size(image.shape[1], image.shape[2], resize_to)
    pixels = resize(image, size, window=center_window(*size, crop)) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)[:, None, None]
    return ((pixels - mean) / std).to(torch.float32)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names; name i is output i of an ImageNet classifier."""
    lines = CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]
