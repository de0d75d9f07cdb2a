"""Lesson 7: Warmup, cosine schedules and gradient clipping

The idea
Two small tools keep training stable. A schedule changes the learning rate as training goes:
a short warmup from 0 avoids huge early steps while AdamW's moving averages are still noisy,
and a decay at the end lets the weights settle. Gradient clipping caps the size of one update,
so a single bad batch cannot throw the weights far away.

Schedules (torch.optim.lr_scheduler's design)
A scheduler holds the optimizer and a step count t = last_epoch (0 after construction). At
construction it records each group's base lr (group["initial_lr"]) and sets step 0's lr. Call
scheduler.step() once after every optimizer.step(): t ← t + 1 and each group["lr"] ← get_lr().
So the k-th optimizer step (k = 0, 1, ...) trains with the lr of t = k.
- LRScheduler (base): step(), get_last_lr(), state_dict() (every attribute but the optimizer).
- LambdaLR: lr(t) = base_lr · factor(t), one factor function per group or one for all.
- WarmupDecayLR(w warmup steps, T total steps, r min_lr_ratio), the shared warmup + decay:
      factor(t) = t / w                                  for t < w  (so lr = 0 at t = 0)
      factor(t) = r + (1 − r) · decay(q)                 otherwise,
      q = min(1, (t − w) / (T − w))  (q = 1 if w = T)    the progress of the decay
  so the factor is 1 at t = w, and r at t = T and after. Its subclasses give decay(q):
  WarmupCosineLR: ½ · (1 + cos(π · q));  WarmupLinearLR: 1 − q.
- ConstantWarmupLR: t / w, then 1.
- LinearLR: factor = start + (end − start) · min(t, total_iters) / total_iters.
- CosineAnnealingLR: lr(t) = η_min + (base_lr − η_min) · ½ · (1 + cos(π · t / T_max)); as in
  torch it rises again after T_max (period 2 · T_max).

Gradient clipping (torch.nn.utils)
    total = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p           the norm of all gradients as one long vector
    g_i ← g_i · min(1, max_norm / (total + 1e−6))    the same factor for every gradient
clip_grad_norm_ returns total (before clipping), which is worth logging: spikes show trouble.
norm_type may be inf (the largest |entry|). Parameters without a gradient are skipped; with
error_if_nonfinite an inf/nan total raises instead of scaling. clip_grad_value_ clamps every
entry to [−clip_value, clip_value] instead (this changes the update's direction).
Order in a training step: loss.backward(), clip, optimizer.step(), scheduler.step().

Classic pitfalls
- Clipping each gradient by its own norm: that changes the update's direction.
- Clipping the parameters instead of the gradients, or clipping before backward().
- Calling scheduler.step() before optimizer.step(), which skips the first lr.
- Warmup that starts at lr = base_lr / w instead of 0, or cosine progress measured from 0
  instead of from the end of warmup.
- Multiplying group["lr"] by the factor each step (it compounds): always start from base_lr.

Run it
The spiral example follows your warmup + cosine schedule (20 warmup steps) and clips with your
clip_grad_norm_ once `minimod exercises check 7` passes; --use-mine swaps in every lesson that
passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 17 (Tokenization: byte-level BPE merges)

Check it: minimod exercises check 7
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e07_schedules_clipping import WarmupCosineLR, clip_grad_norm_
    >>> from minimod.optim import SGD
    >>> opt = SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> schedule, lrs = WarmupCosineLR(opt, warmup_steps=2, total_steps=6), []
    >>> for _ in range(7):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); schedule.step()
    >>> lrs
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    >>> w = torch.ones(4, requires_grad=True); (3 * w).sum().backward()
    >>> clip_grad_norm_([w], max_norm=1.0).item(), [round(g, 3) for g in w.grad.tolist()]
    (6.0, [0.5, 0.5, 0.5, 0.5])
"""

# Lesson 7 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from minimod.nn.utils import TensorsT, _with_grads
from minimod.optim.lr_scheduler import _check_schedule, _expect_optimizer

# ---- from minimod/optim/lr_scheduler.py ----------------------------------------


