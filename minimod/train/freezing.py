"""Choosing what trains and how fast: freezing, linear probing, layer-wise learning rates.

A pretrained body with a new head (``model.body``, ``model.head``) is fine-tuned in one of a few
ways, from cheapest to most flexible:

    linear_probe(model)                 train the head only; batch norm in the body stays fixed
    freeze(model, "body.*"); ...        train exactly what you name (fnmatch globs or modules)
    GradualUnfreezer(model, stages, every)   start with the head, unfreeze a layer at a time
    AdamW(param_groups(model, lr, weight_decay, layer_decay=0.8))
                                        everything trains, lower layers more slowly

Freezing means ``requires_grad = False`` and ``grad = None``: autograd computes no gradient,
and the optimizer (which skips parameters without one) neither steps nor decays the weight.
Build the optimizer over *all* parameters (``param_groups`` does), so that parameters unfrozen
later are already in it and its groups -- and its checkpoints -- stay the same.

Weight decay follows one rule everywhere, ``decays``: matrices decay, vectors do not.
``param_groups`` and, for pretraining, ``decay_groups`` apply it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

import torch

from minimod.nn.module import Module

Pattern = str | Module  # an fnmatch glob on parameter names ("body.*"), or a submodule

# -- choosing parameters by name ---------------------------------------------------------------


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, Module):
        raise TypeError(f"{where}: expected a minimod Module, got {type(model).__name__}")


def _match(model: Module, patterns: Sequence[Pattern], where: str) -> list[str]:
    """The names of ``model``'s parameters that any of ``patterns`` names, in model order; every
    name when ``patterns`` is empty. A pattern that names nothing is a ValueError."""
    _check_model(model, where)
    named = list(model.named_parameters())
    if not patterns:
        return [name for name, _ in named]
    chosen: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, Module):
            ids = {id(param) for param in pattern.parameters()}
            found = {name for name, param in named if id(param) in ids}
            what = f"the {type(pattern).__name__} given"
        elif isinstance(pattern, str):
            found = {name for name, _ in named if fnmatchcase(name, pattern)}
            what = f"pattern {pattern!r}"
        else:
            raise TypeError(
                f"{where}: patterns must be fnmatch globs (str) or Modules, "
                f"got {type(pattern).__name__}"
            )
        if not found:
            raise ValueError(
                f"{where}: {what} matches no parameter of the model; {_examples(named)}"
            )
        chosen |= found
    return [name for name, _ in named if name in chosen]


def _examples(named: list[tuple[str, Any]], count: int = 4) -> str:
    if not named:
        return "the model has no parameters"
    names = [name for name, _ in named]
    shown = names if len(names) <= count + 1 else [*names[:count], "...", names[-1]]
    return f"its {len(names)} parameter names look like: " + ", ".join(shown)


def match_parameters(model: Module, *patterns: Pattern) -> list[str]:
    """The names of the parameters that ``patterns`` name (all when none), in model order.

    A pattern is an fnmatch glob on the dotted names ``named_parameters()`` gives
    (``"body.*"``, ``"*.encoder.layer.0.*"``; case-sensitive) or a submodule of ``model``.
    A pattern that matches nothing raises ValueError listing a few real names.
    """
    return _match(model, patterns, "match_parameters")


def freeze(model: Module, *patterns: Pattern) -> list[str]:
    """Stop training the parameters ``patterns`` name (every parameter when none is given):
    ``requires_grad = False`` and ``grad = None``. Returns the names that changed.

    Dropping the gradient matters: AdamW steps (and decays) every parameter that has a
    gradient, so a stale one would keep moving a "frozen" weight.
    """
    chosen = set(_match(model, patterns, "freeze"))
    changed = []
    # BEGIN SOLUTION
    for name, param in model.named_parameters():
        if name in chosen and param.requires_grad:
            param.requires_grad_(False)
            param.grad = None  # else the optimizer would still step it (and decay it)
            changed.append(name)
    # END SOLUTION
    return changed


def unfreeze(model: Module, *patterns: Pattern) -> list[str]:
    """Train the parameters ``patterns`` name again (every parameter when none is given):
    ``requires_grad = True``. Returns the names that changed."""
    chosen = set(_match(model, patterns, "unfreeze"))
    changed = []
    # BEGIN SOLUTION
    for name, param in model.named_parameters():
        if name in chosen and not param.requires_grad:
            param.requires_grad_(True)
            changed.append(name)
    # END SOLUTION
    return changed


def trainable_names(model: Module) -> list[str]:
    """The names of the parameters that train (``requires_grad``), in model order."""
    _check_model(model, "trainable_names")
    return [name for name, param in model.named_parameters() if param.requires_grad]


def count_parameters(model: Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameter values; a shared (tied) tensor counts once."""
    _check_model(model, "count_parameters")
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def trainable_summary(model: Module) -> str:
    """One line: ``trainable: 1,290 of 105,866 parameters (1.2%) in 2 of 30 tensors``."""
    trainable, total = count_parameters(model)
    tensors = list(model.parameters())
    share = 100.0 * trainable / total if total else 0.0
    count = sum(p.requires_grad for p in tensors)
    return (
        f"trainable: {trainable:,} of {total:,} parameters ({share:.1f}%) "
        f"in {count} of {len(tensors)} tensors"
    )


