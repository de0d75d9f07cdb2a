"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (torch.optim's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from minimod.optim.optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    For each parameter p with gradient g (negated if ``maximize``):

        g ← g + weight_decay · p                       (L2 penalty, added to the gradient)
        b ← g on the first step, else momentum · b + (1 - dampening) · g
        g ← g + momentum · b if nesterov else b        (only when momentum ≠ 0)
        p ← p - lr · g

    The momentum buffer b is ``state[p]["momentum_buffer"]``; it starts as the first gradient
    itself (not zeros, and without dampening), exactly as in torch.optim.SGD.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        defaults.update(nesterov=nesterov, maximize=maximize)  # the variants
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        if group["lr"] < 0:
            raise ValueError(f"SGD: invalid learning rate {group['lr']} (must be >= 0)")
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} (must be >= 0)")
        if group["weight_decay"] < 0:
            raise ValueError(f"SGD: invalid weight_decay {group['weight_decay']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires a momentum > 0 and zero dampening "
                f"(got momentum={group['momentum']}, "
                f"dampening={group['dampening']})"
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient (others are skipped)."""
        loss = self._evaluate(closure)
        # BEGIN SOLUTION
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = -param.grad if group["maximize"] else param.grad
                if group["weight_decay"] != 0:  # L2 penalty: its gradient is wd * p
                    grad = grad.add(param, alpha=group["weight_decay"])
                if momentum != 0:
                    state = self.state[param]
                    buffer = state.get("momentum_buffer")
                    if buffer is None:  # the first step: the buffer is the gradient itself
                        buffer = state["momentum_buffer"] = grad.detach().clone()
                    else:
                        buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
                    # Nesterov looks one step ahead along the momentum.
                    grad = grad.add(buffer, alpha=momentum) if group["nesterov"] else buffer
                param.add_(grad, alpha=-lr)
        # END SOLUTION
        return loss
