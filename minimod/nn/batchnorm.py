"""Batch normalisation: normalise each channel with the statistics of the current batch.

Training: for each channel c, over the batch and every spatial position,
    y = (x − μ_B) / √(σ²_B + ε) · γ + β,   σ²_B the biased variance (divide by n)
and keep running estimates for evaluation (unbiased variance, divide by n − 1):
    running ← (1 − momentum) · running + momentum · batch statistic
(momentum=None: a cumulative average, factor 1 / num_batches_tracked).
Evaluation: use the running estimates, so one example's output no longer depends on the batch.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_floating, expect_tensor
from minimod.nn._function import run
from minimod.nn.module import Module, Parameter


def batch_norm(
    input: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """input (N, C, *): normalise per channel (dim 1). With training=True use the batch's
    statistics and update running_mean/running_var in place (when given) with ``momentum``;
    otherwise use the running statistics. An empty input gives an empty output and leaves
    the running statistics as they are (as torch)."""
    expect_tensor("batch_norm", input)
    if input.dim() < 2:
        if input.numel() == 0:  # torch accepts an empty 1-D input and returns it
            return input.clone()
        raise ValueError(
            f"batch_norm: expected an input (N, C, *) with channels on dim 1, got shape "
            f"{tuple(input.shape)}"
        )
    shape = [1, -1] + [1] * (input.dim() - 2)  # (C,) -> broadcastable over (N, C, *)
    if input.numel() == 0:  # no values, no statistics: only the affine map, for its shape
        output = input if weight is None else input * weight.view(shape)
        return output if bias is None else output + bias.view(shape)
    if training and input.numel() // input.shape[1] == 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when "
            f"training, got input of shape {tuple(input.shape)}"
        )
    # BEGIN SOLUTION
    if training:
        output, mean, var = run(_BatchNormFunction, input, weight, bias, eps)
        if running_mean is not None:
            count = input.numel() // input.shape[1]  # values per channel
            with torch.no_grad():
                running_mean.lerp_(mean.to(running_mean.dtype), momentum)
                unbiased = var * (count / (count - 1))  # the estimate of the population's
                running_var.lerp_(unbiased.to(running_var.dtype), momentum)
        return output
    # Evaluation: one affine map per channel, y = x·scale + shift (autograd differentiates it).
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.view(shape) + shift.view(shape)
    # END SOLUTION


class _BatchNormFunction(torch.autograd.Function):
    """Training-mode batch_norm with a hand-written backward pass. Per channel, over the
    n = N·(spatial size) values it sees (dims 0, 2, 3, …):

    Forward:   μ = mean(x),  x_c = x − μ,  σ² = mean(x_c²) (biased),  r = 1/√(σ² + ε),
               x̂ = x_c·r,  y = x̂·γ + β
    Backward, given dy:
               dβ = Σ dy,    dγ = Σ dy·x̂
               dx = (γ·r / n) · (n·dy − Σ dy − x̂·Σ dy·x̂)
    (μ and σ² depend on every x of the channel: the two sums are what flows back through
    them.) In coefficients: dx = a·dy + b·x_c + c with a = γr, b = −γr³·Σ(dy·x_c)/n,
    c = −γr·Σ(dy)/n. Keeps x_c and r; statistics in at least float32. Returns (y, μ, σ²):
    the batch statistics feed the running estimates (their gradients are ignored). Double
    backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, eps):
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        compute = torch.promote_types(input.dtype, torch.float32)
        # BEGIN SOLUTION
        x = input.to(compute)
        mean = x.mean(dims, keepdim=True)
        centered = x - mean
        var = (centered * centered).mean(dims, keepdim=True)  # biased: divide by n
        rstd = torch.rsqrt(var + eps)
        scale = rstd if weight is None else rstd * weight.view(shape)
        output = centered * scale
        if bias is not None:
            output += bias.view(shape)
        ctx.save_for_backward(centered, rstd, weight)
        ctx.dims, ctx.dtype = dims, input.dtype
        # The output's dtype: type promotion of the input's and the parameters' (as y = x̂·γ + β).
        dtype = input.dtype
        for parameter in (weight, bias):
            dtype = dtype if parameter is None else torch.promote_types(dtype, parameter.dtype)
        return output.to(dtype), mean.flatten(), var.flatten()
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_mean, _grad_var):
        centered, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        shape = [1, -1] + [1] * (centered.dim() - 2)
        dy = grad_output.to(centered.dtype)
        grad_weight = grad_bias = None
        # BEGIN SOLUTION
        count = centered.numel() // centered.shape[1]
        sum_dy = dy.sum(dims, keepdim=True)
        sum_dy_xc = (dy * centered).sum(dims, keepdim=True)  # Σ dy·x̂ = r·Σ dy·x_c
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = (rstd * sum_dy_xc).flatten()
        if ctx.needs_input_grad[2]:  # False when there is no bias
            grad_bias = sum_dy.flatten()
        a = rstd if weight is None else rstd * weight.view(shape)  # γ·r
        b = -a * rstd * rstd * sum_dy_xc / count
        c = -a * sum_dy / count
        grad_input = (centered * b).add_(c).addcmul_(dy, a)  # in place on a full-size tensor
        return grad_input.to(ctx.dtype), grad_weight, grad_bias, None
        # END SOLUTION


class _BatchNorm(Module):
    """torch.nn's parameters and buffers: weight, bias (if affine; bias=False drops only the
    bias), running_mean, running_var, num_batches_tracked (same names, shapes and dtypes).

    ``freeze_stats = True`` (minimod's, for linear probing and frozen backbones) makes the layer
    behave as in eval mode even after ``model.train()``: it normalises with its running
    statistics and never updates them. It works through the ``training`` property below:
    ``train()``/``eval()`` still record the mode asked for, and ``training`` reads False while
    the statistics are frozen, so ``forward`` needs no special case.
    """

    input_dims: tuple[int, ...] = (2, 3, 4)
    freeze_stats: bool = False  # a class default; set on an instance to freeze its statistics

    # Module.train() sets ``training`` with object.__setattr__, which still goes through a data
    # descriptor such as this property: the requested mode is kept in ``_training``.
    @property
    def training(self) -> bool:
        return self.__dict__.get("_training", True) and not self.freeze_stats

    @training.setter
    def training(self, mode: bool) -> None:
        self.__dict__["_training"] = bool(mode)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        factory = dict(device=device, dtype=dtype)
        if affine:
            self.weight = Parameter(torch.empty(num_features, **factory))
            if bias:
                self.bias = Parameter(torch.empty(num_features, **factory))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # BEGIN SOLUTION
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        # END SOLUTION
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        # `==` on each, not `in`: under torch.compile(dynamic=True) a module's ints are traced as
        # symbols, which `in` compares by identity (4 in (4,) was False there).
        if not any(input.dim() == dims for dims in self.input_dims):
            raise ValueError(
                f"{describe(self)}: expected a {' or '.join(map(str, self.input_dims))}-D "
                f"input (N, C, …), got shape {tuple(input.shape)}"
            )
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"{describe(self)}: expected {self.num_features} channels on dim 1, got "
                f"{input.shape[1]} (input shape {tuple(input.shape)})"
            )
        # BEGIN SOLUTION
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        # Update the running statistics only while training (and only if we keep them).
        update = self.training and self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if update or not use_batch_stats else None,
            self.running_var if update or not use_batch_stats else None,
            self.weight,
            self.bias,
            use_batch_stats,
            momentum,
            self.eps,
        )
        # END SOLUTION

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs, e.g. features or audio frames."""

    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) images."""

    input_dims = (4,)
