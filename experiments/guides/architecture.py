"""The numbers and the figure of docs/guides/architecture.md: the presets measured here, and a
scaling sweep of the baby GPT family.

    python experiments/guides/architecture.py [--out runs/guides/architecture] [--quick]
                                              [--guide-dir docs/guides]

1. presets: each gpt preset of ``minimod pretrain gpt`` (tiny, baby, small) for a few steps on
   one thread: its parameters, its tokens/s here, and what its full run would take.
2. sweep: five GPTs from 1 layer × 32 wide to 4 layers × 192 wide, each trained on the same
   number of tokens of the built-in corpus with the baby preset's recipe; their held-out loss
   against their parameters (figures/architecture-scaling.png), the table and what it says.
Raw numbers: OUT/architecture.json. About 10 minutes on one thread; ``--quick``: under a minute.
"""

from __future__ import annotations

import json
import sys
from itertools import pairwise

from common import figure, figure_path, fill, guide_path, options, save, table, train_gpt

from minimod.data import load_corpus, split_text
from minimod.tasks.presets import GPT

# (layers, heads, width): the baby GPT (4, 4, 128) in the middle of the family, each step
# about 2-3x the parameters of the one before.
SIZES = [(1, 2, 32), (2, 2, 64), (3, 3, 96), (4, 4, 128), (4, 4, 192)]
SWEEP_STEPS = 400  # at the baby's batch of 12 × 64 tokens: 307k tokens, 0.73 of an epoch
PRESET_STEPS = {"tiny": 20, "baby": 20, "small": 4}
# small's batch of 64 × 256 tokens takes a minute a step here: its speed is measured on a
# batch of 4 (tokens/s hardly depends on the batch size on one CPU thread).
PRESET_BATCH = {"small": 4}


def measure_presets(args) -> list[dict]:
    found = []
    for name, preset in GPT.items():
        steps = 3 if args.quick else PRESET_STEPS[name]
        batch = PRESET_BATCH.get(name, preset["batch_size"])
        run = train_gpt(
            args.out / f"preset-{name}", preset=name, max_steps=steps, batch_size=batch,
            log_every=1, eval_batches=1, final_eval_batches=1,
        )  # fmt: skip
        model = preset["model"]
        tokens = preset["max_steps"] * preset["batch_size"] * model["block_size"]
        found.append({
            "preset": name, "layers": model["n_layer"], "width": model["n_embd"],
            "block": model["block_size"], "batch": preset["batch_size"],
            "steps": preset["max_steps"], "params": run["params"], "tokens": tokens,
            "tokens_per_s": run["tokens_per_s"], "full_run_s": tokens / run["tokens_per_s"],
        })  # fmt: skip
        print(f"preset {name}: {run['params']:,} parameters, {run['tokens_per_s']:,.0f} tokens/s")
    return found


def sweep(args) -> list[dict]:
    found = []
    sizes = SIZES[:3] if args.quick else SIZES
    for layers, heads, width in sizes:
        run = train_gpt(
            args.out / f"gpt-L{layers}-C{width}",
            model=dict(n_layer=layers, n_head=heads, n_embd=width),
            max_steps=20 if args.quick else SWEEP_STEPS,
            final_eval_batches=4 if args.quick else 100,
        )  # fmt: skip
        found.append({"layers": layers, "width": width, **run})
        print(f"L{layers} C{width}: {run['params']:,} parameters, held-out {run['val_loss']:.3f}")
    return found


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def presets_table(rows: list[dict]) -> str:
    header = ["preset", "layers × width", "block × batch", "steps", "parameters", "tokens/s here",
              "its full run here"]  # fmt: skip
    return table(header, [
        [f"`{r['preset']}`", f"{r['layers']} × {r['width']}", f"{r['block']} × {r['batch']}",
         f"{r['steps']:,}", f"{r['params']:,}", f"{r['tokens_per_s']:,.0f}",
         duration(r["full_run_s"])]
        for r in rows
    ])  # fmt: skip


def sweep_table(rows: list[dict]) -> str:
    header = ["layers × width", "parameters", "tokens per parameter", "train loss",
              "held-out loss", "gap", "minutes"]  # fmt: skip
    return table(header, [
        [f"{r['layers']} × {r['width']}", f"{r['params']:,}",
         f"{r['tokens'] / r['params']:.1f}", f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}",
         f"{r['val_loss'] - r['train_loss']:+.3f}", f"{r['seconds'] / 60:.1f}"]
        for r in rows
    ])  # fmt: skip


def verdict(rows: list[dict], train_tokens: int) -> str:
    """What the sweep says, from its numbers: the gain of each step up in size."""
    gains = [
        f"{a['layers']}×{a['width']} → {b['layers']}×{b['width']}: "
        f"{b['params'] / a['params']:.1f}× the parameters and {b['seconds'] / a['seconds']:.1f}× "
        f"the time, held-out loss "
        f"{a['val_loss']:.3f} → {b['val_loss']:.3f} ({b['val_loss'] - a['val_loss']:+.3f})"
        for a, b in pairwise(rows)
    ]
    best = min(rows, key=lambda r: r["val_loss"])
    tokens = rows[0]["tokens"]
    lines = [f"- {gain}" for gain in gains]
    lines.append(
        f"\nEvery model saw {tokens:,} tokens ({tokens / train_tokens:.2f} of an epoch of the "
        f"{train_tokens:,}-character training split). The lowest held-out loss is "
        f"{best['val_loss']:.3f}, at {best['layers']} × {best['width']} "
        f"({best['params']:,} parameters, {best['tokens'] / best['params']:.1f} tokens per "
        f"parameter). At the 20 tokens per parameter of a compute-optimal run, it would need "
        f"{20 * best['params']:,} tokens: {20 * best['params'] / train_tokens:.0f} epochs of this "
        f"corpus."
    )
    return "\n".join(lines)


def plot(rows: list[dict], path) -> None:
    fig, ax = figure()
    params = [r["params"] for r in rows]
    ax.plot(params, [r["val_loss"] for r in rows], "o-", label="held-out loss")
    train = [r["train_loss"] for r in rows]
    ax.plot(params, train, "s--", alpha=0.6, label="training loss (last tenth of the steps)")
    for r in rows:
        ax.annotate(f"{r['layers']}×{r['width']}", (r["params"], r["val_loss"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(f"baby GPT family, {rows[0]['tokens']:,} tokens each")
    ax.legend()
    save(fig, path)


def main(argv: list[str] | None = None) -> None:
    args = options(__doc__, "architecture", argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_text, _ = split_text(load_corpus("pydoc"), 0.1)
    presets = measure_presets(args)
    rows = sweep(args)
    (args.out / "architecture.json").write_text(
        json.dumps({"presets": presets, "sweep": rows}, indent=2) + "\n", encoding="utf-8"
    )
    guide = guide_path(args, "architecture")
    fill(guide, "presets", presets_table(presets))
    fill(guide, "corpus", f"{len(train_text):,}")
    fill(guide, "sweep", sweep_table(rows))
    fill(guide, "sweep-verdict", verdict(rows, len(train_text)))
    plot(rows, figure_path(args, "architecture", "scaling"))


if __name__ == "__main__":
    main(sys.argv[1:])
