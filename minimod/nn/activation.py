"""Activations: the elementwise non-linearities, and softmax / log-softmax over one axis."""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import expect_tensor, normalize_dim
from minimod.nn._function import run
from minimod.nn.module import Module

LOG2_E = 1.0 / math.log(2.0)


def exp_(x: torch.Tensor) -> torch.Tensor:
    """e^x IN PLACE, computed as 2^(x·log₂e), for the large exponentials written by hand (the
    softmaxes of attention and cross-entropy, GELU's backward). On the CPU torch's exp2 is about
    twice as fast as its exp for float32 and float64 (2^20 float32 values on one core: 0.42 ms
    with the multiply, against 0.87 ms). Rounding x·log₂e adds a relative error of about
    |x|·1e-7 -- nothing where x ≤ 0, as in a softmax. −inf gives 0, as exp does."""
    return x.mul_(LOG2_E).exp2_()


def relu(input: torch.Tensor) -> torch.Tensor:
    """max(x, 0); the gradient at exactly 0 is 0, as in torch, and NaN passes it through."""
    expect_tensor("relu", input)
    return run(ReLUFunction, input)


class ReLUFunction(torch.autograd.Function):
    """relu with a hand-written backward: y = max(x, 0), dL/dx = dL/dy · [not y ≤ 0]. Keeps only
    y (no boolean mask saved). The backward is a product with the negated mask: on the CPUs
    measured, masked_fill and torch.where take ~4 ns per element, a comparison and a product
    ~1.5 (a (4, 96, 56, 56) gradient: 5.5 ms -> 1.9 ms)."""

    @staticmethod
    def forward(ctx, input):
        # BEGIN SOLUTION
        output = input.clamp_min(0)
        ctx.save_for_backward(output)
        return output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        # BEGIN SOLUTION
        # Zero where y ≤ 0 (x ≤ 0), not "kept where y > 0": a NaN input (y = NaN) passes the
        # gradient through, as in torch.
        return grad_output * (output <= 0).logical_not_()
        # END SOLUTION


def relu6(input: torch.Tensor) -> torch.Tensor:
    """min(max(x, 0), 6) (MobileNet's activation); the gradient at exactly 0 and 6 is 0, as in
    torch, and NaN passes it through."""
    expect_tensor("relu6", input)
    return run(ReLU6Function, input)


class ReLU6Function(torch.autograd.Function):
    """relu6 with relu's hand-written backward: dL/dx = dL/dy · [not (y ≤ 0 or y ≥ 6)]; y ≤ 0
    and y ≥ 6 are exactly x ≤ 0 and x ≥ 6, so y is all it keeps. The mask is one comparison,
    |y − 3| ≥ 3, and the product replaces masked_fill (see ReLUFunction: 0.59× the time)."""

    @staticmethod
    def forward(ctx, input):
        output = input.clamp(0, 6)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        # Float all the way (a float's in-place logical_not_ is slow): 1 − [|y − 3| ≥ 3].
        return grad_output * (output - 3).abs_().ge_(3).neg_().add_(1)


def gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """x·Φ(x) = 0.5·x·(1 + erf(x/√2)); approximate="tanh" uses
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GPT-2's choice)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    expect_tensor("gelu", input)
    return run(GELUFunction, input, approximate)


class GELUFunction(torch.autograd.Function):
    """gelu with a hand-written backward pass, which keeps x and y (autograd would keep every
    intermediate of the formula) and needs a handful of passes.

        exact:  y = x·Φ(x),    dy/dx = Φ(x) + x·φ(x),   φ(x) = e^(−x²/2) / √(2π)
        tanh:   y = ½x(1 + t),  t = tanh(u),  u = √(2/π)(x + 0.044715x³)
                dy/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
    The gate y / x (Φ(x), or ½(1 + t)) comes back in the backward as one division, not another
    erf or tanh (erf alone costs more than torch's whole fused gelu on the CPUs measured); at
    x = 0 the division is 0/0 and the gate ½. y costs no memory in a transformer's MLP: the
    Linear after the activation keeps the same tensor. (For subnormal x, |x| < 1.2e-38 in
    float32, y has lost the digits the division needs; the gradient there is 0 or 1, not ½.)
    Double backward is not supported.
    """

    @staticmethod
    def half_gate(input, approximate):
        """The gate y / x: Φ(x), or ½(1 + t) for the tanh form: a new tensor of x's shape, which
        the forward writes over."""
        # BEGIN SOLUTION
        if approximate == "tanh":
            inner = (input + 0.044715 * input**3).mul_(math.sqrt(2.0 / math.pi))
            return inner.tanh_().add_(1.0).mul_(0.5)  # ½(1 + t)
        return (input * (1.0 / math.sqrt(2.0))).erf_().add_(1.0).mul_(0.5)  # Φ(x)
        # END SOLUTION

    @staticmethod
    def forward(ctx, input, approximate):
        ctx.approximate = approximate
        # BEGIN SOLUTION
        # Not the gate: saving it would double what an MLP keeps for the backward pass (its
        # widest tensors); y is kept by the next Linear anyway.
        output = GELUFunction.half_gate(input, approximate).mul_(input)
        ctx.save_for_backward(input, output)
        return output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        # BEGIN SOLUTION
        if ctx.approximate == "tanh":
            half_gate = torch.div(y, x).nan_to_num_(nan=0.5)  # y / x, and ½ where x = 0
            # ½x(1 − t²) = 2x · h(1 − h) with h = ½(1 + t)
            k = math.sqrt(2.0 / math.pi)
            slope = (1.0 - half_gate).mul_(half_gate).mul_(x).mul_(2.0 * k)
            slope.mul_(torch.addcmul(torch.ones_like(x), x, x, value=3 * 0.044715))
            derivative = slope.add_(half_gate)
        else:
            # One new buffer: x·φ(x), then the gate y / x added in place (½ where x = 0).
            derivative = torch.mul(x, x).mul_(-0.5 * LOG2_E).exp2_()  # √(2π)·φ(x), by exp2
            derivative.mul_(x).mul_(1.0 / math.sqrt(2 * math.pi))
            derivative.addcdiv_(y, x).nan_to_num_(nan=0.5)  # + Φ(x) = y / x
            derivative.addcmul_(x, x.new_zeros(()))  # a nan x (made ½ just above) back to nan
        return derivative.mul_(grad_output), None
        # END SOLUTION


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^(−x)), computed without overflow for large |x|."""
    expect_tensor("sigmoid", input)
    # BEGIN SOLUTION
    # e^(−|x|) never overflows; for x < 0 use the equal form e^x / (1 + e^x).
    # (where, not abs: abs has gradient 0 at x = 0, which would cut σ'(0) = 1/4 off.)
    z = torch.exp(torch.where(input >= 0, -input, input))
    return torch.where(input >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    # END SOLUTION


def tanh(input: torch.Tensor) -> torch.Tensor:
    """(e^x − e^(−x)) / (e^x + e^(−x)) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|))."""
    expect_tensor("tanh", input)
    # BEGIN SOLUTION
    # Only e^(−2|x|) ≤ 1 is ever computed, and expm1 keeps 1 − e^(−2|x|) accurate near 0.
    negative_abs = torch.where(input >= 0, -input, input)  # −|x| with gradient ∓1 at x = 0
    magnitude = -torch.expm1(2 * negative_abs) / (1 + torch.exp(2 * negative_abs))
    return torch.where(input >= 0, magnitude, -magnitude)
    # END SOLUTION


def silu(input: torch.Tensor) -> torch.Tensor:
    """x·σ(x), also called swish."""
    expect_tensor("silu", input)
    # BEGIN SOLUTION
    return input * sigmoid(input)
    # END SOLUTION


def _softmax_dim(ndim: int) -> int:
    # torch's legacy choice when no dim is given; pass dim explicitly in your own code.
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_input(
    where: str, input: torch.Tensor, dim: int | None, dtype: torch.dtype | None
) -> tuple[torch.Tensor, int]:
    """The checks and conversions softmax and log_softmax share: input cast to ``dtype`` (when
    given, before anything else, as torch) and ``dim`` made non-negative."""
    expect_tensor(where, input)
    if dtype is not None:
        input = input.to(dtype)
    dim = _softmax_dim(input.dim()) if dim is None else dim
    return input, normalize_dim(where, dim, input.dim())


def softmax(
    input: torch.Tensor, dim: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``; subtracting the max first avoids overflow.
    dtype: cast the input to it first (e.g. float32 logits, float64 probabilities)."""
    input, dim = _softmax_input("softmax", input, dim, dtype)
    if input.numel() == 0:  # nothing to normalise (and no max to take over an empty dim)
        return input.clone()
    # BEGIN SOLUTION
    # softmax(x) = softmax(x − c) for any constant c; c = max makes every exponent ≤ 0.
    shifted = input - input.amax(dim, keepdim=True).detach()
    exp = torch.exp(shifted)
    return exp / exp.sum(dim, keepdim=True)
    # END SOLUTION


def log_softmax(
    input: torch.Tensor, dim: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """x_i − log Σ_j exp(x_j) along ``dim`` (log-sum-exp with the max factored out).
    dtype: cast the input to it first, as for softmax."""
    input, dim = _softmax_input("log_softmax", input, dim, dtype)
    if input.numel() == 0:
        return input.clone()
    # BEGIN SOLUTION
    shifted = input - input.amax(dim, keepdim=True).detach()
    return shifted - torch.log(torch.exp(shifted).sum(dim, keepdim=True))
    # END SOLUTION


class ReLU(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return relu(input)


class ReLU6(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return relu6(input)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return sigmoid(input)


class Tanh(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return tanh(input)


class SiLU(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return silu(input)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
