"""Weight initialisation, in place and without recording gradients, matching torch.nn.init.

Why it matters: the scale of the initial weights decides whether activations and gradients
keep a sensible size as they pass through many layers. "fan_in" is how many inputs feed one
output unit; scaling by 1/√fan_in keeps the variance of a sum of fan_in terms near 1.
"""

from __future__ import annotations

import math

import torch


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through ``nonlinearity``."""
    # BEGIN SOLUTION
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
    # END SOLUTION
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """For a weight (out, in, *kernel): fan_in = in·prod(kernel), fan_out = out·prod(kernel)."""
    if tensor.dim() < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, "
            f"got shape {tuple(tensor.shape)}"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: torch.Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@torch.no_grad()
def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    # BEGIN SOLUTION
    return tensor.uniform_(a, b, generator=generator)
    # END SOLUTION


@torch.no_grad()
def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std²)."""
    # BEGIN SOLUTION
    return tensor.normal_(mean, std, generator=generator)
    # END SOLUTION


@torch.no_grad()
def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fill with ``val``."""
    # BEGIN SOLUTION
    return tensor.fill_(val)
    # END SOLUTION


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: U(-bound, bound), bound = gain · √(3 / fan)."""
    if tensor.numel() == 0:
        return tensor
    # BEGIN SOLUTION
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std  # a uniform on [-b, b] has standard deviation b/√3
    return uniform_(tensor, -bound, bound, generator=generator)
    # END SOLUTION


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: N(0, std²), std = gain / √fan."""
    if tensor.numel() == 0:
        return tensor
    # BEGIN SOLUTION
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator=generator)
    # END SOLUTION


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """Glorot initialisation: U(-a, a), a = gain · √(6 / (fan_in + fan_out))."""
    # BEGIN SOLUTION
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=generator)
    # END SOLUTION


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator=None) -> torch.Tensor:
    """Glorot initialisation: N(0, std²), std = gain · √(2 / (fan_in + fan_out))."""
    # BEGIN SOLUTION
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)
    # END SOLUTION


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

    # BEGIN SOLUTION
    def normal_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    low, high = normal_cdf((a - mean) / std), normal_cdf((b - mean) / std)
    # Φ⁻¹(u) = √2 · erfinv(2u − 1): draw 2u − 1 directly, then apply erfinv.
    tensor.uniform_(2 * low - 1, 2 * high - 1, generator=generator)
    tensor.erfinv_()
    tensor.mul_(std * math.sqrt(2.0)).add_(mean)
    return tensor.clamp_(min=a, max=b)  # erfinv can round to just outside [a, b]
    # END SOLUTION
