"""The numbers and figures of docs/guides/hyperparameters.md: what each hyperparameter costs
when it is wrong, measured.

    python experiments/guides/hyperparameters.py [--out runs/guides/hyperparameters] [--quick]
                                                 [--guide-dir docs/guides]

1. lr: ``minimod lr-find cnn --from scratch --task shapes`` (the same function), then
   ``minimod finetune cnn --from scratch --task shapes --lr X`` at the suggestion / 10, the
   suggestion and the suggestion × 10: test accuracy and final training loss of each.
2. batch size and accumulation: a 2 × 64 GPT on the same number of tokens of the built-in
   corpus at batch 4, 12 and 48, and at 12 × 4 accumulated micro-batches: held-out loss, time.
3. warmup: a 4 × 64 GPT at 10× and 30× the baby preset's lr, with 100 warmup steps and none.
4. weight decay: a 2 × 128 GPT on 20,000 characters (many epochs) with weight decay 0, 0.1 and
   1.0: training loss, held-out loss and the gap between them.
Raw numbers: OUT/hyperparameters.json. About 8 minutes on one thread; ``--quick``: under a minute.
"""

from __future__ import annotations

import json
import math
import sys

from common import (
    figure,
    figure_path,
    fill,
    guide_path,
    metrics,
    options,
    run_minimod,
    save,
    table,
    train_gpt,
)

from minimod.data import load_corpus
from minimod.tasks.presets import GPT

LR_TASK = ["cnn", "--from", "scratch", "--task", "shapes"]
BATCHES = [(4, 1), (12, 1), (48, 1), (12, 4)]  # (batch size, accumulated micro-batches)
BATCH_TOKENS = 400 * 12 * 64  # the baby preset's batch for 400 steps
WARMUP_LRS = [1e-2, 3e-2]  # 10× and 30× the baby preset's 1e-3
DECAYS = [0.0, 0.1, 1.0]
SMALL_DATA = 20_000  # characters: 18,000 to train on, the last 2,000 held out


def lr_section(args) -> dict:
    import torch

    from minimod.tasks.finetune.lr_find import find_lr

    torch.set_num_threads(1)
    found = find_lr(
        "cnn", "scratch", "shapes", out=args.out / "lr-find", device="cpu",
        steps=12 if args.quick else 60,
    )["result"]  # fmt: skip
    chosen = found.suggestion or 2e-3  # the task's own lr when the sweep suggests nothing
    runs = []
    for factor in (0.1, 1.0, 10.0):
        lr = chosen * factor
        steps = ["--max-steps", "5"] if args.quick else []
        folder = run_minimod(
            ["finetune", *LR_TASK, "--lr", f"{lr:.3g}", "--device", "cpu", *steps],
            args.out / f"lr-x{factor:g}",
        )
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        rows = [row for row in metrics(folder) if "step_time_s" in row]
        runs.append({
            "factor": factor, "lr": lr, "accuracy": record["test"]["accuracy"],
            "train_loss": rows[-1]["loss"], "curve": [(r["step"], r["loss"]) for r in rows],
        })  # fmt: skip
    return {
        "lrs": found.lrs, "losses": found.losses, "raw": found.raw_losses,
        "suggestion": found.suggestion, "chosen": chosen, "runs": runs,
    }  # fmt: skip


def gpt_runs(args, name: str, settings: list[dict]) -> list[dict]:
    """train_gpt once per settings dict into OUT/NAME-i; each result keeps its settings and
    its logged training losses."""
    found = []
    for i, setting in enumerate(settings):
        folder = args.out / f"{name}-{i}"
        run = train_gpt(folder, **setting)
        curve = [(r["step"], r["loss"]) for r in metrics(folder) if "step_time_s" in r]
        found.append({**setting, **run, "curve": curve})
        print(f"{name} {setting}: held-out {run['val_loss']:.3f} in {run['seconds']:.0f} s")
    return found


def small_data(args) -> str:
    """The first SMALL_DATA characters of the built-in corpus, as a file in OUT."""
    data = args.out / "small.txt"
    data.write_text(load_corpus("pydoc")[:SMALL_DATA], encoding="utf-8")
    return str(data)


def batch_section(args) -> list[dict]:
    tokens = BATCH_TOKENS // (40 if args.quick else 1)
    settings = []
    for batch, accum in BATCHES:
        steps = tokens // (batch * accum * 64)
        settings.append(dict(
            model=dict(n_layer=2, n_head=2, n_embd=64), batch_size=batch, grad_accum=accum,
            data=small_data(args) if args.quick else None,  # --quick: less text to tokenize
            max_steps=steps, warmup_steps=steps // 10, final_eval_batches=2 if args.quick else 100,
        ))  # fmt: skip
    return gpt_runs(args, "batch", settings)