class LRScheduler:
    """Base class: ``get_lr()`` gives each group's lr at ``last_epoch``; ``step()`` applies it.

    Construction records each group's starting lr as ``group["initial_lr"]`` (the base lr) and
    applies step 0. To resume, pass ``last_epoch`` with an optimizer whose groups already have
    ``initial_lr`` (loaded from a checkpoint), or better, ``load_state_dict``.
    """

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        _expect_optimizer(self, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param_groups[{i}] has no "
                        f"'initial_lr', needed to resume at last_epoch={last_epoch}; "
                        "load the optimizer's state_dict first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        """The lr of every param group at step ``last_epoch`` (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_lr()")

    def step(self) -> None:
        """Advance one step and set every group's lr."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest ``step()``, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (which saves its own state)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """lr(t) = base_lr · lr_lambda(t); ``lr_lambda`` is one function or a list, one per group.

    The functions are code, not state: ``state_dict()`` leaves them out, so re-create the
    scheduler with the same functions before ``load_state_dict``.
    """

    def __init__(
        self,
        optimizer: Any,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        _expect_optimizer(self, optimizer)
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(
                    f"{type(self).__name__}: expected {groups} lr_lambdas (one per "
                    f"param group), got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(
                    f"{type(self).__name__}: lr_lambda must be callable, got {type(fn).__name__}"
                )
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # BEGIN YOUR CODE
        return [
            base_lr * fn(self.last_epoch)
            for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]
        # END YOUR CODE

    def state_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "lr_lambdas")
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # torch's LambdaLR saves "lr_lambdas" too (None for plain functions): not state here.
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


class WarmupDecayLR(LambdaLR):
    """Linear warmup from 0, then a decay from the base lr down to ``min_lr_ratio`` · base lr.

    With w = warmup_steps, T = total_steps, r = min_lr_ratio:

        factor(t) = t / w                             for t < w   (0 at t = 0)
        factor(t) = r + (1 - r) · decay(p)            otherwise,
        p = min(1, (t - w) / (T - w))                 (p = 1 if w = T)

    so the factor rises to 1 at t = w, is r at t = T and stays r after. Subclasses give the
    shape of the decay: ``decay(p)`` goes from 1 at p = 0 to 0 at p = 1.
    """

    def __init__(
        self,
        optimizer: Any,
        warmup_steps: int,
        total_steps: int,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        _check_schedule(type(self).__name__, warmup_steps, total_steps, min_lr_ratio)
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, self.factor, last_epoch)

    def decay(self, progress: float) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not define decay()")

    def factor(self, step: int) -> float:
        # BEGIN YOUR CODE
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / decay_steps) if decay_steps else 1.0
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * self.decay(progress)
        # END YOUR CODE


class WarmupCosineLR(WarmupDecayLR):
    """Warmup, then a half cosine: decay(p) = ½ · (1 + cos(π · p)).

    Unlike CosineAnnealingLR, it does not rise again after T. With r = 0 and w < T this is
    Hugging Face's get_cosine_schedule_with_warmup.
    """

    def decay(self, progress: float) -> float:
        # BEGIN YOUR CODE
        return 0.5 * (1 + math.cos(math.pi * progress))
        # END YOUR CODE


class WarmupLinearLR(WarmupDecayLR):
    """Warmup, then a straight line: decay(p) = 1 - p. With r = 0 and w < T this is Hugging
    Face's get_linear_schedule_with_warmup.
    """

    def decay(self, progress: float) -> float:
        # BEGIN YOUR CODE
        return 1 - progress
        # END YOUR CODE


class ConstantWarmupLR(LambdaLR):
    """Linear warmup from 0, then constant: factor(t) = t / w for t < w, else 1.

    Hugging Face's get_constant_schedule_with_warmup.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, last_epoch: int = -1) -> None:
        _check_schedule("ConstantWarmupLR", warmup_steps, None)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self.factor, last_epoch)

    def factor(self, step: int) -> float:
        # BEGIN YOUR CODE
        return step / self.warmup_steps if step < self.warmup_steps else 1.0
        # END YOUR CODE


class LinearLR(LambdaLR):
    """The factor moves linearly from ``start_factor`` to ``end_factor`` over ``total_iters``.

        factor(t) = start + (end - start) · min(t, total_iters) / total_iters

    Same values as torch.optim.lr_scheduler.LinearLR (which computes them step by step).
    """

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, self.factor, last_epoch)

    def factor(self, step: int) -> float:
        # BEGIN YOUR CODE
        fraction = min(step, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * fraction
        # END YOUR CODE


class CosineAnnealingLR(LRScheduler):
    """Cosine from base lr down to ``eta_min`` over ``T_max`` steps:

        lr(t) = eta_min + (base_lr - eta_min) · ½ · (1 + cos(π · t / T_max))

    As in torch, the curve is periodic: after T_max it rises again (period 2 · T_max). For a
    decay that stays at its minimum, use WarmupCosineLR.
    """

    def __init__(
        self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # BEGIN YOUR CODE
        cosine = 0.5 * (1 + math.cos(math.pi * self.last_epoch / self.T_max))
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]
        # END YOUR CODE


# ---- from minimod/nn/utils.py ----------------------------------------


def clip_grad_norm_(
    parameters: TensorsT,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    """Scale all gradients together, in place, so their joint norm is at most ``max_norm``.

        total = ‖(‖g_1‖, ‖g_2‖, ...)‖    (= the norm of all gradients concatenated; p = norm_type)
        g_i ← g_i · min(1, max_norm / (total + 1e-6))

    One coefficient for all gradients keeps the update's direction. Parameters without a
    gradient are skipped; ``norm_type`` may be ``inf`` (the largest absolute entry). Returns
    ``total`` (before clipping) as a tensor -- worth logging. With ``error_if_nonfinite``, an
    inf/NaN total raises RuntimeError instead of scaling. ``foreach`` is accepted for torch
    compatibility; minimod always loops over the gradients.
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = _with_grads(parameters)
    norm_type = float(norm_type)
    # BEGIN YOUR CODE
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the "
            "gradients is non-finite, so it cannot be clipped (set "
            "error_if_nonfinite=False to scale by it anyway)"
        )
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.device))
    return total
    # END YOUR CODE


def clip_grad_value_(parameters: TensorsT, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry, in place, to [-clip_value, clip_value].

    Parameters without a gradient are skipped; ``foreach`` is accepted for torch compatibility.
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    grads = _with_grads(parameters)
    # BEGIN YOUR CODE
    for g in grads:
        g.clamp_(min=-clip_value, max=clip_value)
    # END YOUR CODE
