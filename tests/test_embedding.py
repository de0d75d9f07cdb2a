"""Embedding and F.embedding against torch.nn.Embedding and torch.nn.functional.embedding.

A lookup is exact: forward values must be equal (tolerance 0); weight gradients are sums of
upstream gradients over repeated indices, compared with strategies.TOLERANCES.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_state_dict_layout, load_into_twin, tolerance
from strategies import dtypes, seeds, shapes, sides

ACCUMULATE_HINT = (
    "the gradient is wrong only for rows whose index appears more than once: gradients of "
    "repeated indices must be summed (accumulated), not overwritten"
)
PADDING_GRAD_HINT = "the padding_idx row got a gradient; torch excludes it (its gradient is zero)"
PADDING_INIT_HINT = "the padding_idx row must be initialised to zeros"
NEGATIVE_PADDING_HINT = "torch normalises a negative padding_idx to num_embeddings + padding_idx"
INIT_HINT = "Embedding weights are initialised from N(0, 1) (torch.randn, no scaling)"
EXACT = dict(rtol=0.0, atol=0.0)


def indices(shape, num_embeddings: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_embeddings, shape, generator=generator)


@st.composite
def padding_indices(draw, num_embeddings: int):
    """None, or any valid padding index, negative ones included."""
    return draw(st.none() | st.integers(-num_embeddings, num_embeddings - 1))


def embedding_grad_hint(idx, padding_idx, ours, expected) -> str | None:
    """Explain a wrong weight gradient; ``padding_idx`` is already non-negative (or None)."""
    tol = tolerance(expected.dtype)
    if ours.shape != expected.shape or torch.allclose(ours, expected, **tol):
        return None
    if padding_idx is not None and ours[padding_idx].abs().max() > 0:
        return PADDING_GRAD_HINT
    bad_rows = ~torch.isclose(ours, expected, **tol).all(dim=1)
    counts = torch.bincount(idx.flatten(), minlength=expected.shape[0])
    if bool((counts[bad_rows] > 1).all()):
        return ACCUMULATE_HINT
    return None


def compare_lookups(idx, padding_idx, ours, theirs, ours_weight, theirs_weight) -> None:
    """Forward equal; then the weight gradients of (out * w).sum() equal, with hints."""
    assert ours.shape == theirs.shape, f"output shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    assert ours.dtype == theirs.dtype, f"output dtype {ours.dtype} != {theirs.dtype}"
    torch.testing.assert_close(ours, theirs, **EXACT, msg=lambda m: f"forward differs\n{m}")
    weights = torch.randn(
        theirs.shape, dtype=theirs.dtype, generator=torch.Generator().manual_seed(1234)
    )
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert ours_weight.grad is not None, "the weight got no gradient"
    hint = embedding_grad_hint(idx, padding_idx, ours_weight.grad, theirs_weight.grad)
    assert hint is None, hint
    torch.testing.assert_close(
        ours_weight.grad,
        theirs_weight.grad,
        **tolerance(theirs.dtype),
        msg=lambda m: f"weight gradient differs\n{m}",
    )


def assert_embedding_matches(mine, twin, idx: torch.Tensor) -> None:
    """padding_idx handling, layout, forward and the weight gradient of a module."""
    pad = twin.padding_idx
    assert mine.padding_idx == pad, (
        f"padding_idx is {mine.padding_idx}, torch's is {pad}: {NEGATIVE_PADDING_HINT}"
    )
    if pad is not None:
        row = mine.weight.detach()[pad]
        assert bool((row == 0).all()), f"{PADDING_INIT_HINT}; row {pad} is {row.tolist()}"
    load_into_twin(mine, twin)
    compare_lookups(idx, pad, mine(idx), twin(idx), mine.weight, twin.weight)


@st.composite
def embedding_cases(draw):
    num_embeddings, embedding_dim = draw(sides(8)), draw(sides())
    padding_idx = draw(padding_indices(num_embeddings))
    return num_embeddings, embedding_dim, padding_idx, draw(shapes(0, 3, 4))


@given(case=embedding_cases(), dtype=dtypes, seed=seeds)
@example(case=(1, 1, None, ()), dtype=torch.float32, seed=0)
@example(case=(5, 3, 2, (2, 6)), dtype=torch.float64, seed=0)
@example(case=(5, 3, -1, (4, 1)), dtype=torch.float32, seed=1)
@example(case=(2, 4, -2, (3, 2, 2)), dtype=torch.float64, seed=2)
def test_embedding_matches_torch(case, dtype, seed):
    num_embeddings, embedding_dim, padding_idx, index_shape = case
    mine = impl.nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx).to(dtype)
    twin = torch.nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx).to(dtype)
    assert (mine.num_embeddings, mine.embedding_dim) == (num_embeddings, embedding_dim)
    assert_embedding_matches(mine, twin, indices(index_shape, num_embeddings, seed))


@given(case=embedding_cases(), dtype=dtypes, seed=seeds)
@example(case=(1, 1, None, ()), dtype=torch.float64, seed=0)
@example(case=(3, 2, -3, (4, 4)), dtype=torch.float32, seed=0)
def test_functional_embedding_matches_torch(case, dtype, seed):
    num_embeddings, embedding_dim, padding_idx, index_shape = case
    idx = indices(index_shape, num_embeddings, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    weight = torch.randn(num_embeddings, embedding_dim, generator=generator, dtype=dtype)
    ours_w, theirs_w = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    ours = impl.F.embedding(idx, ours_w, padding_idx=padding_idx)
    theirs = torch.nn.functional.embedding(idx, theirs_w, padding_idx=padding_idx)
    pad = None if padding_idx is None else padding_idx % num_embeddings
    compare_lookups(idx, pad, ours, theirs, ours_w, theirs_w)


def test_repeated_indices_accumulate_gradient():
    layer = impl.nn.Embedding(4, 3)
    idx = torch.tensor([[1, 1, 1], [2, 1, 0]])
    layer(idx).sum().backward()
    expected = torch.tensor([1.0, 4.0, 1.0, 0.0])[:, None].expand(4, 3)
    torch.testing.assert_close(layer.weight.grad, expected, **EXACT)


def test_functional_padding_defaults_to_none():
    weight = torch.randn(4, 2, requires_grad=True)
    idx = torch.tensor([0, 0, 3])
    torch.testing.assert_close(impl.F.embedding(idx, weight), weight[idx], **EXACT)
    impl.F.embedding(idx, weight).sum().backward()
    assert bool((weight.grad[0] == 2).all()), "without padding_idx every row gets its gradient"


def embedding_init_hint(weight: torch.Tensor) -> str | None:
    w = weight.detach().double().flatten()
    mean, std = w.mean().item(), w.std().item()
    tail = (w.abs() > 2).double().mean().item()  # N(0, 1): 4.55% beyond ±2
    if abs(mean) < 0.01 and abs(std - 1) < 0.02 and abs(tail - 0.0455) < 0.004:
        return None
    return f"{INIT_HINT}; got mean {mean:.4f}, std {std:.4f}, P(|w| > 2) = {tail:.4f} (0.0455)"


def test_default_init_is_standard_normal():
    # 1000 x 200 = 200k values: mean within ±0.01 (4.5 σ), std within ±2% (6 σ).
    layer = impl.nn.Embedding(1000, 200)
    assert layer.weight.dtype == torch.float32 and layer.weight.requires_grad
    hint = embedding_init_hint(layer.weight)
    assert hint is None, hint


def test_default_init_with_padding_zeroes_only_that_row():
    layer = impl.nn.Embedding(1000, 200, padding_idx=7)
    w = layer.weight.detach()
    assert bool((w[7] == 0).all()), PADDING_INIT_HINT
    assert int((w == 0).all(dim=1).sum()) == 1, "only the padding row should be zero"
    hint = embedding_init_hint(torch.cat([w[:7], w[8:]]))
    assert hint is None, hint


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_state_dict_loads_both_ways(padding_idx):
    idx = torch.tensor([[0, 5, 9], [9, 9, 1]])
    twin = torch.nn.Embedding(10, 3, padding_idx=padding_idx)
    mine = impl.nn.Embedding(10, 3, padding_idx=padding_idx)
    assert_same_state_dict_layout(mine, twin)
    assert dict(mine.state_dict()).keys() == {"weight"}
    mine.load_state_dict(twin.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(idx), twin(idx), **EXACT)
    mine = impl.nn.Embedding(10, 3, padding_idx=padding_idx)
    twin.load_state_dict(mine.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mine(idx), twin(idx), **EXACT)


@pytest.mark.parametrize("padding_idx", [None, 3, -2])
def test_repr_matches_torch(padding_idx):
    mine = impl.nn.Embedding(10, 3, padding_idx=padding_idx)
    twin = torch.nn.Embedding(10, 3, padding_idx=padding_idx)
    assert repr(mine) == repr(twin)


@pytest.mark.reference_only
def test_out_of_range_index_names_the_layer():
    from minimod.nn import Embedding

    with pytest.raises((IndexError, ValueError), match="Embedding"):
        Embedding(10, 3)(torch.tensor([0, 10]))


@pytest.mark.reference_only
def test_float_indices_name_the_layer():
    from minimod.nn import Embedding

    with pytest.raises(TypeError, match="Embedding"):
        Embedding(10, 3)(torch.tensor([0.0, 1.0]))


# -- the hints fire on deliberately wrong implementations ------------------------------------


class _OverwritingLookup(torch.autograd.Function):
    """weight[idx] whose backward writes (instead of adds) each row's gradient."""

    @staticmethod
    def forward(ctx, idx, weight):
        ctx.save_for_backward(idx)
        ctx.weight_shape = weight.shape
        return weight[idx]

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        grad_weight = grad.new_zeros(ctx.weight_shape)
        grad_weight[idx.flatten()] = grad.reshape(-1, ctx.weight_shape[1])
        return None, grad_weight


