"""The learning-rate range test (Smith, 2017; fastai's ``lr_find``): which lr to train with?

Train briefly with a learning rate that grows exponentially, one optimizer step per batch, and
watch the loss. At first the lr is too small to change anything; then the loss falls, faster and
faster; past some lr the steps overshoot and the loss explodes. A good lr lies where the loss
falls fastest, well before it explodes.

    lr_i       = start_lr · (end_lr / start_lr)^(i / (num_steps - 1))       i = 0, …, num_steps-1
    avg_i      = β · avg_(i-1) + (1 - β) · loss_i           (avg_(-1) = 0, β = smoothing)
    smoothed_i = avg_i / (1 - β^(i+1))                      (bias correction, as in Adam)
    stop at i  if smoothed_i is not finite, or > diverge · min(smoothed_0 … smoothed_(i-1))

The lr of each param group is set to lr_i times its ratio to the first group's lr, so per-layer
learning rates (layer-wise decay) keep their proportions; the result reports the first group's.
Suggestion (``steepest_lr``): the lr where the smoothed loss falls fastest against log(lr),
measured over a tenth of the sweep and skipping its first tenth; None if it never falls. It is a
starting point, not an oracle: the moving average lags behind the raw loss, so look at the plot.

The sweep leaves nothing behind: the model's parameters, gradients, buffers and train/eval modes,
the optimizer's state and options and the global random generators are restored exactly, also
when the sweep raises. Only ``batches`` itself (a data stream with its own generator) moves on.

    result = lr_find(model, AdamW(model.parameters()), next_batch, loss_fn)
    print(result.suggestion); print(plot_lr_find(result, "lr_find.png"))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minimod.train.batches import model_loss, move_to
from minimod.train.checkpoint import rng_state, set_rng_state


@dataclass
class LRFindResult:
    """One sweep: the lrs tried (first param group), the smoothed (bias-corrected) and raw losses
    at each, and the suggested lr (None when the curve does not show one). The sweep stopped
    early, at divergence, when there are fewer points than num_steps."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float | None


def steepest_lr(
    lrs: Sequence[float], losses: Sequence[float], skip_start: int = 0, window: int = 1
) -> float | None:
    """The lr at which ``losses`` falls fastest against log(lr): the i (from skip_start on) with
    the most negative slope (losses[i+w] - losses[i-w]) / (log lrs[i+w] - log lrs[i-w]), w =
    window. None if there is no such i (too few points) or if the loss never falls (by more
    than rounding: 1e-9 relative).

    lr_find uses skip_start = num_steps // 10 (early on, the average rests on a few noisy losses)
    and window = num_steps // 20 (a slope over a tenth of the sweep, not between neighbours).
    """
    if len(lrs) != len(losses):
        raise ValueError(f"steepest_lr: {len(lrs)} lrs but {len(losses)} losses")
    if window < 1 or skip_start < 0:
        raise ValueError(
            f"steepest_lr: need window ≥ 1, skip_start ≥ 0, got {window}, {skip_start}"
        )
    best_slope, best_lr = 0.0, None
    for i in range(max(skip_start, window), len(lrs) - window):
        after, before = losses[i + window], losses[i - window]
        if after - before >= -1e-9 * (abs(after) + abs(before)):
            continue  # not falling (a change within rounding counts as flat)
        slope = (after - before) / (math.log(lrs[i + window]) - math.log(lrs[i - window]))
        if slope < best_slope:
            best_slope, best_lr = slope, lrs[i]
    return best_lr


def lr_find(
    model: Any,
    optimizer: Any,
    batches: Callable[[int], Any] | Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor] = model_loss,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
) -> LRFindResult:
    """Sweep the lr from start_lr to end_lr over at most num_steps optimizer steps (see above).

    batches: ``next_batch(index) -> batch`` (as for Trainer), or an iterable of batches, started
        again when it runs out; each batch is moved to the device of the first parameter.
    loss_fn(model, batch) -> scalar loss (default: the model returns (output, loss)).
    smoothing: β of the moving average, in [0, 1) (0: no smoothing).
    diverge: stop once the smoothed loss exceeds diverge × its minimum so far (> 1; this test
        needs the minimum to be positive, as cross-entropy and squared errors are; otherwise only
        a non-finite loss stops the sweep early).
    """
    _check_arguments(optimizer, batches, start_lr, end_lr, num_steps, smoothing, diverge)
    groups = optimizer.param_groups
    ratios = [group["lr"] / groups[0]["lr"] for group in groups]
    device = groups[0]["params"][0].device
    lrs = [start_lr * (end_lr / start_lr) ** (i / (num_steps - 1)) for i in range(num_steps)]
    draw = _batch_source(batches)
    tried, losses, raw_losses = [], [], []
    diverged = False
    snapshot = _Snapshot(model, optimizer)
    try:
        model.train()
        average, lowest = 0.0, math.inf
        for i, lr in enumerate(lrs):
            for group, ratio in zip(groups, ratios, strict=True):
                group["lr"] = lr * ratio
            loss = loss_fn(model, move_to(draw(i), device))
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError(f"lr_find: loss_fn must return a scalar tensor, got {loss!r:.80}")
            raw = float(loss.detach())
            average = smoothing * average + (1 - smoothing) * raw
            smoothed = average / (1 - smoothing ** (i + 1))
            tried.append(lr)
            losses.append(smoothed)
            raw_losses.append(raw)
            if not math.isfinite(smoothed) or (lowest > 0 and smoothed > diverge * lowest):
                diverged = True
                break
            lowest = min(lowest, smoothed)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        snapshot.restore()
    usable = len(tried) - 1 if diverged else len(tried)  # the point that diverged is left out
    suggestion = steepest_lr(
        tried[:usable], losses[:usable], skip_start=num_steps // 10, window=max(1, num_steps // 20)
    )
    return LRFindResult(tried, losses, raw_losses, suggestion)


