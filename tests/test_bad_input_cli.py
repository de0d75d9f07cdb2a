"""A hostile user's command lines: every bad input is one plain line on stderr and exit status 2
(never a traceback, never a wrong success), refused as a class by shared checks."""

from __future__ import annotations

import ast
import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from minimod.cli import main
from tests.console import assert_usage_error, minimod

PACKAGE = Path(__file__).resolve().parents[1] / "minimod"


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory) -> Path:
    """One tiny one-step gpt run, shared by this module's tests (copy it before changing it)."""
    run = tmp_path_factory.mktemp("bad-input") / "gpt"
    # in-process: the fast tests share it too
    assert main(["pretrain", "gpt", "--max-steps", "1", "--out", str(run), "--device", "cpu"]) == 0
    return run


@pytest.mark.parametrize(
    "args, words",
    [
        (["pretrain", "gpt", "--lr", "nan"], ["--lr", "finite"]),
        (["pretrain", "gpt", "--lr", "inf"], ["--lr", "finite"]),
        (["finetune", "bert", "--from", "scratch", "--task", "sentiment", "--lora-alpha", "inf"],
         ["--lora-alpha", "finite"]),
        (["lr-find", "bert", "--from", "scratch", "--task", "sentiment", "--end-lr", "inf"],
         ["--end-lr", "finite"]),
        (["lr-find", "bert", "--from", "scratch", "--task", "sentiment", "--steps", "1"],
         ["--steps", "≥ 2"]),
        (["finetune", "bert", "--from", "scratch", "--task", "sentiment", "--layer-decay", "1.5"],
         ["--layer-decay", "(0, 1]"]),
        (["pretrain", "gpt", "--seed", str(2**64)], ["--seed", "64 bits"]),
        (["pretrain", "gpt", "--out", ""], ["--out", "empty"]),
        (["pretrain", "gpt", "--out", "/proc/minimod-run"], ["--out", "cannot write in /proc"]),
        (["pretrain", "gpt", "--out", "{tmp}/file.txt/run"], ["--out", "which is a file"]),
        (["demo", "--out", "{tmp}/file.txt"], ["--out", "is a file"]),
        (["lr-find", "bert", "--from", "scratch", "--task", "sentiment", "--out", "{tmp}/file.txt"],
         ["--out", "is a file"]),
        (["finetune", "bert", "--from", "scratch", "--task", "sentiment", "--freeze", "*",
          "--max-steps", "1", "--out", "{tmp}/frozen"], ["--freeze", "nothing would train"]),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_bad_options_are_one_line_and_status_2(tmp_path, args, words):
    (tmp_path / "file.txt").write_text("not a folder")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert_usage_error(minimod(*args, "--device", "cpu"), *words)


def test_read_only_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "locked").mkdir(mode=0o555)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root writes into read-only folders: make the probe meet what anyone else would
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr("minimod.cli.common.tempfile.TemporaryFile", refuse)
    with pytest.raises(SystemExit) as exited:  # argparse's exit for a bad option value
        main(["pretrain", "gpt", "--out", str(tmp_path / "locked" / "run")])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "cannot write in" in lines[0], lines
    assert not (tmp_path / "locked" / "run").exists()


def _copy(run: Path, where: Path) -> Path:
    return shutil.copytree(run, where)


@pytest.mark.slow
def test_bad_run_folders_are_one_line_and_status_2(gpt_run, tmp_path):
    shapeless = _copy(gpt_run, tmp_path / "shapeless")
    (shapeless / "run.json").write_text("[1, 2]")
    assert_usage_error(minimod("generate", "--from", str(shapeless)), "corrupt", "a list")

    keyless = _copy(gpt_run, tmp_path / "keyless")
    record = json.loads((keyless / "run.json").read_text())
    del record["preset"]
    (keyless / "run.json").write_text(json.dumps(record))
    assert_usage_error(minimod("evaluate", "--from", str(keyless)), "corrupt", "'preset'")

    untokenized = _copy(gpt_run, tmp_path / "untokenized")
    (untokenized / "tokenizer.json").write_text('{"type":')
    resume = ("pretrain", "gpt", "--max-steps", "2", "--resume", "--device", "cpu", "--out")
    assert_usage_error(minimod(*resume, str(untokenized)), "cannot read tokenizer.json")

    # last.pt from another preset: its config says so (and its shapes differ)
    other = _copy(gpt_run, tmp_path / "other")
    checkpoint = torch.load(other / "last.pt", weights_only=True)
    checkpoint["config"]["model"]["n_layer"] = 2
    checkpoint["model"]["transformer.wte.weight"] = torch.zeros(3, 3)
    torch.save(checkpoint, other / "last.pt")
    assert_usage_error(minimod(*resume, str(other)), "last.pt does not match the model")
    done = minimod("finetune", "gpt", "--from", str(other), "--task", "sentiment")
    assert_usage_error(done, "does not match", "n_layer (checkpoint 2, now 1)")

    diverged = _copy(gpt_run, tmp_path / "diverged")
    checkpoint = torch.load(diverged / "last.pt", weights_only=True)
    checkpoint["model"]["lm_head.weight"][0, 0] = float("nan")
    torch.save(checkpoint, diverged / "last.pt")
    assert_usage_error(minimod("generate", "--from", str(diverged)), "non-finite weights")

    pickled = _copy(gpt_run, tmp_path / "pickled")
    torch.save({"format": "minimod-checkpoint", "model": Path("x")}, pickled / "last.pt")
    done = minimod("generate", "--from", str(pickled))
    assert_usage_error(done, "holds something other than tensors and plain data: refusing")
    assert "weights_only" not in done.stderr


def _pretrain_in_process(run: Path, *extra: str) -> int:
    return main(["pretrain", "gpt", "--max-steps", "2", "--out", str(run), "--device", "cpu",
                 *extra])  # fmt: skip


def test_disk_full_while_checkpointing_keeps_the_old_checkpoint(gpt_run, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    run = _copy(gpt_run, tmp_path / "full")
    before = (run / "last.pt").read_bytes()

    def full(obj, file, *args, **kwargs):
        file.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write: no file name

    monkeypatch.setattr(torch, "save", full)
    assert _pretrain_in_process(run, "--resume") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "No space left on device" in error[0] and str(run) in error[0]
    assert (run / "last.pt").read_bytes() == before  # the write is atomic: the old one survives


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_a_batch_too_large_for_memory_is_one_line(tmp_path, capsys, monkeypatch, error):
    from minimod.train.loop import Trainer

    def step(self):
        raise error

    monkeypatch.setattr(Trainer, "train_step", step)
    assert _pretrain_in_process(tmp_path / "oom", "--batch-size", "4096") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "a batch of 4096 at preset tiny does not fit in memory" in lines[0]


def test_divergence_is_one_line_naming_the_step_and_causes(tmp_path, capsys, monkeypatch):
    from minimod.train.loop import Trainer

    real_step = Trainer.train_step

    def diverging(self):
        row = real_step(self)
        return {**row, "loss": row["loss"] * float("nan")} if self.step >= 1 else row

    monkeypatch.setattr(Trainer, "train_step", diverging)
    assert _pretrain_in_process(tmp_path / "nan") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "step 2" in lines[0], lines
    for cause in ("learning rate", "fp16", "data"):
        assert cause in lines[0]


def _messages(tree: ast.AST):
    """The string literals (and f-string constant parts) that reach raise X(...) or print(...)."""
    for node in ast.walk(tree):
        call = None
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            call = node
        if call is None or not call.args:
            continue
        message = call.args[0]
        while isinstance(message, ast.BinOp):  # "a" + b: the end is what the user sees last
            message = message.right
        if isinstance(message, ast.Constant) and isinstance(message.value, str):
            yield node.lineno, message.value
        elif isinstance(message, ast.JoinedStr) and message.values:
            last = message.values[-1]
            if isinstance(last, ast.Constant) and isinstance(last.value, str):
                yield node.lineno, last.value


def test_no_error_message_ends_in_a_bare_colon():
    bare = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in _messages(ast.parse(path.read_text(encoding="utf-8")))
        if text.rstrip(" ").endswith(":")
    ]
    assert not bare, "messages ending in a colon (say what follows):\n" + "\n".join(bare)


def test_evaluate_refuses_metrics_that_are_not_numbers(gpt_run, capsys, monkeypatch):
    # as a BERT run on text of which it knows no token: no masked token to score, loss nan
    from minimod.tasks import run

    nan = float("nan")
    monkeypatch.setattr(run, "final_metrics", lambda *args: {"loss": nan, "perplexity": nan})
    assert main(["evaluate", "--from", str(gpt_run)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "loss and perplexity" in lines[0] and "not numbers" in lines[0]
