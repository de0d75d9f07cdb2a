"""LoRA: fine-tune a large frozen Linear through a small low-rank update (Hu et al., 2021).

    y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ        W (out, in), b (out,) frozen
                                                  A (r, in), B (out, r) trained, r ≪ in, out

The update ΔW = (α/r)·B·A has rank at most r, and costs r·(in + out) numbers instead of in·out.
B starts at zero, so the wrapped model starts exactly equal to the base model and training
begins from the pretrained function. After training, ``merge_lora`` folds ΔW into W, which gives
back plain Linear layers with the original state_dict keys and no extra cost at inference.

    wrapped = apply_lora(model, targets=("*.c_attn",), rank=8)   # wrap, freeze all but A and B
    ... train the adapters (and anything you unfreeze yourself, e.g. a new head) ...
    torch.save(lora_state_dict(model, extra=("head.*",)), path)  # small: adapters (+ head)
    merge_lora(model)                                            # plain Linear layers again
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import torch

from minimod.nn import init
from minimod.nn._checks import expect_floating, expect_trailing_shape
from minimod.nn.dropout import Dropout
from minimod.nn.linear import Linear
from minimod.nn.module import Module, Parameter


def _check_options(where: str, rank: int, alpha: float, dropout: float) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"{where}: rank must be an integer ≥ 1, got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"{where}: alpha must be a number > 0, got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ValueError(f"{where}: dropout must be a probability in [0, 1), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{where}: dropout must be a probability in [0, 1), got {dropout!r}")


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
        # BEGIN SOLUTION
        self.base = base.requires_grad_(False)  # the pretrained layer stays as it is
        self.scaling = self.alpha / rank
        self.lora_A = Parameter(torch.empty(rank, self.in_features, **factory))
        self.lora_B = Parameter(torch.empty(self.out_features, rank, **factory))
        # END SOLUTION
        self.lora_dropout = Dropout(dropout)
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A random (so the gradient of B is not zero), B zero (so ΔW = B·A starts at zero)."""
        # BEGIN SOLUTION
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        init.zeros_(self.lora_B)
        # END SOLUTION

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        expect_trailing_shape(self, input, (self.in_features,))
        # BEGIN SOLUTION
        update = self.lora_dropout(input) @ self.lora_A.T @ self.lora_B.T  # (*, r) -> (*, out)
        return self.base(input) + self.scaling * update
        # END SOLUTION

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
        # BEGIN SOLUTION
        weight = base.weight + self.scaling * (self.lora_B @ self.lora_A)
        linear.weight = Parameter(weight, requires_grad=base.weight.requires_grad)
        if has_bias:
            linear.bias = Parameter(base.bias.clone(), requires_grad=base.bias.requires_grad)
        # END SOLUTION
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
    # BEGIN SOLUTION
    parents = dict(model.named_modules())
    for name in chosen:
        parent, _, child = name.rpartition(".")
        setattr(parents[parent], child, LoRALinear(linears[name], rank, alpha, dropout))
    model.requires_grad_(False)
    for _, layer in lora_layers(model):
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    # END SOLUTION
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


def _key(name: str, attribute: str) -> str:
    return f"{name}.{attribute}" if name else attribute


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
