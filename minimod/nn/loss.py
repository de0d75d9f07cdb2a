"""Losses: cross-entropy, focal loss, mean squared error and binary cross-entropy on logits."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import can_read_back, expect_tensor
from minimod.nn._function import run
from minimod.nn.activation import exp_, log_softmax
from minimod.nn.module import Module

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _weighted_mean(
    loss: torch.Tensor, target_weight: torch.Tensor, counted: torch.Tensor
) -> torch.Tensor:
    """Σ loss / Σ target_weight: "mean" for class-index targets, divided as torch divides
    whatever the sign of Σ target_weight (counted targets weighing 0 in all give ±inf or nan,
    and such gradients, as in torch). Every target ignored: nan as in torch, with a gradient of
    0 rather than nan, so one padding-only batch cannot poison accumulated gradients."""
    any_counted = counted.any()
    total = torch.where(any_counted, target_weight.sum(), 1)
    return torch.where(any_counted, loss.sum() / total, torch.nan)


def _check_reduction(where: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_targets(
    input: torch.Tensor, target: torch.Tensor, ignore_index: int, where: str = "cross_entropy"
) -> None:
    """Class indices: shape of input without the class axis, values in [0, C) or ignore_index."""
    expected = input.shape[:1] + input.shape[2:]
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"{where}: class-index targets must be integers, got {target.dtype}")
    if target.shape != expected:
        raise ValueError(
            f"{where}: input of shape {tuple(input.shape)} (classes on dim 1) "
            f"needs targets of shape {tuple(expected)}, got {tuple(target.shape)}"
        )
    num_classes = input.shape[1]
    if not can_read_back(target):
        return
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        raise IndexError(
            f"{where}: target {int(target[bad][0])} is out of range for "
            f"{num_classes} classes (and is not ignore_index={ignore_index})"
        )


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
    # BEGIN SOLUTION
    plain = weight is None and label_smoothing == 0.0 and not target.is_floating_point()
    if plain and input.dim() == 2:  # the common case, with a hand-written backward
        return run(CrossEntropy, input, target, ignore_index, reduction)
    logp = log_softmax(input, dim=1)
    weighted_logp = logp if class_weight is None else logp * class_weight
    if target.is_floating_point():  # class probabilities
        q = target * (1 - label_smoothing) + label_smoothing / num_classes
        loss = -(q * weighted_logp).sum(1)
        if reduction == "mean":
            return loss.sum() / (input.numel() / num_classes)
        return _reduce(loss, reduction)

    counted = target != ignore_index
    safe_target = torch.where(counted, target, torch.zeros_like(target))
    nll = -logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    target_weight = counted.to(logp.dtype)
    if weight is not None:
        target_weight = target_weight * weight[safe_target]
    loss = nll * target_weight

    def reduce(part: torch.Tensor) -> torch.Tensor:
        if reduction == "mean":
            return _weighted_mean(part, target_weight, counted)
        return _reduce(part, reduction)

    if label_smoothing == 0:
        return reduce(loss)
    # Spread label_smoothing of the mass evenly: −(ε/C) Σ_c w_c log p_c per counted target.
    # Each part is reduced on its own, as torch does (for Σ w = 0 that is inf − inf = nan).
    smooth = -weighted_logp.sum(1) * counted
    return (1 - label_smoothing) * reduce(loss) + (label_smoothing / num_classes) * reduce(smooth)
    # END SOLUTION


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
        # BEGIN SOLUTION
        compute = torch.promote_types(input.dtype, torch.float32)
        logits = input.to(compute)
        row_max = logits.amax(1, keepdim=True)
        exps = exp_(logits - row_max)  # (N, C): softmax(x) = exps / total
        total = exps.sum(1, keepdim=True)
        counted = target != ignore_index
        safe_target = torch.where(counted, target, torch.zeros_like(target))
        # log Σ exp(x − m) and the target's x − m are both small: their difference keeps its
        # precision even for logits of ±1e4.
        picked = logits.gather(1, safe_target[:, None]) - row_max
        loss = (total.log() - picked).squeeze(1) * counted
        count = counted.sum()
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":  # 0/0 = nan when every target is ignored (as torch)
            loss = loss.sum() / count
        ctx.save_for_backward(exps, total, safe_target, counted, count)
        ctx.reduction, ctx.dtype = reduction, input.dtype
        return loss  # float32 for 16-bit logits (as autocast computes losses), else their dtype
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        exps, total, safe_target, counted, count = ctx.saved_tensors
        # BEGIN SOLUTION
        if ctx.reduction == "mean":  # no targets counted: gradient 0, not nan
            grad_output = grad_output / count.clamp_min(1)
        row_scale = (counted * grad_output).to(exps.dtype)[:, None]  # ignored rows: 0
        grad = exps * (row_scale / total)  # softmax(x) − one-hot, each row scaled
        grad.scatter_add_(1, safe_target[:, None], -row_scale)
        return grad.to(ctx.dtype), None, None, None
        # END SOLUTION


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): −w_t · (1 − p_t)^γ · log p_t, p_t = softmax(input)[target].

    Cross-entropy scaled down for examples the model already gets right (p_t near 1), so the
    many easy examples of a common class stop drowning the few hard ones. gamma=0 is exactly
    ``cross_entropy``; gamma=2 is the paper's default. w_t = weight[target] (the α of the paper).
    input: logits (N, C) or (N, C, d1, ...) or unbatched (C,); target: class indices (N,) /
    (N, d1, ...) / (); targets equal to ignore_index count for nothing. reduction="mean"
    divides the sum by Σ w_t over the counted targets, as ``cross_entropy`` does.
    """
    _check_reduction("focal_loss", reduction)
    expect_tensor("focal_loss", input)
    if not gamma >= 0:
        raise ValueError(f"focal_loss: gamma must be >= 0, got {gamma}")
    if input.dim() == 0:
        raise ValueError(
            "focal_loss: expected logits (C,), (N, C) or (N, C, d1, ...), got a scalar"
        )
    if input.dim() == 1:  # unbatched: add a batch axis, remove it again at the end
        loss = focal_loss(input[None], target[None], gamma, weight, ignore_index, reduction)
        return loss[0] if reduction == "none" else loss
    num_classes = input.shape[1]
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(
            f"focal_loss: weight must have shape ({num_classes},), got {tuple(weight.shape)}"
        )
    _check_targets(input, target, ignore_index, "focal_loss")
    # BEGIN SOLUTION
    logp = log_softmax(input, dim=1)  # never log(softmax(x)): that is -inf once p underflows
    counted = target != ignore_index
    safe_target = torch.where(counted, target, torch.zeros_like(target))
    logp_t = logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    # 1 − p_t = −expm1(log p_t), exact even when p_t is near 1. The clamp keeps the gradient of
    # (1 − p_t)^γ finite (0 · ∞ would be nan) when p_t rounds to exactly 1.
    tiny = torch.finfo(logp_t.dtype).tiny
    modulating = (-torch.expm1(logp_t)).clamp_min(tiny) ** gamma
    target_weight = counted.to(logp.dtype)
    if weight is not None:
        target_weight = target_weight * weight[safe_target]
    loss = -modulating * logp_t * target_weight
    if reduction == "mean":
        return _weighted_mean(loss, target_weight, counted)
    return _reduce(loss, reduction)
    # END SOLUTION


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """(input − target)², averaged or summed. Shapes must match (no silent broadcasting)."""
    _check_reduction("mse_loss", reduction)
    expect_tensor("mse_loss", input)
    if input.shape != target.shape:
        raise ValueError(
            f"mse_loss: input shape {tuple(input.shape)} and target shape "
            f"{tuple(target.shape)} differ (broadcasting here is usually a bug)"
        )
    # BEGIN SOLUTION
    return _reduce((input - target) ** 2, reduction)
    # END SOLUTION


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
    # BEGIN SOLUTION
    # softplus(−x) = −log σ(x); logaddexp(0, z) = log(e^0 + e^z) never overflows.
    softplus_neg = torch.logaddexp(torch.zeros_like(input), -input)
    if pos_weight is None:
        loss = (1 - target) * input + softplus_neg
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
    # END SOLUTION


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
        # BEGIN SOLUTION
        # A buffer, not a plain attribute: .to() moves it and state_dict saves it.
        self.register_buffer("weight", weight)
        # END SOLUTION
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
        # BEGIN SOLUTION
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        # END SOLUTION
        self.reduction = reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class FocalLoss(Module):
    """``FocalLoss(gamma=2.0, weight=None, ignore_index=-100, reduction="mean")``: the module
    form of ``focal_loss``; ``weight`` (per class) is a buffer, so ``.to()`` moves it."""

    def __init__(
        self,
        gamma: float = 2.0,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _check_reduction("FocalLoss", reduction)
        if not gamma >= 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma}")
        self.register_buffer("weight", weight)
        self.gamma, self.ignore_index, self.reduction = gamma, ignore_index, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(input, target, self.gamma, self.weight, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"
