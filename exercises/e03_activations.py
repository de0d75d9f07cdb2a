"""Lesson 3: Activations, softmax and log-softmax

The idea
Stacked linear layers are still one linear map; a non-linearity between them is what lets a
network bend. Each activation below works elementwise (output shape = input shape), except
softmax and log-softmax, which turn a vector of scores along one axis into probabilities.

    relu(x)    = max(x, 0)                 gradient 0 for x ≤ 0 (also at 0), else 1 (NaN too)
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

By hand, x = (1, 2, 3): m = 3, e^(x − m) = (e^(−2), e^(−1), 1) = (0.135, 0.368, 1), sum 1.503,
softmax = (0.090, 0.245, 0.665) (sums to 1); log 1.503 = 0.408, so log_softmax =
(−2, −1, 0) − 0.408 = (−2.408, −1.408, −0.408). And x + 100 gives exactly the same: the shift
cancels. Elementwise: sigmoid(0) = 0.5 with slope 1/4, tanh(0) = 0 with slope 1,
gelu(1) = 1 · Φ(1) = 0.841, relu(−2) = 0.

sigmoid has the same problem for x ≪ 0 (e^(−x) overflows): with z = e^(−|x|), which never
overflows, sigmoid(x) = 1 / (1 + z) for x ≥ 0 and z / (1 + z) for x < 0. tanh likewise:
tanh(x) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|)), and torch.expm1(z) = e^z − 1 keeps
1 − e^(−2|x|) accurate for tiny |x| (where 1 − e^(−2|x|) would lose every digit).
Careful with abs and sign in a formula autograd differentiates: torch gives abs the slope 0 at
x = 0 (sign(0) = 0) and sign the slope 0 everywhere. Written with torch.abs / torch.sign,
sigmoid would get the gradient 0 at x = 0 instead of σ'(0) = 1/4, and tanh 0 instead of 1 --
a wrong gradient at exactly the most common input, with no error. Build −|x| with
torch.where(x >= 0, −x, x) (slope −1 or +1, never 0) and pick the branch with torch.where.

The module classes (ReLU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax) are given: each
forward(input) calls your function (torch's argument name, so layer(input=x) works too).
softmax and log_softmax take torch's dtype= as well: the given _softmax_input casts the input
to it first (float32 logits, float64 probabilities) and makes dim non-negative, and an empty
input is returned as it is (there is no max over an empty dim): both before your code.

A backward pass by hand: GELUFunction
Autograd differentiates any formula, but it keeps every intermediate tensor of it for the
backward pass and replays each step. For an activation as common as GELU (every transformer
MLP), write the derivative yourself in a torch.autograd.Function: forward(ctx, x, ...) computes
y and saves what the backward needs with ctx.save_for_backward; backward(ctx, dy) returns
dL/dx = dy · dy/dx (and None for the non-tensor arguments).
    exact: y = x·Φ(x)        dy/dx = Φ(x) + x·φ(x),   φ(x) = e^(−x²/2) / √(2π)
    tanh:  y = ½x(1 + t)      t = tanh(√(2/π)(x + 0.044715x³))
           dy/dx = ½(1 + t) + ½x(1 − t²) · √(2/π)(1 + 3·0.044715x²)
Save x and y, not the gate (Φ(x), or ½(1 + t): GELUFunction.half_gate, which the forward
computes): a saved gate would double what a transformer's MLP keeps for the backward pass (its
widest activations), while y costs nothing there -- the Linear after the activation keeps the
same tensor. The backward gets the gate back as y / x: one division instead of a second erf or
tanh (on the CPUs measured erf alone takes longer than torch's whole fused gelu). At x = 0 the
division is 0/0 = nan, and the gate is ½ there: Tensor.nan_to_num_(nan=0.5). For e^(−x²/2)
write 2^(−x²/2 · log₂e) with exp2_, as exp_ (given, above gelu) does: on the CPU torch's exp2
is twice as fast as its exp; attention's and cross-entropy's softmaxes use exp_ too. Each new
(rows, features) tensor costs more than a pass over one (fresh memory, and the step's peak):
the exact form builds x·φ(x) in one buffer and adds y / x to it in place (Tensor.addcdiv_),
then nan_to_num_ -- which also turns a nan input's nan into ½, so adding x·0 (nan for a nan x)
gives it back: torch's gradient at x = nan is nan.
gelu(x, approximate) calls GELUFunction through minimod.nn._function.run, which skips
autograd's bookkeeping when no gradient is needed. The tests compare your gradients
with torch's and run torch.autograd.gradcheck (finite differences in float64).

Classic pitfalls
- softmax without subtracting the max: nan for logits around 100 in float32.
- log(softmax(x)) instead of log-softmax: −inf where a probability underflows.
- relu via x * (x > 0) is fine; relu via torch.max(x, 0) is a reduction, not elementwise.
- GELU's tanh form: √(2/π), not √(2π), and 0.044715 · x³, not x².
- A backward that returns dy/dx instead of dy · dy/dx (forgetting the incoming gradient).
- GELU's gate as y / x without the case x = 0: 0/0 is nan, and a nan gradient at one exact zero
  (a zero-initialised layer, a padded position) spreads to every weight in the next step.
- nan_to_num_ over a whole gradient: it turns every nan into the number given, a nan input's
  too, and hides the nan that should tell you the input was broken (torch's gradient there is
  nan).
- ReLUFunction's backward as dy · [y > 0]: NaN > 0 is False, so a NaN input gets gradient 0;
  torch zeroes the gradient only where y ≤ 0, which lets NaN through: dy · not(y ≤ 0), written
  dy * (y <= 0).logical_not_() (a product: masked_fill gives the same and takes three times as
  long on the CPUs measured).
- tanh as (e^x − e^(−x)) / (e^x + e^(−x)) directly: inf / inf = nan for |x| > 88 in float32.
- torch.abs(x) or torch.sign(x) in sigmoid or tanh: their slope at 0 is 0, so the gradient at
  x = 0 is 0 (the tests check σ'(0) = 1/4 and tanh'(0) = 1).
- Reducing over the wrong dim: check that softmax(x, dim).sum(dim) is all ones.

Run it
The spiral example's MLP runs through your GELU (with your hand-written backward) once
`minimod exercises check 3` passes; --use-mine swaps in every lesson that passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 4 (Losses: cross-entropy, MSE, BCE with logits)

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

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 3`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import expect_tensor
from minimod.nn._function import run
from minimod.nn.activation import LOG2_E, _softmax_input
from minimod.nn.module import Module

# ---- from minimod/nn/activation.py ----------------------------------------


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e03: ReLUFunction.forward")
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        # BEGIN YOUR CODE
        raise NotImplementedError("e03: ReLUFunction.backward")
        # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e03: GELUFunction.half_gate")
        # END YOUR CODE

    @staticmethod
    def forward(ctx, input, approximate):
        ctx.approximate = approximate
        # BEGIN YOUR CODE
        raise NotImplementedError("e03: GELUFunction.forward")
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        # BEGIN YOUR CODE
        raise NotImplementedError("e03: GELUFunction.backward")
        # END YOUR CODE


def sigmoid(input: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^(−x)), computed without overflow for large |x|."""
    expect_tensor("sigmoid", input)
    # BEGIN YOUR CODE
    raise NotImplementedError("e03: sigmoid")
    # END YOUR CODE


