"""Where a training step spends its time: torch.profiler's top operators for minimod and for
its torch.nn twin, side by side (the evidence behind benchmarks/bench.py's ratios).

    python benchmarks/profile_step.py [--model gpt-baby|gpt-small|bert-tiny|resnet] [--steps N]
        [--rows N] [--trace DIR]
"""

from __future__ import annotations

import argparse
import sys

import torch
from bench import BUILDERS, HYPER, training_step

from minimod.optim import AdamW


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-baby", choices=sorted(BUILDERS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", metavar="DIR", help="also write Chrome traces there")
    args = parser.parse_args(argv)
    bench_args = argparse.Namespace(device="cpu", quick=False, steps=1, warmup=0)
    case = BUILDERS[args.model](args.model, bench_args)
    print(f"{case.name}: {case.setup}", file=sys.stderr)
    mine = training_step(case.mine, AdamW(case.mine.parameters(), **HYPER), case.mine_loss)
    twin = training_step(
        case.twin, torch.optim.AdamW(case.twin.parameters(), **HYPER), case.twin_loss
    )
    profile(mine, args.steps, args.rows, f"minimod-{case.name}", args.trace)
    profile(twin, args.steps, args.rows, f"torch-{case.name}", args.trace)


if __name__ == "__main__":
    main()
