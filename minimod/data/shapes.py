"""Synthetic images of simple shapes, with class labels and bounding boxes: a small, exactly
labelled set for image classification and box regression (detection of one object). Drawn by
this code, not photographed.

Each image has one shape, wholly inside the canvas, at a random position and size, in a random
bright colour, on a dark background of uniform noise:
- background: a grey level in [0, 0.25] per image, plus noise uniform in [-0.08, 0.08] per pixel
  and channel;
- shape: a colour whose brightest channel is in [0.7, 1], plus the same noise; so a pixel
  belongs to the shape exactly when its brightest channel is above 0.475 (a gap of 0.29).
Shapes are drawn with tensor ops: a grid of pixel centres, shifted and scaled into each shape's
own frame (u, v in [-1, 1] across its bounding square), then a mask per class (circle:
u² + v² ≤ 1, square: max(|u|, |v|) ≤ 1, ...). Boxes are computed from the drawn masks, so they are
tight: (x_min, y_min, x_max, y_max) in [0, 1], the outer pixel edges of the shape divided by the
image side. Labels cycle through the classes and are then shuffled, so classes are balanced
(counts differ by at most one). Seeded with a torch.Generator: the same arguments give the same
tensors on every run (of one torch version).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minimod.data.cache import cached

VERSION = 1  # bump when the images change, so cached copies are not reused
BACKGROUND_MAX, NOISE, COLOUR_MIN = 0.25, 0.08, 0.7


# Each shape as a test on the points (u, v) of its own frame: its bounding square is [-1, 1]²
# with v pointing down, as image rows do.
MASKS = {
    "circle": lambda u, v: u**2 + v**2 <= 1,
    "square": lambda u, v: torch.maximum(u.abs(), v.abs()) <= 1,
    # apex at the top (v = -1), base along the bottom (v = 1)
    "triangle": lambda u, v: (v.abs() <= 1) & (u.abs() <= (v + 1) / 2),
    "cross": lambda u, v: ((u.abs() <= 1) & (v.abs() <= 0.3)) | ((u.abs() <= 0.3) & (v.abs() <= 1)),
    "diamond": lambda u, v: u.abs() + v.abs() <= 1,
    "ring": lambda u, v: (u**2 + v**2 <= 1) & (u**2 + v**2 >= 0.55**2),
}
SHAPE_NAMES = tuple(MASKS)


@dataclass
class ShapesData:
    """images (N, 3, H, W) float in [0, 1]; labels (N,) int64 indices into class_names;
    boxes (N, 4) float (x_min, y_min, x_max, y_max) in [0, 1]; masks (N, H, W) bool, the
    shape's pixels."""

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def make_shapes(
    n: int,
    seed: int = 0,
    size: int = 32,
    classes: tuple[str, ...] | None = None,
    cache: bool = False,
) -> ShapesData:
    """``n`` synthetic images ``size`` × ``size`` (8..64) of the shapes ``classes`` (default:
    all of ``SHAPE_NAMES``). ``cache=True`` keeps the result in the data cache
    (``minimod.data.cache``) and loads it from there next time."""
    classes = tuple(SHAPE_NAMES if classes is None else classes)
    if not 8 <= size <= 64:
        raise ValueError(f"make_shapes: size must be in 8..64, got {size}")
    if n < 0 or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"make_shapes: need n ≥ 0 and distinct classes, got {n}, {classes}")
    unknown = [name for name in classes if name not in MASKS]
    if unknown:
        raise ValueError(f"make_shapes: unknown shapes {unknown}; known: {', '.join(MASKS)}")
    if not cache:
        return _draw(n, seed, size, classes)
    params = dict(n=n, seed=seed, size=size, classes=list(classes))
    data = cached("shapes", VERSION, params, lambda: _as_dict(_draw(n, seed, size, classes)))
    return ShapesData(**{**data, "class_names": tuple(data["class_names"])})


def _as_dict(data: ShapesData) -> dict:
    return {**vars(data), "class_names": list(data.class_names)}


def _draw(n: int, seed: int, size: int, classes: tuple[str, ...]) -> ShapesData:
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % len(classes))[torch.randperm(n, generator=g)]
    # Half-side r in pixels, and a centre that keeps the bounding square inside the canvas.
    r_min, r_max = max(2.0, 0.15 * size), 0.4 * size
    r = r_min + (r_max - r_min) * torch.rand(n, generator=g)
    cx, cy = (r + (size - 2 * r) * torch.rand(2, n, generator=g)).unbind(0)
    centres = torch.arange(size) + 0.5  # pixel centres
    u = (centres[None, None, :] - cx[:, None, None]) / r[:, None, None]  # (N, 1, W)
    v = (centres[None, :, None] - cy[:, None, None]) / r[:, None, None]  # (N, H, 1)
    u, v = u.expand(n, size, size), v.expand(n, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for k, name in enumerate(classes):
        chosen = labels == k
        masks[chosen] = MASKS[name](u[chosen], v[chosen])

    colour = torch.rand(n, 3, generator=g)
    brightest = COLOUR_MIN + (1 - COLOUR_MIN) * torch.rand(n, 1, generator=g)
    colour = colour / colour.amax(dim=1, keepdim=True) * brightest  # (N, 3)
    grey = BACKGROUND_MAX * torch.rand(n, 1, 1, 1, generator=g)
    noise = NOISE * (2 * torch.rand(n, 3, size, size, generator=g) - 1)
    images = torch.where(masks[:, None], colour[:, :, None, None], grey) + noise
    return ShapesData(images.clamp(0, 1), labels, _tight_boxes(masks), masks, classes)


def _tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Masks (N, H, W) -> the pixel-edge boxes (N, 4) around their True pixels, over the side."""
    n, h, w = masks.shape
    cols, rows = masks.any(dim=1), masks.any(dim=2)  # (N, W), (N, H)
    x = torch.arange(w).expand(n, w)
    y = torch.arange(h).expand(n, h)
    x_min = torch.where(cols, x, w).amin(dim=1)
    x_max = torch.where(cols, x + 1, 0).amax(dim=1)
    y_min = torch.where(rows, y, h).amin(dim=1)
    y_max = torch.where(rows, y + 1, 0).amax(dim=1)
    return torch.stack([x_min / w, y_min / h, x_max / w, y_max / h], dim=1)
