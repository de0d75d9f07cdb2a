"""The learning-rate finder (minimod.train.lr_find): the sweep against its formula, exact
restoration of everything it touches, early stopping, the suggestion rule and plotting.

Not a lesson: the tests use minimod directly.
"""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch

from minimod import nn
from minimod.nn import functional as F
from minimod.optim import SGD, AdamW
from minimod.train.lr_find import LRFindResult, lr_find, plot_lr_find, steepest_lr


def regression_batches(seed: int, d: int = 8, batch_size: int = 32, noise: float = 0.1):
    """Noisy linear regression: its mean squared error is a quadratic in the weights."""
    w_star = torch.randn(d, 1, generator=torch.Generator().manual_seed(seed))

    def batch(index: int):
        generator = torch.Generator().manual_seed(1000 * seed + index)
        x = torch.randn(batch_size, d, generator=generator)
        return x, x @ w_star + noise * torch.randn(batch_size, 1, generator=generator)

    return batch


def mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def small_net() -> nn.Module:
    """With buffers (batch norm) and randomness (dropout), so restoring them is tested."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Dropout(0.2), nn.ReLU(), nn.Linear(6, 1)
    )


def two_groups(model, cls=AdamW, **options):
    """Layer-wise learning rates: the first layer learns 4 times slower than the rest."""
    first = list(model[0].parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in first)]
    return cls([{"params": first, "lr": 0.025}, {"params": rest}], lr=0.1, **options)


def ema(raw: list[float], beta: float) -> list[float]:
    """The bias-corrected moving average, written out as the weighted mean it is."""
    out = []
    for i in range(len(raw)):
        weights = [(1 - beta) * beta ** (i - j) for j in range(i + 1)]
        out.append(sum(w * r for w, r in zip(weights, raw[: i + 1], strict=True)) / sum(weights))
    return out


def test_the_sweep_follows_the_exponential_formula_on_every_group():
    model = small_net()
    optimizer = two_groups(model, SGD)
    seen_lrs, seen_losses = [], []
    data = regression_batches(1)

    def loss_fn(model, batch):
        seen_lrs.append([group["lr"] for group in optimizer.param_groups])
        loss = mse(model, batch)
        seen_losses.append(loss.item())
        return loss

    result = lr_find(model, optimizer, data, loss_fn, start_lr=1e-6, end_lr=1e-3, num_steps=7)
    assert isinstance(result, LRFindResult)
    expected = [math.exp(math.log(1e-6) + i / 6 * math.log(1e-3 / 1e-6)) for i in range(7)]
    assert result.lrs == pytest.approx(expected, rel=1e-12)
    assert result.lrs[0] == 1e-6 and result.lrs[-1] == pytest.approx(1e-3, rel=1e-12)
    assert seen_lrs == [pytest.approx([lr, 4 * lr], rel=1e-12) for lr in expected], (
        "every group gets the lr, times its ratio to the first group's"
    )
    assert result.raw_losses == seen_losses
    assert result.losses == pytest.approx(ema(seen_losses, 0.98), rel=1e-9)
    assert result.losses[0] == result.raw_losses[0], "bias correction: the first point is exact"
    assert [group["lr"] for group in optimizer.param_groups] == [0.025, 0.1]
    no_smoothing = lr_find(model, optimizer, data, mse, 1e-6, 1e-3, num_steps=4, smoothing=0.0)
    assert no_smoothing.losses == no_smoothing.raw_losses


def snapshot(model, optimizer) -> dict:
    return {
        "params": [(p, p.detach().clone()) for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "buffers": [
            (m, n, b, b.clone()) for m in model.modules() for n, b in m.named_buffers(recurse=False)
        ],
        "modes": [m.training for m in model.modules()],
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "rng": torch.get_rng_state(),
    }


def assert_same(a, b, where: str = "") -> None:
    """Equal, tensors bit for bit, through dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_restored(before: dict, model, optimizer) -> None:
    for (param, value), now in zip(before["params"], model.parameters(), strict=True):
        assert now is param, "the same Parameter objects (the optimizer refers to them)"
        assert torch.equal(now.detach(), value)
    for grad, param in zip(before["grads"], model.parameters(), strict=True):
        assert (grad is None) == (param.grad is None)
        assert grad is None or torch.equal(grad, param.grad)
    for module, name, buffer, value in before["buffers"]:
        assert getattr(module, name) is buffer and torch.equal(buffer, value), name
    assert [m.training for m in model.modules()] == before["modes"]
    assert_same(before["optimizer"], optimizer.state_dict(), "optimizer")
    assert torch.equal(torch.get_rng_state(), before["rng"]), "the global generator too"


