"""``minimod classify --from mobilenet_v2 IMAGE...``: MobileNetV2 with torchvision's ImageNet
weights, run in minimod's own code, names what is in scikit-image's sample photographs (a
subprocess, as a user runs it); bad input is one line and status 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from console import assert_usage_error, minimod

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
COFFEE = {"espresso", "cup", "coffee mug", "espresso maker"}


def _photos() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs scikit-image's sample photos: run `make real`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _top_classes(stdout: str) -> dict[str, list[str]]:
    """The printed table -> image path: its class names, most probable first."""
    table: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if not line.startswith(" "):
            table[line] = current = []
        else:  # "  1. tiger cat        14.5%"
            current.append(line.split(".", 1)[1].rsplit(None, 1)[0].strip())
    return table


@pytest.mark.real
def test_classify_names_the_cat_and_the_coffee():
    photos = _photos()
    chelsea, coffee = str(photos / "chelsea.png"), str(photos / "coffee.png")
    done = minimod("classify", "--from", "mobilenet_v2", chelsea, coffee)
    assert done.returncode == 0, done.stderr
    table = _top_classes(done.stdout)
    assert list(table) == [chelsea, coffee]
    assert all(len(names) == 5 for names in table.values()), done.stdout
    assert CATS & set(table[chelsea]), done.stdout
    assert COFFEE & set(table[coffee]), done.stdout
    assert done.stdout.splitlines()[1].endswith("%")


def test_a_missing_image_is_one_line(tmp_path):
    missing = tmp_path / "nothing.png"
    assert_usage_error(minimod("classify", "--from", "mobilenet_v2", str(missing)), str(missing))


def test_a_file_that_is_not_an_image_is_one_line(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    done = minimod("classify", "--from", "mobilenet_v2", str(text))
    assert_usage_error(done, str(text), "not an image")


def test_without_the_weights_package_it_says_make_real(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from minimod.cli import main
    from minimod.models import mobilenet

    photo = tmp_path / "grey.png"
    Image.new("RGB", (300, 260), (128, 128, 128)).save(photo)
    monkeypatch.setattr(mobilenet.importlib.util, "find_spec", lambda name: None)
    assert main(["classify", "--from", "mobilenet_v2", str(photo)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "make real" in lines[0], lines
