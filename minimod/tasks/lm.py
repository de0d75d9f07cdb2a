"""Language-model pretraining: GPT (next token) and BERT (masked tokens) on a text corpus.

Data: the built-in corpus (Python's documentation) for GPT, synthetic reviews for BERT, or
any UTF-8 file by path. The first 90% of the text trains, the last 10% is held out, as in
nanoGPT. GPT reads characters (``CharTokenizer``); BERT reads words (a WordPiece vocabulary
of the corpus's most frequent words, with every character as a fallback piece).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from minimod.data import (
    CharTokenizer,
    WordPieceTokenizer,
    lm_batch,
    load_corpus,
    load_tokenizer,
    split_text,
)
from minimod.data.masking import mask_tokens
from minimod.data.wordpiece import SPECIAL_TOKENS, basic_tokenize
from minimod.models.bert import BERTConfig, BERTForMaskedLM
from minimod.models.gpt import GPT, GPTConfig
from minimod.tasks.common import TaskData, UsageError, device_of
from minimod.train.progress import Progress

TOKENIZER_FILE = "tokenizer.json"


def read_text(data: str | None, task: str) -> tuple[str, str]:
    """(train, val) text of ``data`` (a path, or None for the task's built-in corpus)."""
    if data is None:
        data = "reviews" if task == "bert" else "pydoc"
    try:
        text = load_corpus(data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise UsageError(str(error)) from None
    return split_text(text, 0.1)


def read_tokenizer(run_dir: Path) -> Any:
    """The tokenizer saved in a run folder; a missing or corrupt file is one UsageError."""
    try:
        return load_tokenizer(run_dir / TOKENIZER_FILE)
    except (OSError, ValueError) as error:
        raise UsageError(f"{run_dir}: cannot read {TOKENIZER_FILE} ({error})") from None


def encode(tokenizer: Any, text: str, where: str) -> torch.Tensor:
    try:
        ids = (
            tokenizer.encode(text, add_special_tokens=False)
            if isinstance(tokenizer, WordPieceTokenizer)
            else tokenizer.encode(text)
        )
    except ValueError as error:
        raise UsageError(f"{where}: {error} (the run's tokenizer was made from its data)") from None
    return torch.tensor(ids, dtype=torch.long)


def check_length(tokens: torch.Tensor, block_size: int, part: str) -> None:
    if len(tokens) < block_size + 1:
        raise UsageError(
            f"the {part} text is too short: {len(tokens)} tokens, the model's block size needs "
            f"at least {block_size + 1} (use a longer file)"
        )


def train_wordpiece(text: str, max_words: int) -> WordPieceTokenizer:
    """A word-level WordPiece vocabulary: the special tokens, every character (alone and as a
    ``##`` continuation, so any word can be spelled) and the ``max_words`` most frequent words."""
    counts = Counter(basic_tokenize(text))
    chars = sorted({c for word in counts for c in word})
    words = [w for w, _ in counts.most_common(max_words) if len(w) > 1]
    return WordPieceTokenizer(
        [*SPECIAL_TOKENS.values(), *chars, *(f"##{c}" for c in chars), *words]
    )


def lm_evaluate(loss_of, tokens: torch.Tensor, n_batches: int, seed: int = 1234):
    """Mean loss over ``n_batches`` random windows of ``tokens``, the same windows every time."""

    def evaluate(model: Any, batches: int | None = None) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        device = device_of(model)
        total = 0.0
        count = batches or n_batches
        # A bar for the long final evaluation only (on a terminal; quiet in logs and pipes).
        bar = Progress(count, desc="eval", unit="batch", enabled=count >= 50, plain_every_s=None)
        for _ in range(count):
            total += float(loss_of(model, tokens, g, device))
            bar.update()
        if count >= 50 and bar.interactive:
            bar.close()
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    return evaluate


# -- GPT --------------------------------------------------------------------------------------
def gpt(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    train_text, val_text = read_text(data, "gpt")
    tokenizer = CharTokenizer.train(train_text + val_text) if fresh else read_tokenizer(run_dir)
    block, batch_size = settings["model"]["block_size"], settings["batch_size"]
    train, val = encode(tokenizer, train_text, "data"), encode(tokenizer, val_text, "data")
    check_length(train, block, "training")
    check_length(val, block, "held-out (last 10%)")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **settings["model"])
    generator = torch.Generator().manual_seed(settings["seed"])

    def loss_of(model, tokens, g, device):
        x, y = lm_batch(tokens, batch_size, block, g)
        return model(x.to(device), y.to(device))[1]

    return TaskData(
        config=config,
        build=lambda: GPT(config),
        batches=lambda index: lm_batch(train, batch_size, block, generator),
        data_state=generator,
        evaluate=lm_evaluate(loss_of, val, settings["eval_batches"]),
        tokenizer=tokenizer,
    )


# -- BERT -------------------------------------------------------------------------------------
def bert(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    train_text, val_text = read_text(data, "bert")
    tokenizer = (
        train_wordpiece(train_text, settings["max_words"]) if fresh else read_tokenizer(run_dir)
    )
    block, batch_size = settings["block_size"], settings["batch_size"]
    train, val = encode(tokenizer, train_text, "data"), encode(tokenizer, val_text, "data")
    check_length(train, block - 2, "training")
    check_length(val, block - 2, "held-out (last 10%)")
    config = BERTConfig(
        vocab_size=tokenizer.vocab_size,
        max_position_embeddings=block,
        pad_token_id=tokenizer.pad_token_id,
        **settings["model"],
    )
    generator = torch.Generator().manual_seed(settings["seed"])

    def masked_batch(tokens: torch.Tensor, g: torch.Generator):
        """Windows of block - 2 tokens framed as [CLS] ... [SEP], 15% of them masked."""
        x, _ = lm_batch(tokens, batch_size, block - 2, g)
        cls = torch.full((batch_size, 1), tokenizer.cls_token_id)
        sep = torch.full((batch_size, 1), tokenizer.sep_token_id)
        ids = torch.cat([cls, x, sep], dim=1)
        specials = sorted(tokenizer.special_ids)
        return mask_tokens(ids, tokenizer.mask_token_id, tokenizer.vocab_size, specials, 0.15, g)

    def loss_of(model, tokens, g, device):
        inputs, labels = masked_batch(tokens, g)
        return model(inputs.to(device), labels=labels.to(device))[1]

    return TaskData(
        config=config,
        build=lambda: BERTForMaskedLM(config),
        batches=lambda index: masked_batch(train, generator),
        data_state=generator,
        evaluate=lm_evaluate(loss_of, val, settings["eval_batches"]),
        tokenizer=tokenizer,
        loss_fn=lambda model, batch: model(batch[0], labels=batch[1])[1],
    )


def fill_mask(model: BERTForMaskedLM, tokenizer: WordPieceTokenizer, text: str, k: int = 3):
    """The ``k`` likeliest words for each [MASK] in ``text``: a list of lists of strings."""
    ids = torch.tensor([tokenizer.encode(text)])
    model.eval()
    with torch.no_grad():
        logits, _ = model(ids.to(device_of(model)))
    where = (ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    return [[tokenizer.vocab[i] for i in logits[0, p].topk(k).indices.tolist()] for p in where]
