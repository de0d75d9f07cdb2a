"""A real chat model fine-tuned as a generator: SmolLM2-135M-Instruct answering "positive" or
"negative" for a movie-review snippet (``finetune llm --task sentiment-real``), or a user's own
prompt/response pairs (``--task instructions --data FILE.jsonl``).

Every example is a conversation in the model's chat template; the loss is the cross-entropy of
the answer's tokens (and the end-of-turn token) only, so the model learns what to say, not the
prompt. The same formatting scores the model without training (zero-shot: the question alone;
few-shot: a few labelled snippets as earlier turns of the conversation), so the three rows of
the README's table differ only in what the model knows.

    conversation -> chat template -> ids (B, T), right-padded -> Llama -> hidden (B, T, C)
    -> the answer positions only -> lm_head -> logits (N, V) -> cross-entropy

Scoring reads the first answer token's logits: the greedy answer (what the model would say) is
right when it is the label's word ("positive"/"Positive", "negative"/"Negative"); choice
accuracy compares the two words' probabilities (what a constrained decoder would say). The
prompts of an evaluation share their start (the system message, the question, the few-shot
turns): it is read once per batch into a KV cache, and each snippet only after it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minimod.data.vader import MissingDataError, movie_sentiment
from minimod.models.generation import LayerCache
from minimod.nn import functional as F
from minimod.nn.lora import apply_lora, lora_state_dict, merge_lora
from minimod.nn.recompute import enable_checkpointing
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks.common import UsageError
from minimod.tasks.run import RUN_FILE, one_line, pick_device
from minimod.tasks.runlock import run_folder_lock
from minimod.train.checkpoint import load_checkpoint, load_trainable, save_checkpoint, to_plain
from minimod.train.config import TrainConfig
from minimod.train.freezing import count_parameters, freeze
from minimod.train.interrupt import stop_on_signals
from minimod.train.loop import Trainer
from minimod.train.runlog import write_text_atomic

TASKS = ("sentiment-real", "instructions")
# The question before the snippet (every prompt then starts the same: read once per batch), the
# answer's cue after it. Asked "Is this review positive or negative? Answer with one word.", the
# 135M model starts its answer with "This review..." instead: it answers only when cued.
QUESTION = "Classify the sentiment of this movie review as positive or negative.\n\nReview: "
CUE = "\nSentiment:"
LABELS = ("negative", "positive")
# LoRA's targets: the attention's query and value projections (the LoRA paper's choice), or
# every projection of attention and MLP.
LORA_TARGETS = {
    "qv": ("*.q_proj", "*.v_proj"),
    "all": ("*.q_proj", "*.k_proj", "*.v_proj", "*.o_proj", "*.gate_proj", "*.up_proj",
            "*.down_proj"),
}  # fmt: skip
SETTINGS = dict(
    n_train=256, n_val=100, n_test=300, batch_size=8, lr=2e-4, max_steps=64, warmup_steps=6,
    eval_every=32, weight_decay=0.0, max_length=192, shots=4,
)  # fmt: skip
ADAPTER_FILE, MERGED_FILE = "adapter.pt", "merged.pt"


# -- examples -----------------------------------------------------------------------------------
def sentiment_rows(split: str, n: int | None, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` (text, label) rows of the movie snippets' ``split`` (a seeded subset; all when n
    is None); the held-out splits always take the same rows (seed 0)."""
    try:
        rows = movie_sentiment(split)
    except MissingDataError as error:
        raise UsageError(one_line(error)) from None
    if n is None or n >= len(rows):
        return rows
    g = torch.Generator().manual_seed(seed if split == "train" else 0)
    return [rows[i] for i in torch.randperm(len(rows), generator=g)[:n].tolist()]


def sentiment_messages(text: str, shots: list[tuple[str, int]] = ()) -> list[dict[str, str]]:
    """The conversation asking for ``text``'s sentiment, after ``shots`` answered the same
    question (few-shot)."""
    messages = []
    for shot, label in shots:
        messages += [{"role": "user", "content": QUESTION + shot + CUE},
                     {"role": "assistant", "content": LABELS[label]}]  # fmt: skip
    return [*messages, {"role": "user", "content": QUESTION + text + CUE}]


