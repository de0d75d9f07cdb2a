"""``minimod pretrain / generate / evaluate / demo``, run for real in a subprocess on tiny
configs: a run end to end (pretrain, generate, evaluate, resume), and every kind of bad input
giving one plain line on stderr and exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from console import assert_usage_error, minimod
from minimod.tasks import PRESETS, plot_losses, pretrain
from minimod.tasks.lm import fill_mask
from minimod.train.checkpoint import load_checkpoint
from minimod.train.loop import Trainer

pytestmark = pytest.mark.reference_only
TEXT = (
    "The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
    "Every module has parameters, and every parameter has a gradient.\n"
) * 30  # ~5 KB: enough for the tiny preset's block of 32 in the held-out 10%


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, corpus) -> tuple[Path, subprocess.CompletedProcess]:
    """A tiny GPT pretrained for 4 steps through the console script."""
    run = tmp_path_factory.mktemp("runs") / "gpt"
    done = minimod("pretrain", "gpt", "--data", str(corpus), "--max-steps", "4", "--out", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    return run, done


@pytest.mark.slow
def test_help_explains_every_command_and_default():
    top = minimod("--help").stdout
    for command in ("pretrain", "evaluate", "generate", "demo", "exercises", "transcribe", "speak"):
        assert command in top
    text = minimod("pretrain", "--help").stdout
    for words in (
        "{gpt,bert,cnn,audio,tts}",
        "--corpus {digits,sentences,keywords}",
        "--spec-augment, --no-spec-augment",
        "--preset {tiny,baby,small}",
        "default: tiny",
        "--resume",
        "--compile",
        "--overfit-batch",
        "--use-mine",
        "nanoGPT",
    ):
        assert words in text, words


@pytest.mark.slow
def test_pretrain_generate_evaluate_resume(gpt_run, corpus):
    run, done = gpt_run
    for name in ("run.json", "tokenizer.json", "last.pt", "best.pt", "metrics.csv"):
        assert (run / name).is_file(), name
    summary = done.stdout.strip().splitlines()
    assert any(line.startswith("done: step 4, held-out loss") for line in summary), done.stdout
    assert "ms/step" in done.stdout and f"minimod generate --from {run}" in done.stdout
    # `make test` installs the plot extra: the loss curves are drawn (without matplotlib a
    # one-line hint replaces them: test_missing_matplotlib_gives_a_hint).
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss curves: {run / 'loss.png'}" in done.stdout

    sample = minimod("generate", "--from", str(run), "--prompt", "The ", "--max-new-tokens", "20")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("The ") and len(sample.stdout) == 4 + 20 + 1  # + print's \n
    assert set(sample.stdout) <= set(TEXT), "every character comes from the run's vocabulary"

    evaluated = minimod("evaluate", "--from", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "held-out batches: loss" in evaluated.stdout and "perplexity" in evaluated.stdout

    resumed = minimod(
        "pretrain", "gpt", "--data", str(corpus), "--max-steps", "6", "--out", str(run), "--resume"
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "done: step 6," in resumed.stdout
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 6


@pytest.mark.slow
def test_a_crashed_run_resumes_to_the_uninterrupted_result_bit_for_bit(tmp_path, monkeypatch):
    """pretrain 12 steps straight; pretrain again, crash after step 9 (last.pt is from step 6),
    resume: the final weights, optimizer state and logged losses are identical."""
    common = dict(data=str(tmp_path / "corpus.txt"), device="cpu", progress=False)
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    settings = {"eval_every": 6, "max_steps": 12}
    monkeypatch.setitem(PRESETS["gpt"], "tiny", {**PRESETS["gpt"]["tiny"], **settings})
    pretrain("gpt", out=tmp_path / "straight", log=lambda _: None, **common)

    step = Trainer.train_step

    def crash_after_step_9(self):
        if self.step == 9:
            raise KeyboardInterrupt("simulated crash")
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", crash_after_step_9)
    with pytest.raises(KeyboardInterrupt):
        pretrain("gpt", out=tmp_path / "crashed", log=lambda _: None, **common)
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")["step"] == 6
    monkeypatch.setattr(Trainer, "train_step", step)
    pretrain("gpt", out=tmp_path / "crashed", resume=True, log=lambda _: None, **common)

    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "crashed" / "last.pt")
    assert a["step"] == b["step"] == 12
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][index][key])
            )
    rows = [
        (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        for run in ("straight", "crashed")
    ]
    losses = [[json.loads(r).get("loss") for r in run_rows] for run_rows in rows]
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_compile_trains_like_eager(tmp_path):
    """--compile (torch.compile of the forward) changes speed, not what is learned: the same
    losses as eager up to float rounding."""
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    common = dict(data=str(tmp_path / "corpus.txt"), device="cpu", progress=False, max_steps=5)
    eager = pretrain("gpt", out=tmp_path / "eager", log=lambda _: None, **common)
    compiled = pretrain("gpt", out=tmp_path / "compiled", compile=True, log=lambda _: None,
                        **common)  # fmt: skip
    assert compiled["final"]["loss"] == pytest.approx(eager["final"]["loss"], rel=1e-4)
    for name, value in eager["model"].state_dict().items():
        torch.testing.assert_close(
            compiled["model"].state_dict()[name], value, rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("task", ["gpt", "bert", "cnn", "audio"])
@pytest.mark.parametrize("preset", ["tiny", "baby", "small"])
@pytest.mark.slow
def test_every_preset_builds_and_trains_a_step(task, preset, tmp_path, monkeypatch):
    """The baby and small presets are too slow to train here; wire each one up and run a
    single step with a batch of 2 (and few evaluation batches / examples)."""
    small = {"final_eval_batches": 2, "eval_batches": 2}
    if task in ("cnn", "audio"):
        small.update(n_train=8, n_val=8)
    monkeypatch.setitem(PRESETS[task], preset, {**PRESETS[task][preset], **small})
    summary = pretrain(task, preset, max_steps=1, batch_size=2, out=tmp_path, device="cpu",
                       progress=False, log=lambda _: None)  # fmt: skip
    assert summary["step"] == 1
    settings = PRESETS[task][preset]["model"]
    config = summary["model"].config
    for key, value in settings.items():
        assert getattr(config, key) == value, key


@pytest.mark.slow
def test_classifier_runs_report_accuracy_and_confusion_matrix(tmp_path):
    run = tmp_path / "cnn"
    done = minimod("pretrain", "cnn", "--max-steps", "2", "--out", str(run), "--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "held-out accuracy" in done.stdout and "macro_f1" in done.stdout
    evaluated = minimod("evaluate", "--from", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy" in evaluated.stdout and "true\\pred" in evaluated.stdout
    assert "circle" in evaluated.stdout  # the matrix is labelled with the class names
    assert_usage_error(minimod("generate", "--from", str(run)), "generate needs a gpt run")


@pytest.mark.slow
def test_audio_and_bert_in_process(tmp_path, capsys):
    audio = pretrain("audio", max_steps=2, out=tmp_path / "audio", device="cpu", progress=False)
    assert set(audio["final"]) == {"accuracy", "macro_f1"} and "true\\pred" in audio["confusion"]
    bert = pretrain("bert", max_steps=2, out=tmp_path / "bert", device="cpu", progress=False)
    assert bert["final"]["loss"] > 0 and bert["final"]["batches"] == 8
    guesses = fill_mask(bert["model"], bert["tokenizer"], "the plot was [MASK].")
    assert len(guesses) == 1 and len(guesses[0]) == 3


def test_missing_matplotlib_gives_a_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    hint = plot_losses(tmp_path)
    assert "matplotlib is not installed" in hint and "minimod[plot]" in hint
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["pretrain", "gpt", "--data", "{tmp}/nowhere.txt"], ["no corpus file", "nowhere.txt"]),
        (["pretrain", "gpt", "--data", "{tmp}/empty.txt"], ["empty.txt is empty"]),
        (["pretrain", "gpt", "--preset", "huge"], ["invalid choice: 'huge'"]),
        (["pretrain", "transformer"], ["invalid choice: 'transformer'"]),
        (["pretrain", "gpt", "--max-steps", "0"], ["--max-steps", "must be ≥ 1"]),
        (["pretrain", "gpt", "--batch-size", "-3"], ["--batch-size", "must be ≥ 1"]),
        (["pretrain", "gpt", "--lr", "0"], ["--lr", "must be > 0"]),
        (["pretrain", "cnn", "--data", "{tmp}/empty.txt"], ["--data is for gpt and bert"]),
        (["pretrain", "gpt", "--data", "{tmp}/short.txt"], ["too short"]),
        (["evaluate", "--from", "{tmp}"], ["not a run folder"]),
        (["generate", "--from", "{tmp}/nothing"], ["not a run folder"]),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_line_and_status_2(tmp_path, args, words):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("too short for a block of 32 characters" * 3)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert_usage_error(minimod(*args, "--device", "cpu"), *words)


@pytest.mark.slow
def test_bad_runs_are_one_line_and_status_2(gpt_run, corpus, tmp_path):
    run, _ = gpt_run
    corrupt = shutil.copytree(run, tmp_path / "corrupt")
    data = (corrupt / "last.pt").read_bytes()
    (corrupt / "last.pt").write_bytes(data[: len(data) // 2])  # a checkpoint cut short
    assert_usage_error(minimod("evaluate", "--from", str(corrupt)), "cannot read checkpoint")

    mismatched = shutil.copytree(run, tmp_path / "mismatched")
    record = json.loads((mismatched / "run.json").read_text())
    record["settings"]["model"]["n_embd"] = 64
    (mismatched / "run.json").write_text(json.dumps(record))
    assert_usage_error(minimod("generate", "--from", str(mismatched)), "does not match")

    other = shutil.copytree(run, tmp_path / "other")
    done = minimod("pretrain", "gpt", "--data", str(corpus), "--lr", "0.01", "--out", str(other))
    assert_usage_error(done, "already holds a run", "--resume")
    done = minimod(
        "pretrain", "gpt", "--data", str(corpus), "--lr", "0.01", "--out", str(other), "--resume"
    )
    assert_usage_error(done, "cannot resume", "lr (run 0.003, now 0.01)")
    done = minimod("generate", "--from", str(run), "--prompt", "ünïcode", "--top-p", "0.9")
    assert_usage_error(done, "the prompt cannot be encoded")
    assert_usage_error(minimod("generate", "--from", str(run), "--max-new-tokens", "0"), "≥ 1")


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    done = minimod("demo", "--max-steps", "2", "--out", str(tmp_path), "--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    for words in (
        "before training:",
        "after 2 steps:",
        "[MASK] =",
        "minimod generate --from",
        "pretrained BERT + new head",
        "same BERT from scratch",
        "test accuracy",
    ):
        assert words in done.stdout, words
    assert (tmp_path / "demo-gpt" / "last.pt").is_file()
    assert (tmp_path / "demo-bert" / "tokenizer.json").is_file()
