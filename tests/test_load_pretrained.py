"""load_pretrained: a pretrained body into a fine-tuning model, by key name, never a stale head.

minimod's own behaviour (no lesson teaches load_pretrained), so every test is reference_only
and uses minimod directly."""

from __future__ import annotations

import pytest
import torch

from minimod.models.bert import BERT, BERTConfig, BERTForMaskedLM
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.models.heads import (
    FeatureClassifier,
    KeywordClassifier,
    SequenceClassifier,
    TokenClassifier,
)
from minimod.models.loading import LoadReport, load_pretrained

pytestmark = pytest.mark.reference_only


def gpt(block_size: int = 8) -> GPT:
    return GPT(GPTConfig(vocab_size=11, block_size=block_size, n_layer=1, n_head=2, n_embd=16))


def bert_config() -> BERTConfig:
    return BERTConfig(
        vocab_size=11,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=8,
    )


def resnet(num_classes: int = 3) -> ResNet:
    return ResNet(ResNetConfig(in_channels=1, num_classes=num_classes, widths=(4,), depths=(1,)))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def assert_loaded_values(model, checkpoint, mapping: dict[str, str]) -> None:
    """Every model key in ``mapping`` now holds the checkpoint's value of its source key."""
    state = model.state_dict()
    for target, source in mapping.items():
        assert torch.equal(state[target], checkpoint[source]), f"{target} != checkpoint {source}"


def assert_kept(model, before: dict[str, torch.Tensor], keys: list[str]) -> None:
    state = model.state_dict()
    for key in keys:
        assert torch.equal(state[key], before[key]), f"{key} should keep its initialisation"


def test_gpt_checkpoint_into_a_sequence_classifier_keeps_the_tie():
    pretrained = gpt()
    checkpoint = snapshot(pretrained)
    model = SequenceClassifier(gpt(), num_labels=3)
    before = snapshot(model)
    report = load_pretrained(model, checkpoint)
    body_keys = [f"body.{key}" for key in checkpoint]
    assert report.loaded == body_keys
    assert report.skipped == {}
    assert report.initialised == ["head.linear.weight", "head.linear.bias"]
    assert_loaded_values(model, checkpoint, {f"body.{key}": key for key in checkpoint})
    assert_kept(model, before, report.initialised)
    body = model.body
    assert body.lm_head.weight is body.transformer.wte.weight, "the tie survives loading"
    with torch.no_grad():
        body.transformer.wte.weight[0, 0] = 123.0
    assert body.lm_head.weight[0, 0] == 123.0
    ids = torch.randint(0, 11, (2, 5))
    model.eval()
    pretrained.eval()
    torch.testing.assert_close(body.hidden_states(ids), pretrained.hidden_states(ids))


def test_a_tied_tensor_is_filled_by_either_of_its_names():
    checkpoint = snapshot(gpt())
    del checkpoint["lm_head.weight"]  # saved once, under the embedding's name
    model = SequenceClassifier(gpt(), num_labels=2)
    report = load_pretrained(model, checkpoint)
    assert "body.lm_head.weight" in report.loaded, "filled through the tie"
    assert report.initialised == ["head.linear.weight", "head.linear.bias"]
    assert torch.equal(model.body.lm_head.weight, checkpoint["transformer.wte.weight"])


def test_an_untied_checkpoint_cannot_fill_a_tied_tensor_two_ways():
    checkpoint = snapshot(gpt())
    checkpoint["lm_head.weight"] = torch.randn_like(checkpoint["lm_head.weight"])
    model = SequenceClassifier(gpt(), num_labels=2)
    before = snapshot(model)
    with pytest.raises(ValueError, match="load into one tied tensor .* different values"):
        load_pretrained(model, checkpoint)
    assert_kept(model, before, list(before))


def test_bert_mlm_checkpoint_skips_the_mlm_head():
    pretrained = BERTForMaskedLM(bert_config())
    checkpoint = snapshot(pretrained)
    model = SequenceClassifier(BERT(bert_config()), num_labels=2)  # with an (unused) pooler
    before = snapshot(model)
    report = load_pretrained(model, checkpoint, source_prefix="bert.")
    reason = "outside the pretrained body (source_prefix 'bert.')"
    assert report.skipped == {key: reason for key in checkpoint if key.startswith("lm_head.")}
    assert set(report.skipped) == {
        "lm_head.dense.weight",
        "lm_head.dense.bias",
        "lm_head.ln.weight",
        "lm_head.ln.bias",
        "lm_head.decoder.weight",
        "lm_head.decoder.bias",
    }
    mapping = {"body." + k[len("bert.") :]: k for k in checkpoint if k.startswith("bert.")}
    assert report.loaded == list(mapping)
    assert_loaded_values(model, checkpoint, mapping)
    assert report.initialised == [
        "body.pooler.dense.weight",
        "body.pooler.dense.bias",
        "head.linear.weight",
        "head.linear.bias",
    ]
    assert_kept(model, before, report.initialised)
    ids, mask = torch.randint(0, 11, (2, 5)), torch.tensor([[1, 1, 1, 0, 0], [1] * 5])
    model.eval()
    pretrained.eval()
    torch.testing.assert_close(model.body(ids, mask)[0], pretrained.bert(ids, mask)[0])


