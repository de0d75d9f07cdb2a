"""Positional encodings: sinusoidal (Vaswani et al. 2017), rotary (RoPE, Su et al. 2021) and
learned, against references written here from the papers' definitions (torch.nn has none).

Tolerances: float64 references; strategies.TOLERANCES times 10 for the comparisons.
SinusoidalPositional and RotaryEmbedding keep their tables in float32 (buffers), so their
outputs are compared at about float32's tolerance (float64's times 1e5) whatever the input's
dtype.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
SIN_COS_SWAPPED_HINT = "even features (2i) take sin, odd features (2i+1) take cos"
HALVES_HINT = (
    "the sinusoidal table interleaves sin and cos (features 2i and 2i+1), it does not put all "
    "sines in the first half and all cosines in the second"
)
FREQUENCY_HINT = (
    "the frequencies are base^(−2i/d) with i = 0 .. d/2−1 counting PAIRS of features; "
    "looks like you used base^(−i/d) or base^(−2i/d) with i counting single features"
)
ROTATE_DIRECTION_HINT = (
    "the rotation goes the wrong way: rotate_half(x) = (−x₂, x₁), so the result is "
    "x·cos + rotate_half(x)·sin"
)
ROPE_PAIRS_HINT = (
    "minimod's RoPE pairs feature i with feature i + d/2 (the 'rotate half' layout), not the "
    "neighbours 2i and 2i+1"
)
RELATIVE_HINT = (
    "⟨RoPE(q, m), RoPE(k, n)⟩ must depend only on m − n: rotate both q and k by the angle of "
    "their own position p·θ_i, with the same θ_i"
)
NORM_HINT = "RoPE is a rotation: it must keep every vector's length (cos² + sin² = 1)"
PRECISION_HINT = (
    "close to RoPE, but not within the tolerance: the angles p·θ_i lose digits in float32 for "
    "large positions; compute them in float64, then cast cos and sin"
)
OFFSET_HINT = (
    "rotating tokens start..end-1 with offset=start must equal those rows of the full "
    "sequence's rotation: the token at position p takes row (angle) p, wherever its slice starts"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def _matches(out: torch.Tensor, candidate: torch.Tensor, factor: float = FACTOR) -> bool:
    return out.shape == candidate.shape and torch.allclose(
        out, candidate.to(out.dtype), **tolerance(out.dtype, factor)
    )


# -- sinusoidal ----------------------------------------------------------------------------


def paper_table(length: int, dim: int, base: float, exponent=lambda i, d: 2 * i / d) -> list:
    """PE(p, 2i) = sin(p / base^(2i/d)), PE(p, 2i+1) = cos(p / base^(2i/d)), in Python floats."""
    table = []
    for p in range(length):
        row = []
        for i in range(dim // 2):
            angle = p / base ** exponent(i, dim)
            row += [math.sin(angle), math.cos(angle)]
        table.append(row)
    return table


def sinusoidal_hint(length, dim, base, out) -> str | None:
    expected = torch.tensor(paper_table(length, dim, base), dtype=torch.float64)
    if _matches(out, expected):
        return None
    if out.shape != expected.shape:
        return f"sinusoidal_positions: expected shape {(length, dim)}, got {tuple(out.shape)}"
    swapped = expected.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    if _matches(out, swapped):
        return SIN_COS_SWAPPED_HINT
    halves = torch.cat([expected[:, 0::2], expected[:, 1::2]], dim=-1)
    if _matches(out, halves):
        return HALVES_HINT
    for exponent in (lambda i, d: i / d, lambda i, d: 4 * i / d):
        candidate = torch.tensor(paper_table(length, dim, base, exponent), dtype=torch.float64)
        if _matches(out, candidate):
            return FREQUENCY_HINT
    return "sinusoidal_positions differs from PE(p, 2i) = sin(p/base^(2i/d)), cos for 2i+1"


bases = st.sampled_from([10000.0, 100.0, 500000.0, 2.0])
even_dims = st.integers(1, 5).map(lambda half: 2 * half)


@given(length=st.integers(1, 40), dim=even_dims, base=bases, dtype=dtypes)
@example(length=1, dim=2, base=10000.0, dtype=torch.float32)
@example(length=40, dim=10, base=10000.0, dtype=torch.float64)
def test_sinusoidal_positions_match_the_paper(length, dim, base, dtype):
    out = impl.positional.sinusoidal_positions(length, dim, base, dtype=dtype)
    assert out.dtype == dtype, f"sinusoidal_positions(dtype={dtype}) returned {out.dtype}"
    hint = sinusoidal_hint(length, dim, base, out)
    assert hint is None, hint


def test_sinusoidal_positions_defaults():
    out = impl.positional.sinusoidal_positions(7, 6)
    assert out.dtype == torch.float32
    hint = sinusoidal_hint(7, 6, 10000.0, out)
    assert hint is None, hint


@given(
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    length=st.integers(1, 6),
    dim=even_dims,
    dtype=dtypes,
    seed=seeds,
)
@example(batch=(), length=6, dim=2, dtype=torch.float32, seed=0)  # exactly max_len
def test_sinusoidal_module_adds_the_table(batch, length, dim, dtype, seed):
    layer = impl.nn.SinusoidalPositional(dim, max_len=6, base=100.0)
    x = randn((*batch, length, dim), dtype, seed)
    table = torch.tensor(paper_table(length, dim, 100.0), dtype=dtype)
    factor = FACTOR if dtype == torch.float32 else 1e5  # float32 table (see the docstring)
    assert_same_forward_backward(layer, lambda t: t + table, [x], factor=factor)
    assert list(layer.parameters()) == [], "the sinusoidal table is fixed: no parameters"


def test_sinusoidal_module_defaults_raise_past_max_len_and_keep_no_state():
    layer = impl.nn.SinusoidalPositional(8)  # max_len=4096, base=10000
    x = torch.zeros(2, 4096, 8)
    out = layer(x)
    expected = torch.tensor(paper_table(4096, 8, 10000.0), dtype=torch.float32)
    torch.testing.assert_close(out[0], expected, **tolerance(torch.float32, FACTOR))
    with pytest.raises(ValueError):
        layer(torch.zeros(1, 4097, 8))
    assert dict(layer.state_dict()) == {}, "the table is a non-persistent buffer (not saved)"
    assert len(list(layer.buffers())) >= 1, "the table is a buffer (it moves with .to())"
    short = impl.nn.SinusoidalPositional(4, max_len=3)
    short(torch.zeros(3, 4))
    with pytest.raises(ValueError):
        short(torch.zeros(4, 4))


@pytest.mark.reference_only
def test_sinusoidal_bad_input_raises():
    from minimod.nn.positional import SinusoidalPositional, rotary_cos_sin, sinusoidal_positions

    with pytest.raises(ValueError, match=r"dim must be even, got 5"):
        sinusoidal_positions(3, 5)
    with pytest.raises(ValueError, match=r"dim must be even, got 3"):
        rotary_cos_sin(torch.arange(3), 3)
    with pytest.raises(ValueError, match=r"SinusoidalPositional.*length 5 exceeds max_len 4"):
        SinusoidalPositional(2, max_len=4)(torch.zeros(5, 2))


# -- rotary (RoPE) --------------------------------------------------------------------------


def complex_rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """RoPE with complex numbers: z_i = x_i + i·x_{i+d/2} times e^{i·p·θ_i}, θ_i = base^(−2i/d).
    x (..., T, d), positions (T,)."""
    half = x.shape[-1] // 2
    theta = base ** (-2 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angles = positions.to(torch.float64)[:, None] * theta  # (T, d/2)
    rotation = torch.polar(torch.ones_like(angles), angles).to(
        torch.complex64 if x.dtype == torch.float32 else torch.complex128
    )
    z = torch.complex(x[..., :half], x[..., half:]) * rotation
    return torch.cat([z.real, z.imag], dim=-1)


def rope(x, positions, base, dtype=torch.float64):
    """minimod's rotary_cos_sin + apply_rotary, as the chosen implementation defines them."""
    cos, sin = impl.positional.rotary_cos_sin(positions, x.shape[-1], base, dtype=dtype)
    return impl.positional.apply_rotary(x, cos, sin)


