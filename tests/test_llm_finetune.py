"""Fine-tuning the LLM as a generator (``minimod.tasks.llm``, ``finetune llm``).

Fast tests use a tiny random Llama: the shared-prefix scoring equals a plain forward of every
prompt, the answer loss equals the cross-entropy of the full logits at the answer positions,
checkpoints of the trainable parameters only resume exactly and refuse another trainable set.
Real tests (``make real``) use SmolLM2's own tokenizer and the movie snippets: the answer's
targets, a whole fine-tune of a tiny model whose merged model (saved, reloaded) gives the same
scores, and the command line on the real model.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from console import assert_usage_error, minimod
from minimod.models.llama import LlamaConfig, LlamaForCausalLM
from minimod.nn import functional as F
from minimod.nn.lora import apply_lora
from minimod.optim import AdamW
from minimod.tasks import UsageError, llm
from minimod.train.checkpoint import CheckpointError, load_checkpoint, load_trainable
from minimod.train.config import TrainConfig
from minimod.train.loop import Trainer

pytestmark = pytest.mark.reference_only

TINY = dict(vocab_size=50, block_size=64, n_layer=2, n_embd=16, n_hidden=24, n_head=4,
            n_kv_head=2)  # fmt: skip


def tiny_model(seed: int = 0, **changes) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**TINY, **changes})).eval()


@settings(max_examples=10, deadline=None)
@given(
    prefix=st.integers(0, 6),
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=5),
    batch_size=st.integers(1, 3),
    seed=st.integers(0, 100),
)
def test_shared_prefix_scoring_equals_a_plain_forward(prefix, lengths, batch_size, seed):
    """Reading the common start once (KV cache broadcast over the batch) and the rest
    right-padded changes no logit of any prompt's last position."""
    model = tiny_model()
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(50, (prefix,), generator=g).tolist()
    prompts = [start + torch.randint(50, (n,), generator=g).tolist() for n in lengths]
    got = llm.first_token_logits(model, prompts, batch_size)
    with torch.inference_mode():
        want = torch.stack([model(torch.tensor([p]))[0][0, -1] for p in prompts])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_answer_loss_is_the_cross_entropy_of_the_answer_positions():
    model = tiny_model()
    ids = torch.randint(50, (3, 9), generator=torch.Generator().manual_seed(1))
    targets = torch.full_like(ids, -1)
    targets[0, 6:8], targets[1, 3:5], targets[2, 8] = ids[0, 6:8], ids[1, 3:5], ids[2, 8]
    logits = model(ids)[0]
    # Position t predicts token t + 1: the loss of token j is read at position j - 1.
    want = F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten(), ignore_index=-1)
    torch.testing.assert_close(llm.answer_loss(model, (ids, targets)), want)


def lora_trainer(tmp_path, max_steps: int, seed: int = 0):
    model = tiny_model(seed).train()
    apply_lora(model, llm.LORA_TARGETS["qv"], rank=2, alpha=4.0)
    g = torch.Generator().manual_seed(0)

    def batches(index):
        ids = torch.randint(50, (2, 8), generator=g)
        return ids, ids.masked_fill(torch.arange(8) < 5, -1)

    params = [p for p in model.parameters() if p.requires_grad]
    config = TrainConfig(max_steps=max_steps, out_dir=str(tmp_path), checkpoint_every=2,
                         progress=False, trainable_only=True, log_every=1)  # fmt: skip
    optimizer = AdamW(params, lr=1e-2)
    return Trainer(model, optimizer, batches, config, loss_fn=llm.answer_loss, data_state=g)


def test_checkpoints_of_the_trainable_parameters_resume_exactly(tmp_path):
    whole = lora_trainer(tmp_path / "whole", 4)
    whole.fit()
    first = lora_trainer(tmp_path / "split", 2)
    first.fit()
    saved = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    assert saved and all("lora_" in name for name in saved)  # no frozen weight written
    resumed = lora_trainer(tmp_path / "split", 4)
    resumed.fit(resume_from=tmp_path / "split" / "last.pt")
    for (name, a), (_, b) in zip(whole.model.named_parameters(), resumed.model.named_parameters(),
                                 strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, msg=name)


def test_another_trainable_set_is_refused():
    model = tiny_model()
    apply_lora(model, llm.LORA_TARGETS["qv"], rank=2)
    other = tiny_model()
    apply_lora(other, llm.LORA_TARGETS["all"], rank=2)
    state = {n: p for n, p in other.named_parameters() if p.requires_grad}
    with pytest.raises(CheckpointError, match="trainable parameters"):
        load_trainable(model, state)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (['{"prompt": "a", "response": "b"}', "not json"], "line 2: not JSON"),
        (['{"prompt": "a"}', '{"prompt": "a", "response": "b"}'], "line 1: expected"),
        (['{"instruction": "a", "output": "b"}'], "at least 2"),
    ],
)
def test_bad_instruction_files_are_refused_naming_the_line(tmp_path, lines, words):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=words):
        llm.read_instructions(path)


