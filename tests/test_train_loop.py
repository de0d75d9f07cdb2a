"""The training loop (minimod.train.loop): gradient accumulation, clipping, schedules,
evaluation modes, early stopping, metrics files, determinism and exact resume.

Lesson 18's tests reach the Trainer through ``impl.train`` (minimod, solutions/ or exercises/);
the tests of minimod's own behaviour (reference_only) import it from minimod."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch

import impl
from minimod import nn, optim
from minimod.models.gpt import GPT, GPTConfig
from minimod.nn import functional as F
from minimod.train import CheckpointError, RunLog, TrainConfig, Trainer, seed_everything
from minimod.train.batches import count_items, resolve_device


def mlp(dropout: float = 0.0, seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Dropout(dropout), nn.Linear(16, 3))


def ce_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


class Stream:
    """A seeded stream of random batches whose position is its generator's state."""

    def __init__(self, seed: int = 0, size: int = 8) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.size = size

    def __call__(self, index: int):
        x = torch.randn(self.size, 4, generator=self.generator)
        return x, torch.randint(0, 3, (self.size,), generator=self.generator)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


def config(**changes) -> TrainConfig:
    settings = dict(max_steps=4, log_every=1, progress=False, device="cpu", clip_grad_norm=None)
    return TrainConfig(**{**settings, **changes})


def params(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# -- gradient accumulation and clipping ---------------------------------------------------------
@pytest.mark.parametrize("clip", [None, 0.05])
@pytest.mark.parametrize("k", [2, 4])
def test_accumulating_k_micro_batches_equals_one_big_batch(k, clip):
    model = mlp().double()
    reference = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    x, y = (
        torch.randn(8, 4, generator=g, dtype=torch.float64),
        torch.randint(0, 3, (8,), generator=g),
    )
    chunks = list(zip(x.chunk(k), y.chunk(k), strict=True))
    lr = 0.5
    trainer = impl.train.Trainer(
        model,
        optim.SGD(model.parameters(), lr=lr),
        lambda i: chunks[i],
        config(max_steps=1, grad_accum_steps=k, clip_grad_norm=clip),
        loss_fn=ce_loss,
    )
    result = trainer.fit()

    # Independently: one big batch, its gradient (clipped as a whole), one plain SGD step.
    loss = F.cross_entropy(reference(x), y)
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = 1.0 if clip is None else min(1.0, clip / (norm.item() + 1e-6))
    # What only the last micro-batch's gradient gives (zero_grad() inside the loop).
    last = torch.autograd.grad(
        F.cross_entropy(reference(chunks[-1][0]), chunks[-1][1]) / k, list(reference.parameters())
    )
    for (name, p), grad, grad_last in zip(reference.named_parameters(), grads, last, strict=True):
        expected = p.detach() - lr * scale * grad
        got = dict(model.named_parameters())[name].detach()
        summed = p.detach() - lr * scale * k * grad  # what forgetting to divide by k gives
        if clip is None and torch.allclose(got, summed):
            hint = "looks like the micro-batch losses were summed: divide each by grad_accum_steps"
        elif clip is None and torch.allclose(got, p.detach() - lr * grad_last):
            hint = (
                "only the last micro-batch's gradient was used: optimizer.zero_grad() belongs "
                "before the micro-batch loop, not inside it"
            )
        elif clip is not None and torch.allclose(got, p.detach() - lr * grad):
            hint = (
                "the step used the unclipped gradient: clip the whole accumulated gradient "
                "once, after the last backward() and before optimizer.step()"
            )
        else:
            hint = f"parameter {name} differs from one step on the whole batch"
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12, msg=hint)
    assert result.history[0]["loss"] == pytest.approx(loss.item(), rel=1e-10)
    assert result.history[0]["grad_norm"] == pytest.approx(norm.item(), rel=1e-10)


