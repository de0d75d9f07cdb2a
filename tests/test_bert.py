"""minimod.models.bert: key names and tying, padding invariance, BERT's 80/10/10
masking (minimod.data.masking, statistically), bad input, and a masked-language-model training
smoke test.

Agreement with Hugging Face's own BertModel / BertForMaskedLM is in test_hf_equivalence.py.
Proportions in the masking tests are checked to within 5 binomial standard deviations of the
expected count (with a fixed generator, so the tests are deterministic).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from benchmarks.twins import TwinBERTForMaskedLM
from minimod.optim import AdamW
from strategies import seeds

SIZES = dict(
    vocab_size=40,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=12,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
PAD = 0
TWIN_HINT = (
    "BERTForMaskedLM's logits differ from its torch twin's (benchmarks/twins.py, the same "
    "weights): the embeddings are word + position (counted from 0) + token type (type 0 when "
    "token_type_ids is None), then LayerNorm; the head is decoder(ln(gelu(dense(x))))"
)
PADDING_HINT = (
    "an output at a real token changed when only the ids of padding tokens changed: keys "
    "where attention_mask is 0 must get no attention weight"
)


@torch.no_grad()
def perturb(model, seed: int, scale: float = 0.3):
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)
    return model


@functools.cache
def small_bert():
    torch.manual_seed(1)
    return perturb(impl.bert.BERT(impl.bert.BERTConfig(**SIZES)).double().eval(), seed=1)


def random_ids(shape, seed: int, low: int = 1, high: int = SIZES["vocab_size"]) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- layout


def test_key_names():
    """The names of lessons 11 and 12 (Hugging Face's are mapped to them in models/weights.py)."""
    model = impl.bert.BERTForMaskedLM(impl.bert.BERTConfig(**SIZES))
    state = model.state_dict()
    for key in (
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.ln.weight",
        "bert.encoder.layer.0.attn.query.weight",
        "bert.encoder.layer.0.attn.key.bias",
        "bert.encoder.layer.0.attn.out.weight",
        "bert.encoder.layer.0.ln_1.bias",
        "bert.encoder.layer.1.mlp.up.weight",
        "bert.encoder.layer.1.mlp.down.weight",
        "bert.encoder.layer.1.ln_2.weight",
        "lm_head.dense.weight",
        "lm_head.ln.weight",
        "lm_head.decoder.weight",
        "lm_head.decoder.bias",
    ):
        assert key in state, f"{key} missing from the state_dict"
    assert len(state) == 5 + 2 * 16 + 6, sorted(state)
    assert not any(key.startswith("bert.pooler") for key in state), "MLM model has no pooler"
    assert model.lm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight, (
        "the MLM decoder's weight must BE the word embedding matrix (tied)"
    )
    params = list(model.parameters())
    assert len(params) == len({id(p) for p in params}), "shared parameters are listed once"

    encoder = impl.bert.BERT(impl.bert.BERTConfig(**SIZES)).state_dict()
    assert "pooler.dense.weight" in encoder and "embeddings.word_embeddings.weight" in encoder
    assert "encoder.layer.1.attn.value.weight" in encoder
    assert (
        "pooler.dense.weight"
        not in impl.bert.BERT(impl.bert.BERTConfig(**SIZES), add_pooling_layer=False).state_dict()
    )
    assert encoder["embeddings.token_type_embeddings.weight"].shape == (2, SIZES["hidden_size"])


def test_padding_row_starts_at_zero():
    model = impl.bert.BERT(impl.bert.BERTConfig(**SIZES))
    row = model.embeddings.word_embeddings.weight[PAD]
    assert torch.equal(row, torch.zeros_like(row))


# ------------------------------------------------------------------------------- forward


@given(
    lengths=st.lists(st.integers(1, SIZES["max_position_embeddings"]), min_size=1, max_size=3),
    seed=seeds,
)
def test_real_tokens_do_not_see_padding(lengths, seed):
    model = small_bert()
    total = max(lengths)
    ids = random_ids((len(lengths), total), seed)
    mask = (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]).long()
    types = (torch.arange(total)[None, :] >= total // 2).long().expand_as(ids)
    other = torch.where(mask == 1, ids, random_ids(ids.shape, seed + 1, low=0))
    with torch.no_grad():
        hidden, pooled = model(ids, mask, types)
        hidden_other, pooled_other = model(other, mask, types)
    real = mask.bool()
    assert hidden.shape == (len(lengths), total, SIZES["hidden_size"])
    assert pooled.shape == (len(lengths), SIZES["hidden_size"])
    torch.testing.assert_close(
        hidden_other[real],
        hidden[real],
        rtol=1e-12,
        atol=1e-12,
        msg=lambda m: f"{PADDING_HINT}\n{m}",
    )
    torch.testing.assert_close(
        pooled_other,
        pooled,
        rtol=1e-12,
        atol=1e-12,
        msg=lambda m: (
            "the pooled output changed with the padding ids: the pooler reads the first "
            f"token only, hidden[:, 0], not the mean of all tokens\n{m}"
        ),
    )


def test_padding_is_what_the_mask_says():
    """Without a mask every token is attended to: the same as a mask of ones, and different
    from a mask that hides some keys."""
    model = small_bert()
    ids = random_ids((2, 6), seed=2)
    ones = torch.ones_like(ids)
    with torch.no_grad():
        unmasked, _ = model(ids)
        all_ones, _ = model(ids, ones, torch.zeros_like(ids))
        hidden_last, _ = model(ids, torch.tensor([[1, 1, 1, 1, 0, 0]] * 2))
    torch.testing.assert_close(
        unmasked,
        all_ones,
        rtol=0,
        atol=0,
        msg=lambda m: (
            "model(ids) differs from model(ids, ones, zeros): without attention_mask "
            "every token is attended to, and type 0 when token_type_ids is None (its embedding is "
            f"still added)\n{m}"
        ),
    )
    assert (hidden_last[:, :4] - unmasked[:, :4]).abs().max() > 1e-3, (
        "hiding keys 4 and 5 changed nothing: is attention_mask used? (1 = token, 0 = padding)"
    )


def test_pooler_is_tanh_of_a_linear_map_of_the_first_token():
    model = small_bert()
    ids = random_ids((3, 5), seed=3)
    with torch.no_grad():
        hidden, pooled = model(ids)
    dense = model.pooler.dense
    expected = torch.tanh(hidden[:, 0] @ dense.weight.T + dense.bias)
    torch.testing.assert_close(
        pooled,
        expected,
        rtol=1e-12,
        atol=1e-12,
        msg=lambda m: (
            f"the pooler is tanh(dense(hidden[:, 0])): the first token, not the mean "
            f"of all tokens, and the tanh\n{m}"
        ),
    )


def test_masked_lm_matches_the_torch_twin():
    config = impl.bert.BERTConfig(**SIZES)
    torch.manual_seed(10)
    model = perturb(impl.bert.BERTForMaskedLM(config).double().eval(), seed=10)
    twin = TwinBERTForMaskedLM(config).double().eval()
    twin.load_state_dict(model.state_dict())
    ids = random_ids((2, 7), seed=11)
    attention_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    token_types = torch.tensor([[0] * 4 + [1] * 3] * 2)
    with torch.no_grad():
        for args in ((ids,), (ids, attention_mask, token_types)):
            torch.testing.assert_close(
                model(*args)[0],
                twin(*args)[0],
                rtol=1e-9,
                atol=1e-9,
                msg=lambda m: f"{TWIN_HINT}\n{m}",
            )


# ------------------------------------------------------------------------------- masking

VOCAB, MASK_ID, CLS, SEP = 1000, 103, 101, 102
SPECIAL = (PAD, CLS, SEP)


def masking_batch(seed: int = 4, rows: int = 160, length: int = 128) -> torch.Tensor:
    """[CLS] … [SEP] then padding: rows of different lengths, ids of ordinary tokens ≥ 200."""
    ids = random_ids((rows, length), seed, low=200, high=VOCAB)
    lengths = torch.randint(
        length // 2, length + 1, (rows,), generator=torch.Generator().manual_seed(seed)
    )
    positions = torch.arange(length)[None, :]
    ids[:, 0] = CLS
    ids = torch.where(positions == lengths[:, None] - 1, SEP, ids)
    return torch.where(positions >= lengths[:, None], PAD, ids)


def assert_count(count: int, trials: int, p: float, what: str) -> None:
    sigma = math.sqrt(trials * p * (1 - p))
    assert abs(count - trials * p) <= 5 * sigma, (
        f"{what}: {count} of {trials} ({count / trials:.3f}), expected ≈ {p:.3f}"
    )


@pytest.mark.parametrize("mlm_probability", [0.15, 0.4])
def test_mask_tokens_proportions(mlm_probability):
    ids = masking_batch()
    original = ids.clone()
    generator = torch.Generator().manual_seed(5)
    inputs, labels = impl.masking.mask_tokens(
        ids, MASK_ID, VOCAB, SPECIAL, mlm_probability, generator
    )
    assert torch.equal(ids, original), "mask_tokens must not change its input in place"
    assert inputs.shape == ids.shape and labels.shape == ids.shape
    assert inputs.dtype == ids.dtype and labels.dtype == ids.dtype

    special = torch.isin(ids, torch.tensor(SPECIAL))
    chosen = labels != -100
    assert int((chosen & special).sum()) == 0, "special and padding tokens must never be chosen"
    assert torch.equal(inputs[special], ids[special]), "special tokens must stay as they are"
    assert torch.equal(labels[chosen], ids[chosen]), "labels hold the ORIGINAL id where chosen"
    assert not torch.equal(chosen, inputs == MASK_ID), (
        "looks like only the [MASK]ed positions got labels: the 10% replaced by a random token "
        "and the 10% left unchanged are chosen too, and keep their label"
    )
    changed = inputs != ids
    leaked = int((changed & ~chosen).sum())
    assert leaked == 0, (
        f"{leaked} tokens that were not chosen (label -100) changed: only chosen positions may "
        "be masked or replaced, and every chosen position needs its label"
    )
    assert ((inputs >= 0) & (inputs < VOCAB)).all(), "random tokens come from [0, vocab_size)"

    maskable = int((~special).sum())
    n_chosen = int(chosen.sum())
    as_mask = int((chosen & (inputs == MASK_ID)).sum())
    kept = int((chosen & (inputs == ids)).sum())
    replaced = n_chosen - as_mask - kept
    assert_count(n_chosen, maskable, mlm_probability, "chosen among maskable tokens")
    # A random replacement equals [MASK] or the original with probability 1/VOCAB each: noise.
    assert_count(as_mask, n_chosen, 0.8, "chosen tokens replaced by [MASK]")
    assert_count(replaced, n_chosen, 0.1, "chosen tokens replaced by a random token")
    assert_count(kept, n_chosen, 0.1, "chosen tokens left unchanged")
    random_tokens = inputs[chosen & changed & (inputs != MASK_ID)]
    assert random_tokens.unique().numel() > 0.5 * min(len(random_tokens), VOCAB), (
        "the random replacements should be spread over the vocabulary"
    )


def test_mask_tokens_is_deterministic_with_a_generator():
    ids = masking_batch(rows=20, length=32)
    first = impl.masking.mask_tokens(
        ids, MASK_ID, VOCAB, SPECIAL, 0.15, torch.Generator().manual_seed(6)
    )
    again = impl.masking.mask_tokens(
        ids, MASK_ID, VOCAB, SPECIAL, 0.15, torch.Generator().manual_seed(6)
    )
    other = impl.masking.mask_tokens(
        ids, MASK_ID, VOCAB, SPECIAL, 0.15, torch.Generator().manual_seed(7)
    )
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1]), "a different seed should choose differently"


