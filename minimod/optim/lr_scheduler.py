"""Learning-rate schedules: warmup, then a decay, set on the optimizer once per step.

A schedule is a function of the step count t = ``last_epoch`` (0 right after construction,
+1 per ``step()``). Most are a *factor* that multiplies each group's base lr (``LambdaLR``):
call ``scheduler.step()`` after every ``optimizer.step()``, so step t trains with factor(t).
Names and semantics follow torch.optim.lr_scheduler; ``state_dict()`` holds plain numbers, so a
checkpoint resumes the schedule exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def _expect_optimizer(scheduler: object, optimizer: Any) -> None:
    """Any object with ``param_groups`` will do (minimod's optimizers, or torch.optim's)."""
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(
            f"{type(scheduler).__name__}: expected an optimizer (with param_groups), got "
            f"{type(optimizer).__name__}"
        )


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
        # BEGIN SOLUTION
        return [
            base_lr * fn(self.last_epoch)
            for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]
        # END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "lr_lambdas")
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # torch's LambdaLR saves "lr_lambdas" too (None for plain functions): not state here.
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


def _check_schedule(
    name: str, warmup_steps: int, total_steps: int | None, min_lr_ratio: float = 0.0
) -> None:
    if warmup_steps < 0:
        raise ValueError(f"{name}: warmup_steps must be >= 0, got {warmup_steps}")
    if total_steps is not None:
        if total_steps <= 0:
            raise ValueError(f"{name}: total_steps must be positive, got {total_steps}")
        if warmup_steps > total_steps:
            raise ValueError(
                f"{name}: warmup_steps ({warmup_steps}) must not exceed total_steps ({total_steps})"
            )
    if not 0 <= min_lr_ratio <= 1:
        raise ValueError(f"{name}: min_lr_ratio must be in [0, 1], got {min_lr_ratio}")


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
        # BEGIN SOLUTION
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / decay_steps) if decay_steps else 1.0
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * self.decay(progress)
        # END SOLUTION


class WarmupCosineLR(WarmupDecayLR):
    """Warmup, then a half cosine: decay(p) = ½ · (1 + cos(π · p)).

    Unlike CosineAnnealingLR, it does not rise again after T. With r = 0 and w < T this is
    Hugging Face's get_cosine_schedule_with_warmup.
    """

    def decay(self, progress: float) -> float:
        # BEGIN SOLUTION
        return 0.5 * (1 + math.cos(math.pi * progress))
        # END SOLUTION


class WarmupLinearLR(WarmupDecayLR):
    """Warmup, then a straight line: decay(p) = 1 - p. With r = 0 and w < T this is Hugging
    Face's get_linear_schedule_with_warmup.
    """

    def decay(self, progress: float) -> float:
        # BEGIN SOLUTION
        return 1 - progress
        # END SOLUTION


class ConstantWarmupLR(LambdaLR):
    """Linear warmup from 0, then constant: factor(t) = t / w for t < w, else 1.

    Hugging Face's get_constant_schedule_with_warmup.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, last_epoch: int = -1) -> None:
        _check_schedule("ConstantWarmupLR", warmup_steps, None)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self.factor, last_epoch)

    def factor(self, step: int) -> float:
        # BEGIN SOLUTION
        return step / self.warmup_steps if step < self.warmup_steps else 1.0
        # END SOLUTION


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
        # BEGIN SOLUTION
        fraction = min(step, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * fraction
        # END SOLUTION


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
        # BEGIN SOLUTION
        cosine = 0.5 * (1 + math.cos(math.pi * self.last_epoch / self.T_max))
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]
        # END SOLUTION
