"""Lesson 2: Linear layers and initialisation

The idea
A linear (fully connected) layer maps each input vector to an output vector with a learned
matrix and offset:

    y = x Wᵀ + b        x (*, in_features)  W (out_features, in_features)
                        b (out_features,)   y (*, out_features)

"*" is any number of leading dimensions (none, a batch, batch and sequence, ...): the matrix
product acts on the last axis only. W is stored as (out, in), one row per output unit, exactly
as torch.nn.Linear stores it, so state_dicts move between the two without transposing.
Speed: torch.addmm(b, A, B) computes b + A @ B in one operation (the bias is added while the
product is written, not in a second pass over the output); it wants a 2-D A, so flatten the
leading dimensions into one, (*, in) -> (rows, in), and view the result back to (*, out).

Why initialisation matters
y_j = Σ_i W_ji x_i sums fan_in terms. If the x_i have variance 1 and the W_ji variance s², then
Var(y_j) = fan_in · s². Choosing s = gain / √fan_in keeps activations near variance 1 layer
after layer; too large and they explode, too small and they (and their gradients) vanish.

- fan_in and fan_out of a weight (out, in, *kernel): in · prod(kernel) and out · prod(kernel).
- calculate_gain: 1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu, 3/4 for selu, and
  √(2 / (1 + slope²)) for leaky_relu (slope 0.01 unless given).
- kaiming_uniform_: std = gain / √fan (fan_in or fan_out, as mode says), drawn from
  U(-bound, bound) with bound = √3 · std (a uniform on [-b, b] has std b/√3).
  kaiming_normal_: N(0, std²) with the same std.
- xavier_uniform_ / xavier_normal_: std = gain · √(2 / (fan_in + fan_out)); bound √3 · std.
- trunc_normal_: N(mean, std²) restricted to [a, b]. Draw u ~ U(Φ(α), Φ(β)) with
  α = (a − mean)/std, β = (b − mean)/std, and return mean + std · Φ⁻¹(u), where
  Φ(z) = (1 + erf(z/√2)) / 2 and Φ⁻¹(u) = √2 · erfinv(2u − 1). No rejection loop needed.
- Linear's default: kaiming_uniform_(W, a=√5), i.e. gain √(2 / (1 + 5)), which makes the bound
  exactly 1/√in_features; the bias is U(-1/√in_features, 1/√in_features).

All init functions fill the tensor in place and return it. The plain fills uniform_, normal_,
constant_, zeros_ and ones_ are the building blocks of the others; they write under
torch.no_grad(), because in-place writes to a parameter must not be recorded by autograd.

What you write
linear, Linear.__init__ (the parameters; bias=False registers bias as None with
register_parameter so that state_dict has no "bias" key), Linear.reset_parameters, and the
init functions above.

Classic pitfalls
- x @ W instead of x @ W.T: same shapes when in == out, so it "works" on square layers.
- Storing W as (in_features, out_features): the state_dict no longer matches torch's.
- Using out_features (fan_out) for the default bound, or a normal instead of a uniform.
- Forgetting self.bias entirely when bias=False: code (and repr) reads self.bias.
- Creating tensors without device= and dtype=: Linear(…, dtype=torch.float64) must work.

Run it
Once `minimod exercises check 2` passes, the spiral example trains an MLP with your Linear
and its initialisation (--use-mine swaps in every lesson that passes and says which; with
lessons 2 to 7 passing, every layer, the loss, the optimizer and the schedule are yours):
    python examples/spiral.py --use-mine
prints which lessons are yours, the model (4,610 parameters), then the training loss and the
validation accuracy every 50 steps: about 62% at step 50, 98% at step 100, 99.8% at step 300
(about 50 s on 2 shared cores).
Next: lesson 3 (Activations, softmax and log-softmax)

Check it: minimod exercises check 2
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e02_linear import Linear
    >>> layer = Linear(3, 2)
    >>> [(name, tuple(p.shape)) for name, p in layer.named_parameters()]
    [('weight', (2, 3)), ('bias', (2,))]
    >>> layer(torch.randn(5, 7, 3)).shape
    torch.Size([5, 7, 2])
    >>> bool(layer.weight.abs().max() <= 1 / 3**0.5)
    True
"""