def read_instructions(path: str | Path) -> list[tuple[str, str]]:
    """(prompt, response) pairs of a JSONL file: one object per line with "prompt" and
    "response" (or "instruction" and "output"); blank lines are skipped; any other line is one
    UsageError naming it."""
    pairs = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--data {path}: cannot read it ({error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"--data {path}, line {number}: not JSON ({error.msg})") from None
        keys = next((k for k in (("prompt", "response"), ("instruction", "output"))
                     if isinstance(row, dict) and all(isinstance(row.get(x), str) for x in k)),
                    None)  # fmt: skip
        if keys is None:
            raise UsageError(
                f"--data {path}, line {number}: expected an object with string fields "
                '"prompt" and "response" (or "instruction" and "output")'
            )
        pairs.append((row[keys[0]], row[keys[1]]))
    if len(pairs) < 2:
        raise UsageError(f"--data {path}: needs at least 2 examples, found {len(pairs)}")
    return pairs


def encode_example(tokenizer: Any, messages: list[dict[str, str]], answer: str, max_length: int):
    """(ids, targets) of a conversation and its answer: targets are -1 (ignored) on the prompt,
    the answer's ids and the end-of-turn token on the answer. An example longer than
    max_length tokens is one ValueError (cutting it would cut the answer)."""
    prompt = tokenizer.encode(tokenizer.apply_chat_template(messages))
    full = tokenizer.encode(
        tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": answer}], add_generation_prompt=False
        )  # fmt: skip
    )
    if full[: len(prompt)] != prompt:
        raise ValueError("encode_example: the template does not extend the prompt with the answer")
    # The answer and its end-of-turn token: the template may add a newline after it, not learnt.
    end = len(prompt) + len(tokenizer.encode(answer)) + 1
    ids = full[:end]
    if len(ids) > max_length:
        raise ValueError(f"{len(ids)} tokens with the chat template, more than {max_length}")
    return ids, [-1] * len(prompt) + ids[len(prompt) :]


def pad_right(rows: list[list[int]], value: int) -> torch.Tensor:
    """Ragged rows -> (B, T_max), padded at the end (causal attention never looks ahead, so
    padding after a row's last token changes none of its outputs)."""
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows])


