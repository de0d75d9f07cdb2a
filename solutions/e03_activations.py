"""Lesson 3: Activations, softmax and log-softmax

The idea
Stacked linear layers are still one linear map; a non-linearity between them is what lets a
network bend. Each activation below works elementwise (output shape = input shape), except
softmax and log-softmax, which turn a vector of scores along one axis into probabilities.

    relu(x)    = max(x, 0)                 gradient 1 for x > 0, 0 otherwise (also at 0)
    sigmoid(x) = 1 / (1 + e^(−x))          in (0, 1)
    tanh(x)    = (e^x − e^(−x)) / (e^x + e^(−x))      in (−1, 1)
    silu(x)    = x · sigmoid(x)            ("swish")
    gelu(x)    = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))                   approximate="none"
    gelu(x)   ≈ 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))       approximate="tanh"
    softmax(x)_i     = e^(x_i) / Σ_j e^(x_j)                  along dim
    log_softmax(x)_i = x_i − log Σ_j e^(x_j)                  along dim

Shapes: softmax(x, dim) has x's shape, and every slice along dim sums to 1. For logits
(batch, classes) use dim=-1 (or 1); for a language model's (batch, time, vocab) use dim=-1.

Numerical stability -- the heart of this lesson
In float32, e^x overflows to inf for x > 88.7, and inf / inf = nan. Softmax is unchanged when
a constant c is subtracted from every x_j (the e^(−c) cancels), so use c = max_j x_j: every
exponent is then ≤ 0, nothing overflows, and the largest term is exactly 1, so the sum is ≥ 1.
The shift is a constant, so it can be detached from the graph.
log_softmax is not log(softmax(x)): softmax underflows to 0 for very negative scores and log(0)
is −inf. Instead, with m = max_j x_j:

    log_softmax(x)_i = (x_i − m) − log Σ_j e^(x_j − m)           (the log-sum-exp trick)

sigmoid has the same problem for x ≪ 0 (e^(−x) overflows): with z = e^(−|x|), which never
overflows, sigmoid(x) = 1 / (1 + z) for x ≥ 0 and z / (1 + z) for x < 0. tanh likewise:
tanh(x) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|)), and torch.expm1(z) = e^z − 1 keeps
1 − e^(−2|x|) accurate for tiny |x| (where 1 − e^(−2|x|) would lose every digit).

The module classes (ReLU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax) are given: each
forward calls your function.

Classic pitfalls
- softmax without subtracting the max: nan for logits around 100 in float32.
- log(softmax(x)) instead of log-softmax: −inf where a probability underflows.
- relu via x * (x > 0) is fine; relu via torch.max(x, 0) is a reduction, not elementwise.
- GELU's tanh form: √(2/π), not √(2π), and 0.044715 · x³, not x².
- tanh as (e^x − e^(−x)) / (e^x + e^(−x)) directly: inf / inf = nan for |x| > 88 in float32.
- Reducing over the wrong dim: check that softmax(x, dim).sum(dim) is all ones.

Check it: minimod exercises check 3
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e03_activations import log_softmax, softmax
    >>> x = torch.tensor([1000.0, 0.0, -1000.0])
    >>> softmax(x, dim=0).tolist()
    [1.0, 0.0, 0.0]
    >>> log_softmax(x, dim=0).tolist()
    [0.0, -1000.0, -2000.0]
"""

# Lesson 3 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math

import torch

from minimod.nn._checks import normalize_dim
from minimod.nn.activation import _softmax_dim
from minimod.nn.module import Module

# ---- from minimod/nn/activation.py ----------------------------------------


def relu(input: torch.Tensor) -> torch.Tensor:
    """max(x, 0); the gradient at exactly 0 is 0, as in torch."""
    # BEGIN YOUR CODE
    return torch.where(input > 0, input, torch.zeros_like(input))
    # END YOUR CODE


def gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """x·Φ(x) = 0.5·x·(1 + erf(x/√2)); approximate="tanh" uses
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2's choice)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    # BEGIN YOUR CODE
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input**3)
        return 0.5 * input * (1.0 + torch.tanh(inner))
    return 0.5 * input * (1.0 + torch.erf(input / math.sqrt(2.0)))
    # END YOUR CODE


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^(−x)), computed without overflow for large |x|."""
    # BEGIN YOUR CODE
    # e^(−|x|) never overflows; for x < 0 use the equal form e^x / (1 + e^x).
    # (where, not abs: abs has gradient 0 at x = 0, which would cut σ'(0) = 1/4 off.)
    z = torch.exp(torch.where(input >= 0, -input, input))
    return torch.where(input >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    # END YOUR CODE


def tanh(input: torch.Tensor) -> torch.Tensor:
    """(e^x − e^(−x)) / (e^x + e^(−x)) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|))."""
    # BEGIN YOUR CODE
    # Only e^(−2|x|) ≤ 1 is ever computed, and expm1 keeps 1 − e^(−2|x|) accurate near 0.
    negative_abs = torch.where(input >= 0, -input, input)  # −|x| with gradient ∓1 at x = 0
    magnitude = -torch.expm1(2 * negative_abs) / (1 + torch.exp(2 * negative_abs))
    return torch.where(input >= 0, magnitude, -magnitude)
    # END YOUR CODE


def silu(input: torch.Tensor) -> torch.Tensor:
    """x·σ(x), also called swish."""
    # BEGIN YOUR CODE
    return input * sigmoid(input)
    # END YOUR CODE


def softmax(input: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``; subtracting the max first avoids overflow."""
    dim = normalize_dim("softmax", _softmax_dim(input.dim()) if dim is None else dim, input.dim())
    # BEGIN YOUR CODE
    # softmax(x) = softmax(x − c) for any constant c; c = max makes every exponent ≤ 0.
    shifted = input - input.amax(dim, keepdim=True).detach()
    exp = torch.exp(shifted)
    return exp / exp.sum(dim, keepdim=True)
    # END YOUR CODE


def log_softmax(input: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """x_i − log Σ_j exp(x_j) along ``dim`` (log-sum-exp with the max factored out)."""
    dim = normalize_dim(
        "log_softmax", _softmax_dim(input.dim()) if dim is None else dim, input.dim()
    )
    # BEGIN YOUR CODE
    shifted = input - input.amax(dim, keepdim=True).detach()
    return shifted - torch.log(torch.exp(shifted).sum(dim, keepdim=True))
    # END YOUR CODE


class ReLU(Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu(x)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid(x)


class Tanh(Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


class SiLU(Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return silu(x)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
