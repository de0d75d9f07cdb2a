"""``minimod pretrain cnn --task detect-shapes|detect-digits``, ``minimod finetune cnn --task
detect-digits`` (from mobilenet_v2 or a shapes run), ``minimod detect`` and ``minimod evaluate``
on a detection run, in subprocesses on the tiny preset (the digits and MobileNetV2's weights,
marked ``real``, need ``make real``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from console import assert_usage_error, minimod
from minimod.tasks import PRESETS, UsageError, pretrain
from minimod.tasks.finetune import finetune
from minimod.tasks.run import evaluate_run

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("detect") / "run"
    done = minimod("pretrain", "cnn", "--task", "detect-shapes", "--max-steps", "4",
                   "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "held-out map50" in done.stdout and ", map " in done.stdout
    assert "@[.5:.95]" in done.stdout and "triangle" in done.stdout  # the per-class AP table
    assert "next: minimod detect --from" in done.stdout
    return run


def test_pretrain_detect_shapes_writes_a_run(shapes_run):
    record = json.loads((shapes_run / "run.json").read_text())
    assert record["task"] == "detect-shapes" and record["settings"]["max_steps"] == 4
    assert set(record["final"]) == {"map50", "map"}
    assert (shapes_run / "best.pt").is_file() and (shapes_run / "last.pt").is_file()
    done = minimod("evaluate", "--from", str(shapes_run))
    assert done.returncode == 0, done.stderr
    assert "map50" in done.stdout and "mean" in done.stdout


def test_detect_held_out_draws_a_png(shapes_run, tmp_path):
    out = tmp_path / "held-out.png"
    done = minimod("detect", "--from", str(shapes_run), "--held-out", "3", "--out", str(out),
                   "--score-threshold", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("held-out ") == 3 and "mAP@0.5" in done.stdout
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_detect_image_files(shapes_run, tmp_path):
    from PIL import Image

    picture = tmp_path / "scene.png"
    Image.new("RGB", (80, 50), (40, 40, 40)).save(picture)
    out = tmp_path / "found.png"
    done = minimod("detect", "--from", str(shapes_run), str(picture), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{picture}: " in done.stdout and "picture:" in done.stdout
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_bad_input_is_one_line(shapes_run, tmp_path):
    run = str(shapes_run)
    assert_usage_error(minimod("detect", "--from", run), "image files or --held-out")
    assert_usage_error(minimod("detect", "--from", run, "x.png", "--held-out", "2"), "not both")
    assert_usage_error(minimod("detect", "--from", run, "missing.png"), "no such file")
    assert_usage_error(minimod("detect", "--from", run, "--held-out", "2",
                               "--score-threshold", "2"), "--score-threshold")  # fmt: skip
    assert_usage_error(minimod("detect", "--from", str(tmp_path), "--held-out", "1"),
                       "not a run folder")  # fmt: skip
    assert_usage_error(minimod("pretrain", "gpt", "--task", "detect-shapes"), "is for cnn")
    assert_usage_error(minimod("pretrain", "cnn", "--init", run), "--init is for")


@pytest.mark.real
def test_detect_digits_from_the_shapes_run(shapes_run, tmp_path):
    run = tmp_path / "digits"
    done = minimod("pretrain", "cnn", "--task", "detect-digits", "--init", str(shapes_run),
                   "--max-steps", "2", "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout and "held-out map50" in done.stdout
    report = (run / "load_report.txt").read_text()
    assert str(shapes_run.resolve()) in report and "loaded 36 tensors" in report
    assert json.loads((run / "run.json").read_text())["init"] == str(shapes_run.resolve())
    skipped = [line for line in report.splitlines() if line.startswith("  skipped")]
    assert skipped and all(line.startswith("  skipped head.") for line in skipped)  # the body fits
    out = tmp_path / "digits.png"
    done = minimod("detect", "--from", str(run), "--held-out", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "task", ["detect-shapes", pytest.param("detect-digits", marks=pytest.mark.real)]
)
@pytest.mark.parametrize("preset", ["tiny", "baby", "small"])
def test_every_detection_preset_builds_and_trains_a_step(task, preset, tmp_path, monkeypatch):
    """Each preset wired up (on a few images) and trained one step with a batch of 2."""
    small = {"n_train": 4, "n_val": 2}
    monkeypatch.setitem(PRESETS[task], preset, {**PRESETS[task][preset], **small})
    summary = pretrain(task, preset, max_steps=1, batch_size=2, out=tmp_path, device="cpu",
                       progress=False, log=lambda _: None)  # fmt: skip
    assert summary["step"] == 1 and set(summary["final"]) == {"map50", "map"}
    config = summary["model"].body.config
    for key, value in PRESETS[task][preset]["model"].items():
        assert getattr(config, key) == value, key


# -- finetune cnn --task detect-digits ----------------------------------------------------------
def finetune_digits(source: str, out: Path, *more: str):
    return minimod("finetune", "cnn", "--from", source, "--task", "detect-digits",
                   "--max-steps", "2", "--labels", "8", "--out", str(out), "--device", "cpu",
                   *more)  # fmt: skip


@pytest.mark.real
def test_finetune_detect_digits_from_mobilenet_v2(tmp_path):
    run = tmp_path / "imagenet"
    done = finetune_digits("mobilenet_v2", run, "--freeze", "body")
    assert done.returncode == 0, done.stderr
    assert "test map50" in done.stdout and "@[.5:.95]" in done.stdout
    assert "next: minimod detect --from" in done.stdout
    record = json.loads((run / "run.json").read_text())
    assert record["source"] == "mobilenet_v2" and record["options"]["freeze"] == "body"
    assert record["settings"]["body"] == "mobilenet_v2" and record["settings"]["n_train"] == 8
    assert set(record["test"]) == set(record["final"]) == {"map50", "map"}
    report = (run / "load_report.txt").read_text()
    assert report.startswith("--from mobilenet_v2") and "skipped classifier.1.weight" in report
    # the linear probe: only the head trains (two 3×3 convolutions on 32 channels, two 1×1)
    head = 2 * (32 * 16 * 9 + 16) + (16 * 11 + 11) + (16 * 4 + 4)
    trainable, total = re.search(r"([\d,]+) of ([\d,]+) parameters train", done.stdout).groups()
    assert int(trainable.replace(",", "")) == head < int(total.replace(",", ""))
    out = tmp_path / "digits.png"
    done = minimod("detect", "--from", str(run), "--held-out", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "mAP@0.5" in done.stdout and out.read_bytes().startswith(PNG_MAGIC)
    # what `minimod evaluate` reads (in this process: one interpreter start less)
    assert set(evaluate_run(run)[1]) == {"map50", "map"}


@pytest.mark.real
def test_finetune_detect_digits_from_the_shapes_run(shapes_run, tmp_path):
    run = tmp_path / "from-shapes"
    done = finetune_digits(str(shapes_run), run, "--layer-decay", "0.8")
    assert done.returncode == 0, done.stderr
    record = json.loads((run / "run.json").read_text())
    shapes = json.loads((shapes_run / "run.json").read_text())
    assert record["source"] == str(shapes_run.resolve())
    assert record["settings"]["model"] == shapes["settings"]["model"]  # the source's body
    assert record["options"]["layer_decay"] == 0.8
    report = (run / "load_report.txt").read_text()
    assert report.startswith(f"--from {shapes_run.resolve()}") and "loaded 36 tensors" in report


def test_finetune_detect_digits_refusals(shapes_run, tmp_path):
    out = tmp_path / "never"
    for options, words in (({"loss": "focal"}, "its own focal"),
                           ({"sampler": "weighted"}, "--sampler"), ({"lora_rank": 2}, "LoRA"),
                           ({"class_weights": "auto"}, "--class-weights"),
                           ({"pooling": "mean"}, "--head")):  # fmt: skip
        with pytest.raises(UsageError, match=words):
            finetune("cnn", "scratch", "detect-digits", out=out, **options)
    with pytest.raises(UsageError, match="finetune cnn"):
        finetune("gpt", "scratch", "detect-digits", out=out)
    with pytest.raises(UsageError, match="not a run folder"):
        finetune("cnn", str(tmp_path), "detect-digits", out=out)
    assert not out.exists()
    assert_usage_error(minimod("lr-find", "cnn", "--from", str(shapes_run), "--task",
                               "detect-digits"), "lr-find")  # fmt: skip
