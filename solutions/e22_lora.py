"""Lesson 22: LoRA -- fine-tuning through a low-rank update

The idea
Fine-tuning every weight of a large model needs a full copy of it per task, and an optimizer
state twice that size. LoRA (Hu et al., 2021) freezes the pretrained weight W and learns only a
low-rank change to it: ΔW = (α/r)·B·A, with r much smaller than the layer's sides. The update of
a fine-tune turns out to have low "intrinsic rank", so a small r (4 to 16) is usually enough.

The math and the shapes
    base Linear:  y = x Wᵀ + b                W (out, in), b (out,)      frozen
    adapters:     A (r, in), B (out, r)                                 trained
    LoRALinear:   y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ
                  x (*, in) -> x Aᵀ (*, r) -> (x Aᵀ) Bᵀ (*, out)
Never form B·A in forward: going through the r-wide bottleneck costs r·(in + out) per row
instead of in·out. scaling = α/r: when you change r, the update keeps roughly the same size, so
α need not be re-tuned (α = 2r is a common choice; minimod's defaults are r = 8, α = 16).

Why B starts at zero
A ~ U(-1/√in, 1/√in) (kaiming uniform with a = √5, as peft and nn.Linear), B = 0. Then ΔW = 0:
the wrapped model starts EXACTLY equal to the pretrained one, and training starts from the
function you paid for. Both zero would be a dead end: the gradient of B is (α/r)·gᵀ(x Aᵀ) and
the gradient of A is (α/r)·(g B)ᵀ x, so with A = B = 0 neither ever moves. With A random and
B = 0, B gets a gradient on the first step, and A from the second on.

Parameter counts
GPT-2 small's c_attn is a 768 -> 2304 Linear: 1,769,472 weights. With r = 8 its adapters hold
8 · (768 + 2304) = 24,576 numbers, 1.4% of it. The saved fine-tune (lora_state_dict) is only
the adapters, plus whatever new head you trained.

Merging
After training, fold the update into the weight: W' = W + (α/r)·B·A (out, in), same bias. The
result is a plain Linear with the original key names (c_attn.weight): no extra cost at inference,
and it loads into any model, torch.nn.Linear included. merged() returns it; the given lines
build it as Linear(in, out, bias=..., device="meta"): the meta device allocates no memory and
draws no random numbers, and its tensors have no data: copy_ into them leaves them on meta,
still without data. ASSIGN new Parameters to linear.weight (W') and, when there is a bias,
to linear.bias (a clone of the base's: the merged layer must not share it), each with its
base tensor's requires_grad. A weight tied to another parameter (GPT's lm_head is the token
embedding) cannot be merged without changing the other use too.

Wrapping a model
apply_lora finds the Linear layers whose names (from named_modules) match the patterns, e.g.
"*.c_attn" in GPT or "*attn.query" in BERT, and replaces each in its parent:
"transformer.h.0.attn.c_attn" -> parent "transformer.h.0.attn", child "c_attn", then
setattr(parent, child, LoRALinear(...)). Then every parameter of the model is frozen except the
adapters. Unfreeze a new head AFTER calling it.

What you write
LoRALinear: __init__ (freeze the base, scaling, the two Parameters), reset_lora_parameters,
forward, merged; apply_lora's replacement and freezing. merge_lora, lora_state_dict, load_lora
and the checks are minimod's.

Classic pitfalls
- B initialised randomly: the model no longer starts equal to the pretrained one.
- Scaling by α instead of α/r: the update is r times too large.
- Forgetting to freeze the base: it is no longer LoRA, and it costs full fine-tuning's memory.
- Forming B·A (out, in) inside forward, or multiplying in the wrong order (A·B: shape error).
- merged() forgetting the scaling, or the bias.

Run it
Once `minimod exercises check 22` passes, your adapters fine-tune the pretrained tiny BERT of
lesson 21's Run it for sentiment (--use-mine swaps in every lesson that passes and says which;
the first command makes runs/bert, skip it if you have it): rank-4 adapters on its six Linear
layers, and a new head.
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --lora-rank 4 --use-mine --out runs/e22
prints "1,858 of 15,298 parameters train", then "test accuracy 0.482, macro_f1 0.4647" (seeds 1
and 2, --seed: 0.488 and 0.461) -- NOT better than chance, 0.539 here (always "negative"). Why:
the body is 1 layer, 32 wide, and its [CLS] features carry no sentiment (its linear probe stays
at chance, lesson 21); 1,858 adapter numbers (learning rate 1e-3, 600 steps) do not move them
far enough, and the head mostly answers one class (--lr 1e-2, or rank 16, did no better). Fully
fine-tuned, the same body reaches 0.998. LoRA pays on large pretrained models whose features
already hold the answer: the README's MiniLM table (LoRA 87.7%, full fine-tuning 87.5%, with
1.5% of the parameters), minutes on a CPU. Measured with OMP_NUM_THREADS=1 (torch's default two
threads per process ran the same steps many times slower on these 2 busy shared cores): the body
in about 50 s, each fine-tuning in about 15 s.
Next: lesson 23 (Evaluating and imbalanced data: class weights, weighted sampling, focal loss)

Check it: minimod exercises check 22
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod import nn
    >>> from exercises.e22_lora import LoRALinear, apply_lora, merge_lora
    >>> _ = torch.manual_seed(0)
    >>> base = nn.Linear(64, 32)
    >>> layer = LoRALinear(base, rank=4, alpha=8.0)
    >>> layer.scaling, tuple(layer.lora_A.shape), tuple(layer.lora_B.shape)
    (2.0, (4, 64), (32, 4))
    >>> x = torch.randn(3, 64)
    >>> torch.equal(layer(x), base(x))  # B = 0: it starts as the base layer
    True
    >>> sum(p.numel() for p in layer.parameters() if p.requires_grad), base.weight.numel()
    (384, 2048)
    >>> model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 2))
    >>> apply_lora(model, targets=["0"], rank=2)
    ['0']
    >>> [name for name, p in model.named_parameters() if p.requires_grad]
    ['0.lora_A', '0.lora_B']
    >>> merge_lora(model), list(model.state_dict())
    (['0'], ['0.weight', '0.bias', '2.weight', '2.bias'])
"""