def tanh(input: torch.Tensor) -> torch.Tensor:
    """(e^x − e^(−x)) / (e^x + e^(−x)) = sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|))."""
    expect_tensor("tanh", input)
    # BEGIN YOUR CODE
    raise NotImplementedError("e03: tanh")
    # END YOUR CODE


def silu(input: torch.Tensor) -> torch.Tensor:
    """x·σ(x), also called swish."""
    expect_tensor("silu", input)
    # BEGIN YOUR CODE
    raise NotImplementedError("e03: silu")
    # END YOUR CODE


def softmax(
    input: torch.Tensor, dim: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """exp(x_i) / Σ_j exp(x_j) along ``dim``; subtracting the max first avoids overflow.
    dtype: cast the input to it first (e.g. float32 logits, float64 probabilities)."""
    input, dim = _softmax_input("softmax", input, dim, dtype)
    if input.numel() == 0:  # nothing to normalise (and no max to take over an empty dim)
        return input.clone()
    # BEGIN YOUR CODE
    raise NotImplementedError("e03: softmax")
    # END YOUR CODE


def log_softmax(
    input: torch.Tensor, dim: int | None = None, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """x_i − log Σ_j exp(x_j) along ``dim`` (log-sum-exp with the max factored out).
    dtype: cast the input to it first, as for softmax."""
    input, dim = _softmax_input("log_softmax", input, dim, dtype)
    if input.numel() == 0:
        return input.clone()
    # BEGIN YOUR CODE
    raise NotImplementedError("e03: log_softmax")
    # END YOUR CODE


class ReLU(Module):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return relu(input)


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
