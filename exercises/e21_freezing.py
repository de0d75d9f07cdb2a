"""Lesson 21: Freezing and learning-rate groups

The idea
A pretrained body already computes useful features; a new head does not know what to do with
them yet. Fine-tuning chooses how much of the body may change, and how fast:
    linear probing     train the head only (cheap, cannot damage the body)
    freezing by name   train exactly the parts you name, e.g. the top two blocks and the head
    layer-wise decay   everything trains, the layers near the input most slowly
    gradual unfreezing start with the head, let one more layer train every few hundred steps
Lower layers hold general features (edges, word pieces), upper ones task-specific ones; and
a new head's first, noisy gradients can wreck a fully trainable body's pretraining.

Freezing a parameter
    param.requires_grad_(False)    autograd computes no gradient for it (faster, less memory)
    param.grad = None              and forgets the old one
The optimizer skips every parameter whose .grad is None: no step, no weight decay, no moment
update. Forget the second line and a stale gradient keeps moving a "frozen" weight (AdamW
even decays it). Build the optimizer over ALL parameters, frozen ones too: when they are
unfrozen later they are already in its groups, and a checkpoint's groups stay the same.
Patterns: fnmatch globs on named_parameters() names ("body.*", "*.encoder.layer.0.*") or
modules; no pattern means every parameter.

Linear probing and batch norm
Frozen weights are not enough for a CNN: in training mode batch norm normalises with the
batch's statistics and updates its running estimates, so the "frozen" body computes different
features for every batch and slowly forgets its pretraining statistics. linear_probe sets
freeze_stats on the body's batch norm layers: their training property reads False even after
model.train(), so they use and keep their running statistics, exactly as in eval mode.

Parameter groups
An optimizer takes a list of dicts, each with its params and its own lr and weight_decay.
    weight decay only where dim >= 2 (matrices, embeddings, conv kernels), as nanoGPT:
    shrinking a bias or a LayerNorm gain towards 0 is not regularisation, it changes the
    function (a gain of 0 silences a feature).
    layer id: embeddings / stem 0, block i -> i + 1, final norm / pooler L, head L + 1
    (L blocks: transformer.h.i, encoder.layer.i, stages.i, body.i)
    lr(id) = lr * layer_decay ** (L + 1 - id)
With L = 2 and layer_decay 0.5: head lr, final norm and block 1 lr / 2, block 0 lr / 4,
embeddings lr / 8. One group per (layer, decayed or not), each with a "name" and a "layer".

Gradual unfreezing (ULMFiT)
stages = lists of patterns, top first; at step s the first 1 + s // every stages train and
everything else is frozen. apply(step) sets exactly that set -- it also freezes what a later
stage had unfrozen -- so it is a pure function of the step: a run resumed at step N trains
exactly what the uninterrupted run trained, whatever was called before. Its state_dict holds
the stages, every and the last step, plain data for a checkpoint.

What you write
freeze and unfreeze after the given pattern matching (_match gives the chosen names);
param_groups' loop over the parameters; GradualUnfreezer.apply (use freeze and unfreeze).
linear_probe, layer_id, layer_stages, decays (the dim >= 2 rule) and the counting helpers
are minimod's.

Classic pitfalls
- requires_grad=False but the old .grad kept: AdamW still steps and decays the weight.
- Building the optimizer over the trainable parameters only: unfreezing later does nothing.
- Weight decay on biases and norm gains.
- The decay exponent backwards (embeddings at full lr, head slowest) or off by one (the head
  must get exactly lr).
- Freezing a CNN's weights but not its batch norm statistics.
- Gradual unfreezing that only ever unfreezes: a resumed run then depends on its history.

Run it
Once `minimod exercises check 21` passes, your freezing and learning-rate groups fine-tune a
pretrained tiny BERT for sentiment (--use-mine swaps in every lesson that passes and says
which). First the body `minimod demo` pretrains (2000 steps of 32 reviews; lessons 22 and 23
reuse it), then a linear probe and gradual unfreezing with layer-wise lr decay:
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --freeze body --use-mine
        --out runs/e21-probe
    minimod finetune bert --from runs/bert --task sentiment --unfreeze-every 100
        --layer-decay 0.8 --use-mine --out runs/e21
print "held-out loss 1.576, perplexity 4.833" for the body; then the probe, "66 of 13,506
parameters train", ends at test accuracy 0.48, no better than chance (0.539, always "negative"):
this body's [CLS] features carry no sentiment a linear head can read; gradual unfreezing (the
head alone first, one more layer from the top every 100 steps, each layer's lr 0.8 times the one
above) reaches 0.646; and the same command with neither option (full fine-tuning, every layer at
full lr from the start) 0.998. (The run's summary counts the trainable parameters at the start:
66, the head.) Measured with OMP_NUM_THREADS=1 (torch's default two threads per process ran the
same steps many times slower on these 2 busy shared cores): the body in about 50 s, each
fine-tuning in about 15 s.
Next: lesson 22 (LoRA: low-rank adapters and merging)

Check it: minimod exercises check 21
Try it (python, in the repository folder):
    >>> from minimod import nn
    >>> from minimod.train.freezing import layer_stages, trainable_names
    >>> from exercises.e21_freezing import GradualUnfreezer, freeze, param_groups, unfreeze
    >>> stages = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    >>> body = nn.ModuleDict(dict(stem=nn.Linear(2, 4), stages=stages))
    >>> model = nn.ModuleDict(dict(body=body, head=nn.Linear(4, 3)))
    >>> len(freeze(model, "body.*")), trainable_names(model)
    (6, ['head.weight', 'head.bias'])
    >>> unfreeze(model, model.body.stages[1])
    ['body.stages.1.weight', 'body.stages.1.bias']
    >>> for group in param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=0.5):
    ...     print(group["name"], group["lr"], group["weight_decay"], len(group["params"]))
    embeddings/decay 0.125 0.1 1
    embeddings/no_decay 0.125 0.0 1
    layer1/decay 0.25 0.1 1
    layer1/no_decay 0.25 0.0 1
    layer2/decay 0.5 0.1 1
    layer2/no_decay 0.5 0.0 1
    head/decay 1.0 0.1 1
    head/no_decay 1.0 0.0 1
    >>> unfreezer = GradualUnfreezer(model, layer_stages(model), every=10)
    >>> unfreezer.apply(0), trainable_names(model)  # the head only: stages.1 frozen again
    ([], ['head.weight', 'head.bias'])
    >>> unfreezer.apply(10)
    ['body.stages.1.weight', 'body.stages.1.bias']
    >>> unfreezer.apply(25), unfreezer.apply(25)
    (['body.stages.0.weight', 'body.stages.0.bias'], [])
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 21`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from minimod.nn.module import Module
from minimod.train.freezing import (
    Pattern,
    _check_model,
    _group_name,
    _is_batchnorm,
    _match,
    _submodule,
    count_layers,
    decays,
    layer_id,
)

# ---- from minimod/train/freezing.py ----------------------------------------


def freeze(model: Module, *patterns: Pattern) -> list[str]:
    """Stop training the parameters ``patterns`` name (every parameter when none is given):
    ``requires_grad = False`` and ``grad = None``. Returns the names that changed.

    Dropping the gradient matters: AdamW steps (and decays) every parameter that has a
    gradient, so a stale one would keep moving a "frozen" weight.
    """
    chosen = set(_match(model, patterns, "freeze"))
    changed = []
    # BEGIN YOUR CODE
    raise NotImplementedError("e21: freeze")
    # END YOUR CODE
    return changed


def unfreeze(model: Module, *patterns: Pattern) -> list[str]:
    """Train the parameters ``patterns`` name again (every parameter when none is given):
    ``requires_grad = True``. Returns the names that changed."""
    chosen = set(_match(model, patterns, "unfreeze"))
    changed = []
    # BEGIN YOUR CODE
    raise NotImplementedError("e21: unfreeze")
    # END YOUR CODE
    return changed


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e21: param_groups")
    # END YOUR CODE
    # From the input up, decayed before not decayed: the same order on every run.
    return [groups[key] for key in sorted(groups, key=lambda key: (key[0], not key[1]))]


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e21: GradualUnfreezer.apply")
        # END YOUR CODE

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
