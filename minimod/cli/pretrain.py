"""``minimod pretrain``, ``generate`` and ``demo``: training from scratch and using the result."""

from __future__ import annotations

import argparse
import sys

from minimod.cli.common import (
    add_diagnostics_argument,
    add_spec_augment_argument,
    add_use_mine_argument,
    at_least,
    non_negative_float,
    output_folder,
    positive_float,
    positive_int,
    seed,
    use_mine_if_asked,
)

PRETRAIN_HELP = """\
Pretrain a model from scratch into a run folder (checkpoints, metrics, tokenizer, loss curve).

  gpt    next-token language model on text (default: Python's documentation, built in;
         --data any UTF-8 .txt file), one token per character
  bert   masked language model (15% of tokens: 80% [MASK], 10% random, 10% kept) on synthetic
         reviews (default) or --data text, word-level WordPiece vocabulary; --from minilm
         --task mlm-domain --domain D: continue the real MiniLM's masked-LM training on a VADER
         domain's unlabelled snippets (make real), then `finetune bert --from RUN`
         (`evaluate --from RUN` repeats its held-out masked-LM loss)
  cnn    ResNet classifying generated shapes (synthetic, seeded); --task detect-shapes:
         a one-stage detector finding every shape of generated scenes (boxes, classes, mAP),
         --task detect-digits: every real MNIST digit of a canvas (make real); --init RUN
         starts the detector's body from a detection or cnn run; then `minimod detect`
  audio  1-D CNN classifying generated spoken keywords from log-mel features (synthetic);
         --task asr: speech recognition (conv + bidirectional GRU, CTC) of synthetic keyword
         sentences, --task asr-digits: of connected spoken digits (FSDD, after make real),
         --task asr-espeak: of eSpeak NG's digit strings (make real; the judge of `speak`)
  tts    text to speech (FastSpeech-style: phonemes and their durations -> log-mel frames) on
         eSpeak NG's speech (--corpus digits or sentences, after make real) or the synthetic
         keywords (--corpus keywords); then `minimod speak --from RUN --text ...`

Presets: tiny (seconds: tests and demos), baby (gpt: nanoGPT's CPU "baby GPT" config, 4 layers,
128 wide, block 64, batch 12, lr 1e-3, 2000 steps, warmup 100 then cosine to lr/10, AdamW
betas 0.9/0.99, weight decay 0.1, grad clip 1.0), small (larger; wants a GPU).
The last 10% of the text (or a separately generated set) is held out and evaluated every
eval_every steps and at the end.
Options override the preset's settings (--n-layer, --n-embd, --warmup-steps, --grad-accum...);
run.json records them all, and --resume, evaluate and generate rebuild the same model from it
(--resume continues with the run's own settings: give the options the run was made with; only
--max-steps may change, and without --warmup-steps the run's warmup is kept; any other value,
another --warmup-steps included, is refused: start a new run with another --out for that).

  minimod pretrain gpt --preset tiny --out runs/first
  minimod pretrain gpt --preset baby --data shakespeare.txt --out runs/baby
  minimod pretrain gpt --out runs/first --resume --max-steps 200
  minimod pretrain gpt --preset baby --n-layer 2 --n-embd 64 --warmup-steps 0 --grad-accum 4
"""


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``pretrain``, ``generate`` and ``demo``."""
    from minimod.tasks.domain_mlm import DOMAINS
    from minimod.tasks.domain_mlm import TASK as DOMAIN_TASK
    from minimod.tasks.presets import AUDIO_TASKS, DETECT_TASKS, PRESET_NAMES, TASKS, TTS_CORPORA

    raw = argparse.RawDescriptionHelpFormatter
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain gpt, bert, cnn, audio or tts",
        description=PRETRAIN_HELP,
        formatter_class=raw,
    )
    pretrain.set_defaults(handler=run_pretrain)
    pretrain.add_argument("model", choices=TASKS, help="what to pretrain")
    option = pretrain.add_argument
    option("--data", metavar="PATH", help="UTF-8 text file for gpt/bert (default: built in)")
    option("--preset", choices=PRESET_NAMES, default="tiny", help="model size (default: tiny)")
    option("--max-steps", type=positive_int, metavar="N", help="steps (default: the preset's)")
    option("--batch-size", type=positive_int, metavar="N", help="default: the preset's")
    option("--lr", type=positive_float, metavar="X", help="peak learning rate (default: preset's)")
    option("--n-layer", type=positive_int, metavar="N",
           help="gpt, bert: transformer blocks (default: the preset's)")  # fmt: skip
    option("--n-head", type=positive_int, metavar="N",
           help="gpt, bert: attention heads; --n-embd must be a multiple of it (default: the "
           "preset's)")  # fmt: skip
    option("--n-embd", type=positive_int, metavar="N",
           help="gpt, bert: the width (bert's feed-forward layer keeps the preset's ratio to it) "
           "(default: the preset's)")  # fmt: skip
    option("--block-size", type=positive_int, metavar="N",
           help="gpt, bert: tokens of context per sequence (default: the preset's)")  # fmt: skip
    option("--warmup-steps", type=at_least(0), metavar="N",
           help="steps of linear warmup to --lr before the cosine decay; 0 = none; --resume "
           "keeps the run's and refuses another value (default: the preset's, at most "
           "--max-steps)")  # fmt: skip
    option("--weight-decay", type=non_negative_float, metavar="X",
           help="AdamW's decoupled weight decay on the weight matrices (not on biases or norms); "
           "0 = none (default: the preset's)")  # fmt: skip
    option("--grad-accum", type=positive_int, metavar="N",
           help="micro-batches of --batch-size per optimizer step: the same step on N times the "
           "batch, in N pieces (default: the preset's, 1)")  # fmt: skip
    option(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="run folder (default: runs/MODEL-PRESET)",
    )
    option("--resume", action="store_true", help="continue the run in --out from its last.pt")
    option(
        "--task",
        choices=AUDIO_TASKS + DETECT_TASKS + (DOMAIN_TASK,),
        help="audio: keywords (classify one word), asr (transcribe synthetic keyword "
        "sentences), asr-digits (transcribe connected spoken digits; make real) or asr-espeak "
        "(transcribe eSpeak NG's digit strings, as tts features; make real); cnn: detect-shapes "
        "(find every shape of a scene) or detect-digits (every MNIST digit of a canvas; make "
        "real); bert: mlm-domain (continue --from minilm's masked-LM training on --domain's "
        "unlabelled snippets, then finetune --from the run) (default: keywords for audio, shape "
        "classification for cnn)",
    )
    option("--from", dest="source", choices=("minilm",),
           help="--task mlm-domain: the pretrained BERT to continue (make real)")  # fmt: skip
    option("--domain", choices=tuple(DOMAINS),
           help="--task mlm-domain: the VADER domain whose training text it reads")  # fmt: skip
    option(
        "--init",
        metavar="RUN",
        help="detect-shapes/detect-digits: start the detector's body from the weights of a "
        "detection or cnn run (its best.pt); the report goes to the run's load_report.txt",
    )
    option(
        "--features",
        choices=("log_mel", "mfcc"),
        help="audio (keywords, asr): 40 log-mel bands or 13 MFCCs per frame (default: log_mel)",
    )
    add_spec_augment_argument(pretrain)
    option(
        "--corpus",
        choices=TTS_CORPORA,
        help="tts only: eSpeak NG's digit strings or sentences (make real), or the built-in "
        "synthetic keywords (default: the preset's, digits for tiny and baby)",
    )
    option("--compile", action="store_true",
           help="torch.compile the model (default: off); measured on a CPU, after ~10 s of "
           "compiling: gpt steps ~10%% faster, bert's about the same, cnn and audio slower (the "
           "convolution's per-tap products compile out of place)")  # fmt: skip
    option(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="matrix products in bfloat16 or float16 (autocast; weights stay float32; fp16 "
        "adds a dynamic loss scaler). bf16 runs on CPUs too (default: fp32)",
    )
    option(
        "--checkpoint-activations",
        action="store_true",
        help="gpt/bert: recompute each block in the backward pass instead of keeping its "
        "activations: less memory, about a third more compute (default: off)",
    )
    option("--seed", type=seed, default=0, help="random seed (default: 0)")
    option("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    option(
        "--overfit-batch",
        action="store_true",
        help="train on one batch over and over: the loss should go to ~0 (a debugging check)",
    )
    add_use_mine_argument(pretrain)
    add_diagnostics_argument(pretrain)

    generate = commands.add_parser(
        "generate",
        help="sample text from a gpt run",
        description="Continue a prompt with a pretrained gpt run.\n\n"
        "  minimod generate --from runs/first --prompt 'The ' --max-new-tokens 300",
        formatter_class=raw,
    )
    generate.set_defaults(handler=run_generate)
    option = generate.add_argument
    option("--from", dest="run", required=True, metavar="RUN",
           help="a gpt run folder, or smollm2 (SmolLM2-135M-Instruct; make real)")  # fmt: skip
    option("--prompt", default="\n", help="text to continue (default: a newline)")
    option("--max-new-tokens", type=positive_int, default=300, help="default: 300")
    option("--temperature", type=float, default=0.8, help="0 = greedy (default: 0.8)")
    option("--top-k", type=positive_int, help="sample among the k likeliest (default: all)")
    option("--top-p", type=float, help="nucleus sampling, in (0, 1] (default: off)")
    option("--seed", type=seed, default=0, help="random seed (default: 0)")
    option("--device", default="cpu", help="default: cpu")

    chat = commands.add_parser(
        "chat",
        help="talk with a chat model (SmolLM2-135M-Instruct; make real)",
        description="A conversation in the terminal with the real SmolLM2-135M-Instruct, run in "
        "minimod's own code: each message is formatted with the model's chat template, the "
        "answer streams as it is generated, tokens/s follow it. Earlier turns stay in the KV "
        "cache; the oldest are dropped when the context is full. An empty line or Ctrl-D "
        "ends the conversation; Ctrl-C stops an answer, a second Ctrl-C at the prompt leaves.\n\n"
        "  minimod chat --from smollm2\n"
        "  echo 'What is the capital of France?' | minimod chat --from smollm2 --temperature 0",
        formatter_class=raw,
    )
    chat.set_defaults(handler=run_chat)
    option = chat.add_argument
    option("--from", dest="run", required=True, choices=("smollm2",),
           help="the chat model: smollm2 (installed by make real)")  # fmt: skip
    option("--system", metavar="TEXT",
           help="a system message (default: the model's own, from its chat template)")  # fmt: skip
    option("--max-new-tokens", type=positive_int, default=256,
           help="the longest answer, in tokens (default: 256)")  # fmt: skip
    option("--temperature", type=float, default=0.7, help="0 = greedy (default: 0.7)")
    option("--top-k", type=positive_int, help="sample among the k likeliest (default: all)")
    option("--top-p", type=float, default=0.9, help="nucleus sampling, in (0, 1] (default: 0.9)")
    option("--seed", type=seed, default=0, help="random seed (default: 0)")
    option("--device", default="cpu", help="default: cpu")

    demo = commands.add_parser(
        "demo",
        help="pretrain a small GPT and BERT on built-in data (minutes on a CPU)",
        description="Pretrain a small GPT on Python's documentation (samples before and after), "
        "then a small BERT on synthetic reviews (fill in the blanks), and say what to try next. "
        "It never overwrites a run: the runs go to OUT/demo-gpt, OUT/demo-bert and "
        "OUT/demo-finetune-*, or, when an earlier demo left any of them, to the same names with "
        "the first free suffix (demo-gpt-2, ...).",
    )
    demo.set_defaults(handler=run_demo)
    demo.add_argument(
        "--out", type=output_folder, default="runs", metavar="DIR", help="where (default: runs)"
    )
    demo.add_argument(
        "--max-steps",
        type=positive_int,
        metavar="N",
        help="steps for each model (default: 2000 for each)",
    )
    demo.add_argument("--device", default="auto", help="default: auto")


def run_pretrain(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError, pretrain
    from minimod.tasks.domain_mlm import TASK as DOMAIN_TASK
    from minimod.tasks.presets import DETECT_TASKS

    task = args.model
    if args.task == DOMAIN_TASK or args.source or args.domain:
        return run_domain_mlm(args)
    if args.task not in (None, "keywords"):  # speech recognition, detection: own presets
        wanted = "cnn" if args.task in DETECT_TASKS else "audio"
        if args.model != wanted:
            raise UsageError(f"--task {args.task} is for {wanted}, not {args.model}")
        task = args.task
    before_training = None
    if args.init is not None:
        if task not in DETECT_TASKS:
            raise UsageError("--init is for cnn's detection tasks (detect-shapes, detect-digits)")
        if not args.resume:  # a resumed run has its own weights in last.pt
            from minimod.tasks.detect_images import init_body

            run_dir = args.out or f"runs/{task}-{args.preset}"

            def before_training(model, tokenizer) -> None:
                print(init_body(model, args.init, run_dir).summary())

    with use_mine_if_asked(args):
        summary = pretrain(
            task,
            args.preset,
            data=args.data,
            out=args.out,
            resume=args.resume,
            seed=args.seed,
            device=args.device,
            compile=args.compile,
            precision=args.precision,
            checkpoint_activations=args.checkpoint_activations,
            overfit_batch=args.overfit_batch,
            diagnostics=args.diagnostics,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            grad_accum=args.grad_accum,
            n_layer=args.n_layer,
            n_head=args.n_head,
            n_embd=args.n_embd,
            block_size=args.block_size,
            features=args.features,
            spec_augment=args.spec_augment,
            corpus=args.corpus,
            before_training=before_training,
            init=args.init,
        )
    if not summary["main"]:  # another process of a torchrun launch: rank 0 reports
        return 0
    print(describe(summary))
    print(summary["plot"])
    if summary["confusion"]:
        print(summary["confusion"])
    run = summary["run"]
    if task in ("asr", "asr-digits", "asr-espeak"):
        print(f"next: minimod transcribe --from {run} or minimod evaluate --from {run}")
    elif task in DETECT_TASKS:
        print(f"next: minimod detect --from {run} --held-out 8 --out detections.png")
    elif task == "tts":
        print(f"next: minimod speak --from {run} --text 'three one four' --out speech.wav")
    elif args.model == "gpt":
        print(
            f"next: minimod generate --from {run} --prompt 'The ' or minimod evaluate --from {run}"
        )
    else:
        print(f"next: minimod evaluate --from {run}")
    return 0


def run_domain_mlm(args: argparse.Namespace) -> int:
    """``pretrain bert --from minilm --task mlm-domain --domain D``: domain-adaptive MLM."""
    from minimod.tasks import UsageError
    from minimod.tasks.domain_mlm import TASK, pretrain_domain

    if args.model != "bert" or args.task != TASK or not args.source or not args.domain:
        raise UsageError(
            f"domain-adaptive MLM is `pretrain bert --from minilm --task {TASK} --domain D`"
        )
    unused = [f"--{name.replace('_', '-')}" for name in ("data", "resume", "init", "features",
              "corpus", "compile", "overfit_batch", "use_mine", "diagnostics",
              "checkpoint_activations", "spec_augment", "n_layer", "n_head", "n_embd",
              "block_size", "warmup_steps", "weight_decay", "grad_accum")
              if getattr(args, name, None) is not None
              and getattr(args, name) is not False]  # fmt: skip
    if unused:
        raise UsageError(f"--task {TASK} does not take {', '.join(unused)}")
    summary = pretrain_domain(
        args.domain, args.out, source=args.source, seed=args.seed, device=args.device,
        max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
    )  # fmt: skip
    final = summary["final"]
    print(
        f"done: step {summary['step']}, held-out MLM loss {final['loss_before']:.3f} -> "
        f"{final['loss']:.3f}, {summary['ms_per_step']:.1f} ms/step (median), "
        f"{summary['wall_s']:.1f} s in all -> {summary['run']}"
    )
    print(summary["plot"])
    print(
        f"next: minimod finetune bert --from {summary['run']} --task sentiment-real "
        f"--domain {args.domain} --labels 100 --lora-rank 8 --lr 1e-3"
    )
    return 0


def describe(summary: dict) -> str:
    """The one-line summary of a finished run."""
    metrics = ", ".join(
        f"{name} {value:.4g}" for name, value in summary["final"].items() if name != "batches"
    )
    batches = summary["final"].get("batches")
    held_out = f"held-out {metrics}" + (f" ({batches} batches)" if batches else "")
    speed = summary["ms_per_step"]
    return (
        f"done: step {summary['step']}, {held_out}, "
        f"{speed:.1f} ms/step (median), {summary['wall_s']:.1f} s in all -> {summary['run']}"
    )


def run_generate(args: argparse.Namespace) -> int:
    from minimod.tasks import UsageError, generate_text, load_run
    from minimod.tasks.run import read_run

    if args.run == "smollm2":  # the real pretrained LLM of `make real`
        from minimod.tasks.smollm2 import load_smollm2

        model, tokenizer = load_smollm2(args.device)
        print(generate_text(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature,
                            args.top_k, args.top_p, args.seed))  # fmt: skip
        return 0
    if read_run(args.run).get("kind") == "finetune":
        raise UsageError(f"{args.run} is a fine-tune run; generate needs a gpt pretrain run")
    record, wired, model = load_run(args.run, device=args.device)
    if record["task"] != "gpt":
        raise UsageError(f"{args.run} is a {record['task']} run; generate needs a gpt run")
    text = generate_text(
        model,
        wired.tokenizer,
        args.prompt,
        args.max_new_tokens,
        args.temperature,
        args.top_k,
        args.top_p,
        args.seed,
    )
    print(text)
    return 0


def run_chat(args: argparse.Namespace) -> int:
    import time

    from minimod.tasks import UsageError
    from minimod.tasks.smollm2 import Chat, load_smollm2

    if args.temperature < 0 or (args.top_p is not None and not 0 < args.top_p <= 1):
        raise UsageError("--temperature must be ≥ 0 and --top-p in (0, 1]")
    interactive = sys.stdin.isatty()
    start = time.perf_counter()
    model, tokenizer = load_smollm2(args.device)
    chat = Chat(model, tokenizer, args.system, args.max_new_tokens, args.temperature,
                args.top_k, args.top_p, args.seed)  # fmt: skip
    if interactive:
        print(f"SmolLM2-135M-Instruct, loaded in {time.perf_counter() - start:.1f} s. An empty "
              "line or Ctrl-D ends; Ctrl-C stops an answer.", file=sys.stderr)  # fmt: skip
    generated, seconds = 0, 0.0
    while True:
        try:
            message = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr if interactive else sys.stdout)
            break
        if not message.strip():
            break
        if not interactive:
            print(f"you> {message}")
        print("assistant> ", end="", flush=True)
        try:
            for piece in chat.reply(message):
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            print(" [stopped]", end="")
        print(flush=True)
        read, prefill, tokens, decode = chat.stats
        generated, seconds = generated + max(tokens - 1, 0), seconds + decode
        print(f"({read} prompt tokens read in {prefill:.2f} s; {tokens} tokens at "
              f"{_rate(tokens - 1, decode)} tokens/s)", file=sys.stderr)  # fmt: skip
    if generated:
        print(f"decoding: {_rate(generated, seconds)} tokens/s over the conversation",
              file=sys.stderr)  # fmt: skip
    return 0


def _rate(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:.1f}" if tokens > 0 and seconds > 0 else "-"


def run_demo(args: argparse.Namespace) -> int:
    from minimod.tasks.demo import demo

    return demo(args.out, args.max_steps, args.device)
