"""Lesson 4: Losses -- cross-entropy, mean squared error, binary cross-entropy with logits

The idea
A loss turns the model's outputs and the targets into one number to minimise. All three take
raw scores ("logits"), never probabilities: the loss applies the (log-)softmax or sigmoid
itself, in a numerically stable way.

Cross-entropy (classification into C classes)
    input  x: logits (N, C), or (N, C, d1, ...) with classes on dim 1, or unbatched (C,)
    target y: class indices (N,) / (N, d1, ...), or class probabilities shaped like x
    loss_n = −w_{y_n} · log p_{n, y_n}        with p_n = softmax(x_n), log p from log_softmax

A worked example you can check by hand: logits x = (2, 0, 0), target 0. Then
Σ exp = e² + 1 + 1 = 7.389 + 2 = 9.389, p = (7.389, 1, 1) / 9.389 = (0.7870, 0.1065, 0.1065),
and loss = −log 0.7870 = log 9.389 − 2 = 2.2395 − 2 = 0.2395 (the Try it's first row).
Its gradient (see below) is p − onehot(0) = (−0.2130, 0.1065, 0.1065): push the target's logit
up, the others down, and the three entries sum to 0.

- weight w (C,): a class weight (default all ones), e.g. to up-weight rare classes.
- ignore_index: targets equal to it (default −100, e.g. padding) contribute nothing.
- reduction="mean" is a weighted mean: Σ_n loss_n / Σ_n w_{y_n}, both sums over the counted
  (not ignored) targets; "sum" is the numerator, "none" returns loss_n (0 where ignored).
  The given _weighted_mean(loss, target_weight, counted) divides as torch does, whatever the
  sign of Σ w (a zero sum gives ±inf or nan), and returns nan with a zero gradient when every
  target is ignored (a batch of padding only must not put nan into the weights).
- label_smoothing ε: the target distribution becomes q = (1 − ε) · onehot(y) + ε / C (over all
  C classes, the true one included), so
      loss_n = (1 − ε) · (−w_{y_n} log p_{n,y_n}) + (ε / C) · Σ_c (−w_c log p_{n,c}),
  and "mean" still divides by Σ_n w_{y_n}: reduce the two parts separately, then combine them
  (as torch: for Σ w = 0 that is inf − inf = nan, not one infinity).
- Probability targets q (same shape as x): loss_n = −Σ_c w_c · q'_{n,c} · log p_{n,c} with
  q' = (1 − ε) · q + ε / C; "mean" divides by the number of rows N · d1 · ..., not by weights.
For a language model's logits (B, T, V) and targets (B, T), pass x.transpose(1, 2) (classes on
dim 1) or flatten both to (B·T, V) and (B·T,).

Mean squared error
    mse_loss(x, y) = mean((x − y)²); x and y must have the same shape (given check: silent
    broadcasting of (N,) against (N, 1) is a classic bug).

Binary cross-entropy with logits (one yes/no per element)
    loss = −w · [p · y · log σ(x) + (1 − y) · log(1 − σ(x))]      p = pos_weight
Computing σ(x) and then log is unstable (log 0 = −inf). Use log σ(x) = −softplus(−x) and
log(1 − σ(x)) = −x − softplus(−x), with softplus(z) = log(1 + e^z) = logaddexp(0, z):
    loss = w · [(1 − y) · x + (1 + (p − 1) · y) · softplus(−x)]
which for p = 1 is the well-known max(x, 0) − x · y + log(1 + e^(−|x|)). pos_weight (one value
per class, broadcast along the last dim) multiplies the positive term: p = #neg / #pos
balances a rare positive class. weight w rescales each element's loss.

A backward pass by hand: CrossEntropy
The loss of a language model runs over (B·T, vocabulary) logits; composed from log_softmax
and gather, autograd keeps the log-probabilities and replays every step. The gradient has a
famous closed form: with p = softmax(x_n),
    ∂loss_n / ∂x_nc = p_nc − [c = t_n]        (times dL/dloss, ÷ #counted rows for "mean")
so CrossEntropy (a torch.autograd.Function for the common case: (N, C) logits, class-index
targets, no class weights, no smoothing) saves only e = exp(x − max) and its row sums Σ in
the forward (p = e / Σ: the division waits for the backward, which passes over the row anyway),
and its backward is e · (scale / Σ) minus scale at each target (scatter_add_), zero for rows
whose target is ignore_index. The exponentials go through minimod.nn.activation.exp_
(lesson 3: e^x in place, via exp2, twice as fast on the CPU). Compute log Σ exp(x − max) and
the target's x − max separately and subtract them: lse − x_t computed from lse itself loses
digits for logits of ±1e4. Logits in 16 bits (autocast) are upcast: the loss is float32.
cross_entropy uses it when it can and the general composed path otherwise.

The modules CrossEntropyLoss, MSELoss and BCEWithLogitsLoss call your functions; you write
how they keep weight and pos_weight, in CrossEntropyLoss.__init__ (weight, (C,) or None) and
BCEWithLogitsLoss.__init__ (weight and pos_weight, each a tensor or None): as buffers
(self.register_buffer("weight", weight)), not plain attributes, so that .to(device) moves them
and state_dict saves them, exactly like torch.nn's losses. The given forward reads self.weight
(and self.pos_weight); a None buffer is registered too, and reads back as None.

Classic pitfalls
- Softmax before cross_entropy: the loss applies log_softmax itself (a double softmax trains
  badly without raising any error).
- "mean" dividing by N when there are ignored targets or class weights.
- Label smoothing spread over C − 1 classes: torch spreads ε over all C.
- sigmoid(x).log() in BCE: −inf (and nan gradients) for logits far from 0.
- Classes on the last axis for (N, C, d1) inputs: cross_entropy wants them on dim 1.

Run it
The spiral example's MLP trains on your cross-entropy (and its backward) once
`minimod exercises check 4` passes; --use-mine swaps in every lesson that passes:
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then every 50 steps the training
loss (0.74 at step 1, 0.04 at step 100, 0.0009 at step 300: your cross-entropy going down) and
the validation accuracy: about 62% at step 50, 98% at step 100, 99.8% at step 300 (about 50 s
on 2 shared cores).
Next: lesson 5 (Embeddings, LayerNorm, RMSNorm and dropout)

Check it: minimod exercises check 4
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e04_losses import binary_cross_entropy_with_logits, cross_entropy
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> round(cross_entropy(logits, torch.tensor([0, -100])).item(), 4)
    0.2395
    >>> binary_cross_entropy_with_logits(torch.tensor([100.0]), torch.tensor([0.0])).item()
    100.0
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 4`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import expect_tensor
from minimod.nn._function import run
from minimod.nn.activation import exp_, log_softmax
from minimod.nn.loss import _check_reduction, _check_targets, _reduce, _weighted_mean
from minimod.nn.module import Module

# ---- from minimod/nn/loss.py ----------------------------------------


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """−Σ_c q_c · w_c · log softmax(x)_c, with q the (smoothed) target distribution.

    input: logits (N, C) or (N, C, d1, ...) or unbatched (C,).
    target: class indices (N,) / (N, d1, ...) / () or class probabilities shaped like input.
    With indices and reduction="mean" the sum is divided by Σ w_target over counted targets.
    """
    _check_reduction("cross_entropy", reduction)
    expect_tensor("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.dim() == 1:  # unbatched: add a batch axis, remove it again at the end
        loss = cross_entropy(
            input[None], target[None], weight, ignore_index, reduction, label_smoothing
        )
        return loss[0] if reduction == "none" else loss
    num_classes = input.shape[1]
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(
            f"cross_entropy: weight must have shape ({num_classes},), got {tuple(weight.shape)}"
        )
    if target.is_floating_point() and target.shape != input.shape:
        raise ValueError(
            f"cross_entropy: probability targets must have the input's shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}"
        )
    if not target.is_floating_point():
        _check_targets(input, target, ignore_index)
    # Class weights shaped to broadcast along dim 1: (C,) -> (1, C, 1, ...).
    class_weight = None
    if weight is not None:
        class_weight = weight.reshape((1, num_classes) + (1,) * (input.dim() - 2))
    # BEGIN YOUR CODE
    raise NotImplementedError("e04: cross_entropy")
    # END YOUR CODE


class CrossEntropy(torch.autograd.Function):
    """Cross-entropy of logits (N, C) against class indices (N,), with a hand-written backward.

    Forward, per row n with target t_n (rows whose target is ignore_index count for nothing):
        p_n = softmax(x_n)   (the row max m_n subtracted first: no overflow)
        loss_n = log Σ_c exp(x_nc − m_n) − (x_n,t_n − m_n)     mean: Σ_n loss_n / #counted rows
    Backward: ∂loss_n/∂x_nc = p_nc − [c = t_n], times the incoming gradient (divided by the
    count for "mean"). Only e^(x − m) and its row sums are kept: no log-probabilities, no one-hot
    matrix, nothing to recompute; the division by the row sum that makes p is folded into the
    backward's one pass over the row (the forward skips a pass over the largest tensor of a
    language model). Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, target, ignore_index, reduction):
        # BEGIN YOUR CODE
        raise NotImplementedError("e04: CrossEntropy.forward")
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        exps, total, safe_target, counted, count = ctx.saved_tensors
        # BEGIN YOUR CODE
        raise NotImplementedError("e04: CrossEntropy.backward")
        # END YOUR CODE


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """(input − target)², averaged or summed. Shapes must match (no silent broadcasting)."""
    _check_reduction("mse_loss", reduction)
    expect_tensor("mse_loss", input)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {tuple(input.shape)} and target shape "
            f"{tuple(target.shape)} differ (broadcasting here is usually a bug)"
        )
    # BEGIN YOUR CODE
    raise NotImplementedError("e04: mse_loss")
    # END YOUR CODE


def binary_cross_entropy_with_logits(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """−w·[p·y·log σ(x) + (1 − y)·log(1 − σ(x))] with p = pos_weight, computed stably as
    (1 − y)·x + (1 + (p − 1)·y)·softplus(−x), softplus(z) = log(1 + e^z)."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    expect_tensor("binary_cross_entropy_with_logits", input)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: input shape {tuple(input.shape)} "
            f"and target shape {tuple(target.shape)} differ"
        )
    # BEGIN YOUR CODE
    raise NotImplementedError("e04: binary_cross_entropy_with_logits")
    # END YOUR CODE


class CrossEntropyLoss(Module):
    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        _check_reduction("CrossEntropyLoss", reduction)
        # BEGIN YOUR CODE
        raise NotImplementedError("e04: CrossEntropyLoss.__init__")
        # END YOUR CODE
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class MSELoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction("MSELoss", reduction)
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(
        self,
        weight: torch.Tensor | None = None,
        reduction: str = "mean",
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        _check_reduction("BCEWithLogitsLoss", reduction)
        # BEGIN YOUR CODE
        raise NotImplementedError("e04: BCEWithLogitsLoss.__init__")
        # END YOUR CODE
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )
