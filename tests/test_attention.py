"""Attention: F.scaled_dot_product_attention (and its Attention Function), causal_mask,
masked_softmax and MultiheadAttention (add_bias_kv, add_zero_attn too) against
torch.nn.functional.scaled_dot_product_attention / torch.nn.MultiheadAttention.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): a softmax over scores of scale up to ~10² followed by two matmuls magnifies
rounding, above all in the gradients.

Where minimod and torch differ on purpose: a query whose keys are ALL masked gets weights 0
(output 0, no NaN anywhere). torch's scaled_dot_product_attention does the same, but
torch.nn.MultiheadAttention gives NaN there, so the MultiheadAttention comparisons keep one key
open in every row and minimod's zero behaviour is tested on its own.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, assert_same_state_dict_layout, tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
SCALE_D_HINT = (
    "looks like you scaled the scores by 1/d; the default scale is 1/√d "
    "(d = the query's last dimension)"
)
SCALE_IGNORED_HINT = "when `scale` is given, use it instead of 1/√d"
WRONG_AXIS_HINT = (
    "looks like the softmax ran over the queries; the rows of the weights should sum to 1 "
    "over the keys (softmax over the last axis of Q Kᵀ)"
)
DIAGONAL_HINT = (
    "the causal mask must let a token see itself: query i attends to keys j ≤ i "
    "(the diagonal included)"
)
POLARITY_HINT = (
    "looks like the mask's polarity is inverted: in scaled_dot_product_attention a boolean "
    "attn_mask is True where attention is ALLOWED (and is_causal hides the future, j > i)"
)
ALL_MASKED_HINT = (
    "a query whose keys are all masked must give weights 0 (output 0), not NaN: softmax of a "
    "row of −inf is 0/0 -- subtract a finite max and divide by max(sum, tiny) or use where()"
)
KEY_PADDING_HINT = (
    "key_padding_mask is True where a key is PADDING (ignored), the opposite of "
    "scaled_dot_product_attention's boolean attn_mask"
)
MHA_ATTN_MASK_HINT = (
    "MultiheadAttention's boolean attn_mask is True where attention is NOT allowed, the "
    "opposite of scaled_dot_product_attention's"
)
WEIGHTS_SUM_HINT = "each row of the attention weights must sum to 1 over the keys (last axis)"
HEAD_LAYOUT_HINT = (
    'each head owns a contiguous block of D = E / H features: split with "b t (h d)", '
    'not "b t (d h)"'
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def random_bools(shape, seed, p_true=0.7) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p_true


def _matches(out: torch.Tensor, candidate: torch.Tensor) -> bool:
    """Equal up to the tolerance, counting NaN in ``out`` as 0 (a naive fully-masked row)."""
    if out.shape != candidate.shape:
        return False
    return bool(
        torch.allclose(torch.nan_to_num(out, nan=0.0), candidate, **tolerance(out.dtype, FACTOR))
    )


# -- an independent reference and the hints ------------------------------------------------


def reference_attention(
    q, k, v, allowed=None, additive=None, scale=None, softmax_dim=-1
) -> torch.Tensor:
    """softmax(Q Kᵀ·scale + additive, over ``softmax_dim``) V with ``allowed`` (bool) applied and
    fully-masked rows as 0; written from the formula, to build the hints' candidates."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if additive is not None:
        scores = scores + additive
    if allowed is not None:
        scores = scores.masked_fill(~allowed, -math.inf)
    return torch.nan_to_num(torch.softmax(scores, softmax_dim), nan=0.0) @ v


def sdpa_hint(q, k, v, attn_mask, is_causal, scale, out) -> str | None:
    """Name the classic scaled-dot-product-attention mistake that ``out`` shows, if any."""
    with torch.no_grad():
        right = TF.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale
        )
        if out.shape == right.shape and torch.allclose(out, right, **tolerance(q.dtype, FACTOR)):
            return None
        has_nan = bool(torch.isnan(out).any())
        if has_nan and _matches(out, right):
            return ALL_MASKED_HINT
        length, source_length = q.shape[-2], k.shape[-2]
        allowed, additive = None, None
        if is_causal:
            allowed = torch.ones(length, source_length, dtype=torch.bool).tril()
        elif attn_mask is not None and attn_mask.dtype == torch.bool:
            allowed = attn_mask
        elif attn_mask is not None:
            additive = attn_mask
        if scale is None and q.shape[-1] > 1:
            if _matches(out, reference_attention(q, k, v, allowed, additive, 1 / q.shape[-1])):
                return SCALE_D_HINT
        if scale is not None and _matches(out, reference_attention(q, k, v, allowed, additive)):
            return SCALE_IGNORED_HINT
        if _matches(out, reference_attention(q, k, v, allowed, additive, scale, softmax_dim=-2)):
            return WRONG_AXIS_HINT
        if is_causal:
            strict = torch.ones(length, source_length, dtype=torch.bool).tril(-1)
            if _matches(out, reference_attention(q, k, v, strict, None, scale)):
                return DIAGONAL_HINT
        if allowed is not None:
            if _matches(out, reference_attention(q, k, v, ~allowed, additive, scale)):
                return POLARITY_HINT
    return "the output has NaN where torch's has none" if has_nan else None


def assert_hint_free(hint: str | None) -> None:
    assert hint is None, hint


# -- scaled_dot_product_attention ----------------------------------------------------------


def _sub_broadcast(draw, shape: tuple, min_dims: int = 0) -> tuple:
    """A shape that broadcasts to ``shape``: drop some leading axes, set some axes to 1."""
    drop = draw(st.integers(0, max(0, len(shape) - min_dims)))
    kept = shape[drop:]
    ones = draw(st.lists(st.booleans(), min_size=len(kept), max_size=len(kept)))
    return tuple(1 if one else side for side, one in zip(kept, ones, strict=True))


