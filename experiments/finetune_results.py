"""Does pretraining pay? The fine-tuning experiments behind the README's results table.

    python experiments/finetune_results.py [--out runs/results] [--seeds 3] [--quick]

(``make results``.) Pretrains once (seed 0) each body the experiments need, then fine-tunes
them with new heads, pretrained against from scratch, over seeds; prints the table and writes it
into README.md between the ``results`` markers, with the raw numbers in OUT/results.json.
``--quick`` runs one seed and shorter schedules, to try the script out (its numbers mean little).

1. tiny BERT, MLM-pretrained on the unlabelled reviews vs from scratch, fine-tuned on
   100 / 300 / 1000 labelled reviews: full fine-tune, linear probe, LoRA (trainable counts)
2. tiny GPT (pretrained on the same reviews) with a sequence-classification head
3. CNN pretrained on shape classification, new box-regression head for detection (IoU)
4. audio CNN pretrained on five keywords, a new head for three new keywords, 24 examples
5. imbalanced 1:9 reviews, with and without class weights (macro-F1)
6. cross-domain: BERT pretrained on Python's documentation, fine-tuned on reviews
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from minimod.tasks import pretrain
from minimod.tasks.finetune import finetune

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# The bodies: (name, task, preset, data, max_steps). The "baby" transformers (4 layers, 128
# wide) are cut short of their 2000 steps to keep `make results` within 30 minutes on 2 cores.
PRETRAIN = [
    ("bert-reviews", "bert", "baby", "reviews", 800),
    ("bert-pydoc", "bert", "baby", "pydoc", 800),
    ("gpt-reviews", "gpt", "baby", "reviews", 800),
    ("cnn-shapes", "cnn", "tiny", None, 300),
    ("audio-5words", "audio", "tiny", None, 300),
]


def quiet(_: str) -> None:
    pass


class Runner:
    def __init__(self, out: Path, seeds: int, quick: bool) -> None:
        self.out, self.seeds, self.quick = out, seeds, quick
        self.rows: list[dict[str, Any]] = []
        self.bodies: dict[str, Path] = {}

    def pretrain_all(self) -> None:
        for name, task, preset, data, steps in PRETRAIN:
            start = time.perf_counter()
            run = self.out / "pretrain" / name
            steps = max(20, steps // 10) if self.quick else steps
            summary = pretrain(
                task, preset, data=data, out=run, max_steps=steps, overwrite=True,
                progress=False, log=quiet,
            )  # fmt: skip
            self.bodies[name] = run
            metrics = ", ".join(
                f"{k} {v:.3f}" for k, v in summary["final"].items() if k != "batches"
            )
            seconds = time.perf_counter() - start
            print(f"pretrained {name}: {steps} steps, {metrics} ({seconds:.0f} s)", flush=True)

    def finetune(self, experiment: str, label: str, kind: str, source: str, task: str,
                 metric: str, seeds: int | None = None, **options: Any) -> None:  # fmt: skip
        """One table row: the mean and spread of ``metric`` over seeds."""
        seeds = 1 if self.quick else (seeds or self.seeds)
        values, times, trainable = [], [], None
        for seed in range(seeds):
            name = re.sub(r"[^a-z0-9]+", "-", f"{experiment} {label} {seed}".lower()).strip("-")
            if self.quick:
                options.setdefault("max_steps", 30)
            summary = finetune(
                kind, str(self.bodies[source]) if source in self.bodies else source, task,
                out=self.out / "finetune" / name, overwrite=True, seed=seed, progress=False,
                log=quiet, **options,
            )  # fmt: skip
            values.append(summary["test"][metric])
            times.append(summary["wall_s"])
            trainable = summary["trainable"]
        row = {
            "experiment": experiment, "row": label, "metric": metric, "values": values,
            "mean": statistics.mean(values),
            "spread": statistics.stdev(values) if len(values) > 1 else 0.0,
            "seeds": seeds, "wall_s": statistics.mean(times), "trainable": trainable,
        }  # fmt: skip
        self.rows.append(row)
        print(f"{experiment:<28} {label:<40} {format_value(row):>16}  "
              f"{trainable:>9,} trained  {row['wall_s']:5.1f} s/run", flush=True)  # fmt: skip


def format_value(row: dict[str, Any]) -> str:
    scale = 100 if row["metric"] in ("accuracy", "macro_f1") else 1
    digits = 1 if scale == 100 else 3
    text = f"{scale * row['mean']:.{digits}f}"
    if row["seeds"] > 1:
        text += f" ± {scale * row['spread']:.{digits}f}"
    return text + ("%" if scale == 100 else "")


def experiments(r: Runner) -> None:
    bert, acc = "bert-reviews", "accuracy"
    for labels in (100, 300, 1000):
        e1 = f"1. BERT, {labels} labels"
        r.finetune(e1, "pretrained, full fine-tune", "bert", bert, "sentiment", acc, labels=labels)
        r.finetune(e1, "scratch, full fine-tune", "bert", "scratch", "sentiment", acc,
                   labels=labels, preset="baby")  # fmt: skip
        r.finetune(e1, "pretrained, linear probe", "bert", bert, "sentiment", acc, labels=labels,
                   freeze="body", lr=3e-3)  # fmt: skip
        r.finetune(e1, "pretrained, LoRA r=4", "bert", bert, "sentiment", acc, labels=labels,
                   lora_rank=4, lr=3e-3)  # fmt: skip
        r.finetune(e1, "scratch, linear probe", "bert", "scratch", "sentiment", acc,
                   labels=labels, preset="baby", freeze="body", lr=3e-3, seeds=1)  # fmt: skip
    e2 = "2. GPT, 300 labels"
    r.finetune(e2, "pretrained, full fine-tune", "gpt", "gpt-reviews", "sentiment", acc, labels=300)
    r.finetune(e2, "scratch, full fine-tune", "gpt", "scratch", "sentiment", acc, labels=300,
               preset="baby")  # fmt: skip
    e3 = "3. CNN detection, 300 images"
    r.finetune(e3, "pretrained on shapes, new box head", "cnn", "cnn-shapes", "detect", "iou",
               labels=300)  # fmt: skip
    r.finetune(e3, "scratch", "cnn", "scratch", "detect", "iou", labels=300)
    e4 = "4. new keywords, 24 clips"
    r.finetune(e4, "pretrained on 5 other words", "audio", "audio-5words", "keywords", acc,
               labels=24)  # fmt: skip
    r.finetune(e4, "scratch", "audio", "scratch", "keywords", acc, labels=24)
    e5 = "5. imbalanced 1:9, 1000 labels"
    r.finetune(e5, "pretrained, plain cross-entropy", "bert", bert, "sentiment", "macro_f1",
               labels=1000, imbalance=9)  # fmt: skip
    r.finetune(e5, "pretrained, class weights auto", "bert", bert, "sentiment", "macro_f1",
               labels=1000, imbalance=9, class_weights="auto")  # fmt: skip
    e6 = "6. cross-domain, 300 labels"
    r.finetune(e6, "BERT pretrained on Python docs", "bert", "bert-pydoc", "sentiment", acc,
               labels=300)  # fmt: skip
    r.finetune(e6, "BERT pretrained on reviews (in-domain)", "bert", bert, "sentiment", acc,
               labels=300)  # fmt: skip


def table(rows: list[dict[str, Any]], seconds: float, command: str) -> str:
    lines = [
        "| experiment | setting | held-out metric | seeds | trained params | s/run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"accuracy": "accuracy", "macro_f1": "macro-F1", "iou": "mean IoU"}
    for row in rows:
        lines.append(
            f"| {row['experiment']} | {row['row']} | {names[row['metric']]} {format_value(row)} "
            f"| {row['seeds']} | {row['trainable']:,} | {row['wall_s']:.1f} |"
        )
    lines.append("")
    lines.append(f"`{command}`: {seconds / 60:.1f} minutes in all (2-core CPU, torch 2.13.0). "
                 "Mean ± standard deviation over seeds 0..N-1 (the seed picks the labelled "
                 "subset, the head's initialisation and the batches).")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/results", help="where the runs go")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for each row (default: 3)")
    parser.add_argument("--quick", action="store_true", help="one seed, short runs: a dry run")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    runner = Runner(Path(args.out), args.seeds, args.quick)
    runner.pretrain_all()
    experiments(runner)
    seconds = time.perf_counter() - start
    text = table(runner.rows, seconds, "make results")
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(runner.rows, indent=2) + "\n")
    if not args.quick and not args.no_readme:
        readme = README.read_text(encoding="utf-8")
        if START not in readme or END not in readme:
            print(f"README.md has no {START} ... {END} markers: table not written", file=sys.stderr)
            return 1
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")
        print(f"README.md updated ({seconds / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
