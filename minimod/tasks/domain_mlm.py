"""Domain-adaptive continued pretraining: all-MiniLM-L6-v2's masked-language-model training
continued on one VADER domain's unlabelled text (the snippets of its training split; their
labels are never read), so that a fine-tune starts from an encoder that has read the target's
words.

    minimod pretrain bert --from minilm --task mlm-domain --domain amazon --max-steps 100
    minimod evaluate --from runs/mlm-amazon     # the held-out MLM loss again, from last.pt
    minimod finetune bert --from runs/mlm-amazon --task sentiment-real --domain amazon

The run folder is a BERT pretrain run (run.json with task "bert" and the source "minilm",
config.json, tokenizer.json -- MiniLM's own vocabulary --, last.pt and best.pt of a
BERTForMaskedLM, load_report.txt), so ``finetune --from RUN`` reads it as it reads any BERT
pretrain run: the encoder under ``bert.``, the MLM head left behind.

The MiniLM package ships the encoder only (no ``cls.predictions.*``: sentence-transformers
dropped the MLM head), so the head starts fresh on top of it -- its dense layer and LayerNorm;
the decoder is tied to the word embeddings as always. A fresh head sends noise into the
encoder at first, so the head learns ``head_lr`` (20 times the encoder's lr) and the encoder
at ``lr``, a fine-tuning rate.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minimod.data.loader import pad_sequences
from minimod.data.masking import mask_tokens
from minimod.data.splits import MissingDataError
from minimod.data.vader import DOMAINS, domain_sentiment
from minimod.models.bert import BERTForMaskedLM
from minimod.models.loading import load_pretrained
from minimod.models.pretrained import MissingExtraError, read_pretrained
from minimod.nn import functional as F
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks import lm
from minimod.tasks.common import UsageError
from minimod.tasks.finetune.sources import model_config, pretrained_tokenizer
from minimod.tasks.pretrain import fit_run
from minimod.tasks.run import (
    RUN_FILE,
    is_domain_mlm,
    load_weights,
    one_line,
    pick_device,
    plot_losses,
    read_run,
    write_json,
)
from minimod.tasks.runlock import run_folder_lock
from minimod.train.checkpoint import seed_everything, to_plain
from minimod.train.config import TrainConfig
from minimod.train.freezing import decays
from minimod.train.loop import Trainer
from minimod.train.runlog import write_text_atomic

TASK = "mlm-domain"  # `minimod pretrain bert --task mlm-domain`
SETTINGS: dict[str, Any] = dict(
    batch_size=32, lr=5e-5, head_lr=1e-3, max_steps=100, warmup_steps=10, weight_decay=0.01,
    betas=(0.9, 0.999), min_lr_ratio=0.1, clip_grad_norm=1.0, log_every=10, eval_every=50,
    mlm_probability=0.15, max_length=128, n_val=256,
)  # fmt: skip
EVAL_SEED = 1234  # the held-out snippets are masked the same way at every evaluation


def snippet_ids(tokenizer: Any, domain: str, split: str, max_length: int) -> list[list[int]]:
    """The token ids ([CLS] ... [SEP], cut to ``max_length``) of every snippet of a domain's
    split; labels are dropped."""
    try:
        rows = domain_sentiment(domain, split)
    except MissingDataError as error:
        raise UsageError(one_line(error)) from None
    return [tokenizer.encode(text)[:max_length] for text, _ in rows]


def masked_batch(
    snippets: list[list[int]], rows: list[int], tokenizer: Any, p: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The snippets ``rows`` padded and masked: (inputs, attention_mask, labels), each (B, T);
    labels -100 where the loss ignores the position."""
    ids, attention = pad_sequences([snippets[i] for i in rows], tokenizer.pad_token_id)
    specials = sorted(tokenizer.special_ids)
    inputs, labels = mask_tokens(ids, tokenizer.mask_token_id, tokenizer.vocab_size, specials, p, g)
    return inputs, attention, labels