def warmup_section(args) -> list[dict]:
    steps = 10 if args.quick else 300
    settings = [
        dict(
            model=dict(n_layer=4, n_head=4, n_embd=64),
            data=small_data(args) if args.quick else None,
            lr=lr,
            max_steps=steps,
            warmup_steps=warmup,
            final_eval_batches=2 if args.quick else 100,
        )
        for lr in WARMUP_LRS
        for warmup in (steps // 3, 0)
    ]
    return gpt_runs(args, "warmup", settings)


def decay_section(args) -> list[dict]:
    data = small_data(args)
    settings = [
        dict(
            model=dict(n_layer=2, n_head=2, n_embd=128),
            data=data,
            weight_decay=decay,
            max_steps=10 if args.quick else 300,
            final_eval_batches=2 if args.quick else 100,
        )
        for decay in DECAYS
    ]
    return gpt_runs(args, "decay", settings)


def fill_lr(args, lr: dict) -> None:
    guide = guide_path(args, "hyperparameters")
    suggestion = lr["suggestion"]
    fill(guide, "lr-suggestion", "no suggestion" if suggestion is None else f"{suggestion:.2g}")
    names = {0.1: "suggestion / 10", 1.0: "the suggestion", 10.0: "suggestion × 10"}
    fill(guide, "lr-runs", table(
        ["lr", "", "final training loss", "test accuracy"],
        [[f"{r['lr']:.2g}", names[r["factor"]], f"{r['train_loss']:.3f}",
          f"{100 * r['accuracy']:.1f}%"] for r in lr["runs"]],
    ))  # fmt: skip
    low, mid, high = (r["accuracy"] for r in lr["runs"])
    fill(guide, "lr-cost", (
        f"Ten times too low: {100 * (low - mid):+.1f} points of test accuracy "
        f"({100 * low:.1f}% against {100 * mid:.1f}% at the suggestion); ten times too high: "
        f"{100 * (high - mid):+.1f} points ({100 * high:.1f}%)."
    ))  # fmt: skip
    fig, (sweep, curves) = figure(ncols=2)
    sweep.plot(lr["lrs"], lr["raw"], color="0.75", linewidth=0.8, label="loss")
    sweep.plot(lr["lrs"], lr["losses"], label="smoothed loss")
    for r, color in zip(lr["runs"], ("C2", "C3", "C1"), strict=True):
        sweep.axvline(r["lr"], color=color, linestyle="--", label=f"{r['lr']:.2g}")
        steps, losses = zip(*r["curve"], strict=True)
        curves.plot(steps, losses, color=color, label=f"lr {r['lr']:.2g}")
    finite = [x for x in lr["losses"] if math.isfinite(x)]
    sweep.set_ylim(min(finite) - 0.05, finite[0] + 0.3)
    sweep.set_xscale("log")
    sweep.set_xlabel("learning rate")
    sweep.set_ylabel("loss")
    sweep.set_title("lr-find sweep")
    sweep.legend(fontsize=7)
    curves.set_xlabel("step")
    curves.set_ylabel("training loss")
    curves.set_title("fine-tuning at each lr")
    curves.legend(fontsize=7)
    save(fig, figure_path(args, "hyperparameters", "lr"))


def fill_batch(args, runs: list[dict]) -> None:
    guide = guide_path(args, "hyperparameters")
    rows = []
    for r in runs:
        accum = f" × {r['grad_accum']} accumulated" if r["grad_accum"] > 1 else ""
        rows.append([
            f"{r['batch_size']}{accum}", f"{r['max_steps']:,}", f"{r['val_loss']:.3f}",
            f"{r['seconds']:.0f} s", f"{r['tokens_per_s']:,.0f}",
        ])  # fmt: skip
    fill(guide, "batch", table(
        ["batch", "optimizer steps", "held-out loss", "time", "tokens/s"], rows
    ))  # fmt: skip
    small, base, big, accum = runs
    fill(guide, "batch-cost", (
        f"On the same {base['tokens']:,} tokens, batch {big['batch_size']} (a quarter of the "
        f"steps) ends {big['val_loss'] - base['val_loss']:+.3f} from batch {base['batch_size']}'s "
        f"held-out loss, batch {small['batch_size']} (three times the steps) "
        f"{small['val_loss'] - base['val_loss']:+.3f} and took {small['seconds']:.0f} s against "
        f"{base['seconds']:.0f} s. Accumulating {accum['grad_accum']} micro-batches of "
        f"{accum['batch_size']} reached {accum['val_loss']:.3f} (batch {big['batch_size']}: "
        f"{big['val_loss']:.3f}) in {accum['seconds']:.0f} s (batch {big['batch_size']}: "
        f"{big['seconds']:.0f} s)."
    ))  # fmt: skip
    fig, ax = figure()
    for r in runs:
        per_step = r["batch_size"] * r["grad_accum"] * 64
        steps, losses = zip(*r["curve"], strict=True)
        ax.plot([s * per_step for s in steps], losses, label=rows[runs.index(r)][0])
    ax.set_xlabel("tokens trained on")
    ax.set_ylabel("training loss")
    ax.set_title("batch size at the same tokens")
    ax.legend(title="batch")
    save(fig, figure_path(args, "hyperparameters", "batch"))


def fill_warmup(args, runs: list[dict]) -> None:
    guide = guide_path(args, "hyperparameters")
    fill(guide, "warmup", table(
        ["peak lr", "warmup steps", "held-out loss", "worst training loss, second half"],
        [[f"{r['lr']:.0e}", r["warmup_steps"], f"{r['val_loss']:.3f}",
          f"{max(loss for _, loss in r['curve'][len(r['curve']) // 2 :]):.2f}"] for r in runs],
    ))  # fmt: skip
    pairs = [runs[i : i + 2] for i in range(0, len(runs), 2)]
    fill(guide, "warmup-cost", " ".join(
        f"At lr {on['lr']:.0e}, no warmup ends at {off['val_loss']:.3f} against "
        f"{on['val_loss']:.3f} with it ({off['val_loss'] - on['val_loss']:+.3f})."
        for on, off in pairs
    ))  # fmt: skip
    fig, ax = figure()
    for r, color in zip(runs, ("C0", "C0", "C3", "C3"), strict=True):
        steps, losses = zip(*r["curve"], strict=True)
        style = "-" if r["warmup_steps"] else ":"
        label = f"lr {r['lr']:.0e}, " + (f"{r['warmup_steps']} warmup" if r["warmup_steps"]
                                         else "no warmup")  # fmt: skip
        ax.plot(steps, losses, style, color=color, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("warmup at high learning rates")
    ax.legend()
    save(fig, figure_path(args, "hyperparameters", "warmup"))


def fill_decay(args, runs: list[dict]) -> None:
    guide = guide_path(args, "hyperparameters")
    fill(guide, "weight-decay", table(
        ["weight decay", "training loss", "held-out loss", "gap"],
        [[f"{r['weight_decay']:g}", f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}",
          f"{r['val_loss'] - r['train_loss']:+.3f}"] for r in runs],
    ))  # fmt: skip
    none, some, most = runs
    epochs = none["tokens"] / (0.9 * SMALL_DATA)
    # AdamW multiplies each decayed weight by (1 - lr · wd) every step (the schedule lowers lr:
    # this is the most the decay alone could shrink it).
    lr, steps = GPT["baby"]["lr"], none["max_steps"]
    fill(guide, "weight-decay-cost", (
        f"After {epochs:.0f} epochs of {int(0.9 * SMALL_DATA):,} characters, weight decay 0 "
        f"ends with a gap of {none['val_loss'] - none['train_loss']:+.3f} between held-out and "
        f"training loss, 0.1 with {some['val_loss'] - some['train_loss']:+.3f} "
        f"(held-out {none['val_loss']:.3f} against {some['val_loss']:.3f}), 1.0 with "
        f"{most['val_loss'] - most['train_loss']:+.3f} (held-out {most['val_loss']:.3f}). "
        f"At lr {lr:g}, {steps} steps of decay shrink a weight to at least "
        f"{(1 - lr * some['weight_decay']) ** steps:.0%} of its size at 0.1, "
        f"{(1 - lr * most['weight_decay']) ** steps:.0%} at 1.0."
    ))  # fmt: skip
    fig, ax = figure()
    xs = range(len(runs))
    ax.bar([x - 0.2 for x in xs], [r["train_loss"] for r in runs], 0.4, label="training")
    ax.bar([x + 0.2 for x in xs], [r["val_loss"] for r in runs], 0.4, label="held-out")
    ax.set_xticks(list(xs), [f"{r['weight_decay']:g}" for r in runs])
    ax.set_xlabel("weight decay")
    ax.set_ylabel("loss")
    ax.set_title(f"{SMALL_DATA:,} characters of data")
    ax.legend()
    save(fig, figure_path(args, "hyperparameters", "weight-decay"))


def main(argv: list[str] | None = None) -> None:
    args = options(__doc__, "hyperparameters", argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lr = lr_section(args)
    batch = batch_section(args)
    warmup = warmup_section(args)
    decay = decay_section(args)
    (args.out / "hyperparameters.json").write_text(
        json.dumps({"lr": lr, "batch": batch, "warmup": warmup, "decay": decay}, indent=2) + "\n",
        encoding="utf-8",
    )
    fill_lr(args, lr)
    fill_batch(args, batch)
    fill_warmup(args, warmup)
    fill_decay(args, decay)


if __name__ == "__main__":
    main(sys.argv[1:])