# -- the loss and the scores ----------------------------------------------------------------------
def answer_loss(model: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the answer positions: the LM head runs on those rows only (its
    49,152-way product is a fifth of the model's work per position)."""
    ids, targets = (t.to(model.lm_head.weight.device) for t in batch)
    hidden = model.hidden_states(ids)
    # Position t predicts token t + 1.
    keep = targets[:, 1:] >= 0
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits, targets[:, 1:][keep])


def label_ids(tokenizer: Any) -> list[list[int]]:
    """Per label, the single-token spellings the model may answer with (lower and title case)."""
    ids = []
    for word in LABELS:
        spellings = [tokenizer.encode(w) for w in (word, word.title())]
        ids.append([s[0] for s in spellings if len(s) == 1])
        if not ids[-1]:
            raise UsageError(f"the tokenizer has no single token for {word!r}")
    return ids


@torch.inference_mode()
def first_token_logits(model: Any, prompts: list[list[int]], batch_size: int = 16):
    """The logits (N, V) of the token after each prompt. Per batch, the prompts' common start
    is read once into a KV cache (B = 1, then broadcast), the rest right-padded."""
    device = model.lm_head.weight.device
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        shared = 0
        while all(len(p) > shared + 1 for p in chunk) and len({p[shared] for p in chunk}) == 1:
            shared += 1
        cache = [LayerCache() for _ in range(model.config.n_layer)]
        if shared:
            model.hidden_states(torch.tensor([chunk[0][:shared]], device=device), cache)
            one, cache = cache, [LayerCache() for _ in cache]
            for layer, read in zip(cache, one, strict=True):
                layer.update(*(x.expand(len(chunk), -1, -1, -1) for x in (read.keys, read.values)))
        rest = [p[shared:] for p in chunk]
        hidden = model.hidden_states(pad_right(rest, 0).to(device), cache)
        last = torch.tensor([len(r) - 1 for r in rest], device=device)
        out.append(model.lm_head(hidden[torch.arange(len(rest), device=device), last]).float())
    return torch.cat(out).cpu()


def sentiment_scores(
    model: Any, tokenizer: Any, rows: list[tuple[str, int]], shots: list[tuple[str, int]] = ()
) -> dict[str, float]:
    """accuracy (the greedy answer is the label's word), choice_accuracy (the label's word is
    likelier than the other's) and answered (the greedy answer is one of the two words)."""
    prompts = [tokenizer.encode(tokenizer.apply_chat_template(sentiment_messages(t, shots)))
               for t, _ in rows]  # fmt: skip
    logits = first_token_logits(model, prompts)
    words = label_ids(tokenizer)
    greedy = logits.argmax(-1)
    said = torch.full_like(greedy, -1)
    for label, ids in enumerate(words):
        said[torch.isin(greedy, torch.tensor(ids))] = label
    log_p = logits.log_softmax(-1)
    per_label = torch.stack([log_p[:, ids].logsumexp(-1) for ids in words], dim=1)
    truth = torch.tensor([label for _, label in rows])
    return {
        "accuracy": float((said == truth).float().mean()),
        "choice_accuracy": float((per_label.argmax(-1) == truth).float().mean()),
        "answered": float((said >= 0).float().mean()),
    }


@torch.inference_mode()
def instruction_loss(model: Any, examples: list[tuple[list[int], list[int]]], size: int = 8):
    """Mean answer cross-entropy over ``examples`` (held-out instruction pairs)."""
    total, count = 0.0, 0
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        batch = (pad_right([i for i, _ in chunk], 0), pad_right([t for _, t in chunk], -1))
        n = int((batch[1][:, 1:] >= 0).sum())
        total, count = total + float(answer_loss(model, batch)) * n, count + n
    return {"loss": total / count, "perplexity": math.exp(min(total / count, 50.0))}


# -- the run --------------------------------------------------------------------------------------
def finetune_llm(
    source: Any,
    task: str,
    *,
    data: str | Path | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    labels: int | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    lora_rank: int | None = 8,
    lora_alpha: float | None = None,
    lora_targets: str = "qv",
    freeze_pattern: str = "none",
    precision: str = "fp32",
    checkpoint_activations: bool = False,
    grad_accum: int = 1,
    n_test: int | None = None,
    score_before: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``source`` ((model, tokenizer), e.g. ``smollm2.load_smollm2()``) on ``task``
    into ``out`` (default runs/finetune-llm-TASK); returns the summary: test scores before
    (None without score_before) and after, trainable/total parameters, seconds, peak memory,
    the run folder.

    With lora_rank, only the adapters train (``lora_targets``: qv or all); without, the
    weights do, except those ``freeze_pattern`` names (a glob, or "none"). The run folder gets
    run.json, the metrics, best.pt (trainable parameters only), the adapter and the merged
    model (``merged.pt``: the adapters folded into the weights, a plain state_dict)."""
    start = time.perf_counter()
    model, tokenizer = source
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r} for llm; choose one of {', '.join(TASKS)}")
    if (task == "instructions") != (data is not None):
        raise UsageError("--task instructions needs --data FILE.jsonl (and only it takes --data)")
    if lora_targets not in LORA_TARGETS:
        raise UsageError(f"--lora-targets must be one of {', '.join(LORA_TARGETS)}")
    settings = dict(SETTINGS)
    for name, value in (("n_train", labels), ("max_steps", max_steps), ("lr", lr),
                        ("batch_size", batch_size), ("n_test", n_test)):  # fmt: skip
        if value is not None:
            settings[name] = value
    settings["n_val"] = min(settings["n_val"], settings["n_test"])
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    settings["eval_every"] = min(settings["eval_every"], settings["max_steps"])
    run_dir = Path(out) if out is not None else Path("runs") / f"finetune-llm-{task}"
    if (run_dir / RUN_FILE).exists() and not overwrite:
        raise UsageError(f"{run_dir} already holds a run; pick another --out")
    pick_device(device)
    train, val, test, evaluate, test_scores = _task_data(task, data, tokenizer, settings, seed)

    with run_folder_lock(run_dir):
        torch.manual_seed(seed)
        if lora_rank:
            alpha = 2.0 * lora_rank if lora_alpha is None else lora_alpha
            apply_lora(model, LORA_TARGETS[lora_targets], lora_rank, alpha)
        elif freeze_pattern != "none":
            freeze(model, freeze_pattern)
        if checkpoint_activations:
            enable_checkpointing(model.model.layers)
        trainable, total = count_parameters(model)
        record = {
            "kind": "finetune", "model": "llm", "task": task, "source": "smollm2", "seed": seed,
            "data": None if data is None else str(Path(data).resolve()),
            "options": {"lora_rank": lora_rank, "lora_alpha": lora_alpha,
                        "lora_targets": lora_targets, "freeze": freeze_pattern,
                        "precision": precision, "checkpoint_activations": checkpoint_activations,
                        "grad_accum": grad_accum},
            "settings": settings, "model_config": to_plain(model.config),
        }  # fmt: skip
        write_text_atomic(run_dir / RUN_FILE, json.dumps(record, indent=2) + "\n")
        log(f"finetune llm on {task} from smollm2: {trainable:,} of {total:,} parameters train")
        before = None
        if score_before:  # the zero-shot figures (an experiment may have them already)
            before = test_scores(model)
            log(f"before: {_describe(before)} on {len(test)} test examples")
        generator = torch.Generator().manual_seed(seed)

        def batches(index: int):
            rows = torch.randint(len(train), (settings["batch_size"],), generator=generator)
            chunk = [train[i] for i in rows.tolist()]
            return pad_right([i for i, _ in chunk], 0), pad_right([t for _, t in chunk], -1)

        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = AdamW(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
        scheduler = WarmupCosineLR(optimizer, settings["warmup_steps"], settings["max_steps"], 0.1)
        metric, mode = ("accuracy", "max") if task == "sentiment-real" else ("loss", "min")
        config = TrainConfig(
            max_steps=settings["max_steps"], grad_accum_steps=grad_accum, clip_grad_norm=1.0,
            log_every=min(8, settings["max_steps"]), eval_every=settings["eval_every"],
            eval_metric=metric, eval_mode=mode, checkpoint_every=settings["eval_every"],
            out_dir=str(run_dir), seed=seed, device=device, progress=progress,
            precision=precision, trainable_only=True,
        )  # fmt: skip
        trainer = Trainer(
            model, optimizer, batches, config, loss_fn=answer_loss, scheduler=scheduler,
            evaluate=lambda model, batches=None: evaluate(model), data_state=generator,
            model_config=model.config,
        )  # fmt: skip
        with stop_on_signals(trainer.stop):
            result = trainer.fit()
        if (run_dir / "best.pt").is_file():
            load_trainable(model, load_checkpoint(run_dir / "best.pt")["model"])
        after = test_scores(model)
        log(f"after: {_describe(after)} on {len(test)} test examples")
        if lora_rank:
            save_checkpoint({"adapter": lora_state_dict(model), "source": "smollm2"},
                            run_dir / ADAPTER_FILE)  # fmt: skip
            merge_lora(model)
        save_checkpoint({"model": model.state_dict(), "config": to_plain(model.config)},
                        run_dir / MERGED_FILE)  # fmt: skip
        summary = {
            "run": str(run_dir), "before": before, "after": after, "trainable": trainable,
            "total": total, "step": result.step, "best_step": result.best_step,
            "n_train": len(train), "n_test": len(test), "wall_s": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb(),
        }  # fmt: skip
        write_text_atomic(run_dir / "report.json", json.dumps(summary, indent=2) + "\n")
        summary["model"] = model
        return summary


def _task_data(task: str, data: Any, tokenizer: Any, settings: dict[str, Any], seed: int):
    """(train examples, val, test, evaluate(model) on val, test_scores(model))."""
    length = settings["max_length"]
    if task == "sentiment-real":
        train_rows = sentiment_rows("train", settings["n_train"], seed)
        val = sentiment_rows("val", settings["n_val"])
        test = sentiment_rows("test", settings["n_test"])
        asked = [(sentiment_messages(text), LABELS[label]) for text, label in train_rows]
        train = _encode_all(asked, tokenizer, length, "snippet")
        return (train, val, test, lambda model: sentiment_scores(model, tokenizer, val),
                lambda model: sentiment_scores(model, tokenizer, test))  # fmt: skip
    pairs = read_instructions(data)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(pairs), generator=g).tolist()
    held = max(1, len(pairs) // 10)  # a tenth held out (at least one pair) to pick best.pt
    examples = _encode_all([([{"role": "user", "content": pairs[i][0]}], pairs[i][1])
                            for i in order], tokenizer, length, f"--data {data}: pair")  # fmt: skip
    train, val = examples[held:][: settings["n_train"]], examples[:held]
    return (train, val, val, lambda model: instruction_loss(model, val),
            lambda model: instruction_loss(model, val))  # fmt: skip


def _encode_all(items: list, tokenizer: Any, max_length: int, what: str) -> list:
    """encode_example for each (messages, answer); too long an example is one UsageError."""
    encoded = []
    for number, (messages, answer) in enumerate(items, 1):
        try:
            encoded.append(encode_example(tokenizer, messages, answer, max_length))
        except ValueError as error:
            raise UsageError(f"{what} {number}: {error}") from None
    return encoded


def _describe(scores: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {v:.1%}" if k != "loss" and k != "perplexity" else f"{k} {v:.3f}"
        for k, v in scores.items()
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def load_merged(run_dir: str | Path, model: Any) -> Any:
    """``model`` (a fresh LlamaForCausalLM of the run's config) with a run's merged weights."""
    path = Path(run_dir) / MERGED_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir}: no {MERGED_FILE} (is it a finished finetune llm run?)")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    return model.eval()
