"""Batching: every example exactly once per epoch, drop_last sizes, seeded shuffles that differ
between epochs, the three kinds of dataset, text padding and masks, and LM windows."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from minimod.data.loader import DataLoader, collate_text, default_collate, lm_batch, pad_sequences

seeds = st.integers(0, 2**32 - 1)


@given(
    n=st.integers(0, 40),
    batch_size=st.integers(1, 12),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=seeds,
)
@example(n=1, batch_size=1, shuffle=True, drop_last=False, seed=0)
@example(n=5, batch_size=6, shuffle=True, drop_last=True, seed=0)
def test_each_index_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(torch.arange(n), batch_size, shuffle, drop_last=drop_last, seed=seed)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        expected_len = n // batch_size if drop_last else math.ceil(n / batch_size)
        assert len(loader) == expected_len
        sizes = [len(b) for b in batches]
        assert all(size == batch_size for size in sizes[:-1])
        if drop_last:
            assert all(size == batch_size for size in sizes)
        seen = torch.cat([torch.zeros(0, dtype=torch.long), *batches]).tolist()
        assert len(seen) == len(set(seen)), "an example appeared twice in one epoch"
        assert len(seen) == (expected_len * batch_size if drop_last else n)
        assert set(seen) <= set(range(n))
        if not shuffle:
            assert seen == list(range(len(seen)))


def test_shuffle_is_seeded_and_differs_between_epochs():
    def epochs(seed, count=3):
        loader = DataLoader(torch.arange(50), 7, shuffle=True, seed=seed)
        return [torch.cat(list(loader)).tolist() for _ in range(count)]

    first, again, other = epochs(0), epochs(0), epochs(1)
    assert first == again, "the same seed must give the same orders"
    assert first[0] != first[1] != first[2], "each epoch needs its own order"
    assert first != other
    assert first[0] != list(range(50))
    loader = DataLoader(torch.arange(50), 7, shuffle=True, seed=0)
    loader.set_epoch(2)
    assert torch.cat(list(loader)).tolist() == first[2], "set_epoch must reproduce that epoch"
    assert loader.epoch == 3


def test_tuple_of_tensors_keeps_rows_aligned():
    x = torch.arange(30).reshape(10, 3)
    y = torch.arange(10) * 10
    loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=3)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for xb, yb in batches:
        assert torch.equal(xb[:, 0] // 3 * 10, yb)
    with pytest.raises(ValueError, match="same first"):
        DataLoader((x, y[:5]))


def test_sequence_of_examples_is_collated():
    examples = [(torch.full((2,), float(i)), i, f"t{i}") for i in range(5)]
    features, labels, texts = next(iter(DataLoader(examples, batch_size=3)))
    assert features.shape == (3, 2) and torch.equal(labels, torch.tensor([0, 1, 2]))
    assert texts == ["t0", "t1", "t2"]
    batch = default_collate([{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}])
    assert torch.equal(batch["a"], torch.tensor([1, 2]))
    assert [b.tolist() for b in batch["b"]] == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(ValueError, match="collate_text"):
        default_collate([[1, 2, 3], [4]])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(examples, batch_size=0)


token_lists = st.lists(st.lists(st.integers(1, 99), max_size=8), min_size=1, max_size=6)


@given(sequences=token_lists, pad_id=st.integers(0, 100), max_length=st.none() | st.integers(1, 5))
@example(sequences=[[]], pad_id=0, max_length=None)
def test_padding_and_mask(sequences, pad_id, max_length):
    ids, mask = pad_sequences(sequences, pad_id, max_length)
    kept = [s[:max_length] for s in sequences]
    assert ids.shape == mask.shape == (len(sequences), max(map(len, kept)))
    assert ids.dtype == mask.dtype == torch.long
    for row_ids, row_mask, seq in zip(ids, mask, kept, strict=True):
        assert row_mask.tolist() == [1] * len(seq) + [0] * (len(row_mask) - len(seq)), (
            "the attention mask is 1 on tokens and 0 on padding, padding on the right"
        )
        assert row_ids[: len(seq)].tolist() == seq
        assert (row_ids[len(seq) :] == pad_id).all()


def test_collate_text_in_a_loader():
    pairs = [([5, 6, 7], 1), ([8], 0), (torch.tensor([9, 9]), 1)]
    loader = DataLoader(pairs, batch_size=3, collate_fn=partial(collate_text, pad_id=-1))
    ids, mask, labels = next(iter(loader))
    assert ids.tolist() == [[5, 6, 7], [8, -1, -1], [9, 9, -1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert labels.tolist() == [1, 0, 1]
    ids, mask = collate_text([(1, 2), (3,)], max_length=1)  # tuples of ids are sequences
    assert ids.tolist() == [[1], [3]] and mask.tolist() == [[1], [1]]


@given(
    length=st.integers(2, 60),
    block_size=st.integers(1, 20),
    batch_size=st.integers(1, 8),
    seed=seeds,
)
def test_lm_windows_shifted_by_one(length, block_size, batch_size, seed):
    tokens = torch.randint(0, 1000, (length,), generator=torch.Generator().manual_seed(seed))
    if length < block_size + 1:
        with pytest.raises(ValueError, match="block_size"):
            lm_batch(tokens, batch_size, block_size)
        return
    x, y = lm_batch(tokens, batch_size, block_size, torch.Generator().manual_seed(seed))
    assert x.shape == y.shape == (batch_size, block_size)
    assert torch.equal(x[:, 1:], y[:, :-1]), "y must be x shifted left by one"
    windows = tokens.unfold(0, block_size + 1, 1)  # every full window
    for row_x, row_y in zip(x, y, strict=True):
        row = torch.cat([row_x, row_y[-1:]])
        assert (windows == row).all(dim=1).any(), "each row must be a contiguous window"
    again = lm_batch(tokens, batch_size, block_size, torch.Generator().manual_seed(seed))
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


def test_lm_starts_cover_every_window():
    tokens = torch.arange(12)
    generator = torch.Generator().manual_seed(0)
    starts = torch.cat([lm_batch(tokens, 64, 8, generator)[0][:, 0] for _ in range(4)])
    assert set(starts.tolist()) == {0, 1, 2, 3}, "starts run from 0 to len - block_size - 1"
