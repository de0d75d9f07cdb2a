"""Optimizer: the bookkeeping every update rule stands on.

An optimizer holds ``param_groups`` -- a list of dicts, each with its ``"params"`` and its own
options (``lr``, ``weight_decay``, ...), so different parts of a model can learn at different
rates -- and ``state``, a dict from each parameter to whatever the rule remembers about it
(momentum, moving averages, a step count). ``step()`` applies the rule; ``state_dict()`` saves
both in torch.optim's format, with parameters replaced by their index, so a checkpoint is plain
data that ``torch.load(..., weights_only=True)`` reads back, and the two libraries load each
other's optimizer checkpoints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

import torch

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]

_SET_ERROR = (
    "{name}: params must be an ordered collection (a list), not a set: a set's order changes "
    "between runs, and state_dict numbers the parameters in order"
)


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
        # BEGIN SOLUTION
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.detach_().zero_()
        # END SOLUTION

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
        # BEGIN SOLUTION
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
        # END SOLUTION

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
        # BEGIN SOLUTION
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
        # END SOLUTION

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


def _cast_like(param: torch.Tensor, key: str, value: Any) -> Any:
    """A copy of a saved state value, on ``param``'s device and, if floating, in its dtype.

    The step count is a counter, not a statistic: it is copied as saved (as torch does).
    """
    if not isinstance(value, torch.Tensor):
        return value
    if key == "step":
        return value.clone()
    dtype = param.dtype if value.is_floating_point() else None
    return value.to(device=param.device, dtype=dtype, copy=True)