# Lesson 22 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import torch

from minimod.nn import init
from minimod.nn._checks import expect_floating, expect_trailing_shape
from minimod.nn.dropout import Dropout
from minimod.nn.linear import Linear
from minimod.nn.lora import _check_options, _key
from minimod.nn.module import Module, Parameter

# ---- from minimod/nn/lora.py ----------------------------------------


class LoRALinear(Module):
    """``base`` (a Linear, frozen) plus a trainable low-rank update.

    forward: x (*, in_features) -> base(x) + scaling · dropout(x) @ lora_Aᵀ @ lora_Bᵀ
    (*, out_features), with lora_A (rank, in_features) ~ U(-1/√in, 1/√in) (as peft: kaiming
    uniform with a=√5), lora_B (out_features, rank) = 0 and scaling = alpha / rank.
    Dividing by the rank keeps the update's size roughly independent of r, so alpha need not be
    re-tuned when r changes. state_dict keys: ``base.weight``, ``base.bias``, ``lora_A``,
    ``lora_B``.
    """

    def __init__(self, base: Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear: base must be a Linear layer, got {type(base).__name__}")
        _check_options("LoRALinear", rank, alpha, dropout)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.rank, self.alpha = rank, float(alpha)
        factory = dict(device=base.weight.device, dtype=base.weight.dtype)
        # BEGIN YOUR CODE
        self.base = base.requires_grad_(False)  # the pretrained layer stays as it is
        self.scaling = self.alpha / rank
        self.lora_A = Parameter(torch.empty(rank, self.in_features, **factory))
        self.lora_B = Parameter(torch.empty(self.out_features, rank, **factory))
        # END YOUR CODE
        self.lora_dropout = Dropout(dropout)
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A random (so the gradient of B is not zero), B zero (so ΔW = B·A starts at zero)."""
        # BEGIN YOUR CODE
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        init.zeros_(self.lora_B)
        # END YOUR CODE

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        expect_trailing_shape(self, input, (self.in_features,))
        # BEGIN YOUR CODE
        update = self.lora_dropout(input) @ self.lora_A.T @ self.lora_B.T  # (*, r) -> (*, out)
        return self.base(input) + self.scaling * update
        # END YOUR CODE

    @torch.no_grad()
    def merged(self) -> Linear:
        """A plain Linear that computes this layer's function (without dropout): weight
        W + scaling · B·A (out, in), a copy of the bias. requires_grad is copied from the base."""
        base = self.base
        has_bias = base.bias is not None
        # Built on the meta device: no memory and no random numbers, its tensors are set below.
        linear = Linear(
            self.in_features,
            self.out_features,
            bias=has_bias,
            device="meta",
            dtype=base.weight.dtype,
        )
        # BEGIN YOUR CODE
        weight = base.weight + self.scaling * (self.lora_B @ self.lora_A)
        linear.weight = Parameter(weight, requires_grad=base.weight.requires_grad)
        if has_bias:
            linear.bias = Parameter(base.bias.clone(), requires_grad=base.bias.requires_grad)
        # END YOUR CODE
        return linear

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, alpha={self.alpha}"
        )


def lora_layers(model: Module) -> list[tuple[str, LoRALinear]]:
    """Every LoRALinear in ``model`` with its dotted name."""
    return [
        (name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)
    ]


def apply_lora(
    model: Module,
    targets: str | Iterable[str] = ("*",),
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Wrap the Linear layers of ``model`` whose names match ``targets`` in LoRALinear, in place,
    and freeze every parameter of the model except the adapters (lora_A, lora_B). Returns the
    wrapped layers' names.

    targets: fnmatch patterns over the names of ``model.named_modules()``, e.g. "*.c_attn" (GPT),
    "*attn.query" (BERT); the default "*" wraps every Linear. Each pattern must match at
    least one Linear. Freezing happens once, here: call apply_lora first, then unfreeze what else
    should train (e.g. ``model.head.requires_grad_(True)``). A tied weight stays tied: the base
    Linear is kept, not copied (but see merge_lora).
    """
    if not isinstance(model, Module):
        raise TypeError(f"apply_lora: model must be a Module, got {type(model).__name__}")
    if isinstance(model, Linear):
        raise TypeError("apply_lora: the model is itself a Linear; wrap it: LoRALinear(model)")
    patterns = (targets,) if isinstance(targets, str) else tuple(targets)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"apply_lora: targets must be name patterns (strings), got {targets!r}")
    _check_options("apply_lora", rank, alpha, dropout)
    wrapped_already = {id(layer.base) for _, layer in lora_layers(model)}
    linears = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, Linear) and id(module) not in wrapped_already
    }
    unmatched = [p for p in patterns if not any(fnmatchcase(name, p) for name in linears)]
    if unmatched:
        raise ValueError(
            f"apply_lora: no Linear layer matches {', '.join(map(repr, unmatched))}; "
            f"the Linear layers are: {', '.join(linears) or '(none)'}"
        )
    chosen = [name for name in linears if any(fnmatchcase(name, p) for p in patterns)]
    # BEGIN YOUR CODE
    parents = dict(model.named_modules())
    for name in chosen:
        parent, _, child = name.rpartition(".")
        setattr(parents[parent], child, LoRALinear(linears[name], rank, alpha, dropout))
    model.requires_grad_(False)
    for _, layer in lora_layers(model):
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    # END YOUR CODE
    return chosen