# Lesson 2 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import math

import torch

from minimod.nn import init
from minimod.nn._checks import expect_floating, expect_tensor, expect_trailing_shape
from minimod.nn.init import _fan, fan_in_and_fan_out
from minimod.nn.module import Module, Parameter

# ---- from minimod/nn/linear.py ----------------------------------------


def linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """y = input @ weightᵀ + bias.

    input (*, in_features), weight (out_features, in_features), bias (out_features,)
    -> (*, out_features). Any number of leading dimensions, including none.
    """
    expect_tensor("linear", input)
    # BEGIN YOUR CODE
    if bias is None or input.dim() < 2:
        return input @ weight.T if bias is None else input @ weight.T + bias
    # torch.addmm(b, A, B) = b + A @ B in one operation: the bias is added as the product is
    # written, instead of in a second pass over the whole output. addmm wants a 2-D A.
    rows = input.reshape(-1, input.shape[-1])
    output = torch.addmm(bias, rows, weight.T)
    return output.view(*input.shape[:-1], weight.shape[0])
    # END YOUR CODE


class Linear(Module):
    """A fully connected layer with torch.nn.Linear's parameters, layout and initialisation.

    weight: (out_features, in_features), bias: (out_features,), both ~ U(-1/√in, 1/√in).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        # BEGIN YOUR CODE
        self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        # END YOUR CODE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        # kaiming_uniform_ with a=√5 gives bound = √(6 / ((1 + 5) · fan_in)) = 1/√fan_in.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)
        # END YOUR CODE

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_floating(self, input)
        expect_trailing_shape(self, input, (self.in_features,))
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


# ---- from minimod/nn/init.py ----------------------------------------


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through ``nonlinearity``."""
    # BEGIN YOUR CODE
    linear_like = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear_like:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    # END YOUR CODE
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


@torch.no_grad()
def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    # BEGIN YOUR CODE
    return tensor.uniform_(a, b, generator=generator)
    # END YOUR CODE


@torch.no_grad()
def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std²)."""
    # BEGIN YOUR CODE
    return tensor.normal_(mean, std, generator=generator)
    # END YOUR CODE


@torch.no_grad()
def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fill with ``val``."""
    # BEGIN YOUR CODE
    return tensor.fill_(val)
    # END YOUR CODE


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: U(-bound, bound), bound = gain · √(3 / fan)."""
    if tensor.numel() == 0:
        return tensor
    # BEGIN YOUR CODE
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std  # a uniform on [-b, b] has standard deviation b/√3
    return uniform_(tensor, -bound, bound, generator=generator)
    # END YOUR CODE


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: N(0, std²), std = gain / √fan."""
    if tensor.numel() == 0:
        return tensor
    # BEGIN YOUR CODE
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator=generator)
    # END YOUR CODE


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """Glorot initialisation: U(-a, a), a = gain · √(6 / (fan_in + fan_out))."""
    # BEGIN YOUR CODE
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=generator)
    # END YOUR CODE


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """Glorot initialisation: N(0, std²), std = gain · √(2 / (fan_in + fan_out))."""
    # BEGIN YOUR CODE
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)
    # END YOUR CODE


@torch.no_grad()
def trunc_normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator=None,
) -> torch.Tensor:
    """N(mean, std²) restricted to [a, b], drawn by inverting the normal CDF:
    u ~ U(Φ(α), Φ(β)) with α = (a − mean)/std, β = (b − mean)/std, then x = mean + std·Φ⁻¹(u)."""

    # BEGIN YOUR CODE
    def normal_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    low, high = normal_cdf((a - mean) / std), normal_cdf((b - mean) / std)
    # Φ⁻¹(u) = √2 · erfinv(2u − 1): draw 2u − 1 directly, then apply erfinv.
    tensor.uniform_(2 * low - 1, 2 * high - 1, generator=generator)
    tensor.erfinv_()
    tensor.mul_(std * math.sqrt(2.0)).add_(mean)
    return tensor.clamp_(min=a, max=b)  # erfinv can round to just outside [a, b]
    # END YOUR CODE
