"""The figures of the README's scaling section: mixed precision, activation checkpointing and
data-parallel training, each measured with minimod's own command line or models.

    python benchmarks/scaling.py [--data TEXT] [--steps N] [--json PATH]

1. precision: `minimod pretrain gpt --preset baby --precision fp32|bf16` for N steps on TEXT:
   median ms/step and final held-out loss of each.
2. activation checkpointing: one training step of GPT "small" (L6, C384, T256) at batch 8 on
   the CPU, with and without `enable_checkpointing(model.transformer.h)`: the bytes autograd
   keeps for the backward pass, peak memory of the step (RSS high-water mark) and its time.
3. data parallel: `minimod pretrain gpt --preset baby` for N steps in 1 process (2 threads) and
   with `torchrun --nproc_per_node=2` (1 thread each): tokens/s of the whole run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import machine_info, markdown_table, pretrain_baby_gpt, step_memory

from minimod.models.gpt import GPT, GPTConfig
from minimod.nn.recompute import enable_checkpointing
from minimod.optim import AdamW


def pretrain(data: str, steps: int, *extra: str, processes: int = 1, threads: int = 2) -> dict:
    return pretrain_baby_gpt(
        data, "--max-steps", str(steps), *extra, processes=processes, threads=threads
    )


def saved_bytes(model, idx) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(idx, idx)[1]
    loss.backward()
    model.zero_grad()
    return total


def one_setting(config: GPTConfig, flag: bool, batch: int) -> dict:
    torch.manual_seed(0)
    model = GPT(config)
    enable_checkpointing(model.transformer.h, flag)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    idx = torch.randint(0, config.vocab_size, (batch, config.block_size))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(idx, idx)[1].backward()
        optimizer.step()

    step()  # warm-up (and the optimizer's state)
    kept = saved_bytes(model, idx)
    peak = step_memory(step, "cpu")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return dict(
        checkpoint_activations=flag,
        saved_for_backward_mib=kept / 2**20,
        step_peak_mib=None if peak is None else peak / 2**20,
        step_ms=1e3 * statistics.median(times),
    )


def checkpointing(batch: int = 8) -> list[dict]:
    config = GPTConfig(vocab_size=65, n_layer=6, n_head=6, n_embd=384, block_size=256, bias=False)
    return [one_setting(config, flag, batch) for flag in (False, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/tinyshakespeare.txt")
    parser.add_argument("--steps", type=int, default=300, help="pretraining steps (default 300)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        parser.error(f"--data {args.data}: no such file")
    result = {"machine": machine_info("cpu"), "steps": args.steps}
    result["precision"] = {
        p: pretrain(args.data, args.steps, "--precision", p) for p in ("fp32", "bf16")
    }
    result["checkpointing"] = checkpointing()
    result["data_parallel"] = {
        "1 process, 2 threads": pretrain(args.data, args.steps, threads=2),
        "torchrun 2 processes, 1 thread each": pretrain(
            args.data, args.steps, processes=2, threads=1
        ),
    }
    m = result["machine"]
    lines = [
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}.",
        "",
        "Mixed precision: `minimod pretrain gpt --preset baby --precision P "
        f"--max-steps {args.steps}`",
        "",
        markdown_table(
            ["precision", "ms/step (median)", "held-out loss", "wall"],
            [
                [p, f"{r['ms_per_step']:.1f}", f"{r['val_loss']:.3f}", f"{r['wall_s']:.0f} s"]
                for p, r in result["precision"].items()
            ],
        ),
        "",
        "Activation checkpointing: one training step of GPT small (L6 H6 C384 T256), batch 8, CPU",
        "",
        markdown_table(
            ["checkpoint_activations", "kept for backward", "step peak memory", "step time"],
            [
                [
                    str(r["checkpoint_activations"]),
                    f"{r['saved_for_backward_mib']:.0f} MiB",
                    "n/a" if r["step_peak_mib"] is None else f"{r['step_peak_mib']:.0f} MiB",
                    f"{r['step_ms']:.0f} ms",
                ]
                for r in result["checkpointing"]
            ],
        ),
        "",
        f"Data parallel: `minimod pretrain gpt --preset baby --max-steps {args.steps}` "
        "(global batch 12)",
        "",
        markdown_table(
            ["launch", "tokens/s", "ms/step (median)", "held-out loss", "wall"],
            [
                [
                    k,
                    f"{r['tokens_per_s']:.0f}",
                    f"{r['ms_per_step']:.1f}",
                    f"{r['val_loss']:.3f}",
                    f"{r['wall_s']:.0f} s",
                ]
                for k, r in result["data_parallel"].items()
            ],
        ),
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
