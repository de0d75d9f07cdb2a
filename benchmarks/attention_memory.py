"""Peak memory of one attention forward + backward at long sequence lengths: minimod's
scaled_dot_product_attention (the Attention Function of lesson 8, which keeps the (T, T)
weights), minimod's flash_attention (lesson 34: blocks of keys, an online softmax, O(T) kept)
and torch.nn.functional.scaled_dot_product_attention (the twin).

    python benchmarks/attention_memory.py [--lengths 512,2048,8192] [--causal]
        [--block-size 128] [--device cpu|cuda] [--threads N] [--json PATH]

q, k, v are (B=1, H=4, T, D=64) float32 and require gradients; a step is out = attention(q, k, v)
then out.backward(dO) with a fixed dO, measured with benchmarks/common.py's step_memory (the
same method as bench.py's mem column). Each method first runs once at T = 64 (warm-up), and
its outputs at every T are checked against torch's before they count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as TF
from common import machine_info, markdown_table, memory_method, step_memory

from minimod.nn import functional as F

BATCH, HEADS, HEAD_DIM = 1, 4, 64
LENGTHS = (512, 2048, 8192)
TOLERANCE = 1e-4  # largest |output - torch's| allowed (float32)


def methods(causal: bool, block_size: int) -> dict[str, Callable[..., torch.Tensor]]:
    return {
        "minimod sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
        "minimod flash_attention": lambda q, k, v: F.flash_attention(
            q, k, v, is_causal=causal, block_size=block_size
        ),
        "torch F.sdpa": lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=causal),
    }


def inputs(length: int, device: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(length)
    shape = (BATCH, HEADS, length, HEAD_DIM)
    q, k, v, grad = (torch.randn(shape, generator=generator).to(device) for _ in range(4))
    return [t.requires_grad_() for t in (q, k, v)], grad


def measure(attention, length: int, device: str, reference: torch.Tensor | None) -> dict:
    """Bytes and seconds of one forward + backward at ``length``, and the output."""
    tensors, grad = inputs(length, device)
    kept = {}

    def step() -> None:
        out = attention(*tensors)
        out.backward(grad)
        kept["out"] = out.detach()

    start = time.perf_counter()
    memory = step_memory(step, device)
    seconds = time.perf_counter() - start
    error = None if reference is None else (kept["out"] - reference).abs().max().item()
    return dict(bytes=memory, seconds=seconds, out=kept["out"], error=error)


def run(lengths: list[int], causal: bool, block_size: int, device: str) -> list[dict]:
    chosen = methods(causal, block_size)
    for attention in chosen.values():  # warm-up: first-call allocations stay out of the peaks
        measure(attention, 64, device, None)
    rows = []
    for length in lengths:
        print(f"... T = {length}", file=sys.stderr)
        reference = measure(chosen["torch F.sdpa"], length, device, None)["out"]
        for name, attention in chosen.items():
            result = measure(attention, length, device, reference)
            if result["error"] > TOLERANCE:
                raise SystemExit(
                    f"{name} at T = {length}: output differs from torch's by {result['error']:.2g}"
                )
            del result["out"]
            rows.append(dict(method=name, length=length, **result))
    return rows


def format_table(rows: list[dict], lengths: list[int], device: str, causal: bool) -> str:
    names = list(dict.fromkeys(row["method"] for row in rows))
    by = {(row["method"], row["length"]): row for row in rows}

    def mib(value: float | None) -> str:
        return "n/a" if value is None else f"{value / 2**20:.1f}"

    table = []
    for length in lengths:
        weights = BATCH * HEADS * length * length * 4
        cells = [length, mib(weights)]
        cells += [mib(by[name, length]["bytes"]) for name in names]
        cells += [f"{by[name, length]['seconds']:.2f}" for name in names]
        table.append(cells)
    headers = ["T", "(T, T) weights MiB"] + [f"{name} MiB" for name in names]
    headers += [f"{name} s" for name in names]
    return "\n".join(
        [
            f"### One attention forward + backward: B={BATCH}, H={HEADS}, D={HEAD_DIM}, float32, "
            + ("causal" if causal else "not causal"),
            "",
            markdown_table(headers, table),
            "",
            f"- MiB: {memory_method(device)}.",
            "- (T, T) weights: the size of one float32 B·H·T·T matrix, what lesson 8's Attention "
            "keeps for the backward pass.",
            "- s: wall time of that one measured step (a single call, not a median).",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="sequence lengths T")
    parser.add_argument("--causal", action="store_true", help="is_causal=True everywhere")
    parser.add_argument("--block-size", type=int, default=128, help="flash_attention's block")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    args.lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if not args.lengths or min(args.lengths) < 1 or args.block_size < 1:
        parser.error("--lengths and --block-size must be positive")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.lengths, args.causal, args.block_size, args.device)
    machine = machine_info(args.device)
    print(format_table(rows, args.lengths, args.device, args.causal))
    print(
        f"\nMachine: {machine['platform']}, {machine['cpu']}, {machine['cpu_count']} CPUs, "
        f"torch {machine['torch']}, {machine['threads']} threads"
        + (f", {machine['gpu']}" if "gpu" in machine else "")
    )
    report = dict(machine=machine, causal=args.causal, block_size=args.block_size, rows=rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