def rope_hint(x, positions, base, out) -> str | None:
    with torch.no_grad():
        if _matches(out, complex_rope(x, positions, base)):
            return None
        if _matches(out, complex_rope(x, -positions, base)):
            return ROTATE_DIRECTION_HINT
        d = x.shape[-1]
        halves = torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)  # neighbours as (i, i+d/2)
        order = torch.arange(d).unflatten(0, (2, -1)).T.flatten()  # back to the interleaving
        if _matches(out, complex_rope(halves, positions, base)[..., order]):
            return ROPE_PAIRS_HINT
        norms = (out.norm(dim=-1), x.norm(dim=-1))
        if not torch.allclose(*norms, **tolerance(x.dtype, FACTOR)):
            return NORM_HINT
        if torch.allclose(out, complex_rope(x, positions, base), rtol=1e-3, atol=1e-3):
            return PRECISION_HINT
    return "apply_rotary(x, *rotary_cos_sin(p)) differs from RoPE (see the lesson's formula)"


@given(
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    length=st.integers(1, 5),
    dim=even_dims,
    base=bases,
    dtype=dtypes,
    seed=seeds,
    max_position=st.sampled_from([5, 100, 3000]),
)
@example(batch=(), length=1, dim=2, base=10000.0, dtype=torch.float32, seed=0, max_position=5)
def test_rotary_matches_complex_rope(batch, length, dim, base, dtype, seed, max_position):
    generator = torch.Generator().manual_seed(seed + 1)
    positions = torch.randint(0, max_position, (length,), generator=generator)
    x = randn((*batch, length, dim), dtype, seed)
    with torch.no_grad():
        out = rope(x, positions, base, dtype)
    hint = rope_hint(x, positions, base, out)
    assert hint is None, hint
    assert_same_forward_backward(
        lambda t: rope(t, positions, base, dtype),
        lambda t: complex_rope(t, positions, base),
        [x],
        factor=FACTOR,
    )