@st.composite
def sdpa_cases(draw):
    """Shapes of q (..., L, d), k (..., S, d), v (..., S, dv) whose batch axes broadcast, and a
    mask option: none, causal, boolean or additive float (with a shape that broadcasts)."""
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    length, source_length = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    d, dv = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    q_batch, k_batch, v_batch = (_sub_broadcast(draw, batch) for _ in range(3))
    score_batch = torch.broadcast_shapes(q_batch, k_batch)
    mask_kind = draw(st.sampled_from([None, "causal", "bool", "float"]))
    mask_shape = None
    if mask_kind in ("bool", "float"):
        mask_shape = _sub_broadcast(draw, (*score_batch, length, source_length), min_dims=1)
    return dict(
        q=(*q_batch, length, d),
        k=(*k_batch, source_length, d),
        v=(*v_batch, source_length, dv),
        mask_kind=mask_kind,
        mask_shape=mask_shape,
    )


def make_mask(kind, shape, dtype, seed):
    if kind == "bool":
        return random_bools(shape, seed)
    if kind == "float":  # additive: finite values, and −inf (masked) here and there
        values = randn(shape, dtype, seed)
        return values.masked_fill(random_bools(shape, seed + 1, p_true=0.2), -math.inf)
    return None


def sdpa_call(function, is_causal, scale, mask=None):
    """A function of (q, k, v[, float mask]) for assert_same_forward_backward."""

    def run(q, k, v, *float_mask):
        attn_mask = float_mask[0] if float_mask else mask
        return function(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)

    return run


@given(
    case=sdpa_cases(),
    scale=st.none() | st.sampled_from([0.1, 1.0, 2.5]),
    dtype=dtypes,
    seed=seeds,
    magnitude=st.sampled_from([1.0, 0.01, 3.0]),
)
@example(
    case=dict(q=(1, 4), k=(1, 4), v=(1, 2), mask_kind="causal", mask_shape=None),
    scale=None,
    dtype=torch.float32,
    seed=0,
    magnitude=1.0,
)
@example(  # causal with L < S and L > S: torch aligns the mask top-left (j ≤ i)
    case=dict(q=(2, 3, 4), k=(2, 5, 4), v=(2, 5, 3), mask_kind="causal", mask_shape=None),
    scale=None,
    dtype=torch.float64,
    seed=1,
    magnitude=1.0,
)
@example(
    case=dict(q=(5, 2), k=(3, 2), v=(3, 2), mask_kind="causal", mask_shape=None),
    scale=0.5,
    dtype=torch.float32,
    seed=2,
    magnitude=1.0,
)
@example(  # (B, 1, L, S) boolean mask over (B, H, L, S) scores
    case=dict(
        q=(2, 3, 4, 2), k=(2, 3, 5, 2), v=(2, 3, 5, 2), mask_kind="bool", mask_shape=(2, 1, 4, 5)
    ),
    scale=None,
    dtype=torch.float64,
    seed=3,
    magnitude=1.0,
)
@example(  # (1, S) additive mask; q shared by every batch element of k and v
    case=dict(q=(4, 3), k=(2, 5, 3), v=(2, 5, 1), mask_kind="float", mask_shape=(1, 5)),
    scale=None,
    dtype=torch.float32,
    seed=4,
    magnitude=3.0,
)
def test_sdpa_matches_torch(case, scale, dtype, seed, magnitude):
    q, k, v = (randn(case[name], dtype, seed + i, magnitude) for i, name in enumerate("qkv"))
    kind, is_causal = case["mask_kind"], case["mask_kind"] == "causal"
    mask = make_mask(kind, case["mask_shape"], dtype, seed + 3)
    with torch.no_grad():
        out = impl.F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale
        )
    assert_hint_free(sdpa_hint(q, k, v, mask, is_causal, scale, out))
    inputs = [q, k, v] + ([mask] if kind == "float" else [])  # a float mask gets a gradient too
    fixed_mask = mask if kind == "bool" else None
    assert_same_forward_backward(
        sdpa_call(impl.F.scaled_dot_product_attention, is_causal, scale, fixed_mask),
        sdpa_call(TF.scaled_dot_product_attention, is_causal, scale, fixed_mask),
        inputs,
        factor=FACTOR,
    )


@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    length=st.integers(1, 5),
    source_length=st.integers(1, 5),
    d=st.integers(1, 4),
    float_mask=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
