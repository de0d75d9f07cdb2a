"""Training diagnostics: what a practitioner measures by hand when a model will not learn.

Per layer, on one training step:
- activations: the mean and standard deviation of each Linear, convolution and activation
  layer's output, the fraction of *dead* units (a ReLU unit that is 0 for every example of the
  batch: it passes no gradient) and of *saturated* ones (tanh beyond ±0.99, sigmoid outside
  (0.01, 0.99): their slope is ~0);
- the gradient's norm per parameter (after clipping: what the optimizer used);
- the update-to-weight ratio ‖ΔW‖ / ‖W‖ of the optimizer's real step (about 1e-3 is healthy for
  Adam late in training, 1e-2 early on; 1e-1 and more means the lr is too high: each step
  rewrites a tenth of the weight);
- per attention layer and head, the mean entropy of the attention rows (−Σ p ln p over the keys
  a query may see) next to its maximum, the mean ln(allowed keys): ~0 means every query looks
  at one key (collapsed), the maximum means uniform attention (it averages every key: the head
  has learned nothing). A model without attention records none.

``Diagnostics`` is a Trainer callback (``--diagnostics N`` on pretrain and finetune): every N
steps it watches one step and appends a row to ``diagnostics.jsonl`` in the run folder. A
callback runs before each step, and the Trainer zeroes the gradients only when the next step
starts, so the callback of step s + 1 still sees step s's gradients, and the weights before and
after step s give its update. ``warnings(rows)`` turns the rows into sentences.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from minimod.nn import functional, multihead
from minimod.nn.activation import GELU, ReLU, ReLU6, Sigmoid, SiLU, Tanh
from minimod.nn.conv import _ConvNd
from minimod.nn.linear import Linear
from minimod.nn.module import Module

FILE = "diagnostics.jsonl"
WATCHED = (Linear, _ConvNd, ReLU, ReLU6, GELU, Sigmoid, Tanh, SiLU)
# Warning thresholds (see ``warnings``).
UPDATE_TOO_HIGH, UPDATE_TOO_LOW = 3e-2, 1e-6
DEAD_TOO_MANY, SATURATED_TOO_MANY = 0.5, 0.5
# Attention entropy as a fraction of its maximum, averaged over a head's rows: below COLLAPSED
# nearly every query puts all its weight on one key, above UNIFORM it weighs all keys alike.
COLLAPSED, UNIFORM = 0.1, 0.995
STD_GROWTH = 10.0  # activation std from the first watched layer to the last, either way


def activation_stats(module: Module, output: torch.Tensor) -> dict[str, float]:
    """mean, std, dead (fraction of units never positive / always 0 on the batch) and, for tanh
    and sigmoid, saturated (fraction of values where the slope is ~0) of one output."""
    y = output.detach().float()
    # Units are channels: dim 1 of a convolution's (N, C, ...), the last dim of the rest.
    channels = y.transpose(0, 1) if isinstance(module, _ConvNd) else y.movedim(-1, 0)
    per_unit = channels.flatten(1)
    stats = {"mean": float(y.mean()), "std": float(y.std()) if y.numel() > 1 else 0.0}
    if isinstance(module, (ReLU, ReLU6)):
        stats["dead"] = float((per_unit <= 0).all(dim=1).float().mean())
    if isinstance(module, Tanh):
        stats["saturated"] = float((y.abs() > 0.99).float().mean())
    if isinstance(module, Sigmoid):
        stats["saturated"] = float(((y < 0.01) | (y > 0.99)).float().mean())
    return stats


class _Watch:
    """The forward of one module, replaced while a step is watched: the real forward, then its
    output's statistics recorded (the first call of the step only: a recomputed block runs
    twice)."""

    def __init__(self, module: Module, name: str, into: dict[str, dict[str, float]]) -> None:
        self.module, self.name, self.into = module, name, into
        self.previous = module.__dict__.get("forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = self.previous or type(self.module).forward.__get__(self.module)
        output = forward(*args, **kwargs)
        if isinstance(output, torch.Tensor) and self.name not in self.into:
            self.into[self.name] = activation_stats(self.module, output)
        return output

    def remove(self) -> None:
        del self.module.forward
        if self.previous is not None:
            self.module.forward = self.previous


def watch(model: Module, into: dict[str, dict[str, float]]) -> list[_Watch]:
    """Record the outputs of ``model``'s Linear, convolution and activation layers into
    ``into`` (name -> stats) until each returned watch's ``remove()``."""
    watches = []
    for name, module in model.named_modules():
        if isinstance(module, WATCHED):
            watches.append(_Watch(module, name, into))
            module.forward = watches[-1]
    return watches


