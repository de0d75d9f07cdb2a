"""Train a small MLP, built only from minimod layers, on a generated two-spiral dataset.

    python examples/spiral.py [--steps 300] [--seed 0] [--use-mine]

A first end-to-end check that the pieces fit: Module, Linear, GELU, LayerNorm, cross-entropy,
AdamW with warmup + cosine, gradient clipping. Accuracy should climb well above 90%.
With --use-mine, every workbook lesson you have passed supplies its code instead.
"""

from __future__ import annotations

import argparse
import math

import torch

from minimod import nn, optim
from minimod.cli import add_use_mine_argument, use_mine_if_asked
from minimod.nn import functional as F


def two_spirals(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points per class on two interleaved spirals, with a little noise. -> (2n, 2), (2n,)"""
    t = torch.rand(n, generator=generator) * 3 * math.pi + 0.5
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (3 * math.pi)
    points = torch.cat([arm, -arm]) + 0.02 * torch.randn(2 * n, 2, generator=generator)
    labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return points, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_use_mine_argument(parser)
    args = parser.parse_args()
    with use_mine_if_asked(args):
        train(args)


def train(args: argparse.Namespace) -> None:

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x_train, y_train = two_spirals(500, generator)
    x_val, y_val = two_spirals(200, generator)

    model = nn.Sequential(
        nn.Linear(2, 64),
        nn.GELU(),
        nn.LayerNorm(64),
        nn.Linear(64, 64),
        nn.GELU(),
        nn.Linear(64, 2),
    )
    print(model)
    print(f"{model.num_parameters():,} parameters")
    optimizer = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = optim.lr_scheduler.WarmupCosineLR(optimizer, warmup_steps=20, total_steps=args.steps)
    for step in range(1, args.steps + 1):
        loss = F.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == 1:
            model.eval()
            with torch.no_grad():
                accuracy = (model(x_val).argmax(-1) == y_val).float().mean().item()
            model.train()
            print(f"step {step:4d}  train loss {loss.item():.4f}  val accuracy {accuracy:.1%}")


if __name__ == "__main__":
    main()
