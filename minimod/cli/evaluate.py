"""``minimod evaluate``: held-out metrics of a pretrain run or the test split of a fine-tune run;
``minimod diagnose``: what a run's recorded diagnostics say."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="held-out metrics of a run",
        description="Print a run's held-out metrics: loss and perplexity (gpt, bert), or "
        "accuracy, macro-F1 and the confusion matrix (cnn, audio); for a fine-tune run, its "
        "metrics on the test split; for a domain-adaptive MLM run (pretrain bert --task "
        "mlm-domain), its masked-LM loss on the domain's held-out snippets.\n\n"
        "  minimod evaluate --from runs/first",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.set_defaults(handler=run_evaluate)
    evaluate.add_argument("--from", dest="run", required=True, metavar="RUN", help="run folder")
    evaluate.add_argument(
        "--data",
        metavar="PATH",
        help="evaluate on the last 10%% of this text file (default: the run's own data)",
    )
    evaluate.add_argument("--device", default="cpu", help="default: cpu")

    diagnose = commands.add_parser(
        "diagnose",
        help="what a run's diagnostics say: warnings, per-layer table, plots",
        description="Read the diagnostics a run recorded (train it with --diagnostics N) and "
        "say in plain words what looks wrong: a learning rate too high or too low (the "
        "update/weight ratio), dead ReLU units, saturated tanh/sigmoid, activations that grow "
        "or shrink with depth (initialisation), a layer that gets no gradient (detached), "
        "attention heads that collapsed onto one key or stayed uniform (their entropy). "
        "Writes diagnostics.png into the run folder.\n\n"
        "  minimod pretrain gpt --preset tiny --diagnostics 20 --out runs/watched\n"
        "  minimod diagnose --from runs/watched",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diagnose.set_defaults(handler=run_diagnose)
    diagnose.add_argument("--from", dest="run", required=True, metavar="RUN", help="run folder")
    diagnose.add_argument("--table", action="store_true", help="also print the per-layer table")


def run_diagnose(args: argparse.Namespace) -> int:
    from minimod.tasks.diagnose import diagnose

    report = diagnose(args.run)
    rows = report["rows"]
    print(f"{args.run}: {len(rows)} watched steps ({rows[0]['step']} to {rows[-1]['step']})")
    if args.table:
        print("\n".join(report["lines"]))
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    if not report["warnings"]:
        print("nothing looks wrong: update/weight ratios, dead units, saturation, the "
              "spread of activations and the gradients are in the usual ranges")  # fmt: skip
    print(report["plot"])
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from minimod.tasks import evaluate_run
    from minimod.tasks.run import is_domain_mlm, read_run

    record = read_run(args.run)
    if record.get("kind") == "finetune":
        return _evaluate_finetuned(args)
    if is_domain_mlm(record):
        return _evaluate_domain_mlm(args)
    record, metrics, confusion = evaluate_run(args.run, args.data, args.device)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "batches")
    where = f" on {metrics['batches']} held-out batches" if "batches" in metrics else " held out"
    print(f"{record['task']} ({record['preset']}) {args.run}{where}: {shown}")
    if confusion:
        print(confusion)
    return 0


def _evaluate_domain_mlm(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError
    from minimod.tasks.domain_mlm import evaluate_domain_run

    if args.data is not None:
        raise UsageError(
            "--data is for pretrain runs; a domain-adaptive MLM run evaluates on its domain's "
            "held-out snippets"
        )
    record, metrics = evaluate_domain_run(args.run, args.device)
    before = record.get("final", {}).get("loss_before")
    print(
        f"bert (minilm, mlm-domain on {record['domain']}) {args.run} on "
        f"{record['settings']['n_val']} held-out snippets: masked-LM loss {metrics['loss']:.4g}"
        + ("" if before is None else f" (MiniLM before the run: {before:.4g})")
    )
    return 0


def _evaluate_finetuned(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError
    from minimod.tasks.finetune import evaluate_finetuned

    if args.data is not None:
        raise UsageError("--data is for pretrain runs; a fine-tune run evaluates on its test split")
    summary = evaluate_finetuned(args.run, args.device)
    record = summary["record"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in summary["test"].items())
    print(f"{record['model']} fine-tuned on {record['task']} {args.run}, test split: {shown}")
    if summary.get("confusion"):
        print(summary["confusion"])
        print(summary["confusion_png"])
    return 0
