"""Domain-adaptive MLM (``minimod.tasks.domain_mlm``): MiniLM's masked-LM training continued on a
VADER domain's unlabelled text, and fine-tuning from the run; and fine-tuning from a LoRA
fine-tune run (its adapters merged into the body, not dropped)."""

from __future__ import annotations

import json

import pytest
import torch

from console import assert_usage_error, minimod
from minimod.models.loading import load_pretrained
from minimod.tasks import UsageError, load_run, pretrain
from minimod.tasks.domain_mlm import evaluate_domain_run, pretrain_domain
from minimod.tasks.finetune import build_model, finetune, read_source
from minimod.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.reference_only
FAST = dict(device="cpu", progress=False, log=lambda _: None)


@pytest.mark.slow
@pytest.mark.real
def test_domain_mlm_lowers_the_held_out_loss_and_a_finetune_loads_its_encoder(tmp_path):
    run = tmp_path / "mlm"
    summary = pretrain_domain("amazon", run, max_steps=4, batch_size=4, n_val=8, **FAST)
    final = summary["final"]
    # The fresh head starts near ln(30,522) ≈ 10.3 and learns at head_lr: a few steps lower it.
    assert final["loss"] < final["loss_before"] - 0.5
    record = json.loads((run / "run.json").read_text())
    assert (record["task"], record["source"], record["domain"]) == ("bert", "minilm", "amazon")
    report = (run / "load_report.txt").read_text()
    assert "loaded 102 tensors" in report and "lm_head.dense.weight" in report  # a fresh head
    source = read_source("bert", str(run), task="sentiment-real")
    assert source.prefix == "bert." and source.tokenizer.vocab_size == 30522
    model = build_model("bert", "sentiment-real", source.config, 2, dict(pooling="mean", dropout=0))
    loaded = load_pretrained(model, source.state, source.prefix, "body.")
    assert not [key for key in loaded.initialised if key.startswith("body.")]
    assert all(key.startswith(("bert.lm_head.", "lm_head.")) for key in loaded.skipped)
    trained = load_checkpoint(run / "last.pt")["model"]
    key = "encoder.layer.5.attn.query.weight"
    assert torch.equal(model.body.state_dict()[key], trained[f"bert.{key}"])


@pytest.mark.slow
@pytest.mark.real
def test_evaluate_repeats_a_domain_mlm_runs_held_out_loss(tmp_path):
    run = tmp_path / "mlm"
    # 6 held-out snippets in batches of 4: the last batch is a short one.
    summary = pretrain_domain("nyt", run, max_steps=1, batch_size=4, n_val=6, **FAST)
    record, metrics = evaluate_domain_run(run)
    assert record["domain"] == "nyt" and metrics["loss"] == pytest.approx(summary["final"]["loss"])
    with pytest.raises(UsageError, match="domain-adaptive MLM run .*minimod evaluate --from"):
        load_run(run)  # no preset's data to rebuild: evaluate_run's way is not this run's
    done = minimod("evaluate", "--from", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"mlm-domain on nyt) {run} on 6 held-out snippets: masked-LM loss " in done.stdout
    assert f"{metrics['loss']:.4g}" in done.stdout
    assert_usage_error(minimod("evaluate", "--from", str(run), "--data", str(run)), "--data")


@pytest.mark.slow
def test_the_command_line_refuses_domain_mlm_options_elsewhere():
    assert_usage_error(minimod("pretrain", "gpt", "--domain", "amazon"), "--task mlm-domain")
    done = minimod("pretrain", "bert", "--from", "minilm", "--task", "mlm-domain")
    assert_usage_error(done, "--domain D")
    done = minimod("pretrain", "bert", "--from", "minilm", "--task", "mlm-domain", "--domain",
                   "nyt", "--resume")  # fmt: skip
    assert_usage_error(done, "--resume")


def test_finetuning_from_a_lora_run_starts_from_its_merged_weights(tmp_path):
    body = tmp_path / "bert"
    pretrain("bert", max_steps=2, out=body, **FAST)
    lora = tmp_path / "lora"
    finetune("bert", str(body), "sentiment", out=lora, lora_rank=4, lr=1e-2, max_steps=3,
             labels=16, **FAST)  # fmt: skip
    tuned = load_checkpoint(lora / "best.pt")["model"]
    source = read_source("bert", str(lora), task="sentiment")
    layer = "body.encoder.layer.0.attn.query"
    scaling = 2.0  # alpha 2 * rank over rank
    delta = scaling * tuned[f"{layer}.lora_B"] @ tuned[f"{layer}.lora_A"]
    assert delta.abs().max() > 0  # the adapters trained
    merged = source.state[f"{layer}.weight"]
    torch.testing.assert_close(merged, tuned[f"{layer}.base.weight"] + delta)
    model = build_model("bert", "sentiment", source.config, 2, dict(pooling="cls", dropout=0))
    loaded = load_pretrained(model, source.state, source.prefix, "body.")
    assert not [key for key in loaded.initialised if key.startswith("body.")]
