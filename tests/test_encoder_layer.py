"""A BERT encoder layer (post-LayerNorm) against torch.nn.TransformerEncoderLayer.

    x = ln_1(x + attn(x));  x = ln_2(x + W₂ gelu(W₁ x))

is TransformerEncoderLayer(norm_first=False, activation="gelu"). Weights move between the two
by explicit key names (never by parameter order) with a shape check per key; the packed
``self_attn.in_proj_weight`` (3E, E) splits into the query, key and value Linears.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4): two LayerNorms and
a softmax in a row magnify rounding in the gradients.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
# What a classic mistake computes, from the twin's own parts: (a = the first sub-layer's result)
MISTAKES = {
    "pre-LN: BERT normalises after the addition, x = ln_1(x + attn(x)), not x + attn(ln_1(x))": (
        lambda x, attn, mlp, ln_1, ln_2: (lambda a: a + mlp(ln_2(a)))(x + attn(ln_1(x)))
    ),
    "the MLP's residual adds ln_1's output a, not the layer's input x: ln_2(a + mlp(a))": (
        lambda x, attn, mlp, ln_1, ln_2: ln_2(x + mlp(ln_1(x + attn(x))))
    ),
    "ln_1 normalises x + attn(x), the residual included, not attn(x) alone": (
        lambda x, attn, mlp, ln_1, ln_2: (lambda a: ln_2(a + mlp(a)))(ln_1(attn(x)))
    ),
}


# torch name -> BERT name(s); a packed (3E, ...) tensor goes to three names, split in order.
TORCH_TO_BERT = {
    "self_attn.in_proj_weight": ("attn.query.weight", "attn.key.weight", "attn.value.weight"),
    "self_attn.in_proj_bias": ("attn.query.bias", "attn.key.bias", "attn.value.bias"),
    "self_attn.out_proj.weight": ("attn.out.weight",),
    "self_attn.out_proj.bias": ("attn.out.bias",),
    "norm1.weight": ("ln_1.weight",),
    "norm1.bias": ("ln_1.bias",),
    "linear1.weight": ("mlp.up.weight",),
    "linear1.bias": ("mlp.up.bias",),
    "linear2.weight": ("mlp.down.weight",),
    "linear2.bias": ("mlp.down.bias",),
    "norm2.weight": ("ln_2.weight",),
    "norm2.bias": ("ln_2.bias",),
}


def torch_to_bert(tensors: dict, expected_shapes: dict) -> dict:
    """Rename (and split) TransformerEncoderLayer tensors -- a state_dict or gradients -- into
    BertLayer's names, checking every key is mapped and every shape is the expected one."""
    unmapped = set(tensors) - set(TORCH_TO_BERT)
    assert not unmapped, f"no BERT name for torch keys {sorted(unmapped)}"
    renamed = {}
    for torch_name, bert_names in TORCH_TO_BERT.items():
        for bert_name, part in zip(
            bert_names, tensors[torch_name].chunk(len(bert_names)), strict=True
        ):
            assert tuple(part.shape) == expected_shapes[bert_name], (
                f"{torch_name} -> {bert_name}: shape {tuple(part.shape)}, "
                f"expected {expected_shapes[bert_name]}"
            )
            renamed[bert_name] = part
    missing = set(expected_shapes) - set(renamed)
    assert not missing, f"BERT keys without a torch source: {sorted(missing)}"
    return renamed


def make_pair(hidden, heads, intermediate, dtype, seed):
    """A BertLayer and a TransformerEncoderLayer with the same random weights, in eval mode."""
    config = impl.bert.BERTConfig(
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    mine = impl.bert.BertLayer(config).to(dtype).eval()
    twin = torch.nn.TransformerEncoderLayer(
        hidden,
        heads,
        intermediate,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=False,
        layer_norm_eps=1e-5,
        dtype=dtype,
    ).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in twin.named_parameters():
            scale = 0.3 if "norm" not in name else 0.2
            base = 1.0 if name.startswith("norm") and name.endswith("weight") else 0.0
            p.copy_(base + scale * torch.randn(p.shape, generator=generator, dtype=dtype))
    shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    mine.load_state_dict(torch_to_bert(twin.state_dict(), shapes))  # strict
    return mine, twin


@st.composite
def layer_cases(draw):
    heads = draw(st.integers(1, 3))
    return dict(
        heads=heads,
        hidden=heads * draw(st.integers(1, 3)),
        intermediate=draw(st.integers(1, 6)),
        batch=draw(st.integers(1, 3)),
        length=draw(st.integers(1, 5)),
        padding=draw(st.booleans()),
    )


def padding_mask(batch, length, seed) -> torch.Tensor:
    """(B, T) True = padding, as TransformerEncoderLayer takes it; every sequence keeps its
    first token (a sequence of padding only would be NaN in torch)."""
    pad = torch.rand(batch, length, generator=torch.Generator().manual_seed(seed)) < 0.4
    pad[:, 0] = False
    return pad


@given(case=layer_cases(), dtype=dtypes, seed=seeds)
@example(
    case=dict(heads=2, hidden=4, intermediate=6, batch=2, length=4, padding=True),
    dtype=torch.float32,
    seed=0,
)
@example(
    case=dict(heads=1, hidden=1, intermediate=1, batch=1, length=1, padding=False),
    dtype=torch.float64,
    seed=1,
)
def test_bert_layer_matches_transformer_encoder_layer(case, dtype, seed):
    mine, twin = make_pair(case["hidden"], case["heads"], case["intermediate"], dtype, seed)
    batch, length = case["batch"], case["length"]
    pad = padding_mask(batch, length, seed + 1) if case["padding"] else None
    attend = (
        None if pad is None else ~pad[:, None, None, :]
    )  # BertLayer: (B, 1, 1, T) True = attend
    x = torch.randn(
        batch,
        length,
        case["hidden"],
        generator=torch.Generator().manual_seed(seed + 2),
        dtype=dtype,
    )
    x_mine, x_twin = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = mine(x_mine, attend), twin(x_twin, src_key_padding_mask=pad)
    tol = tolerance(dtype, FACTOR)
    hint = layer_hint(twin, x, pad, out.detach(), tol)
    assert hint is None, hint
    torch.testing.assert_close(out, expected, **tol, msg=lambda m: f"forward differs\n{m}")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1234), dtype=dtype)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(
        x_mine.grad, x_twin.grad, **tol, msg=lambda m: f"gradient of the input differs\n{m}"
    )
    shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    expected_grads = torch_to_bert({n: p.grad for n, p in twin.named_parameters()}, shapes)
    for name, param in mine.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        torch.testing.assert_close(
            param.grad, expected_grads[name], **tol, msg=lambda m, n=name: f"gradient of {n}\n{m}"
        )


