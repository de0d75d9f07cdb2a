"""Lesson 6: Optimizers -- SGD with momentum and AdamW

The idea
After loss.backward() every parameter p holds its gradient g = ∂loss/∂p in p.grad. An
optimizer turns gradients into updates, in place, so the model (which holds the very same
Parameter objects) sees the new values. Updates must not be recorded by autograd: step() runs
under torch.no_grad().

The Optimizer base class (given: construction and add_param_group)
- param_groups: a list of dicts, each {"params": [tensors], "lr": ..., other options}; groups
  let one model use several learning rates (e.g. no weight decay on biases and norms).
- state: a dict from parameter to its own dict (momentum buffers, moving averages, step).
You write zero_grad(set_to_none=True) -- set each p.grad to None (or zero it in place) --
and state_dict() / load_state_dict(), which save the options and state with parameters
numbered 0, 1, 2, ... in group order (tensors cannot be saved as dict keys), in exactly the
layout torch.optim uses, so checkpoints move between minimod and torch.

SGD (lr, momentum μ, dampening τ, weight_decay λ, nesterov), for each p with a gradient:
    g ← g + λ · p                                  (L2 penalty, added to the gradient)
    b ← g on the first step, else μ · b + (1 − τ) · g       (b = state[p]["momentum_buffer"])
    g ← g + μ · b if nesterov else b               (only when μ ≠ 0)
    p ← p − lr · g
The momentum buffer starts as the first gradient itself, not zeros. maximize=True negates g.

AdamW (lr, betas (β1, β2), eps ε, weight_decay λ, amsgrad), at step t = 1, 2, ...:
    p ← p · (1 − lr · λ)                 decoupled weight decay: shrinks p directly
    m ← β1 · m + (1 − β1) · g            first moment: a moving average of g
    v ← β2 · v + (1 − β2) · g²           second moment: a moving average of g²
    m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)        bias correction
    p ← p − lr · m̂ / (√v̂ + ε)
m and v start at zero, so without the bias correction the first steps would be far too small:
at t = 1, m̂ = g and v̂ = g², and the step is lr · g / (|g| + ε) ≈ lr · sign(g). Each coordinate
is scaled by its own 1/√v̂. With amsgrad, use v̂ from the running maximum of v. State keys
(as in torch): "step", "exp_avg" (m), "exp_avg_sq" (v), "max_exp_avg_sq".
Why "decoupled": Adam with L2 adds λ · p to g, and the 1/√v̂ scaling then weakens the decay
exactly for the weights with large gradients. AdamW decays every weight at the same rate.

Classic pitfalls
- p = p − lr * g rebinds a local name; the model never sees it. Update in place: p.add_(...).
- Forgetting to skip parameters whose grad is None (frozen layers, unused embeddings).
- AdamW's decay added to the gradient (that is Adam + L2), or applied after the Adam step.
- No bias correction, a step counter shared by all parameters, or t starting at 0.
- ε inside the square root: torch uses √v̂ + ε.
- A momentum buffer that starts at zeros, or dampening applied on the first step.

Run it
The spiral example trains with your AdamW once `minimod exercises check 6` passes;
--use-mine swaps in every lesson that passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 7 (Warmup, cosine schedules and gradient clipping)

Check it: minimod exercises check 6
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e06_optimizers import AdamW
    >>> w = torch.zeros(2, requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
    >>> ((w - 3) ** 2).sum().backward(); opt.step()
    >>> [round(x, 4) for x in w.tolist()]
    [0.1, 0.1]
    >>> for _ in range(300):
    ...     opt.zero_grad(); ((w - 3) ** 2).sum().backward(); opt.step()
    >>> [round(x, 1) for x in w.tolist()]
    [3.0, 3.0]
"""

# Lesson 6 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import torch

from minimod.optim.optimizer import _SET_ERROR, ParamsT, _cast_like

# ---- from minimod/optim/optimizer.py ----------------------------------------


class Optimizer:
    """Base class of every optimizer: ``Optimizer(params, defaults)``.

    ``params`` is an iterable of tensors (one group) or of dicts (several groups); a dict holds
    ``"params"`` and any options that override ``defaults`` for that group. Subclasses pass their
    options as ``defaults``, override ``_check_group`` to validate a group's options, and
    implement ``step``.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        name = type(self).__name__
        if isinstance(params, torch.Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of tensors or of dicts "
                "(param groups), got a single tensor; wrap it in a list"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR.format(name=name))
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError if a group's options are invalid (subclasses override)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (e.g. layers unfrozen later); missing options come from ``defaults``."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}: a param group must be a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}: a param group needs a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, torch.Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR.format(name=name))
        group["params"] = params = list(params)
        for param in params:
            if not isinstance(param, torch.Tensor):
                raise TypeError(f"{name}: can only optimize tensors, got {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(
                    f"{name}: can't optimize a non-leaf tensor (the result of an "
                    "operation); pass the parameter itself, e.g. model.parameters()"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group contains the same parameter twice")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set them to None (default, frees memory) or to zeros."""
        # BEGIN YOUR CODE
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.detach_().zero_()
        # END YOUR CODE

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if given."""
        raise NotImplementedError(f"{type(self).__name__} does not define step()")

    @staticmethod
    def _evaluate(closure: Callable[[], Any] | None) -> Any:
        """Run the closure (which recomputes the loss and gradients) with autograd enabled."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    # -- saving and loading ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are numbered in order across all groups; like torch, the state tensors are
        the live ones (not copies), so save or copy the result before training on.
        """
        # BEGIN YOUR CODE
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for param in group["params"]:
                index[id(param)] = len(index)
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = [index[id(param)] for param in group["params"]]
            groups.append(packed)
        state = {index[id(param)]: dict(values) for param, values in self.state.items()}
        return {"state": state, "param_groups": groups}
        # END YOUR CODE

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by ``state_dict()`` (minimod's or torch.optim's).

        The groups must have the same sizes as this optimizer's; parameters are matched by
        position. State tensors are copied to each parameter's device (and floating dtype).
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or {"state", "param_groups"} - state_dict.keys():
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and "
                "'param_groups' (what state_dict() returns)"
            )
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the checkpoint has {len(saved_groups)} "
                f"parameter groups, this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has "
                    f"{len(saved['params'])} parameters in the checkpoint, "
                    f"{len(group['params'])} in this optimizer"
                )
        # BEGIN YOUR CODE
        by_index = {
            index: param
            for saved, group in zip(saved_groups, self.param_groups, strict=True)
            for index, param in zip(saved["params"], group["params"], strict=True)
        }
        state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        for index, values in state_dict["state"].items():
            if index not in by_index:
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {index}, "
                    "which no parameter group lists"
                )
            param = by_index[index]
            state[param] = {key: _cast_like(param, key, value) for key, value in values.items()}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            saved["params"] = group["params"]
            for key, default in self.defaults.items():
                saved.setdefault(key, default)
            self._check_group(saved)
        self.param_groups = saved_groups
        self.state = state
        # END YOUR CODE

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


# ---- from minimod/optim/sgd.py ----------------------------------------


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
        # BEGIN YOUR CODE
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
        # END YOUR CODE
        return loss


# ---- from minimod/optim/adamw.py ----------------------------------------


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
        # BEGIN YOUR CODE
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
        # END YOUR CODE
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
