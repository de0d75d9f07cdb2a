"""Training-step speed of minimod's ResNet against a torch.nn twin of the same architecture.

    python benchmarks/resnet.py [--batch 64] [--size 32] [--steps 10] [--device cpu]

Both models get the same weights and the same batches; steps alternate A/B in one process
after warm-up, and the figure that matters is the median ratio minimod / torch (absolute times
on a shared machine mislead). torch.nn is allowed here: it is the reference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as tnn

from minimod.models.cnn import ResNet, ResNetConfig
from minimod.nn import functional as F
from minimod.optim import AdamW


class TwinBlock(tnn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(out_channels)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(out_channels)
        self.shortcut = tnn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = tnn.Sequential(
                tnn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False),
                tnn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class TwinResNet(tnn.Module):
    """torch.nn layers, minimod's module names: loads a minimod ResNet's state_dict."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        widths = config.widths
        self.stem = tnn.Sequential(
            tnn.Conv2d(config.in_channels, widths[0], 3, padding=1, bias=False),
            tnn.BatchNorm2d(widths[0]),
            tnn.ReLU(),
        )
        stages, channels = [], widths[0]
        for index, (width, depth) in enumerate(zip(widths, config.depths, strict=True)):
            blocks = [TwinBlock(channels, width, 1 if index == 0 else 2)]
            blocks += [TwinBlock(width, width) for _ in range(depth - 1)]
            stages.append(tnn.Sequential(*blocks))
            channels = width
        self.stages = tnn.Sequential(*stages)
        self.pool = tnn.AdaptiveAvgPool2d(1)
        self.head = tnn.Linear(widths[-1], config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


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
