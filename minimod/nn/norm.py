"""Normalisation layers: LayerNorm and RMSNorm over the trailing dimensions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import expect_trailing_shape
from minimod.nn._function import run
from minimod.nn.module import Module, Parameter


def _as_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(normalized_shape)


def layer_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """y = (x − μ) / √(σ² + ε) · γ + β over the last len(normalized_shape) dimensions, with the
    biased variance σ² = mean((x − μ)²)."""
    normalized_shape = _as_shape(normalized_shape)
    expect_trailing_shape(
        f"layer_norm(normalized_shape={normalized_shape})", input, normalized_shape
    )
    # BEGIN SOLUTION
    return run(LayerNormFunction, input, weight, bias, len(normalized_shape), eps)
    # END SOLUTION


class LayerNormFunction(torch.autograd.Function):
    """layer_norm with a hand-written backward pass, over the last ``n_dims`` dimensions.

    Forward, per row of N values (the last n_dims dimensions):
        μ = mean(x),  σ² = mean((x − μ)²) (biased),  r = 1/√(σ² + ε),  x̂ = (x − μ)·r,  y = x̂·γ + β
    Backward, given dy (g = dy·γ, means over the row's N values):
        dβ = Σ_rows dy,    dγ = Σ_rows dy·x̂
        dx = r · (g − mean(g) − x̂ · mean(g·x̂))
    (μ and σ² depend on every x of the row: the two means are what flows back through them.)
    Keeps x̂ and r only. Statistics in at least float32. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, n_dims, eps):
        dims = tuple(range(-n_dims, 0))
        compute = torch.promote_types(input.dtype, torch.float32)
        # BEGIN SOLUTION
        x = input.to(compute)
        centered = x - x.mean(dims, keepdim=True)
        variance = (centered * centered).mean(dims, keepdim=True)  # biased: divide by N
        rstd = torch.rsqrt(variance + eps)
        normalized = centered.mul_(rstd)  # x̂, in place of the centered values
        if weight is not None and bias is not None:
            output = torch.addcmul(bias, normalized, weight)  # x̂·γ + β in one pass
        elif weight is not None:
            output = normalized * weight
        else:
            output = normalized if bias is None else normalized + bias
        ctx.save_for_backward(normalized, rstd, weight)
        ctx.dims, ctx.dtype = dims, input.dtype
        ctx.bias_shape = None if bias is None else bias.shape
        return output.to(torch.promote_types(input.dtype, output.dtype))
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        normalized, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        grad_output = grad_output.to(normalized.dtype)
        grad_weight = grad_bias = None
        # BEGIN SOLUTION
        # dy·x̂ serves twice: summed over the rows it is dγ, times γ it is g·x̂.
        gx = grad_output * normalized
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = gx.sum_to_size(weight.shape)
        if ctx.needs_input_grad[2]:  # False when there is no bias
            grad_bias = grad_output.sum_to_size(ctx.bias_shape)
        if weight is not None:  # (a single row: dγ is gx itself, not to be overwritten)
            gx = gx * weight if gx.shape == weight.shape else gx.mul_(weight)
        mean_gx = gx.mean(dims, keepdim=True)
        g = grad_output * weight if weight is not None else grad_output.clone()
        grad_input = g.sub_(g.mean(dims, keepdim=True))  # in place: one (rows, N) buffer in all
        grad_input.addcmul_(normalized, mean_gx, value=-1).mul_(rstd)
        return grad_input.to(ctx.dtype), grad_weight, grad_bias, None, None
        # END SOLUTION


def rms_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """y = x / √(mean(x²) + ε) · γ over the trailing dimensions; no mean is subtracted.
    eps=None uses the dtype's machine epsilon, as torch does."""
    normalized_shape = _as_shape(normalized_shape)
    expect_trailing_shape(f"rms_norm(normalized_shape={normalized_shape})", input, normalized_shape)
    if eps is None:
        eps = torch.finfo(input.dtype).eps
    # BEGIN SOLUTION
    dims = tuple(range(-len(normalized_shape), 0))
    output = input * torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    if weight is not None:
        output = output * weight
    return output
    # END SOLUTION


def _affine(module: Module, name: str, wanted: bool, device, dtype) -> None:
    """Register ``name`` as a Parameter of the module's normalized shape, or as None (torch's
    way of saying "this layer has no such parameter": absent from state_dict)."""
    shape = module.normalized_shape
    value = Parameter(torch.empty(shape, device=device, dtype=dtype)) if wanted else None
    module.register_parameter(name, value)


class LayerNorm(Module):
    """weight γ (ones) and bias β (zeros) of shape normalized_shape, if elementwise_affine."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine(self, "weight", elementwise_affine, device, dtype)
        _affine(self, "bias", elementwise_affine and bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_trailing_shape(self, input, self.normalized_shape)
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """weight γ (ones) of shape normalized_shape, if elementwise_affine."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine(self, "weight", elementwise_affine, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # torch's RMSNorm names it x too
        expect_trailing_shape(self, x, self.normalized_shape)
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
