"""minimod's GPT and BERT against Hugging Face ``transformers``' own implementations.

The Hugging Face models are built from small configs with random weights (nothing is
downloaded), perturbed so that no parameter keeps its trivial initial value (LayerNorm weights
other than 1, non-zero biases, weights large enough that attention is far from uniform): then a
transposed matrix, a wrong activation or a mask that lets padding through shows up clearly.
Every comparison is float32 with a max abs diff of at most 1e-5 unless stated; the assertion
messages give the measured difference.

Weights move through the explicit key maps of ``minimod.models.weights``, strictly, in both
directions. GPT-2 stores its attention/MLP weights as Conv1D, (in, out): ``gpt2_to_minimod`` and
``minimod_to_gpt2`` transpose them. BERT's modules have other names in minimod than in Hugging
Face (``attn.query`` for ``attention.self.query``, ``ln_1`` for ``attention.output.LayerNorm``,
...): ``hf_bert_to_minimod`` and ``minimod_to_hf_bert`` rename them.

`transformers` comes with the `interop` extra, which `make test` installs: these tests never skip.
"""

from __future__ import annotations

import functools

import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

from minimod.models.bert import BERT, BERTConfig, BERTForMaskedLM
from minimod.models.gpt import GPT, GPTConfig
from minimod.models.weights import (
    gpt2_to_minimod,
    hf_bert_to_minimod,
    load_checked,
    minimod_to_gpt2,
    minimod_to_hf_bert,
)
from strategies import seeds

transformers.logging.set_verbosity_error()

ATOL = 1e-5
VOCAB, POSITIONS, N_EMBD, N_LAYER, N_HEAD = 64, 16, 32, 2, 4
GELU_HINT = (
    "Hugging Face's activation_function='gelu_new' is the tanh approximation "
    "(GPTConfig(gelu_approximate='tanh')); 'gelu' is the exact erf GELU ('none')"
)


def max_abs_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape, f"shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    return (ours.double() - theirs.double()).abs().max().item()


def assert_near(ours, theirs, what: str, atol: float = ATOL, hint: str = "") -> float:
    diff = max_abs_diff(ours, theirs)
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol:g}" + (
        f"\n{hint}" if hint else ""
    )
    return diff