@given(length=st.integers(1, 6), dim=even_dims, base=bases)
@example(length=3, dim=4, base=10000.0)
def test_rotary_cos_sin_table(length, dim, base):
    """cos/sin of p·θ_i, θ_i = base^(−2i/d), each frequency used for feature i and i + d/2."""
    positions = torch.arange(3, 3 + length)
    cos, sin = impl.positional.rotary_cos_sin(positions, dim, base, dtype=torch.float64)
    angles = [
        [p / base ** (2 * (j % (dim // 2)) / dim) for j in range(dim)] for p in range(3, 3 + length)
    ]
    expected_cos = torch.tensor([[math.cos(a) for a in row] for row in angles], dtype=torch.float64)
    expected_sin = torch.tensor([[math.sin(a) for a in row] for row in angles], dtype=torch.float64)
    torch.testing.assert_close(cos, expected_cos, **tolerance(torch.float64, FACTOR))
    torch.testing.assert_close(sin, expected_sin, **tolerance(torch.float64, FACTOR))
    default_cos, default_sin = impl.positional.rotary_cos_sin(positions, dim)
    assert default_cos.dtype == default_sin.dtype == torch.float32
    ten_thousand = torch.tensor(
        [
            [p / 10000.0 ** (2 * (j % (dim // 2)) / dim) for j in range(dim)]
            for p in range(3, 3 + length)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(default_cos, ten_thousand.cos().float(), **tolerance(torch.float32))
    torch.testing.assert_close(default_sin, ten_thousand.sin().float(), **tolerance(torch.float32))


@given(
    m=st.integers(0, 500),
    n=st.integers(0, 500),
    shift=st.integers(0, 500),
    dim=even_dims,
    base=bases,
    seed=seeds,
)
@example(m=0, n=0, shift=0, dim=2, base=10000.0, seed=0)
@example(m=7, n=2, shift=100, dim=8, base=10000.0, seed=1)
def test_rotary_dot_product_depends_only_on_the_offset(m, n, shift, dim, base, seed):
    q, k = randn((1, dim), torch.float64, seed), randn((1, dim), torch.float64, seed + 1)

    def score(m, n):
        return (rope(q, torch.tensor([m]), base) * rope(k, torch.tensor([n]), base)).sum()

    tol = dict(rtol=1e-7, atol=1e-7 * float(q.norm() * k.norm()))
    msg = lambda m_: f"{RELATIVE_HINT}\n{m_}"  # noqa: E731
    torch.testing.assert_close(score(m + shift, n + shift), score(m, n), **tol, msg=msg)
    relative = score(m - n, 0) if m >= n else score(0, n - m)
    torch.testing.assert_close(score(m, n), relative, **tol, msg=msg)


@given(length=st.integers(1, 6), dim=even_dims, base=bases, dtype=dtypes, seed=seeds)
def test_rotary_keeps_the_norm_and_position_zero_is_identity(length, dim, base, dtype, seed):
    x = randn((2, length, dim), dtype, seed)
    out = rope(x, torch.arange(100, 100 + length), base, dtype)
    torch.testing.assert_close(
        out.norm(dim=-1),
        x.norm(dim=-1),
        **tolerance(dtype, FACTOR),
        msg=lambda m: f"{NORM_HINT}\n{m}",
    )
    at_zero = rope(x, torch.zeros(length, dtype=torch.long), base, dtype)
    torch.testing.assert_close(
        at_zero, x, **tolerance(dtype), msg=lambda m: f"position 0 is a rotation by 0\n{m}"
    )


@given(
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    total=st.integers(1, 8),
    data=st.data(),
    dim=even_dims,
    base=bases,
    dtype=dtypes,
    seed=seeds,
)
def test_rotary_embedding_with_offset_equals_slicing_the_full_sequence(
    batch, total, data, dim, base, dtype, seed
):
    """What a KV cache relies on: rotating tokens start..end-1 with offset=start gives the rows
    start..end-1 of the full sequence's rotation, which is RoPE at those positions."""
    start = data.draw(st.integers(0, total - 1), label="start")
    end = data.draw(st.integers(start + 1, total), label="end")
    layer = impl.nn.RotaryEmbedding(dim, max_len=8, base=base)
    q, k = randn((*batch, total, dim), dtype, seed), randn((*batch, total, dim), dtype, seed + 1)
    with torch.no_grad():
        full_q, full_k = layer(q, k)
        part_q, part_k = layer(q[..., start:end, :], k[..., start:end, :], offset=start)
    for part, full in ((part_q, full_q), (part_k, full_k)):
        torch.testing.assert_close(
            part, full[..., start:end, :], **tolerance(dtype), msg=lambda m: f"{OFFSET_HINT}\n{m}"
        )

    def both(layer_or_reference):
        def run(q, k):
            return torch.cat(layer_or_reference(q, k), dim=-1)

        return run

    positions = torch.arange(start, end)
    reference = both(
        lambda q, k: (complex_rope(q, positions, base), complex_rope(k, positions, base))
    )
    assert_same_forward_backward(
        both(lambda q, k: layer(q, k, offset=start)),
        reference,
        [q[..., start:end, :], k[..., start:end, :]],
        factor=FACTOR if dtype == torch.float32 else 1e5,  # float32 tables (see the docstring)
    )


def test_rotary_embedding_defaults_limits_and_state():
    layer = impl.nn.RotaryEmbedding(4)  # max_len=4096, base=10000
    q, k = randn((1, 2, 4), torch.float32, 0), randn((1, 2, 4), torch.float32, 1)
    out_q, out_k = layer(q, k, offset=4094)  # the last two positions
    positions = torch.tensor([4094, 4095])
    torch.testing.assert_close(
        out_q, complex_rope(q, positions, 10000.0), **tolerance(torch.float32, 100)
    )
    torch.testing.assert_close(
        out_k, complex_rope(k, positions, 10000.0), **tolerance(torch.float32, 100)
    )
    with pytest.raises(ValueError):
        layer(q, k, offset=4095)
    assert dict(layer.state_dict()) == {}, "cos/sin are non-persistent buffers (not saved)"
    assert len(list(layer.buffers())) >= 1, "cos/sin are buffers (they move with .to())"
    assert list(layer.parameters()) == []
    layer.double()
    assert all(b.dtype == torch.float64 for b in layer.buffers())


@pytest.mark.reference_only
def test_rotary_and_learned_raise_past_max_len():
    from minimod.nn.positional import LearnedPositional, RotaryEmbedding

    x = torch.zeros(1, 3, 4)
    with pytest.raises(ValueError, match=r"RotaryEmbedding.*positions up to 5 exceed max_len 5"):
        RotaryEmbedding(4, max_len=5)(x, x, offset=3)
    with pytest.raises(ValueError, match=r"LearnedPositional.*positions up to 4 exceed max_len 4"):
        LearnedPositional(4, 4)(x, offset=2)


# -- learned --------------------------------------------------------------------------------


@given(
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    length=st.integers(1, 5),
    data=st.data(),
    dim=st.integers(1, 5),
    dtype=dtypes,
    seed=seeds,
)
@example(batch=(), length=5, data=None, dim=1, dtype=torch.float32, seed=0)
def test_learned_positional_adds_rows_from_offset(batch, length, data, dim, dtype, seed):
    max_len = 6
    offset = 0 if data is None else data.draw(st.integers(0, max_len - length), label="offset")
    layer = impl.nn.LearnedPositional(max_len, dim).to(dtype)
    assert {k: tuple(v.shape) for k, v in layer.state_dict().items()} == {
        "embedding.weight": (max_len, dim)
    }
    table = torch.nn.Embedding(max_len, dim).to(dtype)
    with torch.no_grad():
        table.weight.copy_(randn((max_len, dim), dtype, seed + 1))
    layer.load_state_dict({"embedding.weight": table.weight.detach().clone()})
    x = randn((*batch, length, dim), dtype, seed)
    assert_same_forward_backward(
        lambda t: layer(t, offset=offset),
        lambda t: t + table.weight[offset : offset + length],
        [x],
        list(layer.named_parameters()),
        [("embedding.weight", table.weight)],
    )
    untouched = torch.ones(max_len, dtype=torch.bool)
    untouched[offset : offset + length] = False
    assert (layer.embedding.weight.grad[untouched] == 0).all(), "only rows offset.. get gradient"


def test_learned_positional_defaults_and_limits():
    layer = impl.nn.LearnedPositional(512, 64)
    weight = layer.state_dict()["embedding.weight"]
    assert abs(weight.mean().item()) < 0.02 and abs(weight.std().item() - 1) < 0.02, (
        "the position table starts like nn.Embedding's: N(0, 1)"
    )
    x = torch.zeros(2, 3, 64)
    torch.testing.assert_close(layer(x), weight[:3].expand(2, 3, 64), rtol=0, atol=0)
    torch.testing.assert_close(layer(x, offset=509), weight[509:].expand(2, 3, 64), rtol=0, atol=0)
    with pytest.raises(ValueError):
        layer(x, offset=510)
    with pytest.raises(ValueError):
        layer(torch.zeros(513, 64))


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _table_cos_sin_swapped(length, dim, base):
    table = torch.tensor(paper_table(length, dim, base), dtype=torch.float64)
    return table.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)


def _table_in_halves(length, dim, base):
    angles = torch.arange(length)[:, None] / base ** (torch.arange(0, dim, 2) / dim)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _table_wrong_frequencies(length, dim, base):
    angles = torch.arange(length)[:, None] / base ** (torch.arange(dim // 2) / dim)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)


@pytest.mark.reference_only
def test_sinusoidal_hints_fire():
    for wrong, expected in (
        (_table_cos_sin_swapped, SIN_COS_SWAPPED_HINT),
        (_table_in_halves, HALVES_HINT),
        (_table_wrong_frequencies, FREQUENCY_HINT),
    ):
        assert sinusoidal_hint(5, 6, 10000.0, wrong(5, 6, 10000.0)) == expected
    right = torch.tensor(paper_table(5, 6, 10000.0))
    assert sinusoidal_hint(5, 6, 10000.0, right) is None


def _cos_sin(positions, dim, base):
    angles = positions.double()[:, None] * base ** (-torch.arange(0, dim, 2).double() / dim)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def _rope_wrong_direction(x, positions, base):
    cos, sin = _cos_sin(positions, x.shape[-1], base)
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([second, -first], dim=-1) * sin


def _rope_neighbour_pairs(x, positions, base):
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.double()[:, None] * theta
    z = torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous()) * torch.polar(
        torch.ones_like(angles), angles
    )
    return torch.view_as_real(z).flatten(-2)


def _rope_no_rotate_half(x, positions, base):
    cos, sin = _cos_sin(positions, x.shape[-1], base)
    return x * cos + x * sin


@pytest.mark.reference_only
def test_rotary_hints_fire():
    x, positions = randn((2, 3, 6), torch.float64, 0), torch.tensor([1, 5, 9])
    for wrong, expected in (
        (_rope_wrong_direction, ROTATE_DIRECTION_HINT),
        (_rope_neighbour_pairs, ROPE_PAIRS_HINT),
        (_rope_no_rotate_half, NORM_HINT),
    ):
        assert rope_hint(x, positions, 10000.0, wrong(x, positions, 10000.0)) == expected
    assert rope_hint(x, positions, 10000.0, complex_rope(x, positions, 10000.0)) is None
