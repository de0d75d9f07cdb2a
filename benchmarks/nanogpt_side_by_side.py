"""minimod against the real nanoGPT, side by side: the baby GPT on the same text, whole runs.

    python benchmarks/nanogpt_side_by_side.py --nanogpt DIR --data TEXT [--steps 2000]
        [--pairs 1] [--precisions fp32,bf16] [--threads N]

DIR is a checkout of karpathy/nanoGPT (its train.py, model.py, configurator.py and
config/train_shakespeare_char.py); it is read at run time and never copied into this project.
For each pair the script runs, in alternating order, nanoGPT's own train.py (a fresh process in
a temporary copy of DIR, on character ids prepared from TEXT the way nanoGPT's
shakespeare_char/prepare.py does: the sorted characters of the text, first 90% train, last 10%
val, uint16) and `minimod pretrain gpt --preset baby --data TEXT` once per precision. Both get
the baby preset's settings (minimod/tasks/presets.py): layers, heads, width, block, batch, the
warmup + cosine schedule, betas, weight decay, clipping, dropout 0, no biases; nanoGPT on the
CPU, eager, fp32 (its train.py has no CPU autocast, so minimod's bf16 row is compared with
nanoGPT's fp32 run).

Wall time is the whole command (start-up, reading the data, training, periodic evaluations,
checkpoints; minimod also tokenizes TEXT and runs its final 200-batch evaluation, nanoGPT
evaluates 20 train + 20 val batches at step 0 and trains one step past its last checkpoint).
ms/step is each program's own median. Then both final models (nanoGPT's ckpt.pt, loaded with
DIR's model.py imported at run time; minimod's last.pt) are evaluated here the same way: the
mean loss over 200 fixed windows of the val ids, the windows minimod's own final evaluation
draws (``lm_batch`` with a generator seeded 1234), in fp32 and eval mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import DONE, machine_info, markdown_table

from minimod.data import CharTokenizer, lm_batch, split_text
from minimod.tasks.presets import COMMON, GPT
from minimod.tasks.run import load_run

NANOGPT_FILES = ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py")
DATASET = "side_by_side"  # nanoGPT reads data/<dataset>/ under its working folder
EVAL_BATCHES = 200
EVAL_SEED = 1234  # the seed of minimod's own evaluation windows (minimod.tasks.lm.lm_evaluate)
NANOGPT_ITER = re.compile(r"^iter \d+: loss [\d.]+, time (?P<ms>[\d.]+)ms", re.MULTILINE)
NANOGPT_EVAL = re.compile(r"^step \d+: train loss [\d.]+, val loss (?P<loss>[\d.]+)", re.MULTILINE)


def check_nanogpt(folder: Path) -> None:
    """Refuse a folder that is not a nanoGPT checkout, naming the first file it lacks."""
    if not folder.is_dir():
        raise ValueError(f"--nanogpt {folder}: no such folder (give a checkout of nanoGPT)")
    for name in NANOGPT_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"--nanogpt {folder}: no {name} there (give a checkout of nanoGPT)")


def prepare_char_data(text: str, folder: Path) -> dict[str, Any]:
    """Write nanoGPT's character-level dataset of ``text`` into ``folder``: train.bin and
    val.bin (uint16 ids of the first 90% and the last 10% of the characters) and meta.pkl
    ({'vocab_size', 'itos', 'stoi'}). The ids are minimod's CharTokenizer's: both index the
    sorted distinct characters. Returns the meta dictionary."""
    tokenizer = CharTokenizer.train(text)
    if tokenizer.vocab_size > np.iinfo(np.uint16).max + 1:
        raise ValueError(f"{tokenizer.vocab_size} distinct characters do not fit in uint16 ids")
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in zip(("train", "val"), split_text(text, 0.1), strict=True):
        np.array(tokenizer.encode(part), dtype=np.uint16).tofile(folder / f"{name}.bin")
    meta = {
        "vocab_size": tokenizer.vocab_size,
        "itos": dict(enumerate(tokenizer.chars)),
        "stoi": dict(tokenizer.char_to_id),
    }
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump(meta, f)
    return meta


def fixed_batches(
    val: torch.Tensor, batch_size: int, block_size: int, n_batches: int = EVAL_BATCHES
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``n_batches`` (x, y) pairs, each (batch_size, block_size), of minimod's final
    evaluation on the 1-D id stream ``val``: the same windows on every call."""
    g = torch.Generator().manual_seed(EVAL_SEED)
    batches = (lm_batch(val, batch_size, block_size, g) for _ in range(n_batches))
    # Contiguous: nanoGPT's loss views its targets, and lm_batch's y is a strided slice.
    return [(x.contiguous(), y.contiguous()) for x, y in batches]


