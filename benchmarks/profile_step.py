"""Where a training step spends its time: torch.profiler's top operators for minimod and for
its torch.nn twin, side by side (the evidence behind benchmarks/bench.py's ratios). --saved
lists instead what each side keeps for the backward pass, by the backward node that keeps it
(the evidence behind bench.py's memory column).

    python benchmarks/profile_step.py [--model gpt-baby|gpt-small|bert-tiny|resnet] [--steps N]
        [--rows N] [--trace DIR] [--saved]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import torch
from bench import BUILDERS, HYPER, training_step

from minimod.optim import AdamW
from minimod.train.allocator import keep_freed_memory


def profile(step, steps: int, rows: int, label: str, trace: str | None) -> None:
    for _ in range(3):  # warm-up
        step()
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            step()
    print(f"\n## {label}: {steps} steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    if trace:
        prof.export_chrome_trace(f"{trace}/{label}.json")


def saved_tensors(loss: torch.Tensor, parameters) -> Counter:
    """Bytes kept for the backward pass of ``loss``, by (backward node, shape, dtype): every
    tensor saved in the graph, each storage counted once (the first node found keeping it),
    parameters left out (they are not activations)."""
    seen = {p.untyped_storage().data_ptr() for p in parameters}
    kept, stack, visited = Counter(), [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        # A hand-written Function keeps ctx.saved_tensors; a built-in node, _saved_* attributes.
        tensors = list(getattr(node, "saved_tensors", ()))
        for name in dir(node):
            if name.startswith("_saved_"):
                value = getattr(node, name)
                tensors += value if isinstance(value, (tuple, list)) else [value]
        for t in tensors:
            if not isinstance(t, torch.Tensor) or t.untyped_storage().data_ptr() in seen:
                continue
            seen.add(t.untyped_storage().data_ptr())
            kept[(node.name(), tuple(t.shape), str(t.dtype))] += t.untyped_storage().nbytes()
        stack += [child for child, _ in node.next_functions]
    return kept


def print_saved(label: str, loss: torch.Tensor, parameters, rows: int) -> None:
    kept = saved_tensors(loss, parameters)
    print(f"\n## {label}: {sum(kept.values()) / 2**20:.2f} MiB kept for the backward pass")
    for (node, shape, dtype), size in kept.most_common(rows):
        print(f"{size / 2**20:8.2f} MiB  {node:48s} {str(shape):20s} {dtype}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-baby", choices=sorted(BUILDERS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", metavar="DIR", help="also write Chrome traces there")
    parser.add_argument(
        "--saved", action="store_true", help="list the tensors kept for the backward pass"
    )
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc as it is (default: keep_freed_memory(), as bench.py)",
    )
    args = parser.parse_args(argv)
    if not args.default_allocator:
        keep_freed_memory()
    bench_args = argparse.Namespace(device="cpu", quick=False, steps=1, warmup=0)
    case = BUILDERS[args.model](args.model, bench_args)
    print(f"{case.name}: {case.setup}", file=sys.stderr)
    if args.saved:
        print_saved(f"minimod-{case.name}", case.mine_loss(), case.mine.parameters(), args.rows)
        print_saved(f"torch-{case.name}", case.twin_loss(), case.twin.parameters(), args.rows)
        return
    mine = training_step(case.mine, AdamW(case.mine.parameters(), **HYPER), case.mine_loss)
    twin = training_step(
        case.twin, torch.optim.AdamW(case.twin.parameters(), **HYPER), case.twin_loss
    )
    profile(mine, args.steps, args.rows, f"minimod-{case.name}", args.trace)
    profile(twin, args.steps, args.rows, f"torch-{case.name}", args.trace)


if __name__ == "__main__":
    main()