@torch.no_grad()
def perturb(model, seed: int, scale: float = 0.1) -> None:
    """Add N(0, scale²) noise to every parameter (shared ones once)."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)


def token_ids(shape, seed: int, low: int = 0, high: int = VOCAB) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# GPT-2
# ---------------------------------------------------------------------------------------------


def hf_gpt2(activation: str = "gelu_new", n_embd: int = N_EMBD, seed: int = 0):
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=POSITIONS,
        n_embd=n_embd,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        activation_function=activation,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    perturb(model, seed)
    return model


def minimod_gpt(approximate: str = "tanh", n_embd: int = N_EMBD) -> GPT:
    config = GPTConfig(
        vocab_size=VOCAB,
        block_size=POSITIONS,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        n_embd=n_embd,
        dropout=0.0,
        bias=True,
        gelu_approximate=approximate,
    )
    return GPT(config).eval()


GELU_PAIRS = [("gelu_new", "tanh"), ("gelu", "none")]


@pytest.mark.parametrize("activation, approximate", GELU_PAIRS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpt2_weights_load_and_give_the_same_logits_and_loss(activation, approximate, dtype):
    hf = hf_gpt2(activation).to(dtype)
    ours = minimod_gpt(approximate).to(dtype)
    load_checked(ours, gpt2_to_minimod(hf.state_dict()))
    atol = ATOL if dtype == torch.float32 else 1e-12
    ids = token_ids((3, POSITIONS), seed=1)
    with torch.no_grad():
        expected = hf(ids, labels=ids)  # Hugging Face shifts the labels inside
        logits, no_loss = ours(ids)
        shifted_logits, loss = ours(ids[:, :-1], targets=ids[:, 1:])
    assert no_loss is None, "forward without targets must return loss None"
    assert expected.logits.abs().max() > 1.0, "test setup: logits too small to be telling"
    assert_near(logits, expected.logits, f"logits ({dtype})", atol, hint=GELU_HINT)
    assert_near(shifted_logits, expected.logits[:, :-1], f"logits of ids[:, :-1] ({dtype})", atol)
    # Hugging Face computes its loss in float32 whatever the model's dtype (it upcasts the
    # logits with .float()), so the loss is compared at float32's tolerance.
    assert expected.loss.dtype == torch.float32
    assert_near(loss, expected.loss, f"loss ({dtype})", ATOL)


def test_gpt2_comparison_tells_the_two_gelus_apart():
    """The comparison above is sharp enough to notice the wrong GELU approximation."""
    hf = hf_gpt2("gelu_new")
    ours = minimod_gpt("none")
    load_checked(ours, gpt2_to_minimod(hf.state_dict()))
    ids = token_ids((3, POSITIONS), seed=1)
    with torch.no_grad():
        diff = max_abs_diff(ours(ids)[0], hf(ids).logits)
    assert diff > 10 * ATOL, f"exact GELU vs tanh GELU differ by only {diff:.3g}"


def test_gpt2_checkpoint_round_trip():
    """minimod -> GPT-2 (strict load into a fresh GPT2LMHeadModel) -> minimod."""
    ours = minimod_gpt("tanh")
    perturb(ours, seed=2)
    ids = token_ids((2, POSITIONS), seed=3)
    hf = hf_gpt2("gelu_new", seed=4)  # different weights, all of them replaced below
    hf.load_state_dict(minimod_to_gpt2(ours.state_dict()), strict=True)
    back = minimod_gpt("tanh")
    load_checked(back, gpt2_to_minimod(hf.state_dict()))
    with torch.no_grad():
        ours_logits, hf_logits, back_logits = ours(ids)[0], hf(ids).logits, back(ids)[0]
    assert_near(hf_logits, ours_logits, "GPT-2 loaded from minimod vs minimod")
    assert torch.equal(back_logits, ours_logits), (
        f"minimod -> GPT-2 -> minimod changed the logits "
        f"(max abs diff {max_abs_diff(back_logits, ours_logits):.3g})"
    )
    converted = gpt2_to_minimod(minimod_to_gpt2(ours.state_dict()))
    for key, value in ours.state_dict().items():
        assert torch.equal(converted[key], value), f"{key} changed in the round trip"


@pytest.mark.reference_only
def test_load_checked_shows_the_two_parameter_tables_on_mismatch():
    ours = minimod_gpt(n_embd=N_EMBD)
    wider = gpt2_to_minimod(hf_gpt2(n_embd=48).state_dict())
    with pytest.raises(RuntimeError) as info:
        load_checked(ours, wider)
    message = str(info.value)
    for expected in (
        "transformer.wte.weight",
        "transformer.h.0.attn.c_attn.weight",
        f"({VOCAB}, {N_EMBD})",  # minimod's shape
        f"({VOCAB}, 48)",  # the checkpoint's shape
        f"({3 * N_EMBD}, {N_EMBD})",
        "(144, 48)",
        "differs",
    ):
        assert expected in message, f"{expected!r} missing from the error:\n{message}"

    # A missing and an unexpected key are named too, with "-" on the side that lacks them.
    state = gpt2_to_minimod(hf_gpt2().state_dict())
    state.pop("transformer.ln_f.bias")
    state["transformer.extra.weight"] = torch.zeros(3)
    with pytest.raises(RuntimeError) as info:
        load_checked(minimod_gpt(), state)
    message = str(info.value)
    lines = {line.split()[0]: line for line in message.splitlines()[1:] if line.strip()}
    assert "transformer.ln_f.bias" in lines and "-" in lines["transformer.ln_f.bias"].split()
    assert "transformer.extra.weight" in lines and "-" in lines["transformer.extra.weight"]
    assert "1 missing" in message and "1 unexpected" in message, message


# ---------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------

BERT_SIZES = dict(
    vocab_size=50,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=16,
    type_vocab_size=2,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    pad_token_id=0,
)
PAD = BERT_SIZES["pad_token_id"]


@functools.cache
def bert_twins(hf_class: str, seed: int):
    """(a Hugging Face ``transformers.<hf_class>``, minimod's model of the same kind) holding the
    same perturbed weights, loaded through the key map."""
    ours_class = {"BertModel": BERT, "BertForMaskedLM": BERTForMaskedLM}[hf_class]
    torch.manual_seed(seed)
    hf = getattr(transformers, hf_class)(transformers.BertConfig(**BERT_SIZES)).eval()
    perturb(hf, seed=seed)
    ours = ours_class(BERTConfig(**BERT_SIZES)).eval()
    load_checked(ours, hf_bert_to_minimod(hf.state_dict()))
    return hf, ours


def bert_pair():
    return bert_twins("BertModel", 5)


def bert_mlm_pair():
    return bert_twins("BertForMaskedLM", 6)


def padded_batch(lengths, total: int, seed: int):
    """input_ids with PAD after each row's length, its attention_mask, two segments."""
    batch = len(lengths)
    ids = token_ids((batch, total), seed, low=1, high=BERT_SIZES["vocab_size"])
    attention_mask = (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = ids.masked_fill(attention_mask == 0, PAD)
    token_type_ids = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        token_type_ids[row, (length + 1) // 2 : length] = 1  # second segment
    return ids, attention_mask, token_type_ids


def compare_bert(ids, attention_mask, token_type_ids):
    hf, ours = bert_pair()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden, pooled = ours(ids, attention_mask, token_type_ids)
    hint = ""
    full = attention_mask.bool().all(dim=1)
    row_diff = (hidden - expected.last_hidden_state).abs().amax(dim=(1, 2))
    if full.any() and (~full).any() and row_diff[full].max() <= ATOL < row_diff[~full].max():
        hint = (
            "only the rows with padding differ: the attention mask must hide the keys where "
            "attention_mask is 0 (and let every query see the keys where it is 1)"
        )
    return (
        assert_near(hidden, expected.last_hidden_state, "last_hidden_state", hint=hint),
        assert_near(pooled, expected.pooler_output, "pooler_output"),
    )


def test_bert_model_matches_hugging_face_with_padding():
    ids, attention_mask, token_type_ids = padded_batch([12, 9, 4, 1], 12, seed=7)
    compare_bert(ids, attention_mask, token_type_ids)
    hf, ours = bert_pair()
    # The reverse direction loads strictly too, the pooler included.
    fresh = transformers.BertModel(transformers.BertConfig(**BERT_SIZES)).eval()
    fresh.load_state_dict(minimod_to_hf_bert(ours.state_dict()), strict=True)
    with torch.no_grad():
        assert torch.equal(fresh(input_ids=ids).last_hidden_state, hf(input_ids=ids)[0])


@settings(max_examples=10)
@given(
    lengths=st.lists(st.integers(1, POSITIONS), min_size=1, max_size=3),
    extra=st.integers(0, 3),
    seed=seeds,
)
def test_bert_model_matches_hugging_face_property(lengths, extra, seed):
    """Any batch, any length, any amount of padding at the end (≥ 1 real token per row)."""
    total = min(max(lengths) + extra, POSITIONS)
    lengths = [min(length, total) for length in lengths]
    compare_bert(*padded_batch(lengths, total, seed))


def test_bert_for_masked_lm_matches_hugging_face():
    hf, ours = bert_mlm_pair()
    ids, attention_mask, token_type_ids = padded_batch([10, 7, 3], 10, seed=8)
    choose = torch.rand(ids.shape, generator=torch.Generator().manual_seed(9)) < 0.3
    labels = torch.where(choose & (attention_mask == 1), ids, torch.full_like(ids, -100))
    labels[0, 0] = ids[0, 0]  # at least one label
    with torch.no_grad():
        expected = hf(
            input_ids=ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            labels=labels,
        )
        logits, loss = ours(ids, attention_mask, token_type_ids, labels)
        _, no_loss = ours(ids, attention_mask, token_type_ids)
    assert no_loss is None, "forward without labels must return loss None"
    assert_near(logits, expected.logits, "MLM logits")
    assert_near(loss, expected.loss, "MLM loss (labels -100 ignored)")


@pytest.mark.parametrize("pair", [bert_pair, bert_mlm_pair], ids=["BertModel", "BertForMaskedLM"])
def test_bert_key_map_is_complete_both_ways_and_round_trips(pair):
    """Every Hugging Face key has a minimod key and back, with its shape; nothing is matched by
    position, and minimod -> Hugging Face -> minimod gives back every tensor."""
    hf, ours = pair()
    theirs, own = hf.state_dict(), ours.state_dict()
    converted = hf_bert_to_minimod(theirs)
    assert set(converted) == set(own), (
        f"only converted: {sorted(set(converted) - set(own))}\n"
        f"only minimod:   {sorted(set(own) - set(converted))}"
    )
    for key, value in converted.items():
        assert value.shape == own[key].shape, f"{key}: {tuple(value.shape)} vs {own[key].shape}"
    back = minimod_to_hf_bert(own)
    assert set(back) == set(theirs), sorted(set(back) ^ set(theirs))
    for key, value in hf_bert_to_minimod(back).items():
        assert torch.equal(value, own[key]), f"{key} changed in the round trip"
    assert not any(
        part in key for key in own for part in ("LayerNorm", "attention.self", "intermediate")
    ), "minimod's own names are the plain ones"


def test_bert_key_map_renames_the_layer_modules():
    state = {name: torch.zeros(1) for name in (
        "embeddings.position_ids",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.11.attention.self.query.weight",
        "bert.encoder.layer.11.attention.output.dense.bias",
        "bert.encoder.layer.11.attention.output.LayerNorm.weight",
        "bert.encoder.layer.11.intermediate.dense.weight",
        "bert.encoder.layer.11.output.dense.weight",
        "bert.encoder.layer.11.output.LayerNorm.bias",
        "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.bias",
        "cls.predictions.decoder.bias",
        "encoder.layer.0.attention.self.query.kernel",
    )}  # fmt: skip
    assert list(hf_bert_to_minimod(state)) == [
        "bert.embeddings.ln.weight",
        "bert.encoder.layer.11.attn.query.weight",
        "bert.encoder.layer.11.attn.out.bias",
        "bert.encoder.layer.11.ln_1.weight",
        "bert.encoder.layer.11.mlp.up.weight",
        "bert.encoder.layer.11.mlp.down.weight",
        "bert.encoder.layer.11.ln_2.bias",
        "lm_head.ln.bias",
        "lm_head.decoder.bias",  # cls.predictions.bias and .decoder.bias: one tensor
        "encoder.layer.0.attn.query.kernel",  # unknown leaf: kept, a strict load names it
    ]


def test_bert_key_map_rejects_two_values_for_one_tensor():
    state = {"cls.predictions.bias": torch.zeros(3), "cls.predictions.decoder.bias": torch.ones(3)}
    with pytest.raises(ValueError, match="'cls.predictions.bias' and .* hold different values"):
        hf_bert_to_minimod(state)
