"""Lesson 9: Positional encodings -- sinusoidal, learned and rotary (RoPE)

The idea
Attention alone cannot tell positions apart: shuffle the tokens and its outputs are shuffled
the same way, since nothing in softmax(Q Kᵀ) V says where a token is ("dog bites man" and
"man bites dog" look alike). A positional encoding puts the position back in.

Sinusoidal (Vaswani et al. 2017): a fixed table, added to the token embeddings
    PE[p, 2i]   = sin(p · θ_i)        θ_i = base^(−2i/d),  i = 0 .. d/2 − 1 counts PAIRS
    PE[p, 2i+1] = cos(p · θ_i)        base = 10000;  table (length, d), d even
Each pair of features is a clock hand turning at its own speed, from 1 radian per position
(i = 0) down to one turn in about 2π · base positions. Moving k positions on turns each hand
by a fixed angle: PE[p + k] is a rotation of PE[p], so relative offsets are easy to read.
Compute the angles in float64 (p · θ reaches thousands of radians, where float32 has lost
most of its digits) and convert to the requested dtype at the end.
SinusoidalPositional keeps the table in a non-persistent buffer (it moves with .to() but is
not saved: it is recomputed) and adds its first T rows to x (..., T, d).

Learned (GPT-2, BERT): an Embedding over positions 0 .. max_len − 1
LearnedPositional.forward(x, offset=0) adds rows offset .. offset + T − 1 to x (..., T, d);
offset = the number of tokens that came before (a KV cache feeds only the new ones).

Rotary, RoPE (Su et al. 2021): rotate the queries and keys instead of adding anything
Pair feature i with feature i + d/2 (the "rotate half" layout of GPT-NeoX and Llama) and turn
each pair by the angle p · θ_i:
    cos, sin = rotary_cos_sin(positions, d): cos and sin of p · θ_i, each (*positions.shape, d),
               the d/2 frequencies repeated for both halves: [θ_0 .. θ_(d/2−1), θ_0 .. θ_(d/2−1)]
    apply_rotary(x, cos, sin) = x · cos + rotate_half(x) · sin,  rotate_half((x₁, x₂)) = (−x₂, x₁)
               x (..., T, d) with x₁, x₂ its two halves; cos, sin (T, d) broadcast
Rotations compose: ⟨R(m) q, R(n) k⟩ = ⟨q, R(n − m) k⟩. So a query-key score depends only on
the offset m − n, and every vector keeps its length. RotaryEmbedding precomputes cos and sin
for max_len positions (buffers) and rotates q and k (..., T, head_dim) whose first position is
`offset`, taking rows offset .. offset + T − 1 of its tables.

A worked example you can check by hand: d = 2 (one pair, θ_0 = base^0 = 1, so the angle is the
position itself), q = k = (1, 0). apply_rotary turns (x₁, x₂) into (x₁ cos a − x₂ sin a,
x₂ cos a + x₁ sin a): the query at position 2 becomes (cos 2, sin 2) = (−0.416, 0.909), the key
at position 1 becomes (cos 1, sin 1) = (0.540, 0.841), and their score is
−0.416 · 0.540 + 0.909 · 0.841 = 0.540 = cos(2 − 1). Move both on by 10 positions (12 and 11):
the score is cos(1) = 0.540 again -- only the offset counts, as the identity above says.

What you write
sinusoidal_positions, rotary_cos_sin, apply_rotary, and the forward of SinusoidalPositional,
LearnedPositional and RotaryEmbedding. Argument checks and the buffers are given.

Classic pitfalls
- sin and cos swapped, or all sines first and all cosines second (that is RoPE's layout).
- θ_i = base^(−i/d): i counts pairs of features, so the exponent is 2i/d.
- Rotating the wrong way: rotate_half gives (−x₂, x₁), not (x₂, −x₁).
- Pairing neighbours (2i, 2i+1) in RoPE: here feature i pairs with feature i + d/2.
- Ignoring the offset: a token at position p needs row (or angle) p, wherever its slice starts.
- Angles computed in float32 for large positions.

Run it
Once `minimod exercises check 9` passes, the text-to-speech model of lesson 30 trains with
your sinusoidal positions (added to its phoneme encodings and to its frames) on eSpeak NG's
digit strings (after `make real`; --use-mine swaps in every lesson that passes):
    minimod pretrain tts --use-mine --out runs/e09
prints which lessons are yours, the loss every 10 steps (about 7.7 at step 10, 5.3 at step 20),
then "done: step 40, held-out mel_l1 4.106, duration_mse 0.1737, length_error 12.4" (about
75 s on 2 busy shared cores). Then `minimod speak --from runs/e09 --text 'three one four'
--out speech.wav` prints the phonemes it said and "0.80 s of audio", and speech.png puts its
frames above eSpeak's: after 40 steps, a steady hum (the average spectrum) of about the right
length (70 frames for eSpeak's 83), not yet words; `--preset baby` (3000 steps) speaks
digits.
Next: lesson 10 (GPT: the pre-LayerNorm block, weight tying, sampling and the KV cache)

Check it: minimod exercises check 9
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e09_positional import apply_rotary, rotary_cos_sin, sinusoidal_positions
    >>> [[round(x, 4) for x in row] for row in sinusoidal_positions(2, 4).tolist()]
    [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 0.9999]]
    >>> q, k = torch.randn(1, 8), torch.randn(1, 8)
    >>> def score(m, n):
    ...     rotated_q = apply_rotary(q, *rotary_cos_sin(torch.tensor([m]), 8))
    ...     rotated_k = apply_rotary(k, *rotary_cos_sin(torch.tensor([n]), 8))
    ...     return (rotated_q * rotated_k).sum().item()
    >>> abs(score(7, 3) - score(104, 100)) < 1e-4  # only the offset m − n counts
    True
    >>> torch.allclose(apply_rotary(q, *rotary_cos_sin(torch.tensor([5]), 8)).norm(), q.norm())
    True
"""

