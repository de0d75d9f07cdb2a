"""``minimod pretrain audio --task asr``, ``minimod transcribe`` and ``minimod evaluate`` on a
speech-recognition run, in a subprocess on the tiny synthetic path (and, marked ``real``, on the
connected spoken digits of ``make real``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import assert_usage_error, minimod
from minimod.tasks import PRESETS, pretrain

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]


@pytest.fixture(scope="module")
def asr_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("asr") / "run"
    done = minimod("pretrain", "audio", "--task", "asr", "--max-steps", "6", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert "held-out wer" in done.stdout and "next: minimod transcribe" in done.stdout
    return run


def test_pretrain_asr_writes_a_run(asr_run):
    record = json.loads((asr_run / "run.json").read_text())
    assert record["task"] == "asr" and record["settings"]["max_steps"] == 6
    assert set(record["final"]) >= {"wer", "cer", "loss"}
    assert (asr_run / "last.pt").is_file()


def test_transcribe_and_evaluate_print_error_rates(asr_run):
    done = minimod("transcribe", "--from", str(asr_run), "--held-out", "3", "--beam", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("said:") == 3 and done.stdout.count("heard:") == 3
    assert "3 held-out utterances (beam 4): WER" in done.stdout and "CER" in done.stdout
    done = minimod("evaluate", "--from", str(asr_run))
    assert done.returncode == 0, done.stderr
    assert "wer" in done.stdout and "cer" in done.stdout


def test_resume_continues_the_run(asr_run, tmp_path):
    done = minimod("pretrain", "audio", "--task", "asr", "--out", str(asr_run), "--resume",
                   "--max-steps", "8")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "done: step 8" in done.stdout


def test_bad_input_is_one_line(asr_run, tmp_path):
    assert_usage_error(minimod("pretrain", "cnn", "--task", "asr"), "--task asr is for audio")
    assert_usage_error(minimod("transcribe", "--from", str(tmp_path)), "not a run folder")
    assert_usage_error(minimod("transcribe", "--from", str(asr_run), "--beam", "0"), "--beam")
    assert_usage_error(
        minimod("pretrain", "audio", "--task", "asr", "--data", "x.txt", "--out", str(tmp_path)),
        "--data",
    )


@pytest.mark.real
def test_asr_digits_trains_and_transcribes(tmp_path):
    run = tmp_path / "digits"
    done = minimod(
        "pretrain", "audio", "--task", "asr-digits", "--max-steps", "3", "--out", str(run)
    )
    assert done.returncode == 0, done.stderr
    done = minimod("transcribe", "--from", str(run), "--held-out", "2")
    assert done.returncode == 0, done.stderr
    said = [line.split("said:")[1].split() for line in done.stdout.splitlines() if "said:" in line]
    assert len(said) == 2 and all(1 <= len(words) <= 7 for words in said)


@pytest.mark.parametrize("task", ["asr", pytest.param("asr-digits", marks=pytest.mark.real)])
@pytest.mark.parametrize("preset", ["tiny", "baby", "small"])
def test_every_asr_preset_builds_and_trains_a_step(task, preset, tmp_path, monkeypatch):
    """baby and small are too slow to train here: a step with a batch of 2, 4 held out."""
    small = {"n_val": 4, **({"n_train": 8} if task == "asr" else {})}
    monkeypatch.setitem(PRESETS[task], preset, {**PRESETS[task][preset], **small})
    summary = pretrain(task, preset, max_steps=1, batch_size=2, out=tmp_path, device="cpu",
                       progress=False, log=lambda _: None)  # fmt: skip
    assert summary["step"] == 1 and set(summary["final"]) == {"wer", "cer", "loss"}
    config = summary["model"].config
    for key, value in PRESETS[task][preset]["model"].items():
        assert getattr(config, key) == value, key
