"""The numbers and figure of docs/guides/cross-domain.md, from the runs of
experiments/crossdomain_results.py (the README's cross-domain table).

    python experiments/crossdomain_results.py          # the runs: about an hour, one thread
    python experiments/guides/cross_domain.py          # this guide's numbers, from their results
    python experiments/guides/cross_domain.py --quick  # the same into a copy of the guide

This script trains nothing: it reads the ``results.json`` those runs leave
(runs/crossdomain/results.json) and each domain-MLM run folder's run.json, so the guide
and the README table always show the same runs. ``--out`` only receives the guide's copy with
``--quick``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from common import ROOT, figure, figure_path, fill, guide_path, options, save, table

NAME = "cross-domain"
RESULTS = ROOT / "runs" / "crossdomain" / "results.json"  # experiments/crossdomain_results.py's
DOMAINS = ("movies", "amazon", "nyt", "tweets")
# The rows of each target, as experiments/crossdomain_results.py keys them, and their labels.
WAYS = (
    ("zero-shot", "movies only (no target labels)"),
    ("alone", "100 target labels"),
    ("after-movies", "movies, then 100 target labels"),
    ("after-mlm", "domain MLM, then 100 target labels"),
)


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def points(x: float) -> str:
    return f"{100 * x:+.1f} points"


def by_target(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """target -> way -> the target's test accuracy, for the targets that have rows."""
    found: dict[str, dict[str, float]] = {}
    for target in DOMAINS[1:]:
        ways = {"zero-shot": rows["movies"]["accuracy"][target]} if "movies" in rows else {}
        for way, _ in WAYS[1:]:
            row = rows.get(f"{target}-{way}")
            if row is not None:
                ways[way] = row["accuracy"][target]
        if len(ways) > 1:
            found[target] = ways
    return found


def fill_guide(args: Any, rows: dict[str, dict[str, Any]], runs: Path) -> None:
    """Every marker of the guide, from the rows of results.json."""
    guide = guide_path(args, NAME)
    movies = rows["movies"]["accuracy"]
    shift = [[d, percent(movies[d]), points(movies[d] - movies["movies"])] for d in DOMAINS]
    fill(guide, "shift", table(["test domain", "accuracy", "against movies"], shift))
    targets = by_target(rows)
    header = ["target", *(label for _, label in WAYS)]
    body = [[t, *(percent(ways[w]) if w in ways else "-" for w, _ in WAYS)]
            for t, ways in targets.items()]  # fmt: skip
    fill(guide, "targets", table(header, body))
    mlm = []
    for target in targets:
        path = runs / f"mlm-{target}" / "run.json"
        if path.is_file():
            record = json.loads(path.read_text(encoding="utf-8"))
            final, steps = record["final"], record["settings"]["max_steps"]
            seconds = json.loads((path.parent / "seconds.json").read_text(encoding="utf-8"))
            mlm.append([target, steps, f"{final['loss_before']:.2f}", f"{final['loss']:.2f}",
                        f"{seconds['seconds']:.0f}"])  # fmt: skip
    header = ["target", "MLM steps", "held-out MLM loss before", "after", "wall seconds"]
    fill(guide, "mlm", table(header, mlm))
    seconds = [[row["name"], f"{row['seconds']:.0f}"] for row in rows.values()]
    fill(guide, "seconds", table(["run", "wall seconds (1 thread, shared CPU)"], seconds))
    reverse = [row for key, row in rows.items() if key.endswith("-all")]
    if reverse:
        row = reverse[0]
        own = row["accuracy"][row["trained_on"]]
        cells = [[d, percent(row["accuracy"][d]), points(row["accuracy"][d] - own)]
                 for d in DOMAINS]  # fmt: skip
        text = f"Fine-tuned on {row['name']}:\n\n" + table(
            ["test domain", "accuracy", f"against {row['trained_on']}"], cells
        )
    else:
        text = "(no reverse run in results.json yet)"
    fill(guide, "reverse", text)
    plot(args, targets)


def plot(args: Any, targets: dict[str, dict[str, float]]) -> None:
    """Grouped bars: each target's test accuracy by way of getting there."""
    fig, ax = figure()
    width = 0.8 / len(WAYS)
    for i, (way, label) in enumerate(WAYS):
        xs = [t for t, ways in enumerate(targets.values()) if way in ways]
        ys = [ways[way] for ways in targets.values() if way in ways]
        ax.bar([x + (i - 1.5) * width for x in xs], ys, width, label=label)
    ax.set_xticks(range(len(targets)), list(targets))
    ax.set_ylim(0.4, 1.1)
    ax.axhline(0.5, color="grey", linewidth=0.8)
    ax.set_ylabel("target test accuracy")
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    save(fig, figure_path(args, NAME, "targets"))


def smoke_rows() -> dict[str, dict[str, Any]]:
    """Rows of results.json's shape at chance (50%) for a --quick run where no runs exist: the
    smoke run checks this script's filling and plotting, and its numbers mean nothing."""
    chance = dict.fromkeys(DOMAINS, 0.5)
    rows = {"movies": {"name": "movies (smoke)", "trained_on": "movies", "accuracy": chance}}
    for way, label in WAYS[1:]:
        rows[f"amazon-{way}"] = {"name": f"{label} (smoke)", "trained_on": "amazon",
                                 "accuracy": chance}  # fmt: skip
    return {key: {**row, "key": key, "seconds": 0.0} for key, row in rows.items()}


def main(argv: list[str] | None = None) -> int:
    args = options(__doc__, NAME, argv)
    results = RESULTS
    rows = {}
    if results.is_file():
        rows = {row["key"]: row for row in json.loads(results.read_text(encoding="utf-8"))}
    if "movies" not in rows and args.quick:
        print(f"no movie run in {results}: --quick fills its copy with chance-level stand-ins")
        rows = smoke_rows()
    elif "movies" not in rows:
        print(f"no movie run in {results}: run python experiments/crossdomain_results.py first",
              file=sys.stderr)  # fmt: skip
        return 1
    fill_guide(args, rows, results.parent)
    print(f"filled {guide_path(args, NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
