"""Cross-domain transfer on real data: all-MiniLM-L6-v2 fine-tuned (LoRA r=8) on one of VADER's
human-rated domains and tested on all four (movie-review snippets, Amazon product reviews, New
York Times editorials, tweets); then, per target domain, a little in-domain data (--labels N of
the target) from MiniLM alone, after the movie fine-tune, and after domain-adaptive MLM
(MiniLM's masked-language-model training continued on the target's unlabelled training text,
``minimod.tasks.domain_mlm``); and the reverse direction (all of --reverse's labels, tested on
movies). Writes the README's cross-domain table (`make results-real` runs it).

    python experiments/crossdomain_results.py [--out runs/crossdomain] [--labels 100]
        [--targets amazon,tweets,nyt] [--steps 200] [--small-steps 30] [--mlm-steps 60]
        [--reverse amazon]

Rows run in order of use (the movie run, then each target's three rows, then the reverse run),
and the table is rewritten after every row: an interrupted script leaves the rows it finished.
A run folder holding a finished run (its run.json has test metrics, seconds.json its wall time)
is read back, not trained again; delete the folder to run it again. results.json holds every
row (the guide script ``experiments/guides/cross_domain.py`` reads it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from readme_tables import write_table

from minimod.data.vader import domain_sentiment
from minimod.tasks.domain_mlm import pretrain_domain
from minimod.tasks.finetune import finetune

DOMAINS = ("movies", "amazon", "nyt", "tweets")
MARKERS = ("<!-- crossdomain-results:start -->", "<!-- crossdomain-results:end -->")
SECONDS = "seconds.json"  # the wall time of the run in its folder
LR = 1e-3  # LoRA's learning rate (the README's fine-tuning table: MiniLM LoRA r=8, lr 1e-3)


def accuracies(test: dict[str, float], trained_on: str) -> dict[str, float]:
    """The test accuracy of every domain from a run on ``trained_on``."""
    return {d: test["accuracy"] if d == trained_on else test[f"{d}_accuracy"] for d in DOMAINS}


def finished(run: Path) -> dict[str, Any] | None:
    """A finished run's run.json (with "seconds" added), or None."""
    try:
        record = json.loads((run / "run.json").read_text(encoding="utf-8"))
        seconds = json.loads((run / SECONDS).read_text(encoding="utf-8"))["seconds"]
    except (OSError, ValueError, KeyError):
        return None
    done = "test" in record or "final" in record  # a fine-tune's report, a pretrain's end
    return {**record, "seconds": seconds} if done else None