def _check_arguments(optimizer, batches, start_lr, end_lr, num_steps, smoothing, diverge) -> None:
    if not hasattr(optimizer, "param_groups") or not optimizer.param_groups:
        raise TypeError(f"lr_find: expected an optimizer, got {type(optimizer).__name__}")
    if not optimizer.param_groups[0]["lr"] > 0:
        raise ValueError(
            "lr_find: the first param group's lr must be > 0: the other groups' lrs are kept "
            f"in proportion to it (got {optimizer.param_groups[0]['lr']})"
        )
    if not callable(batches) and not isinstance(batches, Iterable):
        raise TypeError(
            "lr_find: batches must be a callable next_batch(index) -> batch or an iterable of "
            f"batches, got {type(batches).__name__}"
        )
    if not 0 < start_lr < end_lr or not math.isfinite(end_lr):
        raise ValueError(
            f"lr_find: need 0 < start_lr < end_lr (finite), got start_lr={start_lr}, "
            f"end_lr={end_lr}"
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"lr_find: num_steps must be an integer ≥ 2, got {num_steps!r}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"lr_find: smoothing must be in [0, 1), got {smoothing}")
    if not diverge > 1:
        raise ValueError(f"lr_find: diverge must be > 1, got {diverge}")


def _batch_source(batches: Callable[[int], Any] | Iterable[Any]) -> Callable[[int], Any]:
    if callable(batches):
        return batches
    iterator = iter(batches)

    def draw(index: int) -> Any:
        nonlocal iterator
        try:
            return next(iterator)
        except StopIteration:  # an epoch is over: start the next one
            iterator = iter(batches)
            return next(iterator)

    return draw


class _Snapshot:
    """Everything the sweep changes, copied so that ``restore()`` puts it back bit for bit, into
    the same tensor objects (an optimizer and the model keep referring to them)."""

    def __init__(self, model: Any, optimizer: Any) -> None:
        params = {id(p): p for p in model.parameters()}
        for group in optimizer.param_groups:
            params.update((id(p), p) for p in group["params"])
        self.params = [(p, p.detach().clone(), _clone(p.grad)) for p in params.values()]
        self.buffers = [
            (module, name, buffer, buffer.clone())
            for module in model.modules()
            for name, buffer in module.named_buffers(recurse=False)
        ]
        self.modes = [(module, module.training) for module in model.modules()]
        self.optimizer = optimizer
        self.groups = [
            {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            for group in optimizer.param_groups
        ]
        self.state = {
            param: {key: _clone(value) for key, value in state.items()}
            for param, state in optimizer.state.items()
        }
        self.rng = rng_state()

    @torch.no_grad()
    def restore(self) -> None:
        for param, value, grad in self.params:
            param.copy_(value)
            param.grad = grad
        for module, name, buffer, value in self.buffers:
            buffer.copy_(value)
            setattr(module, name, buffer)  # in case the sweep assigned a new tensor
        for module, mode in self.modes:
            module.training = mode
        for group, saved in zip(self.optimizer.param_groups, self.groups, strict=True):
            for key in [key for key in group if key != "params" and key not in saved]:
                del group[key]
            group.update(saved)
        self.optimizer.state.clear()
        self.optimizer.state.update(self.state)
        set_rng_state(self.rng)


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return copy.deepcopy(value)


def plot_lr_find(result: LRFindResult, path: str | Path) -> str:
    """Draw the smoothed (and raw) loss against the lr on a log axis to ``path`` (a PNG), with
    the suggestion marked; return a line saying where, or how to get matplotlib when missing."""
    path = Path(path)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no {path.name}: matplotlib is not installed (pip install 'minimod[plot]')"
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(result.lrs, result.raw_losses, color="0.75", linewidth=0.8, label="loss")
    axes.plot(result.lrs, result.losses, label="smoothed loss")
    if result.suggestion is not None:
        axes.axvline(result.suggestion, color="C3", linestyle="--")
        axes.plot([], [], color="C3", linestyle="--", label=f"suggestion {result.suggestion:.2g}")
    finite = [loss for loss in result.losses if math.isfinite(loss)]
    if finite:  # keep the explosion at the end from squashing the interesting part
        low, span = min(finite), (finite[0] - min(finite)) or 1.0
        axes.set_ylim(low - 0.1 * span, finite[0] + 0.5 * span)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"lr finder curve: {path}"