# Lesson 9 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import torch

from minimod.nn.embedding import Embedding
from minimod.nn.module import Module

# ---- from minimod/nn/positional.py ----------------------------------------


def sinusoidal_positions(
    length: int, dim: int, base: float = 10000.0, dtype=torch.float32, device=None
) -> torch.Tensor:
    """The fixed sinusoidal table (length, dim): even features sin, odd features cos."""
    if dim % 2:
        raise ValueError(f"sinusoidal_positions: dim must be even, got {dim}")
    # BEGIN YOUR CODE
    position = torch.arange(length, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angles = position * inv_freq  # (L, dim/2)
    table = torch.empty(length, dim, dtype=torch.float64, device=device)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.to(dtype)
    # END YOUR CODE


def rotary_cos_sin(
    positions: torch.Tensor, dim: int, base: float = 10000.0, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the angles p·θ_i for the "rotate half" layout: each (*positions.shape, dim),
    the dim/2 frequencies θ_i = base^(−2i/dim) repeated for both halves."""
    if dim % 2:
        raise ValueError(f"rotary_cos_sin: dim must be even, got {dim}")
    # BEGIN YOUR CODE
    inv_freq = base ** (
        -torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim
    )
    angles = positions.to(torch.float64)[..., None] * inv_freq  # (..., dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., dim)
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)
    # END YOUR CODE


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (x_i, x_{i+d/2}) of x (..., T, d) by the angles whose cos/sin are
    given (T, d): x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁)."""
    # BEGIN YOUR CODE
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * cos + rotated * sin
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        return x + self.table[:length].to(x.dtype)
        # END YOUR CODE

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
        # BEGIN YOUR CODE
        positions = torch.arange(offset, offset + length, device=x.device)
        return x + self.embedding(positions)
        # END YOUR CODE


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
        # BEGIN YOUR CODE
        cos = self.cos[offset : offset + length].to(q.dtype)
        sin = self.sin[offset : offset + length].to(q.dtype)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # END YOUR CODE

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"