def test_the_lr_of_each_step_follows_the_schedule():
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    schedule = optim.lr_scheduler.WarmupLinearLR(opt, warmup_steps=2, total_steps=5)
    factors = [schedule.factor(t) for t in range(5)]
    result = impl.train.Trainer(
        model, opt, Stream(), config(max_steps=5), loss_fn=ce_loss, scheduler=schedule
    )
    rows = result.fit().history
    # Step t (1-based) trains with lr(t - 1): scheduler.step() comes after optimizer.step().
    assert [row["lr"] for row in rows] == pytest.approx([0.1 * f for f in factors]), (
        "the lr of each step: step t trains with lr(t - 1), so scheduler.step() comes after "
        "optimizer.step(), and the logged lr is read before the scheduler moves it"
    )


# -- overfitting one batch, the default loss, modes ------------------------------------------------
def test_overfit_batch_repeats_the_first_batch_and_drives_the_loss_to_zero():
    model, calls = mlp(), []
    stream = Stream()

    def next_batch(index):
        calls.append(index)
        return stream(index)

    opt = optim.AdamW(model.parameters(), lr=2e-2, weight_decay=0.0)
    cfg = config(max_steps=150, overfit_batch=True, log_every=50)
    rows = impl.train.Trainer(model, opt, next_batch, cfg, loss_fn=ce_loss).fit().history
    assert calls == [0], "overfit_batch draws one batch and reuses it"
    assert rows[-1]["loss"] < 1e-2, f"a tiny model should memorise one batch, got {rows}"


def test_gpt_trains_with_its_own_loss_and_counts_tokens():
    seed_everything(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 11, (2, 9), generator=g)
    batch = (idx[:, :-1], idx[:, 1:])
    opt = optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.0)
    rows = (
        impl.train.Trainer(model, opt, lambda i: batch, config(max_steps=12, log_every=6))
        .fit()
        .history
    )
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert count_items(batch) == 16, "a language model counts its target tokens (B·T)"
    assert count_items((torch.zeros(4, 3, 8, 8), torch.zeros(4))) == 4


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.linear(x)


def test_train_mode_for_steps_eval_mode_without_gradients_for_evaluation():
    model, seen = Recorder(), []

    def evaluate(m):
        seen.append((m.training, torch.is_grad_enabled()))
        m(torch.zeros(1, 4))
        return {"loss": 1.0}

    cfg = config(max_steps=4, eval_every=2)
    impl.train.Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        Stream(),
        cfg,
        loss_fn=ce_loss,
        evaluate=evaluate,
    ).fit()
    assert model.modes == [True, True, False, True, True, False], (
        "training steps run in train mode (model.train()), evaluation in eval mode (model.eval())"
    )
    assert seen == [(False, False), (False, False)], (
        "evaluate(model) must run in eval mode inside torch.no_grad(): (training, grad enabled)"
    )
    assert model.training, "evaluation restores the mode the model had"


