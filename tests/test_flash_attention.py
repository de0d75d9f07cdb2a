"""flash_attention (FlashAttention's blocked, online-softmax attention, lesson 34) against
torch.nn.functional.scaled_dot_product_attention: the output and all three input gradients,
for lengths that are not a multiple of the block, T = 1, causal or not, different query and
key lengths and broadcast batch axes; and what its Function keeps for the backward pass:
O(T) numbers, never the (L, S) weights.

Tolerance: strategies.TOLERANCES times 10, as tests/test_attention.py (float32 rtol 1e-3 /
atol 1e-4, float64 rtol 1e-8 / atol 1e-9): the blocks sum the same products in another order.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
RESCALE_HINT = (
    "one block agrees with torch but several do not: when the running maximum grows, the "
    "running sum AND the running output must both be multiplied by exp(m_old − m_new)"
)
SAVED_HINT = (
    "FlashAttention must keep only Q, K, V, the output and the log-sum-exp per row for the "
    "backward pass; a saved tensor of size L × S is the matrix this attention exists to avoid"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def flash(is_causal, scale, block_size):
    """A function of (q, k, v) for assert_same_forward_backward."""

    def run(q, k, v):
        return impl.F.flash_attention(
            q, k, v, is_causal=is_causal, scale=scale, block_size=block_size
        )

    return run


def twin(is_causal, scale):
    def run(q, k, v):
        return TF.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)

    return run


@st.composite
def shapes(draw):
    """q (..., L, d), k (..., S, d), v (..., S, dv) whose batch axes broadcast, and a block."""
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    q_batch, k_batch, v_batch = (
        tuple(draw(st.sampled_from([1, side])) for side in batch) for _ in range(3)
    )
    length = draw(st.integers(1, 20))
    source_length = draw(st.integers(1, 20) | st.just(length))
    d, dv = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    block_size = draw(st.integers(1, 8))
    return (
        (*q_batch, length, d),
        (*k_batch, source_length, d),
        (*v_batch, source_length, dv),
        (block_size),
    )


@given(
    case=shapes(),
    is_causal=st.booleans(),
    scale=st.none() | st.sampled_from([0.1, 2.5]),
    dtype=dtypes,
    seed=seeds,
    magnitude=st.sampled_from([1.0, 3.0]),
)
@example(
    case=((1, 1, 4), (1, 1, 4), (1, 1, 3), 4),
    is_causal=True,
    scale=None,
    dtype=torch.float64,
    seed=0,
    magnitude=1.0,
)  # T = 1
@example(
    case=((2, 11, 4), (2, 11, 4), (2, 11, 3), 4),
    is_causal=True,
    scale=None,
    dtype=torch.float64,
    seed=1,
    magnitude=3.0,
)  # 11 = 4 + 4 + 3: a last, partial block
@example(
    case=((2, 5, 4), (2, 13, 4), (2, 13, 3), 3),
    is_causal=False,
    scale=None,
    dtype=torch.float32,
    seed=2,
    magnitude=3.0,
)  # fewer queries than keys
def test_flash_attention_matches_torch(case, is_causal, scale, dtype, seed, magnitude):
    q_shape, k_shape, v_shape, block_size = case
    inputs = [
        randn(shape, dtype, seed + i, magnitude)
        for i, shape in enumerate((q_shape, k_shape, v_shape))
    ]
    assert_same_forward_backward(
        flash(is_causal, scale, block_size), twin(is_causal, scale), inputs, factor=FACTOR
    )


def test_causal_with_fewer_queries_skips_the_key_blocks_no_query_sees():
    """Causal, 5 queries against 13 keys in blocks of 3 (torch's top-left alignment): keys 5 to
    12 are seen by no query, so their blocks are skipped (forward and backward) and their
    gradients are exactly 0, as torch's."""
    inputs = [randn(shape, torch.float64, seed, 3.0)
              for seed, shape in enumerate(((2, 5, 4), (2, 13, 4), (2, 13, 3)))]  # fmt: skip
    assert_same_forward_backward(flash(True, None, 3), twin(True, None), inputs, factor=FACTOR)
    q, k, v = (t.clone().requires_grad_() for t in inputs)
    impl.F.flash_attention(q, k, v, is_causal=True, block_size=3).sum().backward()
    assert not k.grad[:, 5:].any() and not v.grad[:, 5:].any(), (
        "keys after the last query are seen by no query under a causal mask: their gradients "
        "must be exactly 0"
    )


@pytest.mark.parametrize("is_causal", [False, True])
def test_the_default_block_with_several_blocks(is_causal):
    """T = 300 with the default block size (128): three blocks, the last one partial."""
    inputs = [randn((2, 300, 16), torch.float64, seed, 3.0) for seed in range(3)]
    assert_same_forward_backward(
        lambda q, k, v: impl.F.flash_attention(q, k, v, is_causal=is_causal),
        twin(is_causal, None),
        inputs,
        factor=FACTOR,
    )


def test_blocks_rescale_the_running_output():
    """The scores grow from block to block, so the running maximum changes in every block."""
    q = torch.ones(1, 1, 2, dtype=torch.float64)
    k = torch.arange(6, dtype=torch.float64).repeat(2, 1).T.reshape(1, 6, 2)
    v = randn((1, 6, 3), torch.float64, 0)
    right = TF.scaled_dot_product_attention(q, k, v)
    blocked = impl.F.flash_attention(q, k, v, block_size=2)
    if not torch.allclose(blocked, right, **tolerance(torch.float64, FACTOR)):
        whole = impl.F.flash_attention(q, k, v, block_size=6)
        hint = RESCALE_HINT if torch.allclose(whole, right) else "the output differs from torch's"
        pytest.fail(hint)


def _gradients(q, k, v, block_size):
    """flash_attention's gradients of (out · w).sum() for q, k and v, w fixed."""
    inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = impl.F.flash_attention(*inputs, is_causal=True, block_size=block_size)
    (out * randn(out.shape, out.dtype, 99)).sum().backward()
    return [t.grad for t in inputs]


def test_the_backward_adds_up_over_several_key_blocks():
    """Causal, T = 9: one block of 9 keys against blocks of 2. The gradients must not depend on
    the block size; which of dQ, dK and dV differ names the slip."""
    q, k, v = (randn((2, 9, 4), torch.float64, s) for s in range(3))
    whole = _gradients(q, k, v, 9)
    blocked = _gradients(q, k, v, 2)
    differs = [not torch.allclose(a, b) for a, b in zip(blocked, whole, strict=True)]
    if differs == [True, False, False]:
        pytest.fail(
            "with several key blocks only dQ differs: every key block adds to every query's "
            "gradient (dQ += ...), while dK_B and dV_B belong to one block and are written once"
        )
    if differs == [True, True, False]:
        pytest.fail(
            "with several key blocks dQ and dK differ but dV agrees: D must be rowsum(dO ∘ O), "
            "computed before the loop -- rowsum(dP ∘ P) inside it needs the whole row's P"
        )
    for name, a, b in zip("qkv", blocked, whole, strict=True):
        torch.testing.assert_close(a, b, msg=lambda m, n=name: f"gradient of {n}, blocks of 2: {m}")


def test_recomputed_weights_sum_to_one():
    """The gradient of sum(O) for V is Pᵀ 1: summed over the keys it is Σ_ij P_ij = L, one per
    row, when the backward recomputes the true (normalised) weights."""
    q, k, v = (randn((1, 12, 4), torch.float64, s, 3.0).requires_grad_() for s in range(3))
    impl.F.flash_attention(q, k, v, is_causal=True, block_size=5).sum().backward()
    total = v.grad.sum(-2)
    assert torch.allclose(total, torch.full_like(total, 12.0)), (
        f"the backward's recomputed weights sum to {total[0, 0].item():.4g} over 12 rows, not 12: "
        "P = exp(S − lse) with S the SCALED scores, as in the forward, and lse = m + log l; "
        "exp(S − m) is not normalised (each row sums to l, not 1)"
    )


def test_saves_only_linear_memory():
    """What the Function keeps for backward (every tensor it saves, seen by a hook): Q, K, V,
    O and one number per row -- at T = 256 that is 4·T·d + T numbers, against T² = 65536 for
    the weights."""
    length, d = 256, 8
    q, k, v = (randn((1, length, d), torch.float32, s).requires_grad_() for s in range(3))
    saved = []

    def pack(tensor):
        saved.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = impl.F.flash_attention(q, k, v, is_causal=True, block_size=32)
    assert all(shape[-2:] != (length, length) for shape in saved), f"{SAVED_HINT}: {saved}"
    total = sum(torch.Size(shape).numel() for shape in saved)
    assert total <= 4 * length * d + length, f"{SAVED_HINT}: saved {saved}"
    out.sum().backward()  # the saved tensors are enough for the backward pass


def test_no_grad_path_gives_the_same_output():
    q, k, v = (randn((2, 3, 9, 4), torch.float64, s) for s in range(3))
    with torch.no_grad():
        out = impl.F.flash_attention(q, k, v, is_causal=True, block_size=4)
    torch.testing.assert_close(out, TF.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "shapes, block_size, message",
    [
        (((4,), (3, 4), (3, 4)), 4, "at least 2 dimensions"),
        (((2, 4), (3, 5), (3, 4)), 4, "disagree"),
        (((2, 4), (3, 4), (2, 4)), 4, "disagree"),
        (((2, 4), (3, 4), (3, 4)), 0, "block_size"),
        (((2, 4), (3, 4), (3, 4)), 2.0, "block_size"),
    ],
)
def test_bad_arguments_are_named(shapes, block_size, message):
    q, k, v = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        impl.F.flash_attention(q, k, v, block_size=block_size)