def merge_lora(model: Module) -> list[str]:
    """Replace every LoRALinear in ``model`` by its ``merged()`` Linear, in place; return their
    names. The state_dict keys become the original ones again (``c_attn.weight``), and outputs
    equal the unmerged model's up to rounding (float32: about 1e-6, relative).

    A layer whose weight is tied to another parameter (GPT's lm_head and token embedding) cannot
    be merged: W + ΔW would no longer be the embedding. Leave it out of apply_lora's targets.
    """
    if isinstance(model, LoRALinear):
        raise TypeError("merge_lora: the model is itself a LoRALinear; use model.merged()")
    layers = lora_layers(model)
    names_of: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names_of.setdefault(id(param), []).append(name)
    for name, layer in layers:
        own = f"{name}.base.weight"
        others = [n for n in names_of.get(id(layer.base.weight), [own]) if n != own]
        if others:
            raise ValueError(
                f"merge_lora: {name}'s weight is tied to {', '.join(others)}; merging would "
                "change that parameter too. Apply LoRA without this layer to merge."
            )
    parents = dict(model.named_modules())
    for name, layer in layers:
        parent, _, child = name.rpartition(".")
        setattr(parents[parent], child, layer.merged())
    return [name for name, _ in layers]


def adapter_keys(model: Module) -> list[str]:
    """The state_dict keys of every adapter in ``model``: ``….lora_A`` and ``….lora_B``."""
    return [_key(name, kind) for name, _ in lora_layers(model) for kind in ("lora_A", "lora_B")]


def lora_state_dict(model: Module, extra: str | Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """What a LoRA fine-tune saves: every adapter (``….lora_A``, ``….lora_B``), plus the
    state_dict entries whose keys match an ``extra`` pattern (e.g. "head.*" for a new head).
    Like state_dict, the tensors are the live ones: save or clone them before training on."""
    patterns = (extra,) if isinstance(extra, str) else tuple(extra)
    state = model.state_dict()
    unmatched = [p for p in patterns if not any(fnmatchcase(key, p) for key in state)]
    if unmatched:
        raise ValueError(
            f"lora_state_dict: no state_dict key matches {', '.join(map(repr, unmatched))}"
        )
    adapters = set(adapter_keys(model))
    return {
        key: value
        for key, value in state.items()
        if key in adapters or any(fnmatchcase(key, p) for p in patterns)
    }


def load_lora(model: Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load what lora_state_dict saved into ``model``, after ``apply_lora`` with the same
    targets and rank: every key must name a tensor of the model with the same shape, and every
    adapter of the model must be in ``state_dict``. Checked before anything is copied."""
    own = model.state_dict()
    unexpected = [key for key in state_dict if key not in own]
    mismatched = [
        f"{key} (saved {tuple(state_dict[key].shape)}, model {tuple(own[key].shape)})"
        for key in state_dict
        if key in own and state_dict[key].shape != own[key].shape
    ]
    missing = [key for key in adapter_keys(model) if key not in state_dict]
    problems = [
        f"  {title} ({len(keys)}): {', '.join(keys)}"
        for title, keys in (
            ("keys the model does not have", unexpected),
            ("shape mismatches", mismatched),
            ("adapters missing from the state_dict", missing),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            "load_lora: the state_dict does not fit this model (call apply_lora with the same "
            "targets and rank as the saved run first):\n" + "\n".join(problems)
        )
    model.load_state_dict(state_dict, strict=False)
