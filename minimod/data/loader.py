"""Batching: a small single-process ``DataLoader``, padding for text, and random windows of a
token stream for language modelling (as nanoGPT's ``get_batch``).

>>> loader = DataLoader((images, labels), batch_size=64, shuffle=True, seed=0)
>>> for x, y in loader: ...                  # epoch 0's order; the next loop gets epoch 1's
>>> text = DataLoader(pairs, batch_size=32, collate_fn=partial(collate_text, pad_id=0))
>>> ids, attention_mask, labels = next(iter(text))
>>> x, y = lm_batch(tokens, batch_size=16, block_size=128, generator=g)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch


def default_collate(examples: list) -> Any:
    """A list of examples -> one batch: tensors are stacked (a new first axis), numbers become a
    tensor, strings stay a list, and tuples, lists and dicts are collated field by field."""
    first = examples[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(examples)
    if isinstance(first, (bool, int, float)):
        return torch.tensor(examples)
    if isinstance(first, str):
        return list(examples)
    if isinstance(first, dict):
        return {key: default_collate([e[key] for e in examples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(e) != len(first) for e in examples):
            raise ValueError(
                "default_collate: examples have different lengths; for token-id lists use "
                "collate_fn=partial(collate_text, pad_id=...), which pads them"
            )
        return tuple(default_collate(list(field)) for field in zip(*examples, strict=True))
    raise TypeError(f"default_collate: cannot batch examples of type {type(first).__name__}")


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` (single process, no workers).

    ``dataset`` is one of:
    - a tensor: batches are tensors of ``batch_size`` rows;
    - a tuple of tensors with the same first dimension (like ``TensorDataset``): batches are
      tuples of row slices, e.g. ``(images, labels)``;
    - any other sequence of examples: batches are ``collate_fn(list of examples)``
      (default ``default_collate``).
    With ``shuffle`` every epoch has its own order, a permutation drawn from a ``torch.Generator``
    seeded from (``seed``, epoch): the same seed gives the same orders on every run, and each
    ``for`` loop over the loader starts the next epoch (``set_epoch`` to resume or repeat one).
    Without it the order is 0, 1, 2, ... ``drop_last`` drops a final batch smaller than
    ``batch_size``. Differences from ``torch.utils.data.DataLoader``: ``seed`` instead of
    ``generator``; no workers, samplers or pinned memory.
    """

    def __init__(
        self,
        dataset: torch.Tensor | tuple[torch.Tensor, ...] | Sequence,
        batch_size: int = 1,
        shuffle: bool = False,
        collate_fn: Callable[[list], Any] | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be ≥ 1, got {batch_size}")
        self.columns = isinstance(dataset, tuple) and all(
            isinstance(column, torch.Tensor) for column in dataset
        )
        if self.columns and (not dataset or len({len(c) for c in dataset}) != 1):
            raise ValueError(
                "DataLoader: a tuple of tensors needs at least one tensor, all of the same first "
                f"dimension, got lengths {[len(c) for c in dataset]}"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.collate_fn = collate_fn or default_collate
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset[0]) if self.columns else len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """The next iteration uses this epoch's order (then epoch + 1, ...)."""
        self.epoch = epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The example indices (n,) in the order epoch ``epoch`` visits them."""
        n = len(self.dataset[0]) if self.columns else len(self.dataset)
        if not self.shuffle:
            return torch.arange(n)
        # One generator per (seed, epoch): any epoch's order can be made without the earlier ones.
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(n, generator=generator)

    def __iter__(self) -> Iterator:
        order = self.order(self.epoch)
        self.epoch += 1
        for batch in range(len(self)):
            indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            if self.columns:
                yield tuple(column[indices] for column in self.dataset)
            elif isinstance(self.dataset, torch.Tensor):
                yield self.dataset[indices]
            else:
                yield self.collate_fn([self.dataset[i] for i in indices.tolist()])


def pad_sequences(
    sequences: Sequence[Sequence[int] | torch.Tensor],
    pad_id: int = 0,
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id sequences -> (ids (B, T), attention_mask (B, T)), both int64, padded on the right
    with ``pad_id`` to T = the longest length (after cutting each to its first ``max_length``
    ids when given). The mask is 1 at tokens and 0 at padding."""
    if max_length is not None and max_length < 1:
        raise ValueError(f"pad_sequences: max_length must be ≥ 1 or None, got {max_length}")
    rows = [torch.as_tensor(s, dtype=torch.long).reshape(-1)[:max_length] for s in sequences]
    longest = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def collate_text(batch: list, pad_id: int = 0, max_length: int | None = None) -> tuple:
    """A ``collate_fn`` for text: a list of token-id sequences -> (ids, attention_mask), or a list
    of (token-id sequence, label) pairs -> (ids, attention_mask, labels (B,)); see
    ``pad_sequences``. Use it as ``partial(collate_text, pad_id=tokenizer.pad_id)``."""
    pairs = bool(batch) and isinstance(batch[0], tuple) and not isinstance(batch[0][0], int)
    if not pairs:
        return pad_sequences(batch, pad_id, max_length)
    sequences, labels = zip(*batch, strict=True)
    return (*pad_sequences(sequences, pad_id, max_length), torch.tensor(labels))


def lm_batch(
    tokens: torch.Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows of ``block_size + 1`` tokens at random starts in the 1-D stream
    ``tokens`` -> (x, y), each (batch_size, block_size): y is x shifted left by one, the next
    token at every position. Starts are uniform over every full window; pass a seeded
    ``torch.Generator`` for a reproducible sequence of batches."""
    if tokens.dim() != 1 or len(tokens) < block_size + 1 or block_size < 1:
        raise ValueError(
            f"lm_batch: need a 1-D token stream of at least block_size + 1 = {block_size + 1} "
            f"tokens, got shape {tuple(tokens.shape)}"
        )
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    windows = tokens[starts[:, None] + torch.arange(block_size + 1)]  # (B, block_size + 1)
    return windows[:, :-1], windows[:, 1:]