class _OverwritingEmbedding(torch.nn.Embedding):
    def forward(self, idx):
        return _OverwritingLookup.apply(idx, self.weight)


class _PaddingGetsGradient(torch.nn.Embedding):
    def forward(self, idx):
        return self.weight[idx]


class _PaddingNotZeroed(torch.nn.Embedding):
    def reset_parameters(self):
        torch.nn.init.normal_(self.weight)


class _NegativePaddingKept(torch.nn.Embedding):
    def __init__(self, num_embeddings, embedding_dim, padding_idx):
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.padding_idx = padding_idx


@pytest.mark.reference_only
def test_hint_accumulate_fires():
    idx = torch.tensor([[1, 1, 1], [2, 1, 0]])
    with pytest.raises(AssertionError, match="summed"):
        assert_embedding_matches(_OverwritingEmbedding(4, 3), torch.nn.Embedding(4, 3), idx)


@pytest.mark.reference_only
def test_hint_padding_gradient_fires():
    idx = torch.tensor([0, 2, 2, 1])
    with pytest.raises(AssertionError, match="padding_idx row got a gradient"):
        assert_embedding_matches(
            _PaddingGetsGradient(4, 3, padding_idx=2), torch.nn.Embedding(4, 3, padding_idx=2), idx
        )


@pytest.mark.reference_only
def test_hint_padding_init_fires():
    with pytest.raises(AssertionError, match="initialised to zeros"):
        assert_embedding_matches(
            _PaddingNotZeroed(4, 3, padding_idx=1),
            torch.nn.Embedding(4, 3, padding_idx=1),
            torch.tensor([0]),
        )