@example(batch=(), length=1, source_length=1, d=1, float_mask=False, dtype=torch.float32, seed=0)
def test_sdpa_fully_masked_rows_are_zero_without_nan(
    batch, length, source_length, d, float_mask, dtype, seed
):
    """minimod's definition: a query whose keys are all masked gets output 0, and no NaN appears
    in the output or in any gradient; the other rows are unaffected."""
    q, k, v = (
        randn((*batch, n, d), dtype, seed + i)
        for i, n in enumerate((length, source_length, source_length))
    )
    allowed = random_bools((*batch, length, source_length), seed + 3)
    blocked_rows = random_bools((*batch, length), seed + 4, p_true=0.5)
    blocked_rows[(0,) * len(batch) + (0,)] = True  # at least one fully masked row
    allowed = allowed & ~blocked_rows[..., None]
    mask = allowed
    if float_mask:
        mask = randn(allowed.shape, dtype, seed + 5).masked_fill(~allowed, -math.inf)
    inputs = [t.clone().requires_grad_() for t in (q, k, v)] + (
        [mask.clone().requires_grad_()] if float_mask else []
    )
    out = impl.F.scaled_dot_product_attention(
        *inputs[:3], attn_mask=inputs[3] if float_mask else mask
    )
    if torch.isnan(out).any():
        raise AssertionError(ALL_MASKED_HINT)
    assert (out[blocked_rows] == 0).all(), "rows whose keys are all masked must be exactly 0"
    (out * randn(out.shape, dtype, 99)).sum().backward()
    for name, t in zip(("query", "key", "value", "attn_mask"), inputs, strict=False):
        assert t.grad is not None, f"{name} got no gradient"
        assert not torch.isnan(t.grad).any(), f"NaN in the gradient of {name}: {ALL_MASKED_HINT}"
    assert (inputs[0].grad[blocked_rows] == 0).all(), "a fully masked query has no gradient"
    # The other rows equal torch's on a mask in which the blocked rows attend to everything.
    open_mask = allowed | blocked_rows[..., None]
    if float_mask:
        open_mask = mask.masked_fill(blocked_rows[..., None], 0.0)
    expected = TF.scaled_dot_product_attention(q, k, v, attn_mask=open_mask)
    torch.testing.assert_close(
        out.detach()[~blocked_rows], expected[~blocked_rows], **tolerance(dtype, FACTOR)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sdpa_defaults_and_dropout_zero_are_exact(dtype):
    q, k, v = randn((2, 3, 4), dtype, 0), randn((2, 5, 4), dtype, 1), randn((2, 5, 3), dtype, 2)
    sdpa = impl.F.scaled_dot_product_attention
    plain = sdpa(q, k, v)
    torch.testing.assert_close(sdpa(q, k, v, None, 0.0, False, None), plain, rtol=0, atol=0)
    torch.testing.assert_close(sdpa(q, k, v, dropout_p=0.0), plain, rtol=0, atol=0)
    torch.testing.assert_close(plain, sdpa(q, k, v), rtol=0, atol=0)  # deterministic
    torch.testing.assert_close(
        plain, TF.scaled_dot_product_attention(q, k, v), **tolerance(dtype, FACTOR)
    )


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_sdpa_dropout_drops_weights_and_keeps_the_mean(p):
    """With V = identity the output is the (dropped-out) weight matrix itself: a fraction p of
    it is 0, the survivors are weight / (1 - p), and the mean over many draws is unchanged."""
    n, length, source_length = 4000, 3, 4
    q = randn((1, length, 2), torch.float64, 0).expand(n, length, 2)
    k = randn((1, source_length, 2), torch.float64, 1).expand(n, source_length, 2)
    v = torch.eye(source_length, dtype=torch.float64).expand(n, source_length, source_length)
    weights = TF.scaled_dot_product_attention(q[:1], k[:1], v[:1])[0]
    out = impl.F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    dropped = out == 0
    fraction = dropped.double().mean().item()
    # σ of the fraction ≈ sqrt(p(1-p)/48000) ≤ 0.0023; allow ~6 σ.
    assert abs(fraction - p) < 0.015, f"expected a fraction p={p} of zero weights, got {fraction}"
    survivors = torch.where(dropped, weights / (1 - p), out)
    torch.testing.assert_close(
        survivors,
        (weights / (1 - p)).expand_as(out),
        **tolerance(torch.float64),
        msg="surviving weights must be scaled by 1/(1 - p) (dropout on the attention weights)",
    )
    mean, std = out.mean(0), out.std(0)
    limit = 6 * std / math.sqrt(n) + 1e-12
    assert ((mean - weights).abs() <= limit).all(), "dropout must keep the expected output"


# -- causal_mask and masked_softmax ---------------------------------------------------------


def causal_mask_hint(length, source_length, offset, out) -> str | None:
    expected = torch.tensor(
        [[j <= i + offset for j in range(source_length)] for i in range(length)]
    )
    if out.shape == expected.shape and out.dtype == torch.bool and torch.equal(out, expected):
        return None
    if out.shape != expected.shape:
        return f"causal_mask: expected shape {(length, source_length)}, got {tuple(out.shape)}"
    if out.dtype != torch.bool:
        return f"causal_mask returns a boolean mask (True = may attend), got {out.dtype}"
    if torch.equal(out, torch.ones_like(out).tril(offset - 1)):
        return DIAGONAL_HINT
    if torch.equal(out, ~expected):
        return "causal_mask is True where attention is ALLOWED (j ≤ i + offset), not the reverse"
    if offset and torch.equal(out, torch.ones_like(out).tril()):
        return "offset shifts the diagonal: query i may see keys j ≤ i + offset"
    return "causal_mask: query i may attend to keys j ≤ i + offset"


@given(length=st.integers(1, 6), source_length=st.integers(1, 8), offset=st.integers(0, 6))
@example(length=1, source_length=1, offset=0)
@example(length=3, source_length=5, offset=2)
def test_causal_mask(length, source_length, offset):
    out = impl.attention.causal_mask(length, source_length, offset)
    assert_hint_free(causal_mask_hint(length, source_length, offset, out))


@given(length=st.integers(1, 6))
def test_causal_mask_defaults_to_square_without_offset(length):
    out = impl.attention.causal_mask(length)
    assert_hint_free(causal_mask_hint(length, length, 0, out))


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)),
    dtype=dtypes,
    seed=seeds,
    magnitude=st.sampled_from([1.0, 100.0, 1e4]),
)
@example(shape=(1, 1, 1), dtype=torch.float32, seed=0, magnitude=1.0)
def test_masked_softmax(shape, dtype, seed, magnitude):
    """Softmax over the last axis; −inf scores get 0; all-−inf rows are all 0; the other rows
    are torch.softmax's. masked_softmax works in place, inside Attention's forward: its
    gradient is Attention's backward, checked by the scaled_dot_product_attention tests."""
    masked = random_bools(shape, seed + 1, p_true=0.4)
    masked[(0,) * (len(shape) - 1)] = True  # one fully masked row at least
    scores = randn(shape, dtype, seed, magnitude).masked_fill(masked, -math.inf)
    full = masked.all(-1, keepdim=True)
    expected = torch.where(full, 0.0, torch.softmax(torch.where(full, 0.0, scores), -1))
    out = impl.attention.masked_softmax(scores.clone())
    if torch.isnan(out).any():
        raise AssertionError(ALL_MASKED_HINT)
    assert (out[masked] == 0).all(), "masked (−inf) scores must get weight 0"
    sums = out.sum(-1)
    torch.testing.assert_close(
        sums,
        (~full[..., 0]).to(dtype),
        **tolerance(dtype),
        msg=lambda m: f"{WEIGHTS_SUM_HINT}\n{m}",
    )
    torch.testing.assert_close(out, expected, **tolerance(dtype, FACTOR))


