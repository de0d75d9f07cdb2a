"""The measured runs of docs/guides/evaluating.md: one fine-tune at five seeds (the spread, a 95%
interval, validation against test), the calibration of its predicted probabilities (reliability
diagram, ECE) and its confusion matrix.

    python experiments/guides/evaluating.py            # ~2 minutes on one thread
    python experiments/guides/evaluating.py --quick    # a smoke run

The fine-tunes run in this process through ``minimod.tasks.finetune.finetune``, the function
behind ``minimod finetune`` (each prints its command line), so that the script can also read the
model's probabilities on the validation and test splits, which the command does not write.
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
from pathlib import Path

import torch
from common import figure, figure_path, fill, guide_path, metrics, options, run_minimod, save, table

from minimod.tasks.finetune import finetune
from minimod.tasks.finetune.prepared import finetune_settings, predict
from minimod.tasks.finetune.sources import read_source
from minimod.tasks.finetune.splits import load_splits
from minimod.train.metrics import calibration, confusion_matrix, plot_confusion_matrix

NAME = "evaluating"
# Student's t, 97.5% quantile, by degrees of freedom: a 95% interval of a mean of n = df + 1 runs.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def pretrain_bert(out: Path, quick: bool) -> Path:
    """``minimod pretrain bert --preset tiny`` into ``out`` (afresh)."""
    shutil.rmtree(out, ignore_errors=True)
    return run_minimod(["pretrain", "bert", "--preset", "tiny"]
                       + (["--max-steps", "20"] if quick else []), out)  # fmt: skip


def finetune_run(out: Path, source: Path, *, seed: int = 0, quick: bool = False,
                 imbalance: float | None = None, **options: str) -> dict:  # fmt: skip
    """``minimod finetune bert --from SOURCE --task sentiment --seed SEED [--imbalance R]
    [--class-weights auto ...]`` into ``out``, in this process. Returns the command's summary
    (test metrics, the model with best.pt's weights) with "val_probs" and "test_probs":
    (probabilities (N, 2), targets (N,)) of the model on those splits."""
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in options.items()]
    if imbalance is not None:
        flags.insert(0, f"--imbalance {imbalance:g}")
    steps = {"labels": 200, "max_steps": 60} if quick else {}
    flags += [f"--{k.replace('_', '-')} {v}" for k, v in steps.items()]
    command = ["finetune", "bert", "--from", source, "--task", "sentiment", "--seed", seed, *flags]
    print(f"$ minimod {' '.join(map(str, command))} --out {out}", flush=True)
    torch.set_num_threads(1)
    summary = finetune("bert", str(source), "sentiment", out=out, overwrite=True, seed=seed,
                       progress=False, log=lambda line: None, imbalance=imbalance, **steps,
                       **options)  # fmt: skip
    print(f"  [{Path(out).name}] test {summary['test']}", flush=True)
    src = read_source("bert", str(source), "tiny", "sentiment")
    settings = finetune_settings("bert", "sentiment", n_train=steps.get("labels"),
                                 imbalance=imbalance)  # fmt: skip
    _, val, test, _, _ = load_splits("bert", "sentiment", src, settings, seed)
    model, pad = summary["model"].eval(), src.tokenizer.pad_token_id
    with torch.no_grad():
        for name, split in (("val", val), ("test", test)):
            summary[f"{name}_probs"] = (predict(model, split, pad).softmax(-1), split.targets)
    return summary


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half-width of the mean's 95% t-interval."""
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return mean, sd, T_975[len(values) - 1] * sd / math.sqrt(len(values))


def main(argv: list[str] | None = None) -> None:
    args = options(__doc__, NAME, argv)
    guide = guide_path(args, NAME)
    bert = pretrain_bert(args.out / "bert", args.quick)
    seeds = range(2 if args.quick else 5)
    runs = [finetune_run(args.out / f"seed-{s}", bert, seed=s, quick=args.quick) for s in seeds]

    # Seeds: test accuracy, and the validation accuracy of the step best.pt was picked at.
    test = [100 * r["test"]["accuracy"] for r in runs]
    val = [100 * max(row["eval_accuracy"] for row in metrics(r["run"]) if "eval_accuracy" in row)
           for r in runs]  # fmt: skip
    mean, sd, half = interval(test)
    n_test = len(runs[0]["test_probs"][1])
    p = mean / 100
    binomial = 100 * math.sqrt(p * (1 - p) / n_test)
    diff_half = T_975[2 * len(test) - 2] * sd * math.sqrt(2 / len(test))
    rows = [[s, f"{v:.1f}%", f"{t:.1f}%", f"{100 * r['test']['macro_f1']:.1f}%"]
            for s, v, t, r in zip(seeds, val, test, runs, strict=True)]  # fmt: skip
    header = ["seed", "validation accuracy (best step)", "test accuracy", "test macro-F1"]
    fill(guide, "seeds-table", table(header, rows))
    fill(guide, "seeds-summary", (
        f"Test accuracy over the {len(test)} seeds: mean **{mean:.1f}%**, standard deviation "
        f"**{sd:.1f}** points, 95% interval of the mean **{mean - half:.1f}% to "
        f"{mean + half:.1f}%** (t = {T_975[len(test) - 1]}, {len(test) - 1} degrees of freedom). "
        f"The best validation accuracy averages **{statistics.mean(val):.1f}%**, "
        f"**{statistics.mean(val) - mean:+.1f}** points from the test mean. The test split's "
        f"own sampling error, with {n_test} examples, is √(p(1−p)/n) = **{binomial:.1f}** "
        f"points; two settings compared at {len(test)} seeds each need a difference of more "
        f"than **{diff_half:.1f}** points (the 95% half-width of a difference of two means) "
        "before it says anything."
    ))  # fmt: skip
    fig, ax = figure()
    ax.scatter(list(seeds), val, label="validation (best step)", marker="o")
    ax.scatter(list(seeds), test, label="test", marker="s")
    ax.axhline(mean, color="C1", linewidth=1)
    ax.axhspan(mean - half, mean + half, color="C1", alpha=0.15, label="test mean, 95% interval")
    ax.set_xticks(list(seeds))
    ax.set_xlabel("seed")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("the same fine-tune at different seeds")
    ax.legend(fontsize=7)
    save(fig, figure_path(args, NAME, "seeds"))

    # Calibration: every seed's ECE; the reliability diagram of all test predictions together.
    eces = [100 * calibration(*r["test_probs"])["ece"] for r in runs]
    pooled = calibration(torch.cat([r["test_probs"][0] for r in runs]),
                         torch.cat([r["test_probs"][1] for r in runs]))  # fmt: skip
    fill(guide, "calibration", (
        f"ECE (10 bins) per seed: {', '.join(f'{e:.1f}' for e in eces)} points; all "
        f"{len(test) * n_test} test predictions together: **{100 * pooled['ece']:.1f}** points."
    ))  # fmt: skip
    fig, ax = figure()
    points = [(c, a, n) for c, a, n in zip(pooled["confidence"], pooled["accuracy"],
              pooled["count"], strict=True) if n]  # fmt: skip
    ax.plot([0.5, 1], [0.5, 1], color="black", linestyle="--", linewidth=0.8, label="calibrated")
    ax.plot([c for c, _, _ in points], [a for _, a, _ in points], marker="o", label="minimod")
    for c, a, n in points:
        ax.annotate(str(n), (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability diagram (ECE {100 * pooled['ece']:.1f} points)")
    ax.legend(fontsize=7)
    save(fig, figure_path(args, NAME, "reliability"))

    # The confusion matrix of seed 0, as minimod finetune writes it into the run folder.
    probabilities, targets = runs[0]["test_probs"]
    matrix = confusion_matrix(probabilities.argmax(-1), targets, 2)
    plot_confusion_matrix(matrix, ("negative", "positive"), figure_path(args, NAME, "confusion"),
                          title="seed 0, test split")  # fmt: skip
    fill(guide, "confusion", "```\n" + runs[0]["confusion"] + "\n```")


if __name__ == "__main__":
    main(sys.argv[1:])