def masked_loss(model: BERTForMaskedLM, batch: tuple) -> torch.Tensor:
    """Cross-entropy at the masked positions of ``(inputs, attention_mask, labels)``."""
    inputs, attention, labels = batch
    hidden, _ = model.bert(inputs, attention)
    chosen = labels != -100
    # Only the chosen positions are scored: the 30,522-word projection of every position would
    # be most of a step's work for MiniLM, and BERTForMaskedLM's loss ignores the others anyway.
    return F.cross_entropy(model.lm_head(hidden[chosen]), labels[chosen])


def snippet_length(settings: dict[str, Any]) -> int:
    """The most tokens of a snippet: max_length, within the model's positions."""
    return min(settings["max_length"], settings["model"]["max_position_embeddings"])


def held_out(tokenizer: Any, domain: str, settings: dict[str, Any]) -> list[list[int]]:
    """The token ids of the held-out snippets: the first n_val of the domain's val split."""
    return snippet_ids(tokenizer, domain, "val", snippet_length(settings))[: settings["n_val"]]


def held_out_loss(
    model: BERTForMaskedLM, val: list[list[int]], tokenizer: Any, settings: dict[str, Any]
) -> dict[str, float]:
    """The MLM loss over every held-out snippet ``val``, in batches of batch_size, masked the
    same way at every call (``EVAL_SEED``): the run's evaluations, and evaluate_domain_run's."""
    g = torch.Generator().manual_seed(EVAL_SEED)
    p, size = settings["mlm_probability"], settings["batch_size"]
    device = next(model.parameters()).device
    was_training, losses = model.training, []
    model.eval()
    with torch.no_grad():
        for first in range(0, len(val), size):
            batch = masked_batch(val, range(first, min(first + size, len(val))), tokenizer, p, g)
            losses.append(float(masked_loss(model, tuple(t.to(device) for t in batch))))
    model.train(was_training)
    return {"loss": statistics.fmean(losses)}


