"""Speech recognition on held-out connected digits: how low does the word error rate go, and does
a pretrained front end help when labelled recordings are few?

    python experiments/asr_results.py [--part all|scratch|finetune] [--preset baby]
                                      [--seeds 0 1] [--labels 100 0] [--threads 1]
                                      [--out runs/asr-results] [--no-readme]

``scratch``: ``minimod pretrain audio --task asr-digits`` (the FSDD recordings of ``make real``,
strung into utterances of 1-7 digits with short silences; a strided conv front end, a
bidirectional GRU, CTC) once per seed, then the 300 held-out utterances -- made only of the
"test" split's recordings, never heard in training -- decoded greedily and with a prefix beam.

``finetune``: a recogniser of the same preset pretrained with CTC on synthetic keyword sentences
(``pretrain audio --task asr --features mfcc``: no real voice in it; ``--source RUN`` reuses
one), then ``finetune audio --task asr-digits`` from it and from scratch, with N training
recordings (``--labels``; 0 = all of them), each seed, SpecAugment on; at the first --labels
count also with SpecAugment off; the same 300 test utterances.

Writes the tables into README.md between ``<!-- asr-results:start -->`` and
``<!-- asr-results:end -->`` (unless --no-readme) and the raw rows into OUT/asr-results.json;
a run of one part keeps the other part's rows already in that file.
Part of ``make results-real``, never of ``make test``: it takes most of an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from readme_tables import write_table

from minimod.tasks import pretrain
from minimod.tasks.finetune import finetune
from minimod.tasks.run import read_run
from minimod.tasks.transcribe import transcribe

MARKERS = ("<!-- asr-results:start -->", "<!-- asr-results:end -->")
HELD_OUT = 300  # the test utterances every row is scored on


def _percent(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.2f}%"
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}%"


def scratch_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """pretrain audio --task asr-digits per seed: greedy and beam WER on the held-out set."""
    rows = []
    for seed in args.seeds:
        run_dir = Path(args.out) / f"asr-digits-{args.preset}-seed{seed}"
        start = time.perf_counter()
        summary = pretrain("asr-digits", args.preset, out=run_dir, seed=seed, device="cpu",
                           progress=False, overwrite=True, max_steps=args.max_steps)  # fmt: skip
        train_s = time.perf_counter() - start
        beam = transcribe(run_dir, held_out=HELD_OUT, beam=args.beam)
        row = {
            "part": "scratch", "seed": seed, "preset": args.preset, "steps": summary["step"],
            "train_s": round(train_s, 1), "ms_per_step": round(summary["ms_per_step"], 1),
            "greedy_wer": summary["final"]["wer"], "greedy_cer": summary["final"]["cer"],
            "beam_wer": beam["wer"], "beam": args.beam, "threads": args.threads,
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def finetune_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The synthetic-keyword recogniser, then asr-digits from it and from scratch, per number of
    training recordings, SpecAugment on/off and seed."""
    if args.source is None:
        source = Path(args.out) / f"asr-mfcc-{args.preset}"
        start = time.perf_counter()
        summary = pretrain("asr", args.preset, out=source, seed=0, device="cpu", progress=False,
                           overwrite=True, features="mfcc")  # fmt: skip
        steps, train_s = summary["step"], round(time.perf_counter() - start, 1)
    else:
        source, summary = Path(args.source), read_run(args.source)
        steps, train_s = summary["settings"]["max_steps"], None
    rows = [{
        "part": "source", "preset": args.preset, "steps": steps, "train_s": train_s,
        "synthetic_wer": summary["final"]["wer"],
    }]  # fmt: skip
    print(json.dumps(rows[0]), flush=True)
    for labels in args.labels:
        for origin in ("pretrained", "scratch"):
            for spec_augment in (True, False) if labels == args.labels[0] else (True,):
                for seed in args.seeds:
                    name = f"ft-{origin}-labels{labels or 'all'}-sa{int(spec_augment)}-seed{seed}"
                    run_dir = Path(args.out) / name
                    start = time.perf_counter()
                    done = finetune(
                        "audio", str(source) if origin == "pretrained" else "scratch",
                        "asr-digits", preset=args.preset, out=run_dir, overwrite=True, seed=seed,
                        device="cpu", progress=False, log=lambda _: None,
                        labels=labels or None, spec_augment=spec_augment,
                    )  # fmt: skip
                    train_s = time.perf_counter() - start
                    beam = transcribe(run_dir, held_out=HELD_OUT, beam=args.beam)
                    row = {
                        "part": "finetune", "origin": origin, "labels": labels or "all",
                        "spec_augment": spec_augment, "seed": seed, "steps": done["step"],
                        "train_s": round(train_s, 1), "greedy_wer": done["test"]["wer"],
                        "greedy_cer": done["test"]["cer"], "beam_wer": beam["wer"],
                        "beam": args.beam,
                    }  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def tables(rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> str:
    lines = []
    scratch = [row for row in rows if row["part"] == "scratch"]
    if scratch:
        lines += [
            f"Trained from scratch on every training recording (`pretrain audio --task "
            f"asr-digits --preset {args.preset}`, {scratch[0]['steps']} steps of 32 utterances):",
            "",
            f"| seed | WER greedy | WER beam {args.beam} | CER | training |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['seed']} | {100 * row['greedy_wer']:.2f}% | {100 * row['beam_wer']:.2f}% | "
            f"{100 * row['greedy_cer']:.2f}% | {row['train_s']:.0f} s |"
            for row in scratch
        ]
        lines.append("")
    tuned = [row for row in rows if row["part"] == "finetune"]
    if tuned:
        source = next(row for row in rows if row["part"] == "source")
        steps = tuned[0]["steps"]
        lines += [
            f"Fine-tuned (`finetune audio --task asr-digits`, {steps} steps) from a recogniser "
            f"pretrained on synthetic keyword sentences (`pretrain audio --task asr --features "
            f"mfcc --preset {args.preset}`: {source['steps']} steps"
            + (f", {source['train_s']:.0f} s" if source["train_s"] else "")
            + ", "
            f"WER {100 * source['synthetic_wer']:.1f}% on its own synthetic held-out set) or "
            f"from scratch; mean ± sd over seeds {', '.join(map(str, args.seeds))}:",
            "",
            f"| training recordings | start | SpecAugment | WER greedy | WER beam {args.beam} | "
            "CER | seconds per run |",
            "|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for row in tuned:
            groups.setdefault((row["labels"], row["origin"], row["spec_augment"]), []).append(row)
        for (labels, origin, spec_augment), group in groups.items():
            lines.append(
                f"| {labels} | {origin} | {'on' if spec_augment else 'off'} | "
                f"{_percent([r['greedy_wer'] for r in group])} | "
                f"{_percent([r['beam_wer'] for r in group])} | "
                f"{_percent([r['greedy_cer'] for r in group])} | "
                f"{statistics.mean(r['train_s'] for r in group):.0f} |"
            )
        lines.append("")
    lines.append(
        f"{HELD_OUT} held-out utterances of the test split's recordings; `python "
        f"experiments/asr_results.py --part {args.part}` ({seconds / 60:.0f} minutes in all, "
        f"{args.threads} torch thread(s) on the shared 2-core CPU, torch {torch.__version__})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "scratch", "finetune"), default="all")
    parser.add_argument("--preset", default="baby", choices=("tiny", "baby", "small"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--labels", type=int, nargs="+", default=[100, 0],
        help="training recordings per fine-tune, 0 = all (default: 100 0)",
    )  # fmt: skip
    parser.add_argument("--max-steps", type=int, help="scratch runs (default: the preset's)")
    parser.add_argument("--source", help="a `pretrain audio --task asr --features mfcc` run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--beam", type=int, default=8, help="beam width (default: 8)")
    parser.add_argument("--out", default="runs/asr-results", help="where the runs go")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    raw = Path(args.out) / "asr-results.json"
    parts = {"all": ("scratch", "source", "finetune"), "scratch": ("scratch",),
             "finetune": ("source", "finetune")}[args.part]  # fmt: skip
    kept = json.loads(raw.read_text()) if raw.is_file() else []
    rows = [row for row in kept if row["part"] not in parts]
    if args.part in ("all", "scratch"):
        rows += scratch_rows(args)
    if args.part in ("all", "finetune"):
        rows += finetune_rows(args)
    text = tables(rows, args, time.perf_counter() - start)
    print(text)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(rows, indent=2) + "\n")
    if not args.no_readme and not write_table(*MARKERS, text):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