# -- linear probing ----------------------------------------------------------------------------


def _is_batchnorm(module: Module) -> bool:
    # Duck-typed, so a learner's own batch norm class (a copy of minimod's) counts too.
    return hasattr(type(module), "freeze_stats") and hasattr(module, "running_mean")


def freeze_batchnorm_stats(module: Module, frozen: bool = True) -> list[str]:
    """Make every batch norm layer in ``module`` (itself included) use and keep its running
    statistics even in training mode (``frozen=True``), or undo that. Returns their names."""
    _check_model(module, "freeze_batchnorm_stats")
    names = []
    for name, child in module.named_modules():
        if _is_batchnorm(child):
            child.freeze_stats = frozen
            names.append(name)
    return names


def _submodule(model: Module, head: str | Module, where: str) -> Module:
    if isinstance(head, Module):
        if not any(module is head for module in model.modules()):
            raise ValueError(f"{where}: the {type(head).__name__} given is not part of the model")
        return head
    if not isinstance(head, str):
        raise TypeError(f"{where}: head must be a submodule's name or a Module, got {head!r}")
    modules = dict(model.named_modules())
    if head not in modules:
        children = ", ".join(name for name, _ in model.named_children())
        raise ValueError(f"{where}: the model has no submodule {head!r}; its children: {children}")
    return modules[head]


def linear_probe(model: Module, head: str | Module = "head", batchnorm_eval: bool = True):
    """Train only the head: freeze every other parameter, unfreeze the head's.

    head: the head's dotted module name (default ``"head"``) or the module itself.
    batchnorm_eval: the batch norm layers outside the head keep normalising with their running
        statistics and never update them, even after ``model.train()`` -- a frozen body then
        computes exactly the features it computes in eval mode (``False`` undoes it).
    Returns the names of the parameters that train (the head's).
    """
    head_module = _submodule(model, head, "linear_probe")
    head_names = _match(model, [head_module], "linear_probe")
    body_names = [name for name, _ in model.named_parameters() if name not in set(head_names)]
    if body_names:
        freeze(model, *body_names)
    unfreeze(model, head_module)
    in_head = {id(module) for module in head_module.modules()}
    for module in model.modules():
        if _is_batchnorm(module) and id(module) not in in_head:
            module.freeze_stats = batchnorm_eval
    return head_names


# -- layers, learning rates and weight decay ---------------------------------------------------

# Block i of a GPT, a BERT, a ResNet (stage i) or an AudioCNN (layer i of its ``body``), with
# or without a wrapper's leading ``body.``.
_BLOCK = re.compile(r"(?:^|\.)(?:transformer\.h|encoder\.layer|stages|body)\.(\d+)(?:\.|$)")
HEAD_NAMES = ("head", "lm_head", "cls", "classifier")  # first name part (after "body.")
FINAL_NAMES = ("ln_f", "pooler", "norm_f", "final_norm", "final_layer_norm")
EMBEDDING_NAMES = ("embeddings", "wte", "wpe", "stem", "embedding", "embed")


def layer_id(name: str, num_layers: int) -> int:
    """Where a parameter sits, counted from the input: embeddings / stem 0, block i -> i + 1,
    the final norm / pooler ``num_layers``, the head ``num_layers + 1``.

    Blocks are recognised as ``transformer.h.i`` (GPT), ``encoder.layer.i`` (BERT),
    ``stages.i`` (ResNet) and ``body.i`` (AudioCNN), with or without a leading ``body.``.
    """
    parts = name.split(".")
    inner = parts[1:] if parts[0] == "body" and len(parts) > 1 else parts
    if inner[0] in HEAD_NAMES:
        return num_layers + 1
    match = _BLOCK.search(name)
    if match:
        block = int(match.group(1))
        if block >= num_layers:
            raise ValueError(
                f"layer_id: {name!r} is in block {block}, but num_layers is {num_layers}"
            )
        return block + 1
    if any(part in FINAL_NAMES for part in parts):
        return num_layers
    if any(part in EMBEDDING_NAMES for part in parts):
        return 0
    raise ValueError(
        f"layer_id: cannot tell which layer {name!r} belongs to; known: heads {HEAD_NAMES}, "
        f"blocks transformer.h.N / encoder.layer.N / stages.N / body.N, final {FINAL_NAMES}, "
        f"embeddings {EMBEDDING_NAMES}"
    )