def attention_entropy(
    query: torch.Tensor,
    key: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> dict[str, list[float]]:
    """Per head, the mean entropy (nats) of the attention rows softmax(Q Kᵀ · scale + mask) and
    the mean of their maximum ln(allowed keys), over the batch and the rows that may see more
    than one key (a row with one key has no choice). query (B, ..., L, d), key (B, ..., S, d):
    the axes between the batch and L are the heads, flattened; (L, d) or (B, L, d) is one head.
    {"entropy": [H], "max_entropy": [H]}."""
    with torch.no_grad():
        scores = (query.float() @ key.float().transpose(-2, -1)) * (
            1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        )
        if is_causal:
            attn_mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
        if attn_mask is not None:
            attn_mask = attn_mask.to(scores.device)
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask.float()
        if scores.dim() < 4:  # no head axis (and maybe no batch axis): one head
            scores = scores.unsqueeze(-3)
        scores = scores.reshape(-1, math.prod(scores.shape[1:-2]), *scores.shape[-2:])
        allowed = torch.isfinite(scores).sum(-1)  # (B, H, L)
        p = scores.softmax(-1)
        rows = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
        chosen = (allowed > 1).float()
        count = chosen.sum((0, 2)).clamp_min(1.0)
        entropy = (rows * chosen).sum((0, 2)) / count
        maximum = (allowed.clamp_min(1).float().log() * chosen).sum((0, 2)) / count
    return {"entropy": entropy.tolist(), "max_entropy": maximum.tolist()}


class _AttentionWatch:
    """scaled_dot_product_attention, replaced while a step is watched (in minimod.nn.functional,
    where the models call it, and in minimod.nn.multihead, which imports it by name): the real
    function, then the entropy of its rows recorded under the name of the calling module (the
    first call of the step only: a recomputed block runs twice). The models stay as they are."""

    def __init__(self, model: Module, into: dict[str, dict[str, list[float]]]) -> None:
        self.names = {id(m): n for n, m in model.named_modules()}
        self.into = into
        self.original = functional.scaled_dot_product_attention
        functional.scaled_dot_product_attention = multihead.scaled_dot_product_attention = self

    def __call__(self, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                 scale=None, **kwargs):  # fmt: skip
        output = self.original(query, key, value, attn_mask, dropout_p, is_causal, scale, **kwargs)
        # The caller's ``self`` names the layer: the attention module whose forward called us.
        caller = sys._getframe(1).f_locals.get("self")
        name = self.names.get(id(caller), f"attention.{len(self.into)}")
        if name not in self.into:
            self.into[name] = attention_entropy(query, key, attn_mask, is_causal, scale)
        return output

    def remove(self) -> None:
        functional.scaled_dot_product_attention = multihead.scaled_dot_product_attention = (
            self.original
        )


def parameter_stats(
    model: Module, before: dict[str, torch.Tensor] | None = None
) -> dict[str, dict[str, float | None]]:
    """Per trainable parameter: the weight's norm, its gradient's (None: no gradient reached
    it) and, given the weights ``before`` a step, the update-to-weight ratio of that step."""
    stats = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        weight = float(p.detach().float().norm())
        row = {"weight_norm": weight, "grad_norm": None if p.grad is None else float(p.grad.norm())}
        if before is not None and name in before:
            change = float((p.detach().float() - before[name]).norm())
            row["update_ratio"] = change / weight if weight > 0 else None
        stats[name] = row
    return stats


class Diagnostics:
    """A Trainer callback: every ``every`` steps, watch one step and append a row
    {"step", "activations", "parameters", "attention"} to ``out_dir/diagnostics.jsonl`` (or only to
    ``self.rows`` without out_dir)."""

    def __init__(self, every: int, out_dir: str | Path | None = None) -> None:
        if every < 1:
            raise ValueError(f"Diagnostics: every must be ≥ 1, got {every}")
        self.every = every
        self.path = None if out_dir is None else Path(out_dir) / FILE
        self.rows: list[dict[str, Any]] = []
        self._watched: tuple[int, list, dict, dict, dict] | None = None

    def __call__(self, trainer: Any) -> None:
        step, model = trainer.step, trainer.model
        if self._watched is not None:
            self._finish(model)
        if step % self.every == 0 and step + 1 < trainer.config.max_steps:
            activations: dict[str, dict[str, float]] = {}
            attention: dict[str, dict[str, list[float]]] = {}
            before = {n: p.detach().float().clone() for n, p in model.named_parameters()
                      if p.requires_grad}  # fmt: skip
            watches = [*watch(model, activations), _AttentionWatch(model, attention)]
            self._watched = (step, watches, activations, attention, before)

    def _finish(self, model: Module) -> None:
        step, watches, activations, attention, before = self._watched
        self._watched = None
        for w in watches:
            w.remove()
        row = {"step": step, "activations": activations,
               "parameters": parameter_stats(model, before), "attention": attention}  # fmt: skip
        self.rows.append(row)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(row) + "\n")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a diagnostics.jsonl (a torn last line, from a crash, is skipped)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _median(values: Iterable[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Plain-words warnings from diagnostics rows (the latest row for activations and
    gradients, the median over the rows for update ratios); empty when nothing looks wrong."""
    if not rows:
        return []
    found = []
    last = rows[-1]
    params = last["parameters"]
    for name, row in params.items():
        if row["grad_norm"] is None or row["grad_norm"] == 0.0:
            found.append(
                f"{name} gets no gradient (step {last['step']}): it is detached from the loss "
                "(a .detach(), torch.no_grad or .data in the forward) or unused, so it never "
                "learns"
            )
    # Update ratios of the Linear and convolution weights: a bias or a norm's gain starts at
    # 0 or 1 (its ratio says little), and an embedding moves only the rows a batch uses.
    matrices = [f"{n}.weight" for n in last["activations"] if f"{n}.weight" in params
                and params[f"{n}.weight"].get("update_ratio") is not None]  # fmt: skip
    for name in matrices:
        ratios = [r["parameters"].get(name, {}).get("update_ratio") for r in rows]
        ratio = _median(x for x in ratios if x is not None)
        if ratio is not None and ratio > UPDATE_TOO_HIGH:
            found.append(
                f"{name}'s update/weight ratio is {ratio:.0e} (median over {len(rows)} watched "
                f"steps): each step rewrites {ratio:.0%} of the weight; the learning rate is "
                "likely too high (healthy: about 1e-3, up to 1e-2 early)"
            )
        elif ratio is not None and 0 < ratio < UPDATE_TOO_LOW:
            found.append(
                f"{name}'s update/weight ratio is {ratio:.0e}: the weight barely moves; the "
                "learning rate is likely too low"
            )
    activations = last["activations"]
    for name, row in activations.items():
        if row.get("dead", 0.0) > DEAD_TOO_MANY:
            found.append(
                f"{name}: {row['dead']:.0%} of its units are dead (never positive on a batch): "
                "a ReLU after it passes no gradient through them; a too-high learning rate or a "
                "large negative bias kills units"
            )
        if row.get("saturated", 0.0) > SATURATED_TOO_MANY:
            found.append(
                f"{name}: {row['saturated']:.0%} of its outputs are saturated (slope ~0): the "
                "inputs are too large; scale the initialisation (1/√fan_in) or normalise"
            )
    for name, row in last.get("attention", {}).items():
        found.extend(_attention_warnings(name, row))
    # The hidden layers' outputs: the last watched layer is the head (its logits' scale is
    # its own business).
    layers = [(n, r["std"]) for n, r in activations.items() if r["std"] > 0][:-1]
    if len(layers) >= 2:
        (first, s0), (deepest, s1) = layers[0], layers[-1]
        growth = s1 / s0
        if growth > STD_GROWTH or growth < 1 / STD_GROWTH:
            way = "grow" if growth > 1 else "shrink"
            found.append(
                f"activations {way} with depth: std {s0:.3g} at {first}, {s1:.3g} at {deepest} "
                f"(×{growth:.3g}): the initialisation does not keep the variance (check "
                "1/√fan_in and the residual scaling), or a too-high learning rate has grown "
                "the weights"
            )
    return found


def _attention_warnings(name: str, row: dict[str, list[float]]) -> list[str]:
    """The collapsed and the uniform heads of one attention layer, one sentence each."""
    pairs = list(zip(row["entropy"], row["max_entropy"], strict=True))
    found = []
    collapsed = [h for h, (e, m) in enumerate(pairs) if m > 0 and e / m < COLLAPSED]
    uniform = [h for h, (e, m) in enumerate(pairs) if m > 0 and e / m > UNIFORM]
    if collapsed:
        e, m = pairs[collapsed[0]]
        found.append(
            f"{name}: attention collapsed in {_heads(collapsed, len(pairs))} (entropy {e:.2g} "
            f"nats of at most {m:.2g}): every query looks at a single key; one such head can be "
            "a feature (the previous token), all of them mean exploding attention scores (a "
            "too-high learning rate, or queries and keys without 1/√d scaling)"
        )
    if uniform:
        e, m = pairs[uniform[0]]
        found.append(
            f"{name}: attention is uniform in {_heads(uniform, len(pairs))} (entropy {e:.3g} "
            f"nats, the maximum ln(keys) is {m:.3g}): every query averages all the keys it "
            "sees alike, so the head has learned nothing yet (too few steps, a too-low "
            "learning rate, or queries/keys that get no gradient)"
        )
    return found


def _heads(heads: list[int], total: int) -> str:
    """'all 4 heads', 'head 2' or 'heads 0, 3'."""
    if len(heads) == total:
        return f"all {total} heads" if total > 1 else "its one head"
    return ("head " if len(heads) == 1 else "heads ") + ", ".join(map(str, heads))


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A short per-layer table of the latest row: activation std and dead fraction, gradient
    norm and update ratio, attention entropy per head."""
    if not rows:
        return []
    last = rows[-1]
    lines = [f"step {last['step']}: layer outputs (mean, std, dead) and parameters (|grad|, "
             "update/weight)"]  # fmt: skip
    for name, row in last["activations"].items():
        dead = f", dead {row['dead']:.0%}" if "dead" in row else ""
        sat = f", saturated {row['saturated']:.0%}" if "saturated" in row else ""
        lines.append(f"  {name:<32} mean {row['mean']:+.3f}, std {row['std']:.3f}{dead}{sat}")
    for name, row in last["parameters"].items():
        grad = "none" if row["grad_norm"] is None else f"{row['grad_norm']:.2e}"
        ratio = row.get("update_ratio")
        shown = "-" if ratio is None else f"{ratio:.1e}"
        lines.append(f"  {name:<32} |grad| {grad}, update/weight {shown}")
    for name, row in last.get("attention", {}).items():
        heads = ", ".join(f"{e:.2f}" for e in row["entropy"])
        maximum = max(row["max_entropy"], default=0.0)
        lines.append(f"  {name:<32} attention entropy per head {heads} (max {maximum:.2f})")
    return lines