def evaluate_domain_run(
    run_dir: str | Path, device: str = "cpu"
) -> tuple[dict[str, Any], dict[str, float]]:
    """(run.json, held-out metrics) of a domain-adaptive MLM run folder: last.pt's masked-LM
    loss on the held-out snippets the run was evaluated on, masked the same way, so it repeats
    the loss the run reported at its end."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    if not is_domain_mlm(record):
        raise UsageError(f"{run_dir} is not a --task {TASK} run")
    settings = record["settings"]
    tokenizer = lm.read_tokenizer(run_dir)
    model = BERTForMaskedLM(model_config("bert", settings["model"]))
    load_weights(model, run_dir / "last.pt")
    model.to(pick_device(device))
    val = held_out(tokenizer, record["domain"], settings)
    return record, held_out_loss(model, val, tokenizer, settings)


def _optimizer(model: BERTForMaskedLM, settings: dict[str, Any]) -> AdamW:
    """AdamW: the fresh head at ``head_lr``, the pretrained encoder (and the word embeddings the
    decoder shares) at ``lr``; weight decay on matrices only."""
    encoder = list(model.bert.parameters())
    head = [p for p in model.lm_head.parameters() if all(p is not q for q in encoder)]
    groups = []
    for params, lr in ((head, settings["head_lr"]), (encoder, settings["lr"])):
        for decay in (True, False):
            chosen = [p for p in params if decays(p) == decay]
            wd = settings["weight_decay"] if decay else 0.0
            groups.append({"params": chosen, "lr": lr, "weight_decay": wd})
    return AdamW(groups, lr=settings["lr"], betas=tuple(settings["betas"]), foreach=True)


def pretrain_domain(
    domain: str,
    out: str | Path | None = None,
    *,
    source: str = "minilm",
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
    **overrides: Any,
) -> dict[str, Any]:
    """Continue ``source``'s (all-MiniLM-L6-v2's) MLM training on ``domain``'s unlabelled
    training snippets into the run folder ``out`` (default runs/mlm-DOMAIN). overrides:
    max_steps, batch_size, lr, n_val (the held-out snippets evaluated; None keeps
    ``SETTINGS``'). Returns a summary: run folder,
    steps, held-out MLM loss before and after, median ms per step, wall seconds, the load
    report."""
    start = time.perf_counter()
    if source != "minilm":
        raise UsageError(f"--task {TASK} continues MiniLM's pretraining: --from minilm")
    if domain not in DOMAINS:
        raise UsageError(f"unknown VADER domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    settings = dict(SETTINGS)
    for name, value in overrides.items():
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {value}")
            settings[name] = value
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    pick_device(device)
    run_dir = Path(out) if out is not None else Path("runs") / f"mlm-{domain}"
    try:
        config, vocab_file, state = read_pretrained("minilm")
    except MissingExtraError as error:
        raise UsageError(one_line(error)) from None
    tokenizer = pretrained_tokenizer(vocab_file, config)
    settings["model"] = to_plain(config)
    record = {"task": "bert", "preset": "minilm", "data": f"vader:{domain} (train text)",
              "settings": to_plain(settings), "source": source, "domain": domain}  # fmt: skip
    train = snippet_ids(tokenizer, domain, "train", snippet_length(settings))
    val = held_out(tokenizer, domain, settings)
    generator = torch.Generator().manual_seed(seed)
    p, size = settings["mlm_probability"], settings["batch_size"]

    def batches(index: int):
        rows = torch.randint(len(train), (size,), generator=generator).tolist()
        return masked_batch(train, rows, tokenizer, p, generator)

    def evaluate(model: BERTForMaskedLM, batches: int | None = None) -> dict[str, float]:
        return held_out_loss(model, val, tokenizer, settings)

    with run_folder_lock(run_dir):
        if (run_dir / "last.pt").exists() and not overwrite:
            raise UsageError(f"{run_dir} already holds a run; pick another --out")
        seed_everything(seed)
        model = BERTForMaskedLM(config)
        report = load_pretrained(model, state, "", "bert.")
        optimizer = _optimizer(model, settings)
        schedule = WarmupCosineLR(
            optimizer, settings["warmup_steps"], settings["max_steps"], settings["min_lr_ratio"]
        )
        tokenizer.save(run_dir / lm.TOKENIZER_FILE)
        write_json(run_dir / RUN_FILE, record)
        write_text_atomic(run_dir / "load_report.txt", str(report) + "\n")
        log(f"{TASK} on {domain}: {len(train):,} training snippets, run folder {run_dir}")
        log(f"pretrained weights: {report.summary()} (details: {run_dir}/load_report.txt)")
        before = evaluate(model)["loss"]
        config_ = TrainConfig(
            max_steps=settings["max_steps"], clip_grad_norm=settings["clip_grad_norm"],
            log_every=min(settings["log_every"], settings["max_steps"]),
            eval_every=settings["eval_every"], checkpoint_every=settings["eval_every"],
            out_dir=str(run_dir), seed=seed, device=device, progress=progress,
        )  # fmt: skip
        trainer = Trainer(
            model, optimizer, batches, config_, loss_fn=masked_loss, scheduler=schedule,
            evaluate=evaluate, data_state=generator,
        )  # fmt: skip
        result = fit_run(trainer, run_dir, False, f"a batch of {size} snippets for {TASK}")
        # The Trainer evaluates after the last step: its row is the held-out loss after.
        after = next(row["eval_loss"] for row in reversed(result.history) if "eval_loss" in row)
        final = {"loss_before": before, "loss": after}
        write_json(run_dir / RUN_FILE, {**record, "final": final})
        step_ms = [1000 * row["step_time_s"] for row in result.history if "step_time_s" in row]
        return {
            "run": str(run_dir), "step": result.step, "final": final, "report": report,
            "ms_per_step": statistics.median(step_ms) if step_ms else None,
            "wall_s": time.perf_counter() - start, "plot": plot_losses(run_dir),
        }  # fmt: skip