# -- evaluation, early stopping, best and last checkpoints ------------------------------------
@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_keeps_the_best_checkpoint(tmp_path, mode):
    sign = 1 if mode == "min" else -1
    # Best at the 2nd evaluation, then no gain; one value for each of the 20 possible steps.
    values = iter([3.0, 2.0, 2.5, 2.0, 1.0] + [0.5] * 15)

    def evaluate(model):
        return {"accuracy": 0.0, "loss": sign * next(values)}

    model = mlp()
    cfg = config(max_steps=20, eval_every=1, patience=2, eval_mode=mode, out_dir=str(tmp_path))
    trainer = impl.train.Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        Stream(),
        cfg,
        loss_fn=ce_loss,
        evaluate=evaluate,
    )
    result = trainer.fit()
    tie = "a value equal to the best is no gain: only a strict improvement resets patience"
    assert (result.best_value, result.best_step) == (sign * 2.0, 2), tie
    assert (result.stopped_early, result.step) == (True, 4), (
        "stop once `patience` evaluations in a row brought no gain"
    )
    assert impl.checkpoint.load_checkpoint(tmp_path / "best.pt")["step"] == 2
    assert impl.checkpoint.load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_metrics_files_hold_every_row_and_are_written_as_training_goes(tmp_path):
    model, lines_seen = mlp(), []

    def loss_fn(m, batch):
        jsonl = tmp_path / "metrics.jsonl"
        lines_seen.append(len(jsonl.read_text().splitlines()) if jsonl.exists() else 0)
        return ce_loss(m, batch)

    cfg = config(max_steps=6, eval_every=3, out_dir=str(tmp_path))
    impl.train.Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        Stream(),
        cfg,
        loss_fn=loss_fn,
        evaluate=lambda m: {"loss": 1.0},
    ).fit()
    # Before step s (0-based) the earlier steps' rows, plus one eval row after step 3, are on disk.
    assert lines_seen == [0, 1, 2, 4, 5, 6]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    with open(tmp_path / "metrics.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert len(table) == len(rows) == 8
    for column in ("step", "loss", "lr", "grad_norm", "items_per_s", "step_time_s", "eval_loss"):
        assert column in table[0], f"metrics.csv lacks {column}"
    train_rows = [row for row in rows if "loss" in row]
    assert [row["step"] for row in train_rows] == [1, 2, 3, 4, 5, 6]
    assert all(row["items_per_s"] > 0 and row["step_time_s"] > 0 for row in train_rows)
    assert float(table[0]["loss"]) == rows[0]["loss"]
    assert json.loads((tmp_path / "config.json").read_text())["train"]["max_steps"] == 6


@pytest.mark.reference_only
def test_the_run_log_widens_its_csv_skips_a_cut_line_and_truncates(tmp_path):
    log = RunLog(tmp_path)
    log.log({"step": 1, "loss": 2.0})
    log.log({"step": 2, "loss": 1.5, "eval_accuracy": 0.5})  # a new column
    with open(tmp_path / "metrics.jsonl", "a") as file:
        file.write('{"step": 3, "lo')  # a crash in the middle of a line
    assert RunLog(tmp_path).rows() == [
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5, "eval_accuracy": 0.5},
    ]
    with open(tmp_path / "metrics.csv", newline="") as file:
        assert list(csv.reader(file)) == [
            ["step", "loss", "eval_accuracy"],
            ["1", "2.0", ""],
            ["2", "1.5", "0.5"],
        ]
    log = RunLog(tmp_path)
    log.truncate_after(1)
    log.log({"step": 2, "loss": 1.0})
    assert [row["loss"] for row in log.rows()] == [2.0, 1.0]
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["step,loss", "1,2.0", "2,1.0"]


# -- determinism and resume ------------------------------------------------------------------
def test_same_seed_gives_identical_parameters_and_another_seed_does_not():
    def run(seed):
        model = mlp(dropout=0.3)
        opt = optim.AdamW(model.parameters(), lr=1e-2)
        impl.train.Trainer(
            model, opt, Stream(), config(max_steps=5, seed=seed), loss_fn=ce_loss
        ).fit()
        return params(model)

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first), (
        "the trainer's seed should drive dropout"
    )


def test_a_second_fit_continues_the_run():
    def trainer():
        model = mlp(dropout=0.3)
        opt = optim.AdamW(model.parameters(), lr=1e-2)
        return impl.train.Trainer(model, opt, Stream(), config(max_steps=6), loss_fn=ce_loss)

    whole, halves = trainer(), trainer()
    whole.fit()
    halves.config.max_steps = 3
    halves.fit()
    halves.config.max_steps = 6
    result = halves.fit()
    a, b = params(whole.model), params(halves.model)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert [row["step"] for row in result.history] == [1, 2, 3, 4, 5, 6]