def layer_hint(twin, x, pad, out, tol) -> str | None:
    """The classic mistake ``out`` equals (computed with the twin's parts), if any."""
    attention = twin.self_attn

    def attn(h):
        return attention(h, h, h, key_padding_mask=pad, need_weights=False)[0]

    parts = dict(
        attn=attn,
        mlp=lambda h: twin.linear2(torch.nn.functional.gelu(twin.linear1(h))),
        ln_1=twin.norm1,
        ln_2=twin.norm2,
    )
    with torch.no_grad():
        if torch.allclose(out, twin(x, src_key_padding_mask=pad), **tol):
            return None
        for hint, mistake in MISTAKES.items():
            if torch.allclose(out, mistake(x, **parts), **tol):
                return hint
        projection = attention.out_proj
        saved = projection.weight.clone(), projection.bias.clone()
        projection.weight.copy_(torch.eye(len(saved[1]), dtype=saved[1].dtype))
        projection.bias.zero_()
        unprojected = twin(x, src_key_padding_mask=pad)
        projection.weight.copy_(saved[0])
        projection.bias.copy_(saved[1])
        if torch.allclose(out, unprojected, **tol):
            return "the merged heads go through the output projection out before the residual"
        if pad is not None:  # padded queries hidden: their rows see no key and give out's bias

            def attn_over_queries(h):
                unmasked = attention(h, h, h, need_weights=False)[0]
                return torch.where(pad[..., None], projection.bias, unmasked)

            a = twin.norm1(x + attn_over_queries(x))
            if torch.allclose(out, twin.norm2(a + parts["mlp"](a)), **tol):
                return (
                    "the (B, 1, 1, T) mask hides padded keys (the last axis of the scores), "
                    "not padded queries"
                )
    return None


def test_padding_does_not_change_the_real_tokens():
    """A padded batch gives its real tokens the same output as the unpadded sequence alone."""
    mine, _ = make_pair(4, 2, 8, torch.float64, 0)
    x = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    attend = torch.tensor([True, True, True, False, False])[None, None, None, :]
    with torch.no_grad():
        padded, alone = mine(x, attend), mine(x[:, :3])
    torch.testing.assert_close(
        padded[:, :3],
        alone,
        **tolerance(torch.float64, FACTOR),
        msg=lambda m: (
            "the padding changed the real tokens' output: the (B, 1, 1, T) mask hides "
            f"padded keys (the last axis of the scores), not padded queries\n{m}"
        ),
    )


def test_dropout_is_off_in_eval_mode():
    config = impl.bert.BERTConfig(
        hidden_size=4, num_attention_heads=2, intermediate_size=8, attention_probs_dropout_prob=0.5
    )
    layer = impl.bert.BertLayer(config).eval()
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        first, second = layer(x), layer(x)
    assert torch.equal(first, second), (
        "two calls in eval mode gave different outputs: dropout (on the attention weights too) "
        "must be off in eval mode (dropout_p = p only while self.training)"
    )


def test_mapping_covers_every_parameter_both_ways():
    """The name map is complete both ways, and loading back reproduces torch's state_dict."""
    mine, twin = make_pair(6, 3, 5, torch.float32, 0)
    shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    assert set(torch_to_bert(twin.state_dict(), shapes)) == set(mine.state_dict())
    mine_state = mine.state_dict()
    rebuilt = {
        torch_name: torch.cat([mine_state[n] for n in bert_names])
        for torch_name, bert_names in TORCH_TO_BERT.items()
    }
    fresh = torch.nn.TransformerEncoderLayer(
        6, 3, 5, dropout=0.0, activation="gelu", batch_first=True
    )
    fresh.load_state_dict(rebuilt)  # strict
    for name, value in twin.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=0)


@pytest.mark.reference_only
def test_mapping_rejects_a_wrong_shape():
    mine, twin = make_pair(4, 2, 6, torch.float32, 0)
    shapes = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    state = dict(twin.state_dict())
    state["linear1.weight"] = state["linear1.weight"][:, :3]
    with pytest.raises(AssertionError, match=r"linear1.weight -> mlp.up.weight"):
        torch_to_bert(state, shapes)
