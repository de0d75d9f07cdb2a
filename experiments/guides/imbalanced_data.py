"""The measured runs of docs/guides/imbalanced-data.md: sentiment fine-tuning with the positive
class made 10 and 50 times rarer than the negative one, trained plainly, with class weights,
with a balanced sampler and with focal loss, and the plain run's threshold moved on the
validation split; accuracy, macro-F1 and the minority class's recall on the test split, at
three seeds.

    python experiments/guides/imbalanced_data.py            # ~7 minutes on one thread
    python experiments/guides/imbalanced_data.py --quick    # a smoke run
"""

from __future__ import annotations

import statistics
import sys

import torch
from common import figure, figure_path, fill, guide_path, options, save, table
from evaluating import finetune_run, pretrain_bert

from minimod.train.metrics import accuracy, macro_f1, precision_recall_f1

NAME = "imbalanced-data"
METHODS = {  # name: finetune options
    "plain": {},
    "class weights": {"class_weights": "auto"},
    "balanced sampler": {"sampler": "weighted"},
    "focal loss": {"loss": "focal"},
}
MOVED = "threshold moved"  # the plain run, its threshold picked on the validation split


def scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """accuracy, macro-F1 and the recall of class 1 (the minority), in %."""
    recall = precision_recall_f1(pred, target, 2)[1]
    return {
        "accuracy": 100 * accuracy(pred, target),
        "macro_f1": 100 * macro_f1(pred, target, 2),
        "recall": 100 * float(recall[1]),
    }


def moved_threshold(val: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The threshold on P(minority) with the best validation macro-F1 (the lowest of ties)."""
    probabilities, targets = val
    candidates = [i / 100 for i in range(1, 100)]
    f1 = [macro_f1((probabilities[:, 1] >= t).long(), targets, 2) for t in candidates]
    return candidates[f1.index(max(f1))]


def main(argv: list[str] | None = None) -> None:
    args = options(__doc__, NAME, argv)
    guide = guide_path(args, NAME)
    bert = pretrain_bert(args.out / "bert", args.quick)
    ratios, seeds = ((10,), (0,)) if args.quick else ((10, 50), (0, 1, 2))
    found: dict[tuple[int, str], list[dict[str, float]]] = {}
    thresholds: dict[int, list[float]] = {}
    for ratio in ratios:
        for seed in seeds:
            for method, chosen in METHODS.items():
                out = args.out / f"1-{ratio}-{method.replace(' ', '-')}-seed-{seed}"
                run = finetune_run(out, bert, seed=seed, quick=args.quick, imbalance=ratio,
                                   **chosen)  # fmt: skip
                probabilities, targets = run["test_probs"]
                found.setdefault((ratio, method), []).append(
                    scores(probabilities.argmax(-1), targets)
                )
                if method == "plain":
                    t = moved_threshold(run["val_probs"])
                    thresholds.setdefault(ratio, []).append(t)
                    found.setdefault((ratio, MOVED), []).append(
                        scores((probabilities[:, 1] >= t).long(), targets)
                    )
    methods = [*METHODS, MOVED]

    def cell(ratio: int, method: str, key: str) -> str:
        values = [row[key] for row in found[(ratio, method)]]
        spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
        return f"{statistics.mean(values):.1f}{spread}"

    rows = [[f"1:{ratio}", method, *(cell(ratio, method, k) for k in ("accuracy", "macro_f1",
             "recall"))] for ratio in ratios for method in methods]  # fmt: skip
    header = ["positive : negative", "method", "accuracy %", "macro-F1 %", "minority recall %"]
    fill(guide, "results", table(header, rows))
    # Always 'negative': the majority's F1 is 2r / (2r + 1) (precision r / (r + 1), recall 1),
    # the minority's 0.
    fill(guide, "baseline", "; ".join(
        f"at 1:{r}, always answering 'negative' scores {100 * r / (r + 1):.1f}% accuracy, "
        f"{100 * r / (2 * r + 1):.1f}% macro-F1 and 0% minority recall" for r in ratios
    ) + ".")  # fmt: skip
    fill(guide, "thresholds", "; ".join(
        f"at 1:{r}: {', '.join(f'{t:.2f}' for t in thresholds[r])}" for r in ratios
    ) + " (seed by seed).")  # fmt: skip

    fig, axes = figure(ncols=len(ratios))
    axes = axes if len(ratios) > 1 else [axes]
    for ax, ratio in zip(axes, ratios, strict=True):
        x = range(len(methods))
        for offset, key, label in ((-0.2, "macro_f1", "macro-F1"),
                                   (0.2, "recall", "minority recall")):  # fmt: skip
            means = [statistics.mean(row[key] for row in found[(ratio, m)]) for m in methods]
            ax.bar([i + offset for i in x], means, width=0.4, label=label)
        ax.set_xticks(list(x), methods, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_title(f"positive : negative = 1:{ratio}")
    axes[0].set_ylabel("% on the test split")
    axes[0].legend(fontsize=7)
    save(fig, figure_path(args, NAME, "methods"))


if __name__ == "__main__":
    main(sys.argv[1:])