def prepared(seed: int = 0):
    """A model and an AdamW (amsgrad) a few steps into training, with gradients present and
    mixed train/eval modes."""
    model = small_net()
    optimizer = two_groups(model, AdamW, amsgrad=True)
    data = regression_batches(seed)
    for step in range(3):
        optimizer.zero_grad()
        mse(model, data(100 + step)).backward()
        optimizer.step()
    mse(model, data(200)).backward()  # gradients the sweep must not leave changed
    model.eval()
    model[1].train()  # mixed modes survive too
    return model, optimizer, data


@pytest.mark.parametrize("fail_at", [None, 5])
def test_everything_is_restored_bit_for_bit(fail_at):
    model, optimizer, data = prepared()
    torch.manual_seed(123)
    before = snapshot(model, optimizer)
    calls = []

    def loss_fn(model, batch):
        calls.append(model.training)
        if len(calls) == fail_at:
            raise RuntimeError("out of memory (pretend)")
        return mse(model, batch)

    if fail_at is None:
        result = lr_find(model, optimizer, data, loss_fn, start_lr=1e-5, end_lr=1.0, num_steps=30)
        assert len(result.lrs) > 5
    else:
        with pytest.raises(RuntimeError, match="pretend"):
            lr_find(model, optimizer, data, loss_fn, start_lr=1e-5, end_lr=1.0, num_steps=30)
    assert all(calls), "the sweep trains in training mode"
    assert_restored(before, model, optimizer)

    # And training on is exactly what it would have been without the sweep.
    twin, twin_optimizer, _ = prepared()
    for m, o in ((model, optimizer), (twin, twin_optimizer)):
        torch.manual_seed(7)
        m.train()
        for step in range(2):
            o.zero_grad()
            mse(m, data(300 + step)).backward()
            o.step()
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_it_stops_early_when_the_loss_diverges():
    model = nn.Linear(8, 1)
    optimizer = SGD(model.parameters(), lr=0.1)
    result = lr_find(model, optimizer, regression_batches(0), mse, 1e-4, 10.0, num_steps=100)
    n = len(result.lrs)
    assert 50 < n < 100, "plain SGD on this problem diverges well before lr = 10"
    assert result.losses[-1] > 4 * min(result.losses[:-1]), "it stopped at divergence"
    assert all(result.losses[i] <= 4 * min(result.losses[:i]) for i in range(1, n - 1)), (
        "and not before"
    )
    stricter = lr_find(model, optimizer, regression_batches(0), mse, 1e-4, 10.0, diverge=1.5)
    assert len(stricter.lrs) < n


def test_a_non_finite_loss_stops_the_sweep_without_a_step():
    model = nn.Linear(8, 1)
    optimizer = SGD(model.parameters(), lr=0.1)
    steps = []
    step = optimizer.step
    optimizer.step = lambda: steps.append(step())  # count the optimizer steps
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = mse(model, batch)
        return loss * float("nan") if len(calls) == 8 else loss

    result = lr_find(model, optimizer, regression_batches(0), loss_fn, 1e-6, 1e-3, num_steps=20)
    assert len(result.lrs) == len(result.raw_losses) == 8 and math.isnan(result.raw_losses[-1])
    assert len(steps) == 7, "the point that diverged gets no optimizer step"


def test_the_suggestion_on_a_quadratic_problem_is_sensible():
    """Linear regression with SGD: the mean squared error is a quadratic in the weights; the
    Hessian's largest eigenvalue is ≈ 2·(1 + √(8/32))² ≈ 4.5, so SGD diverges above lr ≈ 0.45."""
    for seed in range(3):
        torch.manual_seed(seed)
        model = nn.Linear(8, 1)
        optimizer = SGD(model.parameters(), lr=0.1)
        data = regression_batches(seed)
        result = lr_find(model, optimizer, data, mse, start_lr=1e-4, end_lr=10.0)
        assert result.suggestion is not None
        assert 1e-2 <= result.suggestion <= 0.3, result.suggestion
        assert result.suggestion < result.lrs[-1] / 3, "well below where the loss exploded"
        first = mse(model, data(0)).item()
        optimizer.param_groups[0]["lr"] = result.suggestion
        for step in range(40):  # and training with it works
            optimizer.zero_grad()
            mse(model, data(step)).backward()
            optimizer.step()
        assert mse(model, data(999)).item() < 0.05 * first


