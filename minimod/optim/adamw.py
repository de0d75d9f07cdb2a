"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as torch.optim.AdamW."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from minimod.optim.optimizer import Optimizer, ParamsT


class AdamW(Optimizer):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``.

    For each parameter p with gradient g (negated if ``maximize``), at step t = 1, 2, ...:

        p ← p · (1 - lr · weight_decay)         decoupled decay: shrinks p, never touches m or v
        m ← β1 · m + (1 - β1) · g               first moment (moving average of g)
        v ← β2 · v + (1 - β2) · g²              second moment (moving average of g²)
        v̂ ← max(v̂, v) if amsgrad else v
        p ← p - lr / (1 - β1^t) · m / (√v̂ / √(1 - β2^t) + ε)

    The divisions by 1 - β^t are the bias correction: m and v start at zero, so early averages
    are too small. Adding weight_decay · p to g instead would be Adam with an L2 penalty, which
    the per-coordinate scaling by 1/√v weakens exactly where gradients are large.

    State per parameter (torch's keys): ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v) and,
    with amsgrad, ``max_exp_avg_sq``. minimod counts ``step`` with a Python int (no device
    sync); a loaded torch checkpoint's tensor step is accepted.

    ``foreach=True`` does the same arithmetic with torch's ``_foreach_*`` operations: one call
    per operation for ALL parameters of a group instead of one per parameter, which saves
    Python overhead when a model has many small tensors. As in torch on the CPU, the default
    (None) is the plain per-parameter loop; minimod's training commands ask for foreach.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        defaults.update(amsgrad=amsgrad, maximize=maximize, foreach=foreach)  # the variants
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        if group["lr"] < 0:
            raise ValueError(f"AdamW: invalid learning rate {group['lr']} (must be >= 0)")
        if group["eps"] < 0:
            raise ValueError(f"AdamW: invalid eps {group['eps']} (must be >= 0)")
        if len(group["betas"]) != 2:
            raise ValueError(f"AdamW: betas must be a pair (beta1, beta2), got {group['betas']}")
        for i, beta in enumerate(group["betas"]):
            if not 0 <= beta < 1:
                raise ValueError(f"AdamW: invalid beta{i + 1} {beta} (must be in [0, 1))")
        if group["weight_decay"] < 0:
            raise ValueError(f"AdamW: invalid weight_decay {group['weight_decay']} (must be >= 0)")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient (others are skipped)."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            if group.get("foreach") and not group["amsgrad"]:
                self._foreach_step(group)
        # BEGIN SOLUTION
        for group in self.param_groups:
            if group.get("foreach") and not group["amsgrad"]:
                continue  # done above
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = -param.grad if group["maximize"] else param.grad
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(param)
                state["step"] = step = int(state["step"]) + 1  # int(): torch saves a tensor
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                if weight_decay != 0:  # decoupled: shrink p itself, never the gradient
                    param.mul_(1 - lr * weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)  # m += (1 - beta1) * (g - m)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if group["amsgrad"]:  # normalise by the largest v seen so far
                    torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    exp_avg_sq = state["max_exp_avg_sq"]

                # m and v started at zero: dividing by 1 - beta**step undoes that bias.
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                denom = exp_avg_sq.sqrt().div_(math.sqrt(bias_correction2)).add_(eps)
                param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
        # END SOLUTION
        return loss

    def _foreach_step(self, group: dict[str, Any]) -> None:
        """The update above for every parameter of ``group`` at once (no amsgrad). Parameters
        are grouped by their step count, which differs when some got no gradient earlier."""
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        by_step: dict[int, tuple[list, ...]] = {}
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            state["step"] = step = int(state["step"]) + 1
            lists = by_step.setdefault(step, ([], [], [], []))
            grad = -param.grad if group["maximize"] else param.grad
            for target, value in zip(
                lists, (param, grad, state["exp_avg"], state["exp_avg_sq"]), strict=True
            ):
                target.append(value)
        for step, (params, grads, exp_avgs, exp_avg_sqs) in by_step.items():
            if weight_decay != 0:
                torch._foreach_mul_(params, 1 - lr * weight_decay)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denom, math.sqrt(bias_correction2))
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denom, value=-lr / bias_correction1)