# -- MultiheadAttention ---------------------------------------------------------------------


@st.composite
def mha_cases(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    layout = draw(st.sampled_from(["batch_first", "seq_first", "unbatched"]))
    self_attention = draw(st.booleans())
    length = draw(st.integers(1, 4))
    return dict(
        heads=heads,
        embed_dim=heads * head_dim,
        batch=1 if layout == "unbatched" else draw(st.integers(1, 3)),
        length=length,
        source_length=length if self_attention else draw(st.integers(1, 4)),
        layout=layout,
        batch_first=layout != "seq_first" if layout != "unbatched" else draw(st.booleans()),
        self_attention=self_attention,
        key_padding=draw(st.booleans()),
        attn_mask=draw(st.sampled_from([None, "2d", "3d"])),
        mask_kind=draw(st.sampled_from(["bool", "float"])),
        bias=draw(st.booleans()),
    )


def mha_masks(case, dtype, seed):
    """(key_padding_mask, attn_mask) in torch.nn.MultiheadAttention's convention (True = NOT
    allowed, or additive floats), always leaving one key open in every row (torch gives NaN
    for a row with every key masked)."""
    n, h, length, s = case["batch"], case["heads"], case["length"], case["source_length"]
    unbatched = case["layout"] == "unbatched"
    open_key = seed % s
    kpm = am = None
    if case["key_padding"]:
        kpm = random_bools((n, s), seed + 10, p_true=0.3)
        kpm[:, open_key] = False
        kpm = kpm[0] if unbatched else kpm
    if case["attn_mask"] is not None:
        shape = (length, s) if case["attn_mask"] == "2d" else (n * h, length, s)
        am = random_bools(shape, seed + 11, p_true=0.3)
        am[..., open_key] = False
    if case["mask_kind"] == "float":
        kpm, am = (
            None if m is None else randn(m.shape, dtype, seed + 12 + i).masked_fill(m, -math.inf)
            for i, m in enumerate((kpm, am))
        )
    return kpm, am


def mha_inputs(case, dtype, seed):
    n, length, s, e = case["batch"], case["length"], case["source_length"], case["embed_dim"]

    def shaped(t):
        return {"batch_first": (n, t, e), "seq_first": (t, n, e), "unbatched": (t, e)}[
            case["layout"]
        ]

    if case["self_attention"]:
        return [randn(shaped(length), dtype, seed)]
    return [
        randn(shaped(length), dtype, seed),
        randn(shaped(s), dtype, seed + 1),
        randn(shaped(s), dtype, seed + 2),
    ]


def mha_call(module, kpm, am, **kwargs):
    def run(query, key=None, value=None):
        if key is None:  # self-attention: the very same tensor three times
            key = value = query
        return module(query, key, value, key_padding_mask=kpm, attn_mask=am, **kwargs)[0]

    return run


def randomise(module, seed):
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.copy_(randn(p.shape, p.dtype, seed + i, 0.5))


def mha_pair(embed_dim, heads, dtype, seed, **kwargs):
    """minimod's and torch's MultiheadAttention with the same random weights (biases too)."""
    twin = torch.nn.MultiheadAttention(embed_dim, heads, **kwargs).to(dtype)
    mine = impl.nn.MultiheadAttention(embed_dim, heads, **kwargs).to(dtype)
    assert_same_state_dict_layout(mine, twin)
    randomise(twin, seed)
    result = mine.load_state_dict(twin.state_dict())
    assert not getattr(result, "missing_keys", []), result
    return mine, twin


def reference_mha(twin, query, key, value, kpm=None, am=None, interleaved=False) -> torch.Tensor:
    """MultiheadAttention's output from the formula, with torch's weights and mask conventions
    but minimod's rule for a query with every key masked (its attention output is 0).
    ``interleaved``: the classic mistake, heads split as "b t (d h)"."""
    e, h = twin.embed_dim, twin.num_heads
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query[None], key[None], value[None]
        kpm = None if kpm is None else kpm[None]
    elif not twin.batch_first:
        query, key, value = (x.transpose(0, 1) for x in (query, key, value))
    (n, length, _), s = query.shape, key.shape[1]
    biases = [None] * 3 if twin.in_proj_bias is None else twin.in_proj_bias.chunk(3)

    def heads(x: torch.Tensor) -> torch.Tensor:  # (N, T, E) -> (N, H, T, d)
        if interleaved:
            return x.unflatten(-1, (e // h, h)).transpose(-1, -2).transpose(1, 2)
        return x.unflatten(-1, (h, e // h)).transpose(1, 2)

    q, k, v = (
        heads(TF.linear(x, w, b))
        for x, w, b in zip((query, key, value), twin.in_proj_weight.chunk(3), biases, strict=True)
    )

    def additive(mask):
        if mask is None or mask.dtype != torch.bool:
            return mask
        return torch.zeros(mask.shape, dtype=query.dtype).masked_fill(mask, -math.inf)

    scores_mask = torch.zeros(n, h, length, s, dtype=query.dtype)
    if kpm is not None:
        scores_mask = scores_mask + additive(kpm).reshape(n, 1, 1, s)
    if am is not None:
        per_head = am.dim() == 3  # (N·H, L, S), else (L, S) shared by all
        scores_mask = scores_mask + additive(am).reshape(
            *((n, h) if per_head else (1, 1)), length, s
        )
    out = reference_attention(q, k, v, additive=scores_mask).transpose(1, 2).flatten(2)
    out = twin.out_proj(out)
    return out[0] if unbatched else out if twin.batch_first else out.transpose(0, 1)


def mha_hint(twin, inputs, kpm, am, out) -> str | None:
    """Name a mask-polarity mistake: ``out`` equals the output with a boolean mask inverted."""
    args = inputs * 3 if len(inputs) == 1 else inputs
    with torch.no_grad():
        if _matches(out, reference_mha(twin, *args, kpm, am)):
            return None
        for mask, name, hint in ((kpm, "kpm", KEY_PADDING_HINT), (am, "am", MHA_ATTN_MASK_HINT)):
            if mask is None or mask.dtype != torch.bool:
                continue
            flipped = dict(kpm=kpm, am=am) | {name: ~mask}
            if _matches(out, reference_mha(twin, *args, flipped["kpm"], flipped["am"])):
                return hint
        if twin.num_heads > 1 and _matches(out, reference_mha(twin, *args, kpm, am, True)):
            return HEAD_LAYOUT_HINT
    return None


@given(case=mha_cases(), dtype=dtypes, seed=seeds)
@example(  # self-attention, both masks, boolean
    case=dict(
        heads=2,
        embed_dim=4,
        batch=2,
        length=3,
        source_length=3,
        layout="batch_first",
        batch_first=True,
        self_attention=True,
        key_padding=True,
        attn_mask="3d",
        mask_kind="bool",
        bias=True,
    ),
    dtype=torch.float32,
    seed=0,
)
@example(  # cross-attention, S ≠ L, (L, N, E) layout, float masks, no bias
    case=dict(
        heads=3,
        embed_dim=6,
        batch=2,
        length=2,
        source_length=4,
        layout="seq_first",
        batch_first=False,
        self_attention=False,
        key_padding=True,
        attn_mask="2d",
        mask_kind="float",
        bias=False,
    ),
    dtype=torch.float64,
    seed=1,
)
@example(  # unbatched (L, E) with a (H, L, S) mask
    case=dict(
        heads=2,
        embed_dim=2,
        batch=1,
        length=3,
        source_length=2,
        layout="unbatched",
        batch_first=True,
        self_attention=False,
        key_padding=True,
        attn_mask="3d",
        mask_kind="bool",
        bias=True,
    ),
    dtype=torch.float32,
    seed=2,
)
def test_multihead_attention_matches_torch(case, dtype, seed):
    mine, twin = mha_pair(
        case["embed_dim"],
        case["heads"],
        dtype,
        seed,
        bias=case["bias"],
        batch_first=case["batch_first"],
    )
    kpm, am = mha_masks(case, dtype, seed)
    inputs = mha_inputs(case, dtype, seed)
    with torch.no_grad():
        out = mha_call(mine, kpm, am)(*inputs)
    assert_hint_free(mha_hint(twin, inputs, kpm, am, out))
    assert_same_forward_backward(
        mha_call(mine, kpm, am),
        mha_call(twin, kpm, am),
        inputs,
        list(mine.named_parameters()),
        list(twin.named_parameters()),
        factor=FACTOR,
    )
    # The weights: averaged over heads or per head, as torch returns them.
    args = inputs * 3 if case["self_attention"] else inputs
    with torch.no_grad():
        for average in (True, False):
            kwargs = dict(key_padding_mask=kpm, attn_mask=am, average_attn_weights=average)
            out_mine, weights = mine(*args, need_weights=True, **kwargs)
            _, expected = twin(*args, need_weights=True, **kwargs)
            assert weights is not None and weights.shape == expected.shape, (
                f"weights of shape {None if weights is None else tuple(weights.shape)}, "
                f"torch's are {tuple(expected.shape)} (average_attn_weights={average})"
            )
            sums = weights.sum(-1)
            assert torch.allclose(sums, torch.ones_like(sums), **tolerance(dtype, FACTOR)), (
                WEIGHTS_SUM_HINT
            )
            torch.testing.assert_close(weights, expected, **tolerance(dtype, FACTOR))
        output, none = mine(*args, need_weights=False, key_padding_mask=kpm, attn_mask=am)
        assert none is None, "need_weights=False returns (output, None)"
        torch.testing.assert_close(output, out_mine, **tolerance(dtype, FACTOR))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multihead_attention_is_causal_builds_the_causal_mask(dtype):
    mine, twin = mha_pair(4, 2, dtype, 0, batch_first=True)
    x = randn((2, 5, 4), dtype, 1)
    not_allowed = torch.ones(5, 5, dtype=torch.bool).triu(1)
    with torch.no_grad():
        out, weights = mine(x, x, x, is_causal=True)
        expected, expected_weights = twin(x, x, x, attn_mask=not_allowed, is_causal=True)
    torch.testing.assert_close(out, expected, **tolerance(dtype, FACTOR))
    torch.testing.assert_close(weights, expected_weights, **tolerance(dtype, FACTOR))
    assert (weights.diagonal(dim1=-2, dim2=-1) > 0).all(), DIAGONAL_HINT


def test_multihead_attention_defaults():
    mine = impl.nn.MultiheadAttention(8, 2)
    twin = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    assert (mine.embed_dim, mine.num_heads, mine.dropout) == (8, 2, 0.0)
    assert mine.batch_first is True, "minimod's MultiheadAttention is batch_first by default"
    assert mine.head_dim == twin.head_dim == 4
    assert_same_state_dict_layout(mine, twin)
    assert set(mine.state_dict()) == {
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    }
    x = randn((2, 3, 8), torch.float32, 0)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        out, weights = mine(x, x, x)
        expected, expected_weights = twin(x, x, x)
    torch.testing.assert_close(out, expected, **tolerance(torch.float32, FACTOR))
    torch.testing.assert_close(weights, expected_weights, **tolerance(torch.float32, FACTOR))


@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention_state_dict_loads_both_ways(bias):
    x, y = randn((2, 3, 6), torch.float32, 0), randn((2, 4, 6), torch.float32, 1)
    twin = torch.nn.MultiheadAttention(6, 3, bias=bias, batch_first=True)
    mine = impl.nn.MultiheadAttention(6, 3, bias=bias)
    assert_same_state_dict_layout(mine, twin)
    randomise(twin, 5)
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            mine(x, y, y)[0], twin(x, y, y)[0], **tolerance(torch.float32, FACTOR)
        )
    randomise(mine, 9)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            mine(x, y, y)[0], twin(x, y, y)[0], **tolerance(torch.float32, FACTOR)
        )


def test_multihead_attention_default_init():
    """in_proj_weight ~ xavier U(±sqrt(6 / (E + 3E))), out_proj.weight ~ Linear's
    U(±1/sqrt(E)), biases zero -- as torch.nn.MultiheadAttention; and it runs like torch's."""
    e = 96
    mine = impl.nn.MultiheadAttention(e, 4)
    twin = torch.nn.MultiheadAttention(e, 4, batch_first=True)
    for name, bound in (
        ("in_proj_weight", math.sqrt(6 / (4 * e))),
        ("out_proj.weight", 1 / math.sqrt(e)),
    ):
        w, w_twin = mine.state_dict()[name], twin.state_dict()[name]
        assert w.abs().max() <= bound, f"{name}: values beyond ±{bound:.4f}"
        assert w.abs().max() > 0.97 * bound, f"{name}: expected a uniform on ±{bound:.4f}"
        std = w.std().item()
        assert abs(std - bound / math.sqrt(3)) < 0.04 * bound, (
            f"{name}: std {std:.4f}, a uniform on ±{bound:.4f} has {bound / math.sqrt(3):.4f}"
        )
        assert abs(std - w_twin.std().item()) < 0.06 * bound
        assert abs(w.mean().item()) < 0.02 * bound, f"{name}: mean should be 0"
    for name in ("in_proj_bias", "out_proj.bias"):
        assert (mine.state_dict()[name] == 0).all(), f"{name} starts at zero"
    assert (mine.in_proj_weight[:e] != mine.in_proj_weight[e : 2 * e]).any(), (
        "the query and key projections must be drawn independently"
    )
    twin.load_state_dict(mine.state_dict())
    x = randn((2, 3, e), torch.float32, 0)
    with torch.no_grad():
        torch.testing.assert_close(
            mine(x, x, x)[0], twin(x, x, x)[0], **tolerance(torch.float32, FACTOR)
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multihead_attention_fully_masked_rows_are_zero_without_nan(dtype):
    """minimod's definition (torch gives NaN): a query with every key masked attends to nothing,
    so its output is out_proj(0) = out_proj.bias; no NaN in outputs, weights or gradients."""
    mine, twin = mha_pair(4, 2, dtype, 0, batch_first=True)
    x, kv = randn((2, 3, 4), dtype, 1), randn((2, 5, 4), dtype, 2)
    kpm = torch.zeros(2, 5, dtype=torch.bool)
    kpm[1] = True  # the whole second sequence is padding
    am = torch.zeros(3, 5, dtype=torch.bool)
    am[2] = True  # the third query of every sequence may see nothing
    x_in, kv_in = x.clone().requires_grad_(), kv.clone().requires_grad_()
    out, weights = mine(x_in, kv_in, kv_in, key_padding_mask=kpm, attn_mask=am)
    assert not torch.isnan(out).any() and not torch.isnan(weights).any(), ALL_MASKED_HINT
    blocked = torch.tensor([[False, False, True], [True, True, True]])
    bias = mine.out_proj.bias.detach()
    torch.testing.assert_close(out.detach()[blocked], bias.expand(4, 4), **tolerance(dtype))
    assert (weights[blocked] == 0).all(), "a fully masked query's weights are all 0"
    (out * randn(out.shape, dtype, 3)).sum().backward()
    for name, t in [("query", x_in), ("key/value", kv_in), *mine.named_parameters()]:
        assert t.grad is not None and not torch.isnan(t.grad).any(), f"NaN gradient in {name}"
    # The rest as the formula gives it, and the first sequence's open queries as torch's.
    with torch.no_grad():
        torch.testing.assert_close(
            out.detach(), reference_mha(twin, x, kv, kv, kpm, am), **tolerance(dtype, FACTOR)
        )
        expected, _ = twin(x[:1], kv[:1], kv[:1], key_padding_mask=kpm[:1])
    torch.testing.assert_close(out.detach()[0, :2], expected[0, :2], **tolerance(dtype, FACTOR))


@pytest.mark.parametrize("add_bias_kv, add_zero_attn", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("masks", [False, True])
def test_multihead_attention_bias_kv_and_zero_attn_match_torch(add_bias_kv, add_zero_attn, masks):
    """bias_k / bias_v append one learned key and value, add_zero_attn one zero key and value
    per head; the masks allow them. Outputs, weights (one or two more keys) and the gradients
    of both -- the weights are differentiable, as torch's -- equal torch's."""
    kwargs = dict(add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn, batch_first=False)
    mine, twin = mha_pair(6, 3, torch.float64, 0, **kwargs)
    query, key = randn((3, 2, 6), torch.float64, 1), randn((4, 2, 6), torch.float64, 2)
    kpm = am = None
    if masks:
        kpm = torch.tensor([[False, True, False, False], [True, True, True, False]])
        am = torch.tensor([[False, True, False, False], [True, False, True, False]] * 2)[:3]

    def both(module):
        def run(q, k):
            out, weights = module(
                q, k, k, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False
            )
            return torch.cat([out.flatten(), weights.flatten()])

        return run

    with torch.no_grad():
        _, weights = mine(query, key, key, key_padding_mask=kpm, attn_mask=am)
    assert weights.shape == (2, 3, 4 + add_bias_kv + add_zero_attn)
    assert_same_forward_backward(
        both(mine),
        both(twin),
        [query, key],
        list(mine.named_parameters()),
        list(twin.named_parameters()),
        factor=FACTOR,
    )


def test_multihead_attention_bias_kv_layout_and_init():
    """bias_k and bias_v (1, 1, E) as torch names them, drawn as torch: xavier_normal_ with
    fan_in = fan_out = E, i.e. std 1/√E; without add_bias_kv they are None, not parameters."""
    e = 256
    mine = impl.nn.MultiheadAttention(e, 4, add_bias_kv=True)
    assert_same_state_dict_layout(mine, torch.nn.MultiheadAttention(e, 4, add_bias_kv=True))
    for name in ("bias_k", "bias_v"):
        std = getattr(mine, name).std().item()
        assert abs(std - 1 / math.sqrt(e)) < 0.15 / math.sqrt(e), f"{name}: std {std:.4f}"
    plain = impl.nn.MultiheadAttention(8, 2)
    assert plain.bias_k is None and plain.bias_v is None
    assert "bias_k" not in plain.state_dict()


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_sdpa_need_weights_returns_the_weights_used(p):
    """need_weights=True (minimod's addition): (output, weights) with output = weights V, the
    weights after dropout; without dropout, each row of the weights sums to 1."""
    q, k, v = (randn((2, 3, n, 4), torch.float64, i) for i, n in enumerate((5, 6, 6)))
    output, weights = impl.F.scaled_dot_product_attention(q, k, v, dropout_p=p, need_weights=True)
    assert weights.shape == (2, 3, 5, 6)
    torch.testing.assert_close(output, weights @ v)
    if p == 0.0:
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))
        torch.testing.assert_close(output, TF.scaled_dot_product_attention(q, k, v))


def test_multihead_attention_dropout_only_in_training():
    mine, twin = mha_pair(8, 2, torch.float32, 0, dropout=0.5, batch_first=True)
    x = randn((64, 4, 8), torch.float32, 1)
    mine.eval()
    twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            mine(x, x, x)[0],
            twin(x, x, x)[0],
            **tolerance(torch.float32, FACTOR),
            msg="in eval mode MultiheadAttention's dropout does nothing",
        )
    mine.train()
    with torch.no_grad():
        _, weights = mine(x, x, x, average_attn_weights=False)
    fraction = (weights == 0).double().mean().item()
    assert abs(fraction - 0.5) < 0.05, f"expected about half of the weights dropped, got {fraction}"


# -- bad input (minimod's own messages) ------------------------------------------------------


@pytest.mark.reference_only
def test_sdpa_bad_masks_raise():
    from minimod.nn.functional import scaled_dot_product_attention as sdpa

    q, k, v = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
    with pytest.raises(ValueError, match="attn_mask or is_causal"):
        sdpa(q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(3, 5\)"):
        sdpa(q, k, v, attn_mask=torch.ones(4, 5, dtype=torch.bool))


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "q_shape, k_shape, mask_shape, scores",
    [
        ((1, 3, 4), (3, 5, 4), (2, 3, 5), r"\(3, 3, 5\)"),  # the scores' batch comes from k too
        ((3, 4), (5, 4), (2, 3, 5), r"\(3, 5\)"),  # a mask may not enlarge the scores (torch)
    ],
)
def test_sdpa_mask_must_broadcast_to_the_scores_shape(q_shape, k_shape, mask_shape, scores):
    """The scores are (broadcast(q batch, k batch), L, S); the mask must broadcast to that."""
    from minimod.nn.functional import scaled_dot_product_attention as sdpa

    q, k, v = torch.randn(q_shape), torch.randn(k_shape), torch.randn(*k_shape[:-1], 2)
    with pytest.raises(ValueError, match=r"\(2, 3, 5\).*" + scores):
        sdpa(q, k, v, attn_mask=torch.ones(mask_shape, dtype=torch.bool))


@pytest.mark.reference_only
def test_multihead_attention_bad_input_raises():
    from minimod.nn import MultiheadAttention

    with pytest.raises(ValueError, match=r"MultiheadAttention.*embed_dim 6.*num_heads 4"):
        MultiheadAttention(6, 4)
    mha = MultiheadAttention(4, 2)
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"MultiheadAttention.*last dimension 4.*\(2, 3, 5\)"):
        mha(torch.randn(2, 3, 5), x, x)
    with pytest.raises(ValueError, match=r"MultiheadAttention.*key.*last dimension 4"):
        mha(x, torch.randn(2, 3, 3), x)
    with pytest.raises(ValueError, match=r"key_padding_mask.*\(2, 3\).*got \(2, 4\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"attn_mask.*\(3, 3\).*\(4, 3, 3\).*got \(2, 3, 3\)"):
        mha(x, x, x, attn_mask=torch.zeros(2, 3, 3, dtype=torch.bool))


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _sdpa_scaled_by_d(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scale = 1 / q.shape[-1] if scale is None else scale
    return TF.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=is_causal, scale=scale)


def _sdpa_over_queries(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-2) @ v


def _sdpa_hides_diagonal(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    mask = (
        torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(-1) if is_causal else attn_mask
    )
    return TF.scaled_dot_product_attention(q, k, v, mask, scale=scale)


def _sdpa_inverted(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # naive softmax: NaN rows too
    return torch.softmax(scores.masked_fill(attn_mask, -math.inf), -1) @ v


def _sdpa_naive_softmax(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~attn_mask, -math.inf), -1) @ v


@pytest.mark.reference_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sdpa_hints_fire(dtype):
    q, k, v = randn((2, 4, 3), dtype, 0), randn((2, 4, 3), dtype, 1), randn((2, 4, 2), dtype, 2)
    mask = random_bools((4, 4), 3)
    mask[1] = False  # a fully masked row

    def hint(wrong, attn_mask=None, is_causal=False):
        out = wrong(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return sdpa_hint(q, k, v, attn_mask, is_causal, None, out)

    assert hint(_sdpa_scaled_by_d) == SCALE_D_HINT
    assert hint(_sdpa_over_queries) == WRONG_AXIS_HINT
    assert hint(_sdpa_hides_diagonal, is_causal=True) == DIAGONAL_HINT
    assert hint(_sdpa_inverted, attn_mask=mask) == POLARITY_HINT
    assert hint(_sdpa_naive_softmax, attn_mask=mask) == ALL_MASKED_HINT
    assert hint(TF.scaled_dot_product_attention, attn_mask=mask) is None
    assert hint(TF.scaled_dot_product_attention, is_causal=True) is None
    out = TF.scaled_dot_product_attention(q, k, v)
    assert sdpa_hint(q, k, v, None, False, 0.5, out) == SCALE_IGNORED_HINT


@pytest.mark.reference_only
def test_causal_mask_hints_fire():
    assert causal_mask_hint(3, 3, 0, torch.ones(3, 3, dtype=torch.bool).tril(-1)) == DIAGONAL_HINT
    assert "ALLOWED" in causal_mask_hint(3, 4, 0, torch.ones(3, 4, dtype=torch.bool).triu(1))
    assert "offset" in causal_mask_hint(2, 4, 2, torch.ones(2, 4, dtype=torch.bool).tril())
    assert causal_mask_hint(2, 4, 2, torch.ones(2, 4, dtype=torch.bool).tril(2)) is None


class _InvertedPaddingMHA(torch.nn.MultiheadAttention):
    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None, **kwargs):
        kpm = None if key_padding_mask is None else ~key_padding_mask
        return super().forward(
            query, key, value, key_padding_mask=kpm, attn_mask=attn_mask, **kwargs
        )


class _SdpaPolarityMHA(torch.nn.MultiheadAttention):
    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None, **kwargs):
        am = None if attn_mask is None else ~attn_mask
        return super().forward(
            query, key, value, key_padding_mask=key_padding_mask, attn_mask=am, **kwargs
        )


@pytest.mark.reference_only
def test_multihead_attention_hints_fire():
    twin = torch.nn.MultiheadAttention(4, 2, batch_first=True)
    randomise(twin, 0)
    x = randn((2, 3, 4), torch.float64, 1)
    twin = twin.double()
    # Each mask leaves every query some keys either way round (torch's NaN would hide a hint).
    kpm = torch.tensor([[False, True, False], [True, False, False]])
    am = torch.tensor([[False, True, True], [False, False, True], [True, False, True]])
    for wrong_type, masks, expected in (
        (_InvertedPaddingMHA, (kpm, None), KEY_PADDING_HINT),
        (_SdpaPolarityMHA, (None, am), MHA_ATTN_MASK_HINT),
    ):
        wrong = wrong_type(4, 2, batch_first=True).double()
        wrong.load_state_dict(twin.state_dict())
        with torch.no_grad():
            out = mha_call(wrong, *masks)(x)
        assert mha_hint(twin, [x], *masks, out) == expected
    with torch.no_grad():
        assert mha_hint(twin, [x], kpm, am, mha_call(twin, kpm, am)(x)) is None


# -- the hand-written backward (Attention) -------------------------------------------------------
@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "float"])
def test_sdpa_backward_passes_gradcheck(mask_kind):
    """Finite differences in float64 against Attention's backward, for q, k, v (and a float
    mask), with a key batch that broadcasts against the query's and a fully masked row."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 2, 3, 4, dtype=torch.float64, generator=g).requires_grad_()
    k = torch.randn(1, 2, 5, 4, dtype=torch.float64, generator=g).requires_grad_()
    v = torch.randn(1, 2, 5, 3, dtype=torch.float64, generator=g).requires_grad_()
    inputs, kwargs = [q, k, v], {}
    if mask_kind == "causal":
        kwargs["is_causal"] = True
    elif mask_kind == "bool":
        mask = torch.rand(3, 5, generator=g) > 0.3
        mask[1] = False  # a query that sees nothing: output 0, no gradient
        kwargs["attn_mask"] = mask
    elif mask_kind == "float":
        inputs.append(torch.randn(3, 5, dtype=torch.float64, generator=g).requires_grad_())

    def run(*tensors):
        extra = {"attn_mask": tensors[3]} if len(tensors) == 4 else {}
        return impl.F.scaled_dot_product_attention(*tensors[:3], **kwargs, **extra)

    def with_weights(*tensors):  # the returned weights carry gradients too
        extra = {"attn_mask": tensors[3]} if len(tensors) == 4 else {}
        return impl.F.scaled_dot_product_attention(
            *tensors[:3], **kwargs, **extra, need_weights=True
        )

    torch.autograd.gradcheck(run, tuple(inputs))
    torch.autograd.gradcheck(with_weights, tuple(inputs))


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_sdpa_dropout_backward_uses_the_forward_mask(p):
    """The gradients with dropout are those of softmax(QKᵀ/√d) ∘ keep / (1 − p) · V, with the
    keep-mask the forward drew (read off the returned weights: a softmax weight is never 0)."""
    q, k, v = (randn((2, n, 4), torch.float64, i) for i, n in enumerate((3, 5, 5)))

    def mine(query, key, value):
        torch.manual_seed(7)  # the same mask as below
        sdpa = impl.F.scaled_dot_product_attention
        return sdpa(query, key, value, dropout_p=p, need_weights=True)[0]

    torch.manual_seed(7)
    _, dropped = impl.F.scaled_dot_product_attention(q, k, v, dropout_p=p, need_weights=True)
    keep = dropped != 0
    factor = 0.0 if p == 1.0 else 1 / (1 - p)

    def reference(query, key, value):
        weights = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(4), dim=-1)
        return (weights * keep * factor) @ value

    assert_same_forward_backward(mine, reference, [q, k, v], factor=FACTOR)
