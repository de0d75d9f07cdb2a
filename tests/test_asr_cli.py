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


@pytest.mark.real
def test_asr_espeak_hears_the_synthesiser_features(tmp_path):
    """The judge of `speak`: eSpeak's digit strings as 80 log-mel bands, held out by text."""
    run = tmp_path / "judge"
    done = minimod("pretrain", "audio", "--task", "asr-espeak", "--max-steps", "2",
                   "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "config.json").read_text())["model"]["n_features"] == 80
    done = minimod("transcribe", "--from", str(run), "--held-out", "2")
    assert done.returncode == 0, done.stderr
    said = [line.split("said:")[1].split() for line in done.stdout.splitlines() if "said:" in line]
    assert len(said) == 2 and all(1 <= len(words) <= 7 for words in said)


@pytest.mark.parametrize(
    "task",
    ["asr", *(pytest.param(t, marks=pytest.mark.real) for t in ("asr-digits", "asr-espeak"))],
)
@pytest.mark.parametrize("preset", ["tiny", "baby", "small"])
def test_every_asr_preset_builds_and_trains_a_step(task, preset, tmp_path, monkeypatch):
    """baby and small are too slow to train here: a step with a batch of 2, 4 held out."""
    small = {"n_val": 4, **({} if task == "asr-digits" else {"n_train": 8})}
    monkeypatch.setitem(PRESETS[task], preset, {**PRESETS[task][preset], **small})
    summary = pretrain(task, preset, max_steps=1, batch_size=2, out=tmp_path, device="cpu",
                       progress=False, log=lambda _: None)  # fmt: skip
    assert summary["step"] == 1 and set(summary["final"]) == {"wer", "cer", "loss"}
    config = summary["model"].config
    for key, value in PRESETS[task][preset]["model"].items():
        assert getattr(config, key) == value, key


def test_transcribe_reads_a_feature_file(asr_run, tmp_path):
    """--features: one utterance (frames, 40) or a batch (N, frames, 40) of the run's log-mel
    bands, as .pt or .npy; anything else is refused in one line naming the shape it needs."""
    import numpy
    import torch

    batch = tmp_path / "batch.pt"
    torch.save(torch.randn(3, 50, 40), batch)
    done = minimod("transcribe", "--from", str(asr_run), "--features", str(batch))
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["0", "1", "2"]
    single = tmp_path / "one.npy"
    numpy.save(single, numpy.random.default_rng(0).normal(size=(30, 40)).astype("float32"))
    done = minimod("transcribe", "--from", str(asr_run), "--features", str(single), "--beam", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0: ")
    wrong = tmp_path / "wrong.pt"
    torch.save(torch.randn(30, 13), wrong)
    assert_usage_error(
        minimod("transcribe", "--from", str(asr_run), "--features", str(wrong)), "(frames, 40)"
    )
    (tmp_path / "notes.txt").write_text("hello")
    assert_usage_error(
        minimod("transcribe", "--from", str(asr_run), "--features", str(tmp_path / "notes.txt")),
        ".pt or .npy",
    )


def test_features_and_spec_augment_options(tmp_path):
    """asr takes --features mfcc (13 per frame: what asr-digits fine-tuning needs) and
    --spec-augment (off in the tiny preset); both land in run.json. Other models refuse
    --spec-augment."""
    run = tmp_path / "mfcc"
    done = minimod("pretrain", "audio", "--task", "asr", "--features", "mfcc", "--spec-augment",
                   "--max-steps", "1", "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["settings"]["features"] == "mfcc" and record["settings"]["spec_augment"] is True
    assert json.loads((run / "config.json").read_text())["model"]["n_features"] == 13
    assert_usage_error(
        minimod("pretrain", "gpt", "--spec-augment", "--out", str(tmp_path / "g")),
        "--spec-augment is for the speech-recognition tasks",
    )
    assert_usage_error(
        minimod(
            "pretrain",
            "audio",
            "--task",
            "asr-digits",
            "--features",
            "log_mel",
            "--out",
            str(tmp_path / "d"),
        ),  # fmt: skip
        "--features is for audio's keywords and asr tasks",
    )


@pytest.mark.real
def test_finetune_asr_digits_from_an_asr_run(tmp_path):
    """finetune audio --task asr-digits from an asr run with MFCCs: every tensor but the head
    loads (the head is re-made for ten digits), it trains with CTC, picks best.pt by the val WER
    and reports the test WER; transcribe and evaluate read the fine-tune run."""
    source = tmp_path / "asr-mfcc"
    done = minimod("pretrain", "audio", "--task", "asr", "--features", "mfcc",
                   "--max-steps", "2", "--out", str(source))  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = tmp_path / "ft"
    done = minimod("finetune", "audio", "--from", str(source), "--task", "asr-digits",
                   "--max-steps", "3", "--labels", "40", "--out", str(run))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "test wer" in done.stdout
    report = (run / "load_report.txt").read_text()
    assert "skipped head.weight: shape (9, " in report and "(11, " in report
    assert "initialised: head.weight, head.bias" in report
    record = json.loads((run / "run.json").read_text())
    assert record["settings"]["n_train"] == 40 and set(record["test"]) == {"wer", "cer", "loss"}
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "wer" in json.dumps(metrics)
    done = minimod("transcribe", "--from", str(run), "--held-out", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("said:") == 2
    done = minimod("evaluate", "--from", str(run))
    assert done.returncode == 0, done.stderr and "wer" in done.stdout


@pytest.mark.real
def test_finetune_asr_digits_refusals(asr_run, tmp_path):
    """A log-mel recogniser, a keyword classifier and classification options are refused in
    one line each; a recogniser cannot become a classifier."""
    out = str(tmp_path / "ft")
    assert_usage_error(
        minimod("finetune", "audio", "--from", str(asr_run), "--task", "asr-digits", "--out", out),
        "--features mfcc",
    )
    keywords = tmp_path / "keywords"
    done = minimod("pretrain", "audio", "--max-steps", "1", "--out", str(keywords))
    assert done.returncode == 0, done.stderr
    assert_usage_error(
        minimod("finetune", "audio", "--from", str(keywords), "--task", "asr-digits", "--out", out),
        "fine-tunes a speech recogniser",
    )
    assert_usage_error(
        minimod("finetune", "audio", "--from", str(asr_run), "--task", "keywords", "--out", out),
        "not as a classifier",
    )
    assert_usage_error(
        minimod(
            "finetune",
            "audio",
            "--from",
            "scratch",
            "--task",
            "asr-digits",
            "--class-weights",
            "auto",
            "--out",
            out,
        ),  # fmt: skip
        "--class-weights is for the classification tasks",
    )
    assert_usage_error(
        minimod(
            "finetune",
            "audio",
            "--from",
            "scratch",
            "--task",
            "asr-digits",
            "--labels",
            "100000",
            "--out",
            out,
        ),  # fmt: skip
        "recordings, not 100000",
    )
