"""Lesson 9's pitfalls: sinusoidal, learned and rotary positions."""

from pitfalls import Mutant

T = "tests/test_positional.py::"

MUTANTS = [
    Mutant(
        "sin and cos swapped",
        "table[:, 0::2] = torch.sin(angles)\n    table[:, 1::2] = torch.cos(angles)",
        "table[:, 0::2] = torch.cos(angles)\n    table[:, 1::2] = torch.sin(angles)",
        "even features (2i) take sin",
        (T + "test_sinusoidal_positions_match_the_paper",),
    ),
    Mutant(
        "sin and cos swapped",
        "table[:, 0::2] = torch.sin(angles)\n    table[:, 1::2] = torch.cos(angles)",
        "table[:, : dim // 2] = torch.sin(angles)\n    table[:, dim // 2 :] = torch.cos(angles)",
        "does not put all sines in the first half",
        (T + "test_sinusoidal_positions_match_the_paper",),
    ),
    Mutant(
        "θ_i = base^(−i/d)",
        "inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)",
        "inv_freq = base ** (-torch.arange(0, dim // 2, dtype=torch.float64, device=device) / dim)",
        "counting PAIRS of features",
        (T + "test_sinusoidal_positions_match_the_paper",),
    ),
    Mutant(
        "Rotating the wrong way",
        "rotated = torch.cat([-second, first], dim=-1)",
        "rotated = torch.cat([second, -first], dim=-1)",
        "the rotation goes the wrong way",
        (T + "test_rotary_matches_complex_rope",),
    ),
    Mutant(
        "Pairing neighbours (2i, 2i+1) in RoPE",
        "    first, second = x.chunk(2, dim=-1)\n"
        "    rotated = torch.cat([-second, first], dim=-1)\n"
        "    return x * cos + rotated * sin",
        "    first, second = x[..., 0::2], x[..., 1::2]\n"
        "    cos, sin = cos[..., : x.shape[-1] // 2], sin[..., : x.shape[-1] // 2]\n"
        "    pairs = [first * cos - second * sin, first * sin + second * cos]\n"
        "    return torch.stack(pairs, dim=-1).flatten(-2)",
        "not the neighbours 2i and 2i+1",
        (T + "test_rotary_matches_complex_rope",),
    ),
    Mutant(
        "Ignoring the offset",
        "cos = self.cos[offset : offset + length].to(q.dtype)\n"
        "        sin = self.sin[offset : offset + length].to(q.dtype)",
        "cos = self.cos[:length].to(q.dtype)\n        sin = self.sin[:length].to(q.dtype)",
        "wherever its slice starts",
        (T + "test_rotary_embedding_with_offset_equals_slicing_the_full_sequence",),
    ),
    Mutant(
        "Angles computed in float32 for large positions",
        "angles = positions.to(torch.float64)[..., None] * inv_freq  # (..., dim/2)",
        "angles = positions.to(torch.float32)[..., None] * inv_freq.float()",
        "compute them in float64",
        (T + "test_rotary_matches_complex_rope",),
    ),
]
