"""Positional encodings: attention alone cannot tell positions apart, so we tell it.

- learned: an ``Embedding`` over positions 0..max_len−1 (GPT-2, BERT); see ``LearnedPositional``.
- sinusoidal (Vaswani et al. 2017): fixed, PE[p, 2i] = sin(p / base^(2i/d)),
  PE[p, 2i+1] = cos(p / base^(2i/d)); added to the token embeddings.
- rotary, RoPE (Su et al. 2021): rotate each pair of query/key features by an angle p·θ_i with
  θ_i = base^(−2i/d), so that q_m · k_n depends only on the offset m − n.
"""

from __future__ import annotations

import torch

from minimod.nn.embedding import Embedding
from minimod.nn.module import Module


def sinusoidal_positions(
    length: int, dim: int, base: float = 10000.0, dtype=torch.float32, device=None
) -> torch.Tensor:
    """The fixed sinusoidal table (length, dim): even features sin, odd features cos."""
    if dim % 2:
        raise ValueError(f"sinusoidal_positions: dim must be even, got {dim}")
    # BEGIN SOLUTION
    position = torch.arange(length, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angles = position * inv_freq  # (L, dim/2)
    table = torch.empty(length, dim, dtype=torch.float64, device=device)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.to(dtype)
    # END SOLUTION


def rotary_cos_sin(
    positions: torch.Tensor, dim: int, base: float = 10000.0, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the angles p·θ_i for the "rotate half" layout: each (*positions.shape, dim),
    the dim/2 frequencies θ_i = base^(−2i/dim) repeated for both halves."""
    if dim % 2:
        raise ValueError(f"rotary_cos_sin: dim must be even, got {dim}")
    # BEGIN SOLUTION
    inv_freq = base ** (
        -torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim
    )
    angles = positions.to(torch.float64)[..., None] * inv_freq  # (..., dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., dim)
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)
    # END SOLUTION


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (x_i, x_{i+d/2}) of x (..., T, d) by the angles whose cos/sin are
    given (T, d): x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁)."""
    # BEGIN SOLUTION
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * cos + rotated * sin
    # END SOLUTION


class SinusoidalPositional(Module):
    """Adds the sinusoidal table to (..., T, dim) inputs, T ≤ max_len (a non-persistent buffer:
    it is recomputed, never saved)."""

    def __init__(self, dim: int, max_len: int = 4096, base: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.register_buffer("table", sinusoidal_positions(max_len, dim, base), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-2]
        if length > self.max_len:
            raise ValueError(
                f"SinusoidalPositional: sequence length {length} exceeds max_len {self.max_len}"
            )
        # BEGIN SOLUTION
        return x + self.table[:length].to(x.dtype)
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"


class LearnedPositional(Module):
    """Adds a learned embedding of each position 0..T−1 to (..., T, dim) inputs."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.embedding = Embedding(max_len, dim)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        length = x.shape[-2]
        if offset + length > self.max_len:
            raise ValueError(
                f"LearnedPositional: positions up to {offset + length - 1} exceed "
                f"max_len {self.max_len}"
            )
        # BEGIN SOLUTION
        positions = torch.arange(offset, offset + length, device=x.device)
        return x + self.embedding(positions)
        # END SOLUTION


class RotaryEmbedding(Module):
    """RoPE for per-head queries and keys (..., T, head_dim); cos/sin tables are buffers."""

    def __init__(self, head_dim: int, max_len: int = 4096, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim, self.max_len, self.base = head_dim, max_len, base
        cos, sin = rotary_cos_sin(torch.arange(max_len), head_dim, base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate q and k whose positions start at ``offset`` (use it with a KV cache)."""
        length = q.shape[-2]
        if offset + length > self.max_len:
            raise ValueError(
                f"RotaryEmbedding: positions up to {offset + length - 1} exceed "
                f"max_len {self.max_len}"
            )
        # BEGIN SOLUTION
        cos = self.cos[offset : offset + length].to(q.dtype)
        sin = self.sin[offset : offset + length].to(q.dtype)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"