def test_token_classifier_from_a_bert_mlm_checkpoint():
    checkpoint = snapshot(BERTForMaskedLM(bert_config()))
    model = TokenClassifier(BERT(bert_config(), add_pooling_layer=False), num_labels=5)
    report = load_pretrained(model, checkpoint, source_prefix="bert.")
    assert report.initialised == ["head.linear.weight", "head.linear.bias"]
    assert len(report.loaded) + len(report.initialised) == len(model.state_dict())


@pytest.mark.parametrize(
    "make_body, x",
    [
        (lambda: resnet(), torch.randn(2, 1, 8, 8)),
        (
            lambda: AudioCNN(AudioCNNConfig(n_features=5, num_classes=3, widths=(4,))),
            torch.randn(2, 6, 5),
        ),
    ],
    ids=["resnet", "audio"],
)
def test_cnn_checkpoint_skips_the_old_head(make_body, x):
    pretrained = make_body()
    pretrained.train()
    pretrained(x)  # the batch norm running statistics move away from their initial values
    checkpoint = snapshot(pretrained)
    model = KeywordClassifier(make_body(), num_classes=7)
    before = snapshot(model)
    report = load_pretrained(model, checkpoint)
    assert report.skipped == {
        "head.weight": "not in this model (no 'body.head.weight')",
        "head.bias": "not in this model (no 'body.head.bias')",
    }
    mapping = {f"body.{k}": k for k in checkpoint if not k.startswith("head.")}
    assert report.loaded == list(mapping), "buffers (running statistics) load too"
    assert_loaded_values(model, checkpoint, mapping)
    assert report.initialised == ["head.linear.weight", "head.linear.bias"]
    assert_kept(model, before, report.initialised)
    model.eval()
    pretrained.eval()
    torch.testing.assert_close(model.body.features(x), pretrained.features(x))


def test_fine_tuned_body_into_a_new_head():
    finetuned = FeatureClassifier(resnet(), num_classes=3)
    checkpoint = snapshot(finetuned)
    model = FeatureClassifier(resnet(), num_classes=5)
    before = snapshot(model)
    report = load_pretrained(model, checkpoint, source_prefix="body.", target_prefix="body.")
    reason = "outside the pretrained body (source_prefix 'body.')"
    assert report.skipped == {"head.linear.weight": reason, "head.linear.bias": reason}
    assert_loaded_values(model, checkpoint, {k: k for k in checkpoint if k.startswith("body.")})
    assert report.initialised == ["head.linear.weight", "head.linear.bias"]
    assert_kept(model, before, report.initialised)


def test_a_same_shaped_old_head_is_still_skipped():
    """Same class count, so the shapes agree -- the old head must still stay out."""
    checkpoint = snapshot(FeatureClassifier(resnet(), num_classes=3))
    model = FeatureClassifier(resnet(), num_classes=3)
    before = snapshot(model)
    report = load_pretrained(model, checkpoint, source_prefix="body.")
    assert set(report.skipped) == {"head.linear.weight", "head.linear.bias"}
    assert_kept(model, before, ["head.linear.weight", "head.linear.bias"])


def test_shape_mismatch_is_skipped_with_both_shapes():
    checkpoint = snapshot(gpt(block_size=8))
    model = SequenceClassifier(gpt(block_size=6), num_labels=2)
    before = snapshot(model)
    report = load_pretrained(model, checkpoint)
    assert report.skipped == {
        "transformer.wpe.weight": "shape (8, 16) in the checkpoint, (6, 16) in the model"
    }
    assert report.initialised == [
        "body.transformer.wpe.weight",
        "head.linear.weight",
        "head.linear.bias",
    ]
    assert_kept(model, before, report.initialised)
    assert "body.transformer.wte.weight" in report.loaded


def test_nothing_matching_is_an_error_not_a_silent_fresh_start():
    checkpoint = snapshot(BERTForMaskedLM(bert_config()))
    model = SequenceClassifier(BERT(bert_config()), num_labels=2)
    with pytest.raises(ValueError, match=r"no checkpoint key matched the model \(source_prefix ''"):
        load_pretrained(model, {"x." + k: v for k, v in checkpoint.items()}, source_prefix="")


def test_a_training_checkpoint_is_a_type_error_that_says_what_to_pass():
    model = SequenceClassifier(gpt(), num_labels=2)
    with pytest.raises(TypeError, match="pass its 'model' entry"):
        load_pretrained(model, {"model": snapshot(gpt()), "step": 3})


def test_report_text():
    report = LoadReport(
        loaded=["body.a", "body.b"],
        skipped={"head.weight": "not in this model (no 'body.head.weight')"},
        initialised=["head.linear.weight"],
    )
    assert report.summary() == (
        "loaded 2 tensors, skipped 1 checkpoint keys, 1 model tensors keep their initialisation"
    )
    assert str(report).splitlines() == [
        "load_pretrained: " + report.summary(),
        "  skipped head.weight: not in this model (no 'body.head.weight')",
        "  initialised: head.linear.weight",
    ]
    model = FeatureClassifier(resnet(), num_classes=2)
    text = str(load_pretrained(model, snapshot(resnet())))
    assert "skipped head.weight: not in this model" in text
    assert "initialised: head.linear.weight, head.linear.bias" in text