@pytest.mark.reference_only
def test_hint_negative_padding_fires():
    with pytest.raises(AssertionError, match="num_embeddings \\+ padding_idx"):
        assert_embedding_matches(
            _NegativePaddingKept(5, 3, padding_idx=-2),
            torch.nn.Embedding(5, 3, padding_idx=-2),
            torch.tensor([0]),
        )


@pytest.mark.reference_only
def test_hint_init_fires_and_accepts_torch():
    assert embedding_init_hint(torch.nn.Embedding(1000, 200).weight) is None
    wrong = torch.empty(1000, 200).uniform_(-1, 1)
    assert INIT_HINT in embedding_init_hint(wrong)
    assert INIT_HINT in embedding_init_hint(torch.randn(1000, 200) / 200**0.5)


# -- the hand-written backward (EmbeddingFunction) -----------------------------------------------
def test_embedding_backward_passes_gradcheck():
    """Finite differences in float64 against EmbeddingFunction's backward: repeated ids add up.
    (With a padding_idx the padding row's gradient is 0 by design, not the numerical one; the
    torch.nn comparisons above cover it.)"""
    weight = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[0, 2, 2], [5, 1, 2]])
    torch.autograd.gradcheck(lambda w: impl.F.embedding(ids, w), (weight,))


# torch's other Embedding options: drop-in code passes them (at their defaults or not).
TORCH_OPTIONS = [
    dict(),
    dict(max_norm=1.0),
    dict(max_norm=0.5, norm_type=1.0),
    dict(scale_grad_by_freq=True),
    dict(max_norm=1.0, scale_grad_by_freq=True, padding_idx=2),
    dict(max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False),
]


@pytest.mark.parametrize("options", TORCH_OPTIONS, ids=str)
def test_torchs_options_match_torch(options):
    torch.manual_seed(0)
    weight = torch.randn(10, 4, dtype=torch.float64) * 2  # rows over max_norm, and under
    ids = torch.tensor([[1, 2, 1], [3, 1, 9]])
    ours, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    out = impl.F.embedding(ids, ours, **options)
    expected = torch.nn.functional.embedding(ids, theirs, **options)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ours.detach(), theirs.detach(), msg="max_norm renormalises rows")
    grad = torch.randn_like(expected)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad, msg="scale_grad_by_freq: grad / count")
    layer = impl.nn.Embedding(10, 4, **options)
    twin = torch.nn.Embedding(10, 4, **options)
    twin.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(ids), twin(ids))
    assert repr(layer) == repr(twin)


@pytest.mark.reference_only
def test_sparse_gradients_are_refused_in_one_sentence():
    with pytest.raises(NotImplementedError, match="sparse=True is not supported"):
        impl.nn.Embedding(10, 4, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse=True is not supported"):
        impl.F.embedding(torch.tensor([1]), torch.randn(10, 4), sparse=True)


@pytest.mark.reference_only
def test_torchs_weight_argument_builds_around_given_weights():
    weight = torch.randn(5, 3)
    layer = impl.nn.Embedding(5, 3, _weight=weight, _freeze=True)
    twin = torch.nn.Embedding(5, 3, _weight=weight.clone(), _freeze=True)
    assert torch.equal(layer.weight, twin.weight) and not layer.weight.requires_grad
    with pytest.raises(ValueError, match="_weight has shape"):
        impl.nn.Embedding(4, 3, _weight=weight)