def test_steepest_lr_rule():
    lrs = [10 ** (-5 + 5 * i / 40) for i in range(41)]
    centre = 20  # lr = 10^-2.5: the steepest point of a symmetric drop in log(lr)
    losses = [2 - math.tanh(math.log(lr / lrs[centre])) for lr in lrs]
    for window in (1, 3, 5):
        assert steepest_lr(lrs, losses, window=window) == lrs[centre]
    assert steepest_lr(lrs, losses, skip_start=centre + 1) == lrs[centre + 1], "skips the start"
    assert steepest_lr(lrs, [float(i) for i in range(41)]) is None, "the loss never falls"
    assert steepest_lr(lrs[:2], losses[:2]) is None, "too few points"
    assert steepest_lr(lrs[:3], [3.0, 2.0, 1.0]) == lrs[1]
    with pytest.raises(ValueError, match="steepest_lr: 3 lrs but 2 losses"):
        steepest_lr(lrs[:3], losses[:2])
    with pytest.raises(ValueError, match="window ≥ 1"):
        steepest_lr(lrs, losses, window=0)


def test_no_suggestion_when_the_loss_does_not_fall():
    model = nn.Linear(8, 1)
    optimizer = SGD(model.parameters(), lr=0.1)
    flat = lr_find(model, optimizer, lambda i: None, lambda m, b: m.weight.sum() * 0 + 1.0)
    assert len(flat.lrs) == 100 and flat.suggestion is None
    few = lr_find(model, optimizer, regression_batches(0), mse, num_steps=2)
    assert len(few.lrs) == 2 and few.suggestion is None


def test_iterable_batches_start_again_when_they_run_out():
    model = nn.Linear(8, 1)
    optimizer = SGD(model.parameters(), lr=0.1)
    data = regression_batches(0)
    batches = [data(i) for i in range(3)]
    seen = []

    def loss_fn(model, batch):
        seen.append(next(i for i, b in enumerate(batches) if b[0] is batch[0]))
        return mse(model, batch)

    lr_find(model, optimizer, batches, loss_fn, 1e-6, 1e-4, num_steps=7)
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_bad_arguments_fail_clearly():
    model = nn.Linear(8, 1)
    optimizer = SGD(model.parameters(), lr=0.1)
    data = regression_batches(0)
    bad = [
        (dict(start_lr=0.0), ValueError, "need 0 < start_lr < end_lr"),
        (dict(start_lr=1.0, end_lr=0.5), ValueError, "start_lr=1.0, end_lr=0.5"),
        (dict(end_lr=float("inf")), ValueError, "finite"),
        (dict(num_steps=1), ValueError, "num_steps must be an integer ≥ 2, got 1"),
        (dict(num_steps=2.5), ValueError, "num_steps must be an integer"),
        (dict(smoothing=1.0), ValueError, r"smoothing must be in \[0, 1\), got 1.0"),
        (dict(diverge=1.0), ValueError, "diverge must be > 1"),
    ]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=f"^lr_find: .*{message}"):
            lr_find(model, optimizer, data, mse, **kwargs)
    with pytest.raises(TypeError, match="lr_find: batches must be a callable"):
        lr_find(model, optimizer, 5, mse)
    with pytest.raises(TypeError, match="lr_find: expected an optimizer, got list"):
        lr_find(model, [], data, mse)
    frozen_first = SGD([{"params": [model.weight], "lr": 0.0}, {"params": [model.bias]}], lr=0.1)
    with pytest.raises(ValueError, match="first param group's lr must be > 0"):
        lr_find(model, frozen_first, data, mse)
    weight = model.weight.detach().clone()
    with pytest.raises(TypeError, match="loss_fn must return a scalar tensor"):
        lr_find(model, optimizer, data, lambda m, b: m(b[0]))
    assert torch.equal(model.weight.detach(), weight) and optimizer.param_groups[0]["lr"] == 0.1


def test_plot_lr_find(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    model = nn.Linear(8, 1)
    result = lr_find(model, SGD(model.parameters(), lr=0.1), regression_batches(0), mse, 1e-4)
    line = plot_lr_find(result, tmp_path / "lr.png")
    assert line == f"lr finder curve: {tmp_path / 'lr.png'}"
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    hint = plot_lr_find(result, tmp_path / "other.png")
    assert "matplotlib is not installed" in hint and "pip install" in hint
    assert not (tmp_path / "other.png").exists()
