"""Training diagnostics (``minimod.train.diagnostics``, ``minimod diagnose``) on runs made
deliberately bad: each fault gives its warning, and a healthy run gives none.

The faults: a learning rate 100× too high, weights initialised without 1/√fan_in, a layer whose
output is detached from the loss, ReLUs killed by a large negative bias. The model is a small
MLP trained by the Trainer with the Diagnostics callback; the last test goes through the
command line (pretrain gpt --diagnostics, then diagnose).
"""

from __future__ import annotations

import json

import pytest
import torch

from console import assert_usage_error, minimod
from minimod import nn
from minimod.nn import functional as F
from minimod.optim import AdamW
from minimod.train.config import TrainConfig
from minimod.train.diagnostics import FILE, Diagnostics, read_rows, warnings
from minimod.train.loop import Trainer

pytestmark = pytest.mark.reference_only


class MLP(nn.Module):
    def __init__(self, depth: int = 4, width: int = 64, detach: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.Linear(16 if i == 0 else width, width) for i in range(depth)]
        )
        self.acts = nn.ModuleList([nn.ReLU() for _ in range(depth)])
        self.head = nn.Linear(width, 4)
        self.detach = detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (layer, act) in enumerate(zip(self.layers, self.acts, strict=True)):
            x = act(layer(x))
            if i == self.detach:  # the bug: everything below this layer stops learning
                x = x.detach()
        return self.head(x)


def loss(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def train(tmp_path=None, lr=1e-3, init_std=None, bias=None, detach=None, steps=40):
    torch.manual_seed(0)
    model = MLP(detach=detach)
    for layer in model.layers:
        if init_std is not None:  # no 1/sqrt(fan_in): the variance grows with every layer
            layer.weight.data.normal_(0.0, init_std)
        if bias is not None:
            layer.bias.data.fill_(bias)
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))

    def batches(index):
        x = torch.randn(64, 16, generator=g)
        return x, (x @ teacher).argmax(-1)

    watcher = Diagnostics(5, None if tmp_path == "keep" else tmp_path)
    config = TrainConfig(max_steps=steps, progress=False, log_every=10)
    optimizer = AdamW(model.parameters(), lr=lr)
    trainer = Trainer(model, optimizer, batches, config, loss_fn=loss, callbacks=[watcher])
    trainer.fit()
    watcher.model = model  # for the test that the watch leaves no trace
    return watcher.rows if tmp_path != "keep" else watcher


def test_a_healthy_run_gives_no_warning():
    rows = train()
    assert len(rows) == 8 and [r["step"] for r in rows] == list(range(0, 40, 5))
    assert warnings(rows) == []


def test_a_learning_rate_100x_too_high_is_named():
    found = warnings(train(lr=1e-1))
    assert any("update/weight ratio" in w and "too high" in w for w in found), found


def test_an_unscaled_initialisation_is_named():
    found = warnings(train(init_std=1.0))
    assert any("grow with depth" in w and "1/√fan_in" in w for w in found), found


def test_a_detached_layer_is_named():
    found = warnings(train(detach=1))
    assert any(w.startswith("layers.0.weight gets no gradient") for w in found), found
    assert not any(w.startswith("layers.2.weight gets no gradient") for w in found), found


def test_dead_relus_are_named():
    found = warnings(train(bias=-3.0))
    assert any("acts.0" in w and "dead" in w for w in found), found


def test_rows_are_written_and_a_torn_line_is_skipped(tmp_path):
    rows = train(tmp_path, steps=12)
    path = tmp_path / FILE
    assert read_rows(path) == json.loads(json.dumps(rows))
    with open(path, "a") as file:
        file.write('{"step": 99, "activ')  # a crash in the middle of a write
    assert len(read_rows(path)) == len(rows)
    row = rows[-1]
    assert set(row["activations"]["acts.0"]) == {"mean", "std", "dead"}
    assert row["parameters"]["layers.0.weight"]["update_ratio"] > 0


def test_the_watch_leaves_the_model_as_it_was():
    watcher = train("keep")
    assert watcher.rows and all("forward" not in m.__dict__ for m in watcher.model.modules())


@pytest.mark.slow
def test_diagnose_a_run_from_the_command_line(tmp_path):
    bad = tmp_path / "bad"
    done = minimod("pretrain", "gpt", "--preset", "tiny", "--max-steps", "30", "--lr", "0.3",
                   "--diagnostics", "5", "--out", str(bad))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = minimod("diagnose", "--from", str(bad), "--table")
    assert done.returncode == 0, done.stderr
    assert "watched steps (0 to 25)" in done.stdout
    assert "warning:" in done.stdout and "learning rate" in done.stdout
    assert (bad / "diagnostics.png").stat().st_size > 10_000


def test_diagnose_without_diagnostics_says_how(tmp_path):
    assert_usage_error(minimod("diagnose", "--from", str(tmp_path)), "--diagnostics N")
