"""The synthetic shapes: tensors of the documented shapes and ranges, boxes that tightly contain
the shape's pixels (found independently, by the documented brightness gap), the right geometry
per class, balanced classes, determinism; and the on-disk data cache they use."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minimod.data import cache as C
from minimod.data import shapes as S

seeds = st.integers(0, 2**32 - 1)
sizes = st.sampled_from([8, 9, 16, 31, 32, 64])
class_sets = st.lists(st.sampled_from(S.SHAPE_NAMES), min_size=1, unique=True).map(tuple)
# Documented: background ≤ 0.25 + 0.08 noise; the shape's brightest channel ≥ 0.7 - 0.08.
THRESHOLD = (0.25 + 0.08 + 0.7 - 0.08) / 2


def reference_box(pixels: np.ndarray) -> list[float]:
    """Tight pixel-edge box of a (H, W) bool array, over the side."""
    rows, cols = np.nonzero(pixels)
    h, w = pixels.shape
    return [cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h]


@given(seed=seeds, size=sizes, classes=class_sets)
def test_tensors_ranges_and_tight_boxes(seed, size, classes):
    n = 12
    data = S.make_shapes(n, seed, size, classes)
    assert data.images.shape == (n, 3, size, size) and data.images.dtype == torch.float32
    assert data.labels.shape == (n,) and data.labels.dtype == torch.int64
    assert data.boxes.shape == (n, 4) and data.masks.shape == (n, size, size)
    assert data.class_names == classes and len(data) == n
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert 0 <= data.labels.min() and data.labels.max() < len(classes)
    # Shape pixels, found from the image alone: the brightest channel is above the gap.
    pixels = data.images.amax(dim=1) > THRESHOLD
    assert torch.equal(pixels, data.masks), "the masks are not the bright pixels of the images"
    for i in range(n):
        assert pixels[i].any(), f"image {i} has no shape pixels"
        expected = torch.tensor(reference_box(pixels[i].numpy()), dtype=data.boxes.dtype)
        torch.testing.assert_close(data.boxes[i], expected, rtol=0, atol=1e-6)
    # The shape lies wholly inside: it never touches two opposite borders at once.
    x0, y0, x1, y1 = data.boxes.unbind(1)
    assert ((x1 - x0) < 1).all() and ((y1 - y0) < 1).all()


def test_class_geometry():
    data = S.make_shapes(300, 1, 32)
    for i in range(len(data)):
        name = data.class_names[data.labels[i]]
        x0, y0, x1, y1 = (data.boxes[i] * 32).round().int().tolist()
        crop = data.masks[i, y0:y1, x0:x1]
        h, w = crop.shape
        fill = crop.float().mean().item()
        middle_row, middle_col = crop[h // 2], crop[:, w // 2]
        corners = crop[0, 0] | crop[0, -1] | crop[-1, 0] | crop[-1, -1]
        if name == "square":
            assert fill == 1.0 and abs(h - w) <= 1, f"square {i} is not a filled square"
        elif name == "circle":
            assert abs(fill - math.pi / 4) < 0.12 and not corners, f"circle {i}: fill {fill}"
        elif name == "ring":
            assert not crop[h // 2, w // 2] and fill < 0.6, f"ring {i} has a filled centre"
        elif name == "triangle":
            width = crop.sum(dim=1)
            assert width[0] < width[-1] and crop[-1].all(), f"triangle {i} is not apex-up"
        elif name in ("cross", "diamond"):
            spans = middle_row.sum() >= w - 2 and middle_col.sum() >= h - 2  # ±1 pixel at tips
            assert spans and not corners, f"{name} {i} does not span its box through the middle"
            assert (fill < 0.65) if name == "cross" else (abs(fill - 0.5) < 0.15)


def test_classes_balanced_and_positions_sizes_vary():
    data = S.make_shapes(601, 2, 32)
    counts = torch.bincount(data.labels, minlength=len(S.SHAPE_NAMES))
    assert counts.max() - counts.min() <= 1
    widths = data.boxes[:, 2] - data.boxes[:, 0]
    centres = (data.boxes[:, 0] + data.boxes[:, 2]) / 2
    assert widths.std() > 0.05 and centres.std() > 0.08
    assert centres.min() < 0.35 and centres.max() > 0.65


def test_deterministic_for_a_seed():
    a, b, c = S.make_shapes(20, 5), S.make_shapes(20, 5), S.make_shapes(20, 6)
    for name in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.images, c.images)
    assert len(S.make_shapes(0, 1)) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        S.make_shapes(2, 0, size=7)
    with pytest.raises(ValueError, match="unknown shapes"):
        S.make_shapes(2, 0, classes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="distinct"):
        S.make_shapes(2, 0, classes=("circle", "circle"))


# -- the cache (minimod/data/cache.py) --------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_saves_once_then_loads(cache_dir, monkeypatch):
    first = S.make_shapes(30, 4, 16, ("circle", "cross"), cache=True)
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"shapes-v{S.VERSION}-")
    assert torch.load(files[0], weights_only=True)["labels"].shape == (30,)

    def fail(*args):
        raise AssertionError("regenerated instead of loading the cached file")

    S.make_shapes(30, 5, 16, ("circle", "cross"), cache=True)  # another seed: another file
    assert len(list(cache_dir.iterdir())) == 2
    monkeypatch.setattr(S, "_draw", fail)
    again = S.make_shapes(30, 4, 16, ("circle", "cross"), cache=True)
    assert again.class_names == ("circle", "cross")
    for name in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(first, name), getattr(again, name))


def test_cache_key_and_default_folder(cache_dir, monkeypatch):
    one = C.cache_path("x", 1, {"a": 1, "b": [1, 2]})
    assert one == C.cache_path("x", 1, {"b": [1, 2], "a": 1})  # argument order does not matter
    assert one.parent == cache_dir
    others = [C.cache_path("x", 2, {"a": 1, "b": [1, 2]}), C.cache_path("x", 1, {"a": 2})]
    assert len({one, *others, C.cache_path("y", 1, {"a": 1, "b": [1, 2]})}) == 4
    monkeypatch.delenv(C.CACHE_ENV)
    monkeypatch.setenv("HOME", "/somewhere")
    assert C.cache_dir() == Path("/somewhere/.cache/minimod")


def test_cache_writes_atomically_and_replaces_unreadable_files(cache_dir, monkeypatch):
    path = C.cache_path("t", 1, {})
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    made = C.cached("t", 1, {}, lambda: {"x": torch.arange(3)})
    assert torch.equal(made["x"], torch.arange(3))
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))
    # A failed write leaves neither the file nor a temporary behind.
    monkeypatch.setattr(C.torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError):
        C.save_atomic({"x": 1}, cache_dir / "other.pt")
    assert sorted(os.listdir(cache_dir)) == [path.name]