def count_layers(model: Module) -> int:
    """The number of blocks (1 + the largest block index of any parameter; 0 if none)."""
    _check_model(model, "count_layers")
    blocks = [_BLOCK.search(name) for name, _ in model.named_parameters()]
    return max((int(match.group(1)) + 1 for match in blocks if match), default=0)


def decays(param: torch.Tensor) -> bool:
    """The weight-decay rule, as nanoGPT: parameters with 2 or more dimensions (matrices,
    embeddings, conv kernels) decay; vectors (biases, norm gains) do not -- shrinking a gain
    towards 0 is not regularisation, it changes the function."""
    return param.dim() >= 2


def decay_groups(model: Module, weight_decay: float) -> list[dict[str, Any]]:
    """The trainable parameters as optimizer groups ``{"params", "weight_decay"}``: those that
    ``decays`` with ``weight_decay``, then the others with 0 (an empty group is left out).
    For training from scratch; ``param_groups`` adds per-layer learning rates and keeps frozen
    parameters."""
    _check_model(model, "decay_groups")
    params = [param for param in model.parameters() if param.requires_grad]
    groups = [
        {"params": [param for param in params if decays(param)], "weight_decay": weight_decay},
        {"params": [param for param in params if not decays(param)], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def _group_name(layer: int | None, decay: bool, num_layers: int) -> str:
    kind = "decay" if decay else "no_decay"
    if layer is None:
        return kind
    where = "head" if layer == num_layers + 1 else "embeddings" if layer == 0 else f"layer{layer}"
    return f"{where}/{kind}"


def param_groups(
    model: Module,
    lr: float,
    weight_decay: float = 0.0,
    layer_decay: float | None = None,
    head_lr: float | None = None,
    no_decay: Sequence[str] = (),
    num_layers: int | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: ``AdamW(param_groups(model, 1e-4, 0.01, layer_decay=0.8))``.

    Weight decay: only on the parameters that ``decays`` (2 or more dimensions: matrices and
        embeddings); biases and norm gains get 0, as do names matching a ``no_decay`` glob.
    layer_decay: layer-wise learning-rate decay, lr · layer_decay ** (num_layers + 1 − id),
        ``id = layer_id(name, num_layers)``: the head learns at ``lr``, each layer below at
        ``layer_decay`` times the rate of the one above, the embeddings slowest.
    head_lr: the head's learning rate instead (layer ids are then used even without decay).
    num_layers: the number of blocks; default ``count_layers(model)``.

    Every parameter is in a group, frozen ones too, so the groups stay the same when they are
    unfrozen later. Each group is a dict with ``params``, ``lr``, ``weight_decay``, a ``name``
    (``"layer2/decay"``, ``"head/no_decay"``, ``"embeddings/decay"``; ``"decay"`` without layer
    ids) and a ``layer`` (its id; None without layer_decay or head_lr).
    """
    _check_model(model, "param_groups")
    for option, value in (("lr", lr), ("weight_decay", weight_decay), ("head_lr", head_lr)):
        if value is not None and not value >= 0:
            raise ValueError(f"param_groups: {option} must be >= 0, got {value}")
    if layer_decay is not None and not 0 < layer_decay <= 1:
        raise ValueError(f"param_groups: layer_decay must be in (0, 1], got {layer_decay}")
    if isinstance(no_decay, str):
        no_decay = (no_decay,)
    named = list(model.named_parameters())
    if not named:
        raise ValueError("param_groups: the model has no parameters")
    by_layer = layer_decay is not None or head_lr is not None
    if num_layers is None:
        num_layers = count_layers(model)
    # (layer id, or -1 without layer ids; decayed?) -> {"params": [...], "lr", "weight_decay",
    # "name": _group_name(layer, decay, num_layers), "layer": the id or None}
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    # BEGIN SOLUTION
    for name, param in named:
        decay = decays(param) and not any(fnmatchcase(name, glob) for glob in no_decay)
        layer = layer_id(name, num_layers) if by_layer else None
        group_lr = lr
        if layer_decay is not None:
            group_lr = lr * layer_decay ** (num_layers + 1 - layer)  # the head: lr itself
        if head_lr is not None and layer == num_layers + 1:
            group_lr = head_lr
        key = (-1 if layer is None else layer, decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": group_lr,
                "weight_decay": weight_decay if decay else 0.0,
                "name": _group_name(layer, decay, num_layers),
                "layer": layer,
            }
        groups[key]["params"].append(param)
    # END SOLUTION
    # From the input up, decayed before not decayed: the same order on every run.
    return [groups[key] for key in sorted(groups, key=lambda key: (key[0], not key[1]))]


def layer_stages(model: Module, num_layers: int | None = None) -> list[list[str]]:
    """The parameter names grouped by ``layer_id``, top (head) first: stages for
    ``GradualUnfreezer(model, layer_stages(model), every=100)``."""
    _check_model(model, "layer_stages")
    if num_layers is None:
        num_layers = count_layers(model)
    by_layer: dict[int, list[str]] = {}
    for name, _ in model.named_parameters():
        by_layer.setdefault(layer_id(name, num_layers), []).append(name)
    return [by_layer[layer] for layer in sorted(by_layer, reverse=True)]


# -- gradual unfreezing ------------------------------------------------------------------------


class GradualUnfreezer:
    """Train the head first, then unfreeze one stage more every ``every`` steps (ULMFiT).

    stages: lists of patterns (globs or submodules, see ``match_parameters``), top first, e.g.
        ``[["head.*"], ["body.transformer.h.3.*"], ..., ["body.transformer.w?e.*"]]`` or
        ``layer_stages(model)``. Parameters no stage names stay frozen.
    At step s the first ``1 + s // every`` stages train and everything else is frozen.
    ``apply(step)`` sets exactly that -- a pure function of the step, so a run resumed at step
    N has the trainable set of the uninterrupted run. Call it before every step.
    """

    def __init__(self, model: Module, stages: Sequence[Sequence[Pattern]], every: int) -> None:
        _check_model(model, "GradualUnfreezer")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradualUnfreezer: every must be an int >= 1, got {every!r}")
        self.model, self.every = model, every
        self.stages = self._plain_stages(stages)
        self.step: int | None = None  # the last step applied

    def _plain_stages(self, stages: Sequence[Sequence[Pattern]]) -> list[list[str]]:
        """Stages as lists of strings (a module becomes its parameters' names), each checked
        to match something: plain data for state_dict."""
        if isinstance(stages, (str, Module)) or not stages:
            raise ValueError("GradualUnfreezer: stages must be a non-empty list of lists")
        plain = []
        for stage in stages:
            if isinstance(stage, (str, Module)) or not stage:
                raise ValueError(
                    f"GradualUnfreezer: each stage must be a non-empty list of patterns, "
                    f"got {stage!r}"
                )
            patterns = []
            for pattern in stage:
                names = _match(self.model, [pattern], "GradualUnfreezer")
                patterns += names if isinstance(pattern, Module) else [pattern]
            plain.append(patterns)
        return plain

    def num_stages_at(self, step: int) -> int:
        """How many stages train at ``step``."""
        return min(len(self.stages), 1 + step // self.every)

    def apply(self, step: int) -> list[str]:
        """Make exactly the first ``1 + step // every`` stages trainable and freeze the rest.
        Returns the names newly unfrozen (none when called again with the same step)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"GradualUnfreezer.apply: step must be an int >= 0, got {step!r}")
        self.step = step
        # BEGIN SOLUTION
        active = min(len(self.stages), 1 + step // self.every)
        patterns = [pattern for stage in self.stages[:active] for pattern in stage]
        keep = set(_match(self.model, patterns, "GradualUnfreezer.apply"))
        rest = [name for name, _ in self.model.named_parameters() if name not in keep]
        if rest:
            freeze(self.model, *rest)  # also what a later stage had unfrozen: a pure function
        return unfreeze(self.model, *keep)
        # END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint: the stages, ``every`` and the last step applied."""
        stages = [list(stage) for stage in self.stages]
        return {"stages": stages, "every": self.every, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved and apply its step again (if one was applied)."""
        if not isinstance(state, dict) or {"stages", "every", "step"} - state.keys():
            raise ValueError(
                "GradualUnfreezer.load_state_dict: expected a dict with 'stages', 'every' and "
                "'step' (what state_dict() returns)"
            )
        every = state["every"]
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradualUnfreezer.load_state_dict: bad every {every!r}")
        self.stages, self.every = self._plain_stages(state["stages"]), every
        self.step = None
        if state["step"] is not None:
            self.apply(int(state["step"]))

    def __repr__(self) -> str:
        return f"GradualUnfreezer({len(self.stages)} stages, every={self.every}, step={self.step})"
