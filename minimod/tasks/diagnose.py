"""``minimod diagnose --from RUN``: the diagnostics a run recorded (``--diagnostics N`` on
pretrain or finetune, ``minimod.train.diagnostics``) as plain-words warnings, a per-layer table
and diagnostics.png: the update/weight ratio and the gradient norm of each weight over the
watched steps (log scale, the way practitioners plot them), the activations' spread and the
dead units per layer at the last watched step, and for a model with attention the entropy of
each head (as a fraction of its maximum ln(keys)) over the watched steps and at the last one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from minimod.tasks.common import UsageError
from minimod.train.diagnostics import (
    COLLAPSED,
    FILE,
    UNIFORM,
    read_rows,
    summary_lines,
    warnings,
)

PNG = "diagnostics.png"


def diagnose(run_dir: str | Path) -> dict[str, Any]:
    """{"warnings": [...], "lines": the table, "plot": a line saying where the PNG is} of a
    run folder with diagnostics.jsonl."""
    run_dir = Path(run_dir)
    path = run_dir / FILE
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder")
    if not path.is_file():
        raise UsageError(
            f"{run_dir} has no {FILE}: train with --diagnostics N (pretrain or finetune) to "
            "watch one step in every N"
        )
    rows = read_rows(path)
    if not rows:
        raise UsageError(f"{path} holds no complete row (the run stopped before the first one)")
    return {"warnings": warnings(rows), "lines": summary_lines(rows),
            "plot": plot_diagnostics(rows, run_dir / PNG), "rows": rows}  # fmt: skip


def plot_diagnostics(rows: list[dict[str, Any]], path: Path) -> str:
    """Four panels into ``path`` (six with attention); a line saying where, or why not (no
    matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"no {path.name}: matplotlib is not installed (pip install 'minimod[plot]')"
    attention = rows[-1].get("attention", {})
    figure, axes = plt.subplots(3 if attention else 2, 2, figsize=(11, 10.5 if attention else 7))
    steps = [row["step"] for row in rows]
    weights = [n for n in rows[-1]["parameters"] if not n.endswith("bias") and "norm" not in n]
    panels = (("update_ratio", "update / weight per step"), ("grad_norm", "gradient norm"))
    for (key, title), ax in zip(panels, axes[0], strict=True):
        for name in weights:
            values = [row["parameters"].get(name, {}).get(key) for row in rows]
            points = [(s, v) for s, v in zip(steps, values, strict=True) if v and math.isfinite(v)]
            if points:
                ax.plot(*zip(*points, strict=True), label=name, linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title)
    axes[0][0].axhline(1e-3, color="black", linestyle="--", linewidth=0.8)  # the rule of thumb
    if len(weights) <= 12:
        axes[0][0].legend(fontsize=6)
    activations = rows[-1]["activations"]
    names = list(activations)
    axes[1][0].bar(range(len(names)), [activations[n]["std"] for n in names])
    axes[1][0].set_title(f"output std per layer (step {rows[-1]['step']})")
    axes[1][1].bar(range(len(names)), [activations[n].get("dead", 0.0) for n in names])
    axes[1][1].set_title("dead units (never positive on the batch)")
    axes[1][1].set_ylim(0, 1)
    for ax in axes[1]:
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    if attention:
        _plot_attention(rows, axes[2])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"plots: {path}"


def _plot_attention(rows: list[dict[str, Any]], axes) -> None:
    """Entropy / ln(keys) per head over the watched steps, with the warning thresholds, and the
    last step's entropy per head (bars) under its maximum (ticks)."""
    steps = [row["step"] for row in rows]
    last = rows[-1]["attention"]
    for name in last:
        for head in range(len(last[name]["entropy"])):
            points = []
            for step, row in zip(steps, rows, strict=True):
                layer = row.get("attention", {}).get(name)
                if layer and layer["max_entropy"][head] > 0:
                    points.append((step, layer["entropy"][head] / layer["max_entropy"][head]))
            if points:
                axes[0].plot(*zip(*points, strict=True), label=f"{name} {head}", linewidth=1)
    for level in (COLLAPSED, UNIFORM):
        axes[0].axhline(level, color="black", linestyle="--", linewidth=0.8)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_xlabel("step")
    axes[0].set_title("attention entropy / ln(keys) per head (1 = uniform, 0 = one key)")
    if sum(len(layer["entropy"]) for layer in last.values()) <= 12:
        axes[0].legend(fontsize=6)
    labels, entropy, maximum = [], [], []
    for name, layer in last.items():
        for head, (e, m) in enumerate(zip(layer["entropy"], layer["max_entropy"], strict=True)):
            labels.append(f"{name} {head}")
            entropy.append(e)
            maximum.append(m)
    axes[1].bar(range(len(labels)), entropy)
    axes[1].scatter(range(len(labels)), maximum, marker="_", s=200, color="black")
    axes[1].set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    axes[1].set_title(f"attention entropy per head, nats (step {rows[-1]['step']}; -: ln(keys))")