def timed(run: Path, train, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Read back a finished run in ``run``, or train it (``train(*args, out=run, **kwargs)``)
    and note its wall time."""
    record = finished(run)
    if record is None:
        start = time.perf_counter()
        train(*args, out=run, **kwargs)
        seconds = time.perf_counter() - start
        (run / SECONDS).write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
        record = finished(run)
    return record


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The README's table and its note."""
    head = ["| fine-tuned on | " + " | ".join(f"{d} test" for d in DOMAINS) + " | s |",
            "| --- |" + " --- |" * (len(DOMAINS) + 1)]  # fmt: skip
    body = [
        f"| {row['name']} | "
        + " | ".join(
            f"**{row['accuracy'][d]:.1%}**"
            if d == row["trained_on"]
            else f"{row['accuracy'][d]:.1%}"
            for d in DOMAINS
        )
        + f" | {row['seconds']:.0f} |"
        for row in rows
    ]
    note = (
        f"\nall-MiniLM-L6-v2 with LoRA r=8 on attention and FFN (mean pooling, lr {LR:g}), one "
        f"seed; bold: the domain it was fine-tuned on. The movie run: {args.steps} steps of 32 "
        f"on all its labels; the in-domain runs: {args.small_steps} steps of 16 on "
        f"{args.labels} labels of the target's training split (a seeded draw); domain MLM: "
        f"{args.mlm_steps} steps of 16 of the target's training snippets, labels unused "
        "(MiniLM's encoder with a fresh MLM head: the package ships none); the reverse run: "
        f"{args.steps // 2} steps of 32 on all of {args.reverse}'s labels. Accuracy on each "
        "domain's whole test split (292-342 snippets for amazon, nyt and tweets: one seed's "
        "standard error is 2-3 points); s: wall seconds (domain MLM included), 1 thread "
        "on a shared, heavily loaded 2-core CPU (the times compare runs only roughly), torch "
        "2.13.0 (experiments/crossdomain_results.py; docs/guides/cross-domain.md reads it)."
    )
    return "\n".join(head + body) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/crossdomain", help="run folders")
    parser.add_argument("--labels", type=int, default=100, help="in-domain labels (default 100)")
    parser.add_argument("--targets", default="amazon,tweets,nyt", help="target domains, in order")
    parser.add_argument("--steps", type=int, default=200, help="steps of the movie run")
    parser.add_argument("--small-steps", type=int, default=30, help="steps of the label runs")
    parser.add_argument("--mlm-steps", type=int, default=60, help="steps of domain MLM")
    parser.add_argument("--reverse", default="amazon", help="the reverse run's domain ('' = none)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    common = dict(lora_rank=8, lr=LR, overwrite=True, progress=False, log=lambda _: None,
                  device="cpu")  # fmt: skip
    small = dict(labels=args.labels, max_steps=args.small_steps, batch_size=16, **common)
    rows: list[dict[str, Any]] = []

    def add(key: str, name: str, trained_on: str, record: dict[str, Any], **extra: Any) -> None:
        seconds = record["seconds"] + extra.pop("mlm_seconds", 0.0)
        accuracy = accuracies(record["test"], trained_on)
        rows.append({"key": key, "name": name, "trained_on": trained_on, "accuracy": accuracy,
                     "seconds": seconds, **extra})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
        write_table(*MARKERS, table(rows, args))

    movies = out / "movies"
    record = timed(movies, finetune, "bert", "minilm", "sentiment-real", max_steps=args.steps,
                   **common)  # fmt: skip
    labels = len(domain_sentiment("movies", "train"))
    add("movies", f"movies (all {labels:,} labels)", "movies", record)
    for target in args.targets.split(","):
        n = f"{args.labels} {target} labels"
        task = ("bert", "minilm", "sentiment-real")
        record = timed(out / f"{target}-alone", finetune, *task, domain=target, **small)
        add(f"{target}-alone", f"MiniLM, then {n}", target, record)
        task = ("bert", str(movies), "sentiment-real")
        record = timed(out / f"{target}-after-movies", finetune, *task, domain=target, **small)
        add(f"{target}-after-movies", f"MiniLM + movies, then {n}", target, record)
        mlm = out / f"mlm-{target}"
        pretrained = timed(mlm, pretrain_domain, target, overwrite=True, max_steps=args.mlm_steps,
                           batch_size=16, progress=False, device="cpu",
                           log=lambda _: None)  # fmt: skip
        task = ("bert", str(mlm), "sentiment-real")
        record = timed(out / f"{target}-after-mlm", finetune, *task, domain=target, **small)
        add(f"{target}-after-mlm", f"MiniLM + {target} MLM ({args.mlm_steps} steps), then {n}",
            target, record, mlm_seconds=pretrained["seconds"],
            mlm_loss=pretrained["final"])  # fmt: skip
    if args.reverse:
        record = timed(out / f"{args.reverse}-all", finetune, "bert", "minilm", "sentiment-real",
                       domain=args.reverse, max_steps=args.steps // 2, **common)  # fmt: skip
        labels = len(domain_sentiment(args.reverse, "train"))
        add(f"{args.reverse}-all", f"{args.reverse} (all {labels:,} labels)", args.reverse, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
