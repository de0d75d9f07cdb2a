"""Checkpoints (minimod.train.checkpoint): a full round trip, atomic writes, weights_only loading
that refuses code, clear errors, and a run killed with SIGKILL leaving a loadable checkpoint.

Lesson 18's tests reach the checkpoint functions through ``impl.checkpoint``; the tests of
minimod's own behaviour (reference_only) import them from minimod."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import impl
from minimod import nn, optim
from minimod.nn import functional as F
from minimod.train import (
    CheckpointError,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    seed_everything,
)
from minimod.train.checkpoint import FORMAT, VERSION, config_differences, to_plain

ROOT = Path(__file__).resolve().parent.parent


def mlp(seed: int) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3))


def trained_parts(seed: int):
    """Model, AdamW (with state after two steps), a schedule and a data generator."""
    model = mlp(seed)
    opt = optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    schedule = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=1, total_steps=10)
    data = torch.Generator().manual_seed(seed)
    for _ in range(2):
        x = torch.randn(5, 4, generator=data)
        F.cross_entropy(model(x), torch.randint(0, 3, (5,), generator=data)).backward()
        opt.step()
        opt.zero_grad()
        schedule.step()
    return model, opt, schedule, data


def test_round_trip_restores_every_part(tmp_path):
    model, opt, schedule, data = trained_parts(seed=0)
    config = {"model": {"widths": (4, 8)}, "train": {"out_dir": tmp_path}}
    torch.manual_seed(42)
    random.seed(42)
    impl.checkpoint.save_checkpoint(
        impl.checkpoint.make_checkpoint(2, model, opt, schedule, data, config), tmp_path / "c.pt"
    )
    after_save = torch.rand(3), random.random(), torch.rand(2, generator=data)

    model2, opt2, schedule2, data2 = trained_parts(seed=1)  # different everything
    torch.manual_seed(7)
    checkpoint = impl.checkpoint.load_checkpoint(tmp_path / "c.pt")
    assert impl.checkpoint.restore_checkpoint(checkpoint, model2, opt2, schedule2, data2) == 2
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"model entry {name} was not restored"
    assert repr(opt2.state_dict()) == repr(opt.state_dict())
    assert schedule2.state_dict() == schedule.state_dict()
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95)
    # The generators continue exactly where they were when the checkpoint was written.
    after_restore = torch.rand(3), random.random(), torch.rand(2, generator=data2)
    assert torch.equal(after_save[0], after_restore[0]) and after_save[1] == after_restore[1]
    assert torch.equal(after_save[2], after_restore[2])
    assert checkpoint["config"] == {
        "model": {"widths": [4, 8]},
        "train": {"out_dir": str(tmp_path)},
    }
    assert (checkpoint["format"], checkpoint["version"]) == (FORMAT, VERSION)


def test_a_checkpoint_loads_with_weights_only(tmp_path):
    model, opt, schedule, data = trained_parts(seed=0)
    impl.checkpoint.save_checkpoint(
        impl.checkpoint.make_checkpoint(2, model, opt, schedule, {"train": data}), tmp_path / "c.pt"
    )
    checkpoint = torch.load(tmp_path / "c.pt", weights_only=True)
    assert checkpoint["step"] == 2 and isinstance(checkpoint["data"]["train"], torch.Tensor)


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path, monkeypatch):
    model, opt, _, _ = trained_parts(seed=0)
    path = tmp_path / "last.pt"
    impl.checkpoint.save_checkpoint(impl.checkpoint.make_checkpoint(1, model, opt), path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    real_save = torch.save

    def crash_halfway(obj, file):
        real_save(obj, file)
        file.truncate(10)  # half a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        impl.checkpoint.save_checkpoint(impl.checkpoint.make_checkpoint(2, model, opt), path)
    survivor = "the previous checkpoint must survive a crash mid-save: write a temporary file "
    survivor += "in the same folder, fsync it, then os.replace it onto the path"
    try:
        step = impl.checkpoint.load_checkpoint(path)["step"]
    except Exception as error:
        raise AssertionError(f"{survivor} ({type(error).__name__}: {error})") from error
    assert step == 1, survivor
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class Evil:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.reference_only  # load_checkpoint is given in lesson 18: nothing to write there
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, writer):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    payload = {"format": FORMAT, "version": VERSION, "model": Evil(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists(), "loading ran the code in the pickle"
    # The payload is live: an unsafe load runs it. weights_only=True is what refused it.
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.reference_only
def test_unsafe_values_are_refused_when_saving(tmp_path):
    model, opt, _, _ = trained_parts(seed=0)
    checkpoint = make_checkpoint(1, model, opt)
    checkpoint["trainer"] = {"callback": print}
    with pytest.raises(CheckpointError, match=r"checkpoint\.trainer\.callback is a builtin"):
        save_checkpoint(checkpoint, tmp_path / "c.pt")
    checkpoint["trainer"] = {"weights": [nn.Parameter(torch.ones(2))]}
    with pytest.raises(CheckpointError, match=r"weights\[0\] is a Parameter.*detach"):
        save_checkpoint(checkpoint, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()
    with pytest.raises(TypeError, match="cannot store a object"):
        to_plain({"x": object()})


@pytest.mark.reference_only
def test_foreign_newer_and_broken_files_fail_clearly(tmp_path):
    torch.save(mlp(0).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a minimod training checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
    torch.save({"format": FORMAT, "version": VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "new.pt")
    model, opt, _, _ = trained_parts(seed=0)
    save_checkpoint(make_checkpoint(1, model, opt), tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "cut.pt")


@dataclass
class SmallConfig:
    n_embd: int = 16
    widths: tuple[int, ...] = (1, 2)


@pytest.mark.reference_only
def test_config_differences_names_each_differing_key():
    saved = {"model": SmallConfig(), "train": {"max_steps": 10, "seed": 0}}
    same = {"model": SmallConfig(), "train": {"max_steps": 20, "seed": 0}}
    assert config_differences(saved, same, ignore=("train.max_steps",)) == []
    other = {"model": SmallConfig(n_embd=32, widths=(1, 3)), "train": {"seed": 0, "extra": 1}}
    assert config_differences(saved, other, ignore=("train.max_steps",)) == [
        "model.n_embd (checkpoint 16, now 32)",
        "model.widths (checkpoint [1, 2], now [1, 3])",
        "train.extra (checkpoint absent, now 1)",
    ]


SCRIPT = """
    import sys
    import torch
    from minimod import nn, optim
    from minimod.nn import functional as F
    from minimod.train import TrainConfig, Trainer, seed_everything

    seed_everything(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3))

    def next_batch(index):
        g = torch.Generator().manual_seed(index)
        return torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)

    config = TrainConfig(max_steps=10**9, checkpoint_every=1, log_every=1, out_dir=sys.argv[1],
                         device="cpu", progress=False)
    loss_fn = lambda m, b: F.cross_entropy(m(b[0]), b[1])
    Trainer(model, optim.AdamW(model.parameters()), next_batch, config, loss_fn=loss_fn).fit()
"""


@pytest.mark.reference_only  # the killed process runs minimod's own Trainer
def test_a_run_killed_with_sigkill_leaves_a_loadable_checkpoint(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script), str(run)], env=env)
    try:
        deadline, step = time.monotonic() + 60, 0
        while step < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
            if (run / "last.pt").exists():
                step = load_checkpoint(run / "last.pt")["step"]  # readable at every moment
        assert step >= 3, f"no checkpoint past step 3 (exit code {process.poll()})"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["step"] >= 3
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3))
    restore_checkpoint(checkpoint, model, optim.AdamW(model.parameters()))
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert len(rows) >= checkpoint["step"], "metric rows up to the checkpoint were flushed"
