"""Training-step speed of minimod's ResNet against a torch.nn twin of the same architecture.

    python benchmarks/resnet.py [--batch 64] [--size 32] [--steps 10] [--device cpu]

Both models get the same weights and the same batches; steps alternate A/B in one process
after warm-up, and the figure that matters is the median ratio minimod / torch (absolute times
on a shared machine mislead). torch.nn is allowed here: it is the reference (the twin lives
in benchmarks/twins.py).
benchmarks/bench.py times every model (this one included) in one table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as tnn
from twins import TwinResNet

from minimod.models.cnn import ResNet, ResNetConfig
from minimod.nn import functional as F
from minimod.optim import AdamW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--size", type=int, default=32, help="image height and width (32)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model (10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = ResNetConfig(in_channels=3, num_classes=10)
    mine = ResNet(config).to(args.device)
    twin = TwinResNet(config).to(args.device)
    twin.load_state_dict(mine.state_dict())
    mine_opt = AdamW(mine.parameters(), lr=1e-3)
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)

    def mine_step() -> None:
        mine_opt.zero_grad()
        F.cross_entropy(mine(x), y).backward()
        mine_opt.step()

    def twin_step() -> None:
        twin_opt.zero_grad()
        tnn.functional.cross_entropy(twin(x), y).backward()
        twin_opt.step()

    def timed(step) -> float:
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(args.warmup):
        mine_step()
        twin_step()
    ratios, mine_times, twin_times = [], [], []
    for _ in range(args.steps):
        mine_times.append(timed(mine_step))
        twin_times.append(timed(twin_step))
        ratios.append(mine_times[-1] / twin_times[-1])
    print(
        f"ResNet {config.widths} training step, batch {args.batch}, "
        f"3x{args.size}x{args.size}, {args.device}, {torch.get_num_threads()} threads"
    )
    print(
        f"  minimod {statistics.median(mine_times) * 1e3:8.1f} ms   "
        f"torch.nn {statistics.median(twin_times) * 1e3:8.1f} ms   "
        f"median ratio {statistics.median(ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