def test_mask_tokens_edge_probabilities():
    ids = masking_batch(rows=8, length=16)
    special = torch.isin(ids, torch.tensor(SPECIAL))
    inputs, labels = impl.masking.mask_tokens(ids, MASK_ID, VOCAB, SPECIAL, 0.0)
    assert torch.equal(inputs, ids) and (labels == -100).all(), "probability 0 chooses nothing"
    inputs, labels = impl.masking.mask_tokens(ids, MASK_ID, VOCAB, SPECIAL, 1.0)
    assert torch.equal(labels != -100, ~special), "probability 1 chooses every maskable token"
    # No special ids: every position can be chosen.
    inputs, labels = impl.masking.mask_tokens(ids, MASK_ID, VOCAB, mlm_probability=1.0)
    assert (labels == ids).all(), "without special_ids every position can be chosen"


# ------------------------------------------------------------------------------- bad input


@pytest.mark.reference_only
def test_bad_input_is_reported_clearly():
    model = impl.bert.BERT(impl.bert.BERTConfig(**SIZES))
    longest = SIZES["max_position_embeddings"]
    with pytest.raises(ValueError, match=f"max_position_embeddings {longest}"):
        model(torch.ones(1, longest + 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask.*\(2, 5\).*\(2, 4\)"):
        model(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.ones(5, dtype=torch.long))


# ------------------------------------------------------------------------------- training


def test_masked_lm_training_reduces_the_loss():
    """Two fixed patterns (id = 7·pattern + 5·position, mod 22, + 2): a masked token follows
    from its position and the pattern, which the unmasked neighbours reveal."""
    torch.manual_seed(8)
    vocab, length, mask_id = 24, 10, 1
    model = impl.bert.BERTForMaskedLM(impl.bert.BERTConfig(**{**SIZES, "vocab_size": vocab}))
    optimizer = AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(9)
    losses = []
    for _ in range(60):
        pattern = torch.randint(0, 2, (16, 1), generator=generator)
        ids = (7 * pattern + 5 * torch.arange(length)) % (vocab - 2) + 2  # ids 2 … vocab-1
        inputs, labels = impl.masking.mask_tokens(
            ids, mask_id, vocab, (PAD, mask_id), 0.3, generator
        )
        loss = model(inputs, labels=labels)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 0.8 * math.log(vocab), f"initial loss {first:.3f}"
    assert last < 0.4 * first, f"loss went from {first:.3f} to {last:.3f}"


def test_masked_lm_without_labels_gives_no_loss():
    torch.manual_seed(2)
    model = impl.bert.BERTForMaskedLM(impl.bert.BERTConfig(**SIZES)).eval()
    ids = random_ids((2, 6), 3)
    logits, loss = model(ids)
    assert loss is None, "without labels the loss is None"
    torch.testing.assert_close(logits, model(ids, labels=ids)[0])


def test_init_bert_weights_handles_a_linear_without_bias():
    from minimod import nn

    layer = nn.Linear(200, 300, bias=False)
    impl.bert.init_bert_weights(layer, std=0.5)
    std = layer.weight.std().item()
    assert abs(std - 0.5) < 0.01, f"weights must be N(0, 0.5²), got std {std:.3f}"
