"""Dropout: randomly zero activations while training, as a regulariser."""

from __future__ import annotations

import torch

from minimod.nn._checks import expect_tensor
from minimod.nn.module import Module


def _check_p(where: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: dropout probability p must be in [0, 1], got {p}")


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Inverted dropout: keep each element with probability 1 − p and scale survivors by
    1/(1 − p), so the expected value is unchanged and evaluation needs no rescaling."""
    _check_p("dropout", p)
    expect_tensor("dropout", input)
    # BEGIN SOLUTION
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = torch.rand_like(input) >= p  # True with probability 1 − p
    return input * keep * (1.0 / (1.0 - p))
    # END SOLUTION


class Dropout(Module):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _check_p("Dropout", p)
        self.p = p

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