def test_instruction_pairs_are_read_in_both_spellings(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "2+2?", "response": "4"}, {"instruction": "Say hi", "output": "hi"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert llm.read_instructions(path) == [("2+2?", "4"), ("Say hi", "hi")]


# -- real ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    from minimod.data.bpe import PretrainedBPETokenizer
    from minimod.models.gguf import read_gguf
    from minimod.models.pretrained import smollm2_path

    return PretrainedBPETokenizer.from_gguf_metadata(read_gguf(smollm2_path()).metadata)


@pytest.mark.real
def test_only_the_answer_and_its_end_of_turn_are_targets(tokenizer):
    messages = llm.sentiment_messages("A gem of a film.")
    ids, targets = llm.encode_example(tokenizer, messages, "positive", 192)
    prompt = tokenizer.encode(tokenizer.apply_chat_template(messages))
    assert ids[: len(prompt)] == prompt
    assert set(targets[: len(prompt)]) == {-1}
    assert tokenizer.decode(targets[len(prompt) :]) == "positive<|im_end|>"
    with pytest.raises(ValueError, match="more than 10"):
        llm.encode_example(tokenizer, messages, "positive", 10)


@pytest.mark.real
def test_a_finetune_saves_a_merged_model_that_answers_the_same(tokenizer, tmp_path):
    """A whole run on a tiny model with SmolLM2's vocabulary: LoRA trains, the report has
    scores before and after, and merged.pt reloaded into a fresh model scores the same."""
    model = tiny_model(vocab_size=tokenizer.vocab_size, block_size=256)
    summary = llm.finetune_llm(
        (model, tokenizer), "sentiment-real", out=tmp_path / "run", labels=16, max_steps=3,
        batch_size=4, n_test=12, lora_rank=2, progress=False, log=lambda line: None,
    )  # fmt: skip
    assert summary["trainable"] < summary["total"] / 10
    assert set(summary["after"]) == {"accuracy", "choice_accuracy", "answered"}
    assert (tmp_path / "run" / "best.pt").stat().st_size < 1_000_000  # adapters only
    test = llm.sentiment_rows("test", 12)
    prompts = [tokenizer.encode(tokenizer.apply_chat_template(llm.sentiment_messages(t)))
               for t, _ in test]  # fmt: skip
    fresh = llm.load_merged(tmp_path / "run", LlamaForCausalLM(summary["model"].config))
    torch.testing.assert_close(
        llm.first_token_logits(fresh, prompts),
        llm.first_token_logits(summary["model"].eval(), prompts),
    )
    assert llm.sentiment_scores(fresh, tokenizer, test) == summary["after"]


@pytest.mark.real
def test_bf16_checkpointing_and_accumulation_train_the_same_adapters(tokenizer, tmp_path):
    """--precision bf16, --checkpoint-activations and --grad-accum 2 on a tiny model: the run
    trains (the merged weights moved), recomputes each decoder layer, and the Trainer got the
    precision and the accumulation."""
    model = tiny_model(vocab_size=tokenizer.vocab_size, block_size=256)
    before = {n: p.clone() for n, p in model.named_parameters()}
    summary = llm.finetune_llm(
        (model, tokenizer), "sentiment-real", out=tmp_path / "run", labels=8, max_steps=2,
        batch_size=2, n_test=4, lora_rank=2, lora_targets="all", precision="bf16",
        checkpoint_activations=True, grad_accum=2, progress=False, log=lambda line: None,
        score_before=False,
    )  # fmt: skip
    assert summary["step"] == 2 and summary["before"] is None
    assert all("forward" in layer.__dict__ for layer in summary["model"].model.layers)
    train = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert train["grad_accum_steps"] == 2 and train["precision"] == "bf16"
    merged = summary["model"].state_dict()
    assert any(not torch.equal(merged[n], before[n]) for n in before if n in merged)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["options"]["precision"] == "bf16" and run["options"]["grad_accum"] == 2


@pytest.mark.slow
@pytest.mark.real
def test_finetune_llm_on_instructions_from_the_command_line(tmp_path):
    data = tmp_path / "pairs.jsonl"
    pairs = [{"prompt": f"What is {a} plus {a}?", "response": str(2 * a)} for a in range(6)]
    data.write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    done = minimod("finetune", "llm", "--from", "smollm2", "--task", "instructions", "--data",
                   str(data), "--lora-rank", "2", "--lora-targets", "all", "--max-steps", "1",
                   "--batch-size", "2", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "parameters trained" in done.stdout and "peak memory" in done.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["step"] == 1 and report["after"]["loss"] > 0
    assert (tmp_path / "run" / "merged.pt").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "scratch", "--task", "sentiment-real"), "--from smollm2"),
        (("--from", "smollm2", "--task", "sentiment-real", "--class-weights", "auto"),
         "--class-weights"),
        (("--from", "smollm2", "--task", "sentiment-real", "--freeze", "body"), "linear probe"),
    ],
)  # fmt: skip
def test_finetune_llm_refuses_what_it_cannot_do(args, words):
    assert_usage_error(minimod("finetune", "llm", *args), words)


def test_the_llm_options_are_refused_for_other_models():
    done = minimod("finetune", "bert", "--from", "scratch", "--task", "sentiment",
                   "--lora-targets", "all")  # fmt: skip
    assert_usage_error(done, "--lora-targets", "finetune llm")
