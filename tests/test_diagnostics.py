"""Training diagnostics (``minimod.train.diagnostics``, ``minimod diagnose``) on runs made
deliberately bad: each fault gives its warning, and a healthy run gives none.

The faults: a learning rate 100× too high, weights initialised without 1/√fan_in, a layer whose
output is detached from the loss, ReLUs killed by a large negative bias. The model is a small
MLP trained by the Trainer with the Diagnostics callback; the last test goes through the
command line (pretrain gpt --diagnostics, then diagnose). Attention entropy: a tiny GPT whose
attention is forced uniform (queries and keys 0) or one-hot (each query matches its own key
×100), and one that learns a task which needs attention.
"""

from __future__ import annotations

import json

import pytest
import torch

from console import assert_usage_error, minimod
from minimod import nn
from minimod.models.gpt import GPT, GPTConfig
from minimod.nn import attention, multihead
from minimod.nn import functional as F
from minimod.optim import AdamW
from minimod.train.config import TrainConfig
from minimod.train.diagnostics import (
    FILE,
    Diagnostics,
    attention_entropy,
    read_rows,
    summary_lines,
    warnings,
)
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
    gpt_run(steps=3, every=1)  # the attention function is patched while a step is watched
    assert F.scaled_dot_product_attention is attention.scaled_dot_product_attention
    assert multihead.scaled_dot_product_attention is attention.scaled_dot_product_attention


def gpt_run(steps: int, every: int, attention: str | None = None) -> list[dict]:
    """A 1-layer, 2-head GPT trained on sequences of two alternating random tokens (the next
    token is the one two places back: attention must find it). attention "uniform" zeroes the
    query and key weights; "one-hot" makes them 10·I, so each query matches its own key far
    above the others."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=8, block_size=16, n_layer=1, n_head=2, n_embd=32, bias=False)
    model = GPT(config)
    qk = model.transformer.h[0].attn.c_attn.weight.data[: 2 * config.n_embd]
    if attention == "uniform":
        qk.zero_()
    if attention == "one-hot":
        qk.copy_(10.0 * torch.eye(config.n_embd).repeat(2, 1))
    g = torch.Generator().manual_seed(0)

    def batches(index):
        seq = torch.randint(0, 8, (16, 2), generator=g).repeat(1, 9)[:, :17]
        return seq[:, :-1], seq[:, 1:]

    watcher = Diagnostics(every)
    config = TrainConfig(max_steps=steps, progress=False, log_every=10)
    optimizer = AdamW(model.parameters(), lr=1e-2)
    Trainer(model, optimizer, batches, config, loss_fn=lambda m, b: m(*b)[1],
            callbacks=[watcher]).fit()  # fmt: skip
    return watcher.rows


def test_attention_entropy_is_zero_for_one_hot_and_ln_keys_for_uniform_rows():
    q = torch.randn(3, 4, 5, 8)  # (B, H, L, d)
    uniform = attention_entropy(torch.zeros_like(q), q, is_causal=True)
    # Causal rows 1..4 see 2..5 keys (row 0 sees one: no choice, left out).
    expected = sum(torch.log(torch.tensor(n, dtype=torch.float)) for n in range(2, 6)) / 4
    torch.testing.assert_close(torch.tensor(uniform["entropy"]), expected.repeat(4))
    assert uniform["entropy"] == pytest.approx(uniform["max_entropy"])
    one_hot = attention_entropy(q, q, scale=1e4, is_causal=True)
    assert max(one_hot["entropy"]) < 1e-3 and len(one_hot["entropy"]) == 4


def test_uniform_attention_is_named():
    rows = gpt_run(steps=2, every=1)  # the watch of step 0: the fresh weights
    found = warnings(gpt_run(steps=2, every=1, attention="uniform"))
    assert any("attention is uniform in all 2 heads" in w for w in found), found
    assert rows[0]["attention"]["transformer.h.0.attn"]["entropy"][0] > 0


def test_collapsed_attention_is_named():
    found = warnings(gpt_run(steps=2, every=1, attention="one-hot"))
    assert any("attention collapsed in all 2 heads" in w for w in found), found


def test_attention_that_learns_gives_no_attention_warning():
    rows = gpt_run(steps=60, every=25)
    entropy = rows[-1]["attention"]["transformer.h.0.attn"]
    assert len(entropy["entropy"]) == 2 and min(entropy["max_entropy"]) > 0
    assert [w for w in warnings(rows) if "attention" in w] == []
    assert any("attention entropy per head" in line for line in summary_lines(rows))


def test_a_model_without_attention_records_none():
    assert all(row["attention"] == {} for row in train(steps=12))


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
    heads = read_rows(bad / FILE)[-1]["attention"]["transformer.h.0.attn"]["entropy"]
    assert len(heads) == 2 and "attention entropy per head" in done.stdout


def test_diagnose_without_diagnostics_says_how(tmp_path):
    assert_usage_error(minimod("diagnose", "--from", str(tmp_path)), "--diagnostics N")