def make_run(tmp_path, seed: int, crash_at_call: int | None = None):
    """A run with dropout, AdamW, warmup + cosine, accumulation, clipping and a stateful stream;
    built from ``seed`` so that a resumed run starts from different values."""
    model = mlp(dropout=0.2, seed=seed)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    schedule = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=2, total_steps=6)
    calls = []

    def loss_fn(m, batch):
        calls.append(1)
        if len(calls) == crash_at_call:
            raise RuntimeError("simulated crash")
        return ce_loss(m, batch)

    cfg = config(
        max_steps=6,
        grad_accum_steps=2,
        clip_grad_norm=0.5,
        eval_every=3,
        checkpoint_every=3,
        out_dir=str(tmp_path),
    )
    evaluate = lambda m: {"loss": ce_loss(m, Stream(seed=9)(0)).item()}  # noqa: E731
    return impl.train.Trainer(
        model, opt, Stream(seed=seed), cfg, loss_fn=loss_fn, scheduler=schedule, evaluate=evaluate
    )


def test_a_resumed_run_matches_the_uninterrupted_run_bit_for_bit(tmp_path):
    whole = make_run(tmp_path / "whole", seed=0)
    whole.fit()
    crashed = make_run(tmp_path / "resumed", seed=0, crash_at_call=9)  # in step 5
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()
    resumed = make_run(tmp_path / "resumed", seed=5)  # other weights and data: all restored
    resumed.fit(resume_from=tmp_path / "resumed" / "last.pt")

    a, b = params(whole.model), params(resumed.model)
    assert all(torch.equal(a[name], b[name]) for name in a), "resume is not exact"
    state_a, state_b = (
        whole.optimizer.state_dict()["state"],
        resumed.optimizer.state_dict()["state"],
    )
    for index, values in state_a.items():
        for key, value in values.items():
            same = torch.equal(value, state_b[index][key]) if torch.is_tensor(value) else None
            assert same or value == state_b[index][key], f"optimizer state {index}.{key} differs"
    assert resumed.scheduler.last_epoch == whole.scheduler.last_epoch == 6
    # The log holds each step once: rows written after the checkpoint (step 4) were replaced.
    losses_a = [(r["step"], r["loss"]) for r in whole.history if "loss" in r]
    losses_b = [(r["step"], r["loss"]) for r in resumed.history if "loss" in r]
    assert losses_b == losses_a and [s for s, _ in losses_a] == [1, 2, 3, 4, 5, 6]


def test_an_iterable_of_batches_is_replayed_on_resume(tmp_path):
    data = [Stream(seed=i)(0) for i in range(4)]

    def run(folder, max_steps, resume=None):
        model = mlp(seed=0 if resume is None else 3)
        opt = optim.AdamW(model.parameters(), lr=1e-2)
        cfg = config(max_steps=max_steps, out_dir=str(folder))
        trainer = impl.train.Trainer(model, opt, data, cfg, loss_fn=ce_loss)
        trainer.fit(resume_from=resume)
        return params(model)

    whole = run(tmp_path / "a", 7)  # the list is cycled: epochs of 4 batches
    run(tmp_path / "b", 5)
    resumed = run(tmp_path / "b", 7, resume=tmp_path / "b" / "last.pt")
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)


@pytest.mark.reference_only
def test_resuming_with_another_model_config_names_the_differing_keys(tmp_path):
    def trainer(n_embd, accum=1):
        model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=n_embd))
        cfg = config(grad_accum_steps=accum, out_dir=str(tmp_path))
        return Trainer(model, optim.AdamW(model.parameters()), lambda i: None, cfg)

    trainer(16).save(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"model\.n_embd \(checkpoint 16, now 32\)"):
        trainer(32).load(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"train\.grad_accum_steps") as error:
        trainer(16, accum=2).load(tmp_path / "last.pt")
    assert "max_steps" not in str(error.value)
    trainer(16).load(tmp_path / "last.pt")  # same settings: fine


# -- options and errors --------------------------------------------------------------------------
def test_compile_wraps_the_forward_with_torch_compile(monkeypatch):
    compiled = []

    def fake_compile(fn):
        compiled.append(fn)

        def wrapper(*args):
            compiled.append("called")
            return fn(*args)

        return wrapper

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = mlp()
    impl.train.Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        Stream(),
        config(max_steps=2, compile=True),
        loss_fn=ce_loss,
    ).fit()
    assert len(compiled) == 3 and compiled[1:] == ["called", "called"]


