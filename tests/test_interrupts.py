"""Interrupts and concurrency: a stop request ends a run after a whole step with last.pt saved
(minimod.train.interrupt, the Trainer's loop), Ctrl-C / SIGTERM through the real console script
(one line, exit 130, an exact resume), and one process per run folder (run.lock)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from console import SCRIPT, assert_usage_error, minimod
from minimod import nn, optim
from minimod.nn import functional as F
from minimod.tasks import UsageError
from minimod.tasks.demo import RUNS, fresh_folders
from minimod.tasks.runlock import LOCK_FILE, run_folder_lock
from minimod.train import TrainConfig, Trainer, load_checkpoint, seed_everything
from minimod.train.interrupt import Interrupted, StopRequest, stop_on_signals

pytestmark = pytest.mark.reference_only


# -- the stop request in the Trainer (fast) ------------------------------------------------------
def regression(max_steps: int = 10, out_dir: Path | None = None, **changes) -> Trainer:
    """A tiny seeded regression Trainer: 1-feature Linear, SGD, a fixed stream of batches."""
    seed_everything(0)
    model = nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, generator=generator), torch.randn(4, 1, generator=generator))]
    settings = dict(max_steps=max_steps, log_every=1, progress=False, device="cpu")
    out = None if out_dir is None else str(out_dir)
    config = TrainConfig(**{**settings, **changes}, out_dir=out)
    return Trainer(
        model, optim.SGD(model.parameters(), lr=0.1), batches, config,
        loss_fn=lambda m, batch: F.mse_loss(m(batch[0]), batch[1]),
    )  # fmt: skip


def request_at(step: int, reason: str = "test"):
    """A callback (run before each step) that asks to stop before ``step`` runs: the loop then
    finishes that step and stops after it."""

    def callback(trainer: Trainer) -> None:
        if trainer.step == step:
            trainer.stop.request(reason)

    return callback


def test_stop_request_finishes_the_step_saves_and_raises(tmp_path):
    trainer = regression(out_dir=tmp_path, checkpoint_every=0)
    trainer.callbacks.append(request_at(3, "SIGINT"))
    with pytest.raises(Interrupted) as raised:
        trainer.fit()
    assert raised.value.step == trainer.step == 4  # step index 3 is the 4th step
    assert raised.value.checkpoint == tmp_path / "last.pt" and raised.value.reason == "SIGINT"
    assert str(raised.value) == f"interrupted at step 4: saved {tmp_path / 'last.pt'}"
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4  # checkpoint_every=0: only on stop
    assert [row["step"] for row in trainer.history] == [1, 2, 3, 4]
    trainer = regression(log_every=5)
    trainer.callbacks.append(request_at(6))
    with pytest.raises(Interrupted):
        trainer.fit()
    assert [row["step"] for row in trainer.history] == [5, 7]  # and a row where it stopped


def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(tmp_path):
    straight = regression()
    straight.fit()
    interrupted = regression(out_dir=tmp_path)
    interrupted.callbacks.append(request_at(5))
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = regression(out_dir=tmp_path)
    assert resumed.fit(resume_from=tmp_path / "last.pt").step == 10
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_stop_without_a_run_folder_and_on_the_last_step():
    trainer = regression(max_steps=3)
    trainer.callbacks.append(request_at(2))
    with pytest.raises(Interrupted, match="at step 3: no run folder, nothing saved"):
        trainer.fit()
    assert regression(max_steps=3).fit().step == 3  # no request: fit returns as before


def test_stop_request_keeps_its_first_reason():
    stop = StopRequest()
    assert not stop.requested and stop.reason is None
    stop.request("SIGTERM")
    stop.request("SIGINT")
    assert stop.requested and stop.reason == "SIGTERM"


def test_stop_on_signals_sets_the_flag_then_aborts_and_restores_the_handlers():
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    stop = StopRequest()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered before the next bytecode runs
        assert stop.reason == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {number: signal.getsignal(number) for number in before} == before


def test_stop_on_signals_outside_the_main_thread_installs_nothing():
    before, seen = signal.getsignal(signal.SIGINT), []

    def worker() -> None:
        with stop_on_signals(StopRequest()):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before]


# -- one process per run folder (fast) -----------------------------------------------------------
def test_a_run_folder_lock_refuses_a_second_holder_and_is_released(tmp_path):
    run = tmp_path / "run"
    with run_folder_lock(run):
        assert (run / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        (run / "last.pt").write_bytes(b"")  # something written: the folder stays
        with pytest.raises(UsageError, match=f"{run} is in use: another process \\(pid "):
            with run_folder_lock(run):
                pass
    with run_folder_lock(run):  # released on leaving the block
        pass


def test_a_run_folder_lock_leaves_no_trace_of_a_run_that_wrote_nothing(tmp_path):
    with pytest.raises(UsageError, match="bad input"):
        with run_folder_lock(tmp_path / "new"):
            raise UsageError("bad input")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        with run_folder_lock(tmp_path / "file"):
            pass


def test_the_demo_never_overwrites_an_earlier_demo(tmp_path):
    first = fresh_folders(tmp_path)
    assert first == {run: tmp_path / f"demo-{run}" for run in RUNS}
    first["finetune-scratch"].mkdir()  # an earlier demo, even a partial one
    second = fresh_folders(tmp_path)
    assert second == {run: tmp_path / f"demo-{run}-2" for run in RUNS}
    second["gpt"].mkdir()
    assert fresh_folders(tmp_path)["bert"] == tmp_path / "demo-bert-3"


# -- through the console script (slow) -----------------------------------------------------------
def start(*args: str) -> subprocess.Popen:
    """``minimod ARGS`` started in the background, one thread, output captured."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "minimod"]
    return subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def wait_for(condition, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll until ``condition()`` holds; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def logged_rows(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


STEPS = ("--max-steps", "200", "--device", "cpu")  # ~2 s of tiny GPT steps


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    done = minimod("pretrain", "gpt", *STEPS, "--out", str(run))
    assert done.returncode == 0, done.stderr
    return run


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_says_how_to_resume_and_the_resume_is_exact(tmp_path, straight_run, signum):
    run = tmp_path / "run"
    process = start("pretrain", "gpt", *STEPS, "--out", str(run))
    wait_for(lambda: len(logged_rows(run)) >= 2, process)  # a few steps are done
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    step = load_checkpoint(run / "last.pt")["step"]
    assert 20 <= step < 200
    assert line.startswith(f"interrupted at step {step}: saved {run / 'last.pt'}; continue with: ")
    command = shlex.split(line.split("continue with: ")[1])
    assert command == ["minimod", "pretrain", "gpt", *STEPS, "--out", str(run), "--resume"]
    resumed = minimod(*command[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert "done: step 200," in resumed.stdout
    a, b = (load_checkpoint(folder / "last.pt") for folder in (straight_run, run))
    assert a["step"] == b["step"] == 200
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    for name, value in a["optimizer"]["state"].items():
        for key, tensor in value.items():
            assert torch.equal(
                torch.as_tensor(tensor), torch.as_tensor(b["optimizer"]["state"][name][key])
            )
    # The same evaluations; the interrupted run also logged a row at the step it stopped.
    rows = [logged_rows(folder) for folder in (straight_run, run)]
    evals = [[row for row in run_rows if "eval_loss" in row] for run_rows in rows]
    assert evals[0] == evals[1]
    assert step in [row["step"] for row in rows[1] if "loss" in row]


@pytest.mark.slow
def test_a_second_signal_aborts_at_once(tmp_path):
    run = tmp_path / "run"
    # Steps of ~0.3 s: both signals arrive within one step, before any checkpoint (step 30).
    process = start("pretrain", "gpt", *STEPS, "--batch-size", "1024", "--out", str(run))
    wait_for(lambda: (run / "config.json").is_file(), process)  # fit has begun
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5, "the second Ctrl-C did not stop the run at once"
    assert process.returncode == 130, out + err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("minimod pretrain: aborted")
    assert not (run / "last.pt").exists()  # the step never finished: nothing was saved
    assert not list(run.glob(".*.tmp")), "no half-written file is left"


@pytest.mark.slow
def test_one_process_per_run_folder_and_a_crash_releases_it(tmp_path):
    run = tmp_path / "run"
    args = ("pretrain", "gpt", "--device", "cpu", "--out", str(run))
    first = start(*args, "--max-steps", "100000")
    try:
        # Training, with a checkpoint written (every 30 steps at the tiny preset).
        wait_for(lambda: any("eval_loss" in row for row in logged_rows(run)), first)
        second = minimod(*args, "--max-steps", "100000")
        assert_usage_error(second, str(run), "is in use", f"pid {first.pid}")
        assert first.poll() is None, "the first run goes on"
    finally:
        first.kill()  # kill -9: no clean-up runs, the OS drops the lock
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    step = load_checkpoint(run / "last.pt")["step"] + 5
    again = minimod(*args, "--max-steps", str(step), "--resume")
    assert again.returncode == 0, again.stderr
    assert f"done: step {step}," in again.stdout