@torch.no_grad()
def fixed_batch_loss(
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> float:
    """Mean of ``loss_of(x, y)`` (a scalar mean cross-entropy) over ``batches``."""
    return sum(float(loss_of(x, y)) for x, y in batches) / len(batches)


def load_nanogpt(folder: Path, checkpoint: Path) -> Any:
    """nanoGPT's GPT with the weights of its ``ckpt.pt``, built by ``folder``'s model.py
    (imported from there at run time), in eval mode on the CPU."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = module.GPT(module.GPTConfig(**saved["model_args"]))
    # A compiled run saves its keys under torch.compile's wrapper's prefix.
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in saved["model"].items()})
    return model.eval()


def nanogpt_arguments(steps: int) -> list[str]:
    """train.py's command-line overrides that make its shakespeare_char config minimod's baby
    preset for ``steps`` steps (CPU, eager, fp32, a checkpoint at the last step)."""
    baby = {**COMMON, **GPT["baby"]}
    model = baby["model"]
    eval_every = baby["eval_every"]
    settings = dict(
        device="cpu", compile=False, dtype="float32", dataset=DATASET, log_interval=1,
        n_layer=model["n_layer"], n_head=model["n_head"], n_embd=model["n_embd"],
        block_size=model["block_size"], dropout=float(model["dropout"]), bias=model["bias"],
        batch_size=baby["batch_size"], gradient_accumulation_steps=1,
        learning_rate=baby["lr"], min_lr=baby["lr"] * baby["min_lr_ratio"],
        warmup_iters=baby["warmup_steps"], max_iters=steps, lr_decay_iters=steps,
        beta1=baby["betas"][0], beta2=baby["betas"][1], weight_decay=baby["weight_decay"],
        grad_clip=baby["clip_grad_norm"], eval_iters=baby["eval_batches"],
        # train.py saves ckpt.pt only at an evaluation: make the last step one.
        eval_interval=eval_every if steps % eval_every == 0 else steps,
        always_save_checkpoint=True,
    )  # fmt: skip
    return ["config/train_shakespeare_char.py", *(f"--{k}={v}" for k, v in settings.items())]


def thread_env(threads: int | None) -> dict[str, str] | None:
    """The environment of a run limited to ``threads`` threads (None: this one's)."""
    if threads is None:
        return None
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def run_timed(
    command: list[str], cwd: Path | None, env: dict[str, str] | None
) -> tuple[float, str]:
    """(seconds, stdout) of ``command``; a failure is one SystemExit with its output's end."""
    print(f"... {' '.join(command[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command[1]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def run_nanogpt(work: Path, steps: int, threads: int | None) -> dict[str, Any]:
    """nanoGPT's train.py in ``work`` (a copy of its folder holding the prepared data)."""
    shutil.rmtree(work / "out-shakespeare-char", ignore_errors=True)
    wall, out = run_timed(
        [sys.executable, "train.py", *nanogpt_arguments(steps)], work, thread_env(threads)
    )
    times = [float(m["ms"]) for m in NANOGPT_ITER.finditer(out)]
    evaluations = [float(m["loss"]) for m in NANOGPT_EVAL.finditer(out)]
    checkpoint = work / "out-shakespeare-char" / "ckpt.pt"
    if not times or not evaluations or not checkpoint.is_file():
        raise SystemExit(f"nanoGPT's train.py wrote no step times or no ckpt.pt:\n{out[-2000:]}")
    return dict(
        wall_s=wall,
        # Its first step's time includes the step-0 evaluation.
        ms_per_step=statistics.median(times[1:] or times),
        own_val_loss=evaluations[-1],
        model=checkpoint,
    )


def run_minimod(
    data: Path, out: Path, precision: str, steps: int, threads: int | None
) -> dict[str, Any]:
    command = [sys.executable, "-m", "minimod", "pretrain", "gpt", "--preset", "baby"]
    command += ["--data", str(data), "--out", str(out), "--device", "cpu"]
    command += ["--precision", precision, "--max-steps", str(steps), "--seed", "1337"]
    wall, stdout = run_timed(command, None, thread_env(threads))
    found = DONE.search(stdout)
    if found is None:
        raise SystemExit(f"minimod printed no 'done:' line:\n{stdout[-2000:]}")
    return dict(
        wall_s=wall, ms_per_step=float(found["ms"]), own_val_loss=float(found["loss"]), model=out
    )


def contenders(precisions: list[str]) -> list[tuple[str, str]]:
    return [("nanoGPT", "fp32"), *(("minimod", p) for p in precisions)]


def pair_order(pair: int, precisions: list[str]) -> Iterator[tuple[str, str]]:
    """Who runs when in pair ``pair``: the order turns round every other pair."""
    order = contenders(precisions)
    return iter(order if pair % 2 == 0 else order[::-1])


def evaluate(run: dict[str, Any], name: str, nanogpt: Path, batches: list) -> float:
    """The fixed-batch val loss of a run's final model (both return (logits, loss))."""
    if name == "nanoGPT":
        model = load_nanogpt(nanogpt, run["model"])
    else:
        model = load_run(run["model"], device="cpu")[2]
    return fixed_batch_loss(lambda x, y: model(x, y)[1], batches)


def side_by_side(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run of every pair, with its wall time, ms/step and fixed-batch val loss."""
    text = args.data.read_text(encoding="utf-8")
    baby = GPT["baby"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="side_by_side_") as tmp:
        work = Path(tmp) / "nanoGPT"
        shutil.copytree(args.nanogpt, work, ignore=shutil.ignore_patterns("out*", "data"))
        prepare_char_data(text, work / "data" / DATASET)
        val = torch.from_numpy(
            np.fromfile(work / "data" / DATASET / "val.bin", dtype=np.uint16).astype(np.int64)
        )
        batches = fixed_batches(val, baby["batch_size"], baby["model"]["block_size"])
        for pair in range(args.pairs):
            runs = {}
            for name, precision in pair_order(pair, args.precisions):
                if name == "nanoGPT":
                    runs[name, precision] = run_nanogpt(work, args.steps, args.threads)
                else:
                    out = Path(tmp) / f"minimod-{precision}-{pair}"
                    runs[name, precision] = run_minimod(
                        args.data, out, precision, args.steps, args.threads
                    )
                run = runs[name, precision]
                run["val_loss"] = evaluate(run, name, args.nanogpt, batches)
            reference = runs["nanoGPT", "fp32"]
            for name, precision in contenders(args.precisions):
                run = runs[name, precision]
                rows.append(
                    dict(
                        pair=pair,
                        run=name,
                        precision=precision,
                        wall_s=run["wall_s"],
                        ms_per_step=run["ms_per_step"],
                        val_loss=run["val_loss"],
                        own_val_loss=run["own_val_loss"],
                        wall_ratio=run["wall_s"] / reference["wall_s"],
                        val_diff=run["val_loss"] - reference["val_loss"],
                    )
                )
    return rows


def medians(rows: list[dict[str, Any]], precision: str) -> tuple[float, float]:
    """minimod's figures at ``precision`` over the pairs: (median wall / nanoGPT's, median
    val loss - nanoGPT's)."""
    mine = [r for r in rows if r["run"] == "minimod" and r["precision"] == precision]
    if not mine:
        raise ValueError(f"no minimod {precision} run among the side-by-side rows")
    ratio = statistics.median(r["wall_ratio"] for r in mine)
    return ratio, statistics.median(r["val_diff"] for r in mine)


def format_rows(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    info = machine_info("cpu")
    table = [
        [
            r["pair"],
            r["run"],
            r["precision"],
            f"{r['wall_s']:.1f} s",
            f"{r['ms_per_step']:.1f}",
            f"{r['val_loss']:.4f}",
            f"{r['own_val_loss']:.4f}",
            f"{r['wall_ratio']:.2f}",
            f"{r['val_diff']:+.4f}",
        ]
        for r in rows
    ]
    headers = ["pair", "run", "precision", "wall", "ms/step", "val loss", "its own val loss"]
    headers += ["wall / nanoGPT's", "val - nanoGPT's"]
    summary = []
    for precision in args.precisions:
        ratio, diff = medians(rows, precision)
        summary.append(
            f"minimod {precision}: median wall / nanoGPT's {ratio:.2f}, "
            f"median val - nanoGPT's {diff:+.4f}"
        )
    return "\n".join(
        [
            f"## minimod against nanoGPT's train.py: baby GPT, {args.steps} steps, "
            f"{args.data.name}",
            "",
            f"{info['cpu']}, {info['cpu_count']} CPUs, "
            f"threads {args.threads or 'torch default'}, torch {info['torch']}",
            "",
            markdown_table(headers, table),
            "",
            *summary,
            "",
            f"val loss: both final models on the same {EVAL_BATCHES} fixed windows of the last "
            "10% (fp32, eval mode); its own val loss: the last figure the program printed "
            f"(nanoGPT: {GPT['baby']['eval_batches']} random batches; minimod: the same "
            f"{EVAL_BATCHES} windows, in its --precision); wall: the whole command in a fresh "
            "process; ms/step: each program's own median.",
        ]
    )


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """The options; ``prog``: who is named in an error (bench.py forwards its own here)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: python benchmarks/nanogpt_side_by_side.py --nanogpt NANOGPT_DIR --data "
        "tinyshakespeare.txt --steps 200 (NANOGPT_DIR: a checkout of github.com/karpathy/nanoGPT)",
    )
    parser.add_argument(
        "--nanogpt",
        type=Path,
        required=True,
        metavar="DIR",
        help="a nanoGPT checkout (train.py, model.py, configurator.py, config/): run from a "
        "temporary copy, never copied into this project",
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="TEXT", help="the UTF-8 text both train on"
    )
    parser.add_argument(
        "--steps", type=int, default=GPT["baby"]["max_steps"], help="steps (default: 2000)"
    )
    parser.add_argument(
        "--pairs", type=int, default=1, help="alternating rounds of every run (default: 1)"
    )
    parser.add_argument(
        "--precisions",
        default="fp32,bf16",
        help="minimod's --precision, one run each per pair (nanoGPT: fp32) (default: fp32,bf16)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS of both (default: unset)"
    )
    args = parser.parse_args(argv)
    try:
        check_nanogpt(args.nanogpt)
    except ValueError as error:
        parser.error(str(error))
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")
    if args.steps < 1 or args.pairs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--steps, --pairs and --threads must be positive")
    warmup = GPT["baby"]["warmup_steps"]
    if args.steps <= warmup:
        # nanoGPT's schedule divides by lr_decay_iters - warmup_iters.
        parser.error(f"--steps must be more than the preset's {warmup} warmup steps")
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in args.precisions if p not in ("fp32", "bf16")]
    if unknown or not args.precisions:
        parser.error(f"--precisions: fp32 and/or bf16, got {args.precisions}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(format_rows(side_by_side(args), args))


if __name__ == "__main__":
    main()