@pytest.mark.reference_only
@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_algorithms_only_while_fit_runs_and_only_if_asked(deterministic):
    """config.deterministic turns torch's deterministic algorithms on while fit() runs (a
    setting of the whole process) and restores the previous setting; False leaves it alone."""
    before, seen = torch.are_deterministic_algorithms_enabled(), []
    model = mlp()
    Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        Stream(),
        config(max_steps=1, deterministic=deterministic),
        loss_fn=ce_loss,
        callbacks=[lambda trainer: seen.append(torch.are_deterministic_algorithms_enabled())],
    ).fit()
    assert seen == [deterministic or before]
    assert torch.are_deterministic_algorithms_enabled() == before


@pytest.mark.reference_only
def test_data_parallel_is_explicit_or_auto(tmp_path):
    """data_parallel=True needs a process group; None (auto) trains data-parallel exactly
    inside one; False never does."""
    import torch.distributed as dist

    def trained(setting) -> Trainer:
        model = mlp()
        trainer = Trainer(
            model,
            optim.SGD(model.parameters(), lr=0.1),
            Stream(),
            config(max_steps=1, data_parallel=setting),
            loss_fn=ce_loss,
        )
        trainer.fit()
        return trainer

    with pytest.raises(ValueError, match="data_parallel=True needs a torch.distributed process"):
        trained(True)
    assert trained(None)._sync is None and trained(False)._sync is None
    with pytest.raises(ValueError, match="data_parallel must be True, False or None"):
        TrainConfig(data_parallel="auto")
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1
    )
    try:
        assert trained(None)._sync is not None and trained(True)._sync is not None
        assert trained(False)._sync is None
    finally:
        dist.destroy_process_group()


def test_weights_that_are_not_finite_are_never_saved_over_a_checkpoint(tmp_path):
    model = mlp()
    cfg = config(max_steps=6, checkpoint_every=2, out_dir=str(tmp_path))
    trainer = impl.train.Trainer(model, optim.SGD(model.parameters(), lr=0.1), Stream(), cfg,
                                 loss_fn=ce_loss)  # fmt: skip
    trainer.fit()
    good = (tmp_path / "last.pt").read_bytes()

    update = trainer.optimizer.step

    def update_then_poison(*args, **kwargs):  # step 8's update leaves a NaN behind a finite loss
        result = update(*args, **kwargs)
        if trainer.step == 7:  # the counter moves on after the step
            with torch.no_grad():
                model[0].weight[0, 0] = float("nan")
        return result

    trainer.optimizer.step = update_then_poison
    trainer.config.max_steps = 8
    with pytest.raises(FloatingPointError, match=r"0\.weight is not finite after step 8"):
        trainer.fit()
    assert (tmp_path / "last.pt").read_bytes() == good, "the good checkpoint was overwritten"


@pytest.mark.reference_only
def test_bad_settings_and_losses_fail_clearly():
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainConfig(grad_accum_steps=0)
    with pytest.raises(ValueError, match="eval_mode"):
        TrainConfig(eval_mode="best")
    with pytest.raises(ValueError, match="out_dir"):
        TrainConfig(checkpoint_every=5)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="evaluate"):
        Trainer(model, opt, Stream(), config(patience=2))
    with pytest.raises(TypeError, match="pass loss_fn"):
        Trainer(model, opt, Stream(), config()).fit()
    with pytest.raises(TypeError, match="scalar"):
        Trainer(model, opt, Stream(), config(), loss_fn=lambda m, b: m(b[0])).fit()
    with pytest.raises(ValueError, match="eval_metric is 'accuracy'"):
        cfg = config(eval_metric="accuracy")
        Trainer(model, opt, Stream(), cfg, loss_fn=ce_loss, evaluate=lambda m: {"loss": 0}).fit()
    nan_loss = lambda m, b: ce_loss(m, b) * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="step 1"):
        Trainer(model, opt, Stream(), config(), loss_fn=nan_loss).fit()
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")
