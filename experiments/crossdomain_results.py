"""Cross-domain transfer on real data: all-MiniLM-L6-v2 fine-tuned (LoRA r=8) on one of VADER's
human-rated domains and tested on all four (movie-review snippets, Amazon product reviews, New
York Times editorials, tweets); then, per target domain, a little in-domain data (--labels N of
the target) from MiniLM alone against the same after the movie fine-tune. Writes the README's
cross-domain table (`make results-real` runs it).

    python experiments/crossdomain_results.py [--out runs/crossdomain] [--labels 100]
        [--targets amazon,nyt,tweets] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from readme_tables import write_table

from minimod.tasks.finetune import finetune

DOMAINS = ("movies", "amazon", "nyt", "tweets")
MARKERS = ("<!-- crossdomain-results:start -->", "<!-- crossdomain-results:end -->")


def accuracies(summary: dict, trained_on: str) -> dict[str, float]:
    """The test accuracy of every domain from a run on ``trained_on``."""
    test = summary["test"]
    return {d: test["accuracy"] if d == trained_on else test[f"{d}_accuracy"] for d in DOMAINS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/crossdomain", help="run folders")
    parser.add_argument("--labels", type=int, default=100, help="in-domain labels (default 100)")
    parser.add_argument("--targets", default="amazon,nyt,tweets", help="target domains")
    parser.add_argument("--steps", type=int, default=300, help="steps of the movie run")
    args = parser.parse_args()
    out = Path(args.out)
    targets = args.targets.split(",")
    common = dict(lora_rank=8, overwrite=True, progress=False, log=lambda _: None, device="cpu")
    rows = []

    start = time.perf_counter()
    movies = finetune("bert", "minilm", "sentiment-real", out=out / "movies",
                      max_steps=args.steps, **common)  # fmt: skip
    seconds = time.perf_counter() - start
    rows.append(("movies (all 8,058 labels)", accuracies(movies, "movies"), seconds))
    print(rows[-1], flush=True)
    small = max(50, args.labels // 2)  # steps for the small in-domain runs (a few epochs)
    for target in targets:
        sources = (("MiniLM", "minilm", "alone"),
                   ("MiniLM + movies", str(out / "movies"), "after-movies"))  # fmt: skip
        for name, source, folder in sources:
            start = time.perf_counter()
            summary = finetune("bert", source, "sentiment-real", domain=target,
                               labels=args.labels, max_steps=small,
                               out=out / f"{target}-{folder}", **common)  # fmt: skip
            rows.append((f"{name}, then {args.labels} {target} labels",
                         accuracies(summary, target), time.perf_counter() - start))  # fmt: skip
            print(rows[-1], flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    head = ["| fine-tuned on | " + " | ".join(f"{d} test" for d in DOMAINS) + " | s |",
            "| --- |" + " --- |" * (len(DOMAINS) + 1)]  # fmt: skip
    body = [f"| {name} | " + " | ".join(f"{acc[d]:.1%}" for d in DOMAINS) + f" | {s:.0f} |"
            for name, acc, s in rows]  # fmt: skip
    note = (
        f"\nall-MiniLM-L6-v2 with LoRA r=8 on attention and FFN (mean pooling), one seed; the "
        f"movie run {args.steps} steps on all its labels, the in-domain runs {small} steps on "
        f"{args.labels} labels of the target's training split (seeded); accuracy on each "
        "domain's whole test split. 2-core CPU, torch 2.13.0 (experiments/crossdomain_results.py)."
    )
    write_table(*MARKERS, "\n".join(head + body) + "\n" + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
