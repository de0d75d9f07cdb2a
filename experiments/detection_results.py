"""Does a pretrained body help a detector? The table of README's detection section.

    python experiments/detection_results.py [--out runs/detection-results] [--seeds 3]
                                            [--labels 200 2000] [--steps 100]
                                            [--shapes RUN] [--quick]

Part of ``make results-real`` (it needs ``make real``: MNIST and MobileNetV2's ImageNet
weights). Pretrains one detect-shapes detector (preset baby, 300 steps, seed 0; ``--shapes
RUN`` reuses one), then fine-tunes a detector on detect-digits (preset baby: batches of 16
canvases, lr 3e-3, ``--steps`` steps, the same for every row; 100 by default, a third of the
preset's, to fit the table into ~40 minutes of a shared 2-core CPU) from four bodies, for each
number of training canvases and seed:

    scratch                the preset's ResNet, fresh weights
    the shapes run         the same ResNet, its body from the detect-shapes run
    mobilenet_v2           MobileNetV2's ImageNet features cut at stride 8, fine-tuned
    mobilenet_v2, frozen   the same body frozen: only the detection head trains (cheap, and
                           only where it matters: at the smallest number of canvases)

and reports best.pt's mAP@0.5 and mAP@[.5:.95] on 500 test canvases (mean ± sd over seeds),
trainable / total parameters and seconds per run. Prints the table and writes it into
README.md between its markers, the raw numbers into OUT/detection-results.json (after
every row). ``--quick``: one seed, 30 steps, to try the script out (its numbers mean little).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from readme_tables import write_table

from minimod.tasks import pretrain
from minimod.tasks.finetune import finetune

MARKERS = ("<!-- detection-results:start -->", "<!-- detection-results:end -->")
PRESET = "baby"
# (row name, --from, fine-tune options); "SHAPES" stands for the detect-shapes run made here.
BODIES = [
    ("scratch (ResNet)", "scratch", {}),
    ("the detect-shapes run (ResNet)", "SHAPES", {}),
    ("mobilenet_v2, fine-tuned", "mobilenet_v2", {}),
    ("mobilenet_v2, frozen body", "mobilenet_v2", {"freeze": "body"}),
]


def quiet(_: str) -> None:
    pass


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def shapes_run(out: Path, reuse: Path | None, quick: bool) -> dict[str, Any]:
    """The detect-shapes run the second row starts from: {"run", "final", "wall_s"}."""
    if reuse is not None:
        record = json.loads((reuse / "run.json").read_text())
        return {"run": str(reuse), "final": record["final"], "wall_s": None}
    start = time.perf_counter()
    shapes = pretrain("detect-shapes", PRESET, out=out / "detect-shapes", overwrite=True,
                      device="cpu", progress=False, log=quiet,
                      max_steps=30 if quick else None)  # fmt: skip
    return {"run": shapes["run"], "final": shapes["final"], "wall_s": time.perf_counter() - start}


def run(
    out: Path, seeds: int, labels: list[int], steps: int, shapes: dict[str, Any]
) -> dict[str, Any]:
    print(f"detect-shapes run {shapes['run']}: val mAP@0.5 {shapes['final']['map50']:.3f}",
          flush=True)  # fmt: skip
    results: dict[str, Any] = {"shapes": shapes, "steps": steps, "rows": []}
    for n in labels:
        for name, source, options in BODIES:
            if options.get("freeze") == "body" and n != min(labels):
                continue
            runs = []
            for seed in range(seeds):
                folder = out / f"{n}" / f"{source.lower()}-{options.get('freeze', 'none')}-{seed}"
                summary = finetune(
                    "cnn", shapes["run"] if source == "SHAPES" else source, "detect-digits",
                    preset=PRESET, out=folder, overwrite=True, seed=seed, device="cpu",
                    progress=False, log=quiet, labels=n, max_steps=steps, **options,
                )  # fmt: skip
                runs.append({key: summary[key] for key in ("test", "wall_s", "trainable", "total")})
                mean_ap = summary["test"]["map50"]
                print(f"{n} canvases, {name}, seed {seed}: test mAP@0.5 {mean_ap:.3f}, "
                      f"{summary['wall_s']:.0f} s", flush=True)  # fmt: skip
            results["rows"].append({"labels": n, "body": name, "runs": runs})
            # After every row: an interrupted run keeps the numbers measured so far.
            (out / "detection-results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def table(results: dict[str, Any], seeds: int) -> str:
    lines = [
        "| training canvases | body (`--from`) | trainable / total parameters "
        "| test mAP@0.5 | test mAP@[.5:.95] | s per run |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        runs = row["runs"]
        lines.append(
            f"| {row['labels']} | {row['body']} | {runs[0]['trainable']:,} / {runs[0]['total']:,} "
            f"| {mean_sd([r['test']['map50'] for r in runs])} "
            f"| {mean_sd([r['test']['map'] for r in runs])} "
            f"| {statistics.mean(r['wall_s'] for r in runs):.0f} |"
        )
    shapes = results["shapes"]
    return "\n".join(lines) + (
        f"\n\n{seeds} seed{'s per row (mean ± sd)' if seeds > 1 else ' per row'}; the "
        f"detect-shapes run itself (preset baby, 300 steps, seed 0): val mAP@0.5 "
        f"{shapes['final']['map50']:.3f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/detection-results"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--shapes", type=Path, help="reuse this detect-shapes run")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    shapes = shapes_run(args.out, args.shapes, args.quick)
    results = run(args.out, seeds, args.labels, 30 if args.quick else args.steps, shapes)
    text = table(results, seeds)
    print(text)
    if not args.quick:
        write_table(*MARKERS, text)


if __name__ == "__main__":
    main()
