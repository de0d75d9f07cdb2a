"""The affine layer: y = x Wᵀ + b."""

from __future__ import annotations

import math

import torch

from minimod.nn import init
from minimod.nn._checks import expect_floating, expect_tensor, expect_trailing_shape
from minimod.nn.module import Module, Parameter


def linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """y = input @ weightᵀ + bias.

    input (*, in_features), weight (out_features, in_features), bias (out_features,)
    -> (*, out_features). Any number of leading dimensions, including none.
    """
    expect_tensor("linear", input)
    # BEGIN SOLUTION
    if bias is None or input.dim() < 2:
        return input @ weight.T if bias is None else input @ weight.T + bias
    # torch.addmm(b, A, B) = b + A @ B in one operation: the bias is added as the product is
    # written, instead of in a second pass over the whole output. addmm wants a 2-D A.
    rows = input.reshape(-1, input.shape[-1])
    output = torch.addmm(bias, rows, weight.T)
    return output.view(*input.shape[:-1], weight.shape[0])
    # END SOLUTION


class Linear(Module):
    """A fully connected layer with torch.nn.Linear's parameters, layout and initialisation.

    weight: (out_features, in_features), bias: (out_features,), both ~ U(-1/√in, 1/√in).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # BEGIN SOLUTION
        self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        # kaiming_uniform_ with a=√5 gives bound = √(6 / ((1 + 5) · fan_in)) = 1/√fan_in.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)
        # END SOLUTION

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        expect_trailing_shape(self, input, (self.in_features,))
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
