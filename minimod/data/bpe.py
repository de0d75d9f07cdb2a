"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2 and most language models since.

Bytes first. Text is encoded as UTF-8, so every string is a sequence of bytes, values 0-255.
Those 256 bytes are the base vocabulary: ids 0-255 *are* the bytes. Any string at all -- emoji,
Chinese, a NUL character, a combining accent -- is some sequence of bytes, so it can always be
encoded: a byte-level tokenizer has no "unknown" token. (A character tokenizer fails on a
character it never saw; WordPiece maps unseen words to [UNK].)

Merges next. Bytes alone make long sequences (one token per byte), so BPE learns *merges*: count
every adjacent pair of tokens in the training text, take the most frequent pair, say
(``t``, ``h``), give it a new id (256, then 257, ...) and replace every occurrence of the pair by
that id. Repeat until the vocabulary has ``vocab_size`` entries. The list of merges, in the order
they were learned, *is* the tokenizer: a frequent word ends up as one token, a rare one as a few
pieces, a never-seen one as single bytes.

Pre-tokenization. Before counting, the text is split into chunks -- words with their leading
space, runs of digits, runs of punctuation, whitespace -- by a regular expression like GPT-2's,
and pairs are only counted (and merged) inside a chunk. So a merge never glues the end of one
word to the start of the next ("e t" of "the tree"), and " the" becomes one token wherever it is.

Encoding applies the merges learned in training to new text, earliest-learned first; decoding
concatenates the tokens' bytes and decodes them as UTF-8, so ``decode(encode(s)) == s``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from minimod.data.tokenizers import Tokenizer, check_ids

Pair = tuple[int, int]

# GPT-2's pattern, written for Python's `re` (GPT-2 uses the `regex` module's \p{L} / \p{N}):
# contractions | optional space + letters | optional space + digits | optional space +
# punctuation/symbols | whitespace not followed by a non-space (so the last space of a run
# stays with the next word) | other whitespace. Every character falls into some alternative,
# so the chunks always add up to the whole text.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""


def pretokenize(text: str, pattern: str | None = GPT2_SPLIT_PATTERN) -> list[str]:
    """Split ``text`` into the chunks that merges stay inside; ``"".join(chunks) == text``.

    >>> pretokenize("Hello world, it's 2024!")
    ['Hello', ' world', ',', ' it', "'s", ' 2024', '!']

    ``pattern=None`` keeps the whole text as one chunk (merges may then cross words).
    """
    if pattern is None:
        return [text] if text else []
    return re.findall(pattern, text)


def count_pairs(words: dict[tuple[int, ...], int]) -> dict[Pair, int]:
    """How often each adjacent pair of ids occurs, over ``words`` ({token ids: frequency}).

    >>> count_pairs({(1, 2, 3): 1, (1, 2): 5})
    {(1, 2): 6, (2, 3): 1}
    """
    # BEGIN SOLUTION
    counts: dict[Pair, int] = defaultdict(int)
    for word, frequency in words.items():
        for pair in pairwise(word):
            counts[pair] += frequency
    return dict(counts)
    # END SOLUTION


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair`` replaced by ``new_id``, scanning left to right
    and never reusing an id in two merges: ``merge_pair([9, 9, 9], (9, 9), 256) == [256, 9]``.
    """
    # BEGIN SOLUTION
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2  # both ids are used up by this merge
        else:
            merged.append(ids[i])
            i += 1
    return merged
    # END SOLUTION


def learn_merges(words: dict[tuple[int, ...], int], num_merges: int) -> list[Pair]:
    """Learn up to ``num_merges`` merges from ``words`` ({byte ids of a chunk: frequency}).

    Merge ``k`` creates token ``256 + k``. Each step merges the most frequent pair; among
    equally frequent pairs, the smallest ``(first, second)``, so training is deterministic.
    Stops early when no pair is left (every chunk is a single token).

    Each distinct chunk is stored once with its frequency (the text repeats "the" thousands of
    times; it is processed once). The pair counts are not recounted from scratch after each
    merge: only the chunks that contain the merged pair change, so only their pairs are
    subtracted (before merging) and added back (after). ``where[pair]`` remembers which chunks
    a pair has occurred in, to find them quickly.
    """
    if num_merges < 0:
        raise ValueError(f"learn_merges: num_merges must be >= 0, got {num_merges}")
    # BEGIN SOLUTION
    chunks = [list(word) for word in words]
    frequencies = list(words.values())
    counts = count_pairs(words)
    where: dict[Pair, set[int]] = defaultdict(set)
    for index, chunk in enumerate(chunks):
        for pair in pairwise(chunk):
            where[pair].add(index)

    merges: list[Pair] = []
    for new_id in range(256, 256 + num_merges):
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for index in where.pop(best):
            chunk, frequency = chunks[index], frequencies[index]
            for pair in pairwise(chunk):
                counts[pair] -= frequency
                if counts[pair] == 0:
                    del counts[pair]
            chunk = chunks[index] = merge_pair(chunk, best, new_id)
            for pair in pairwise(chunk):
                counts[pair] = counts.get(pair, 0) + frequency
                where[pair].add(index)
    return merges
    # END SOLUTION


def apply_merges(ids: list[int], ranks: dict[Pair, int]) -> list[int]:
    """Encode one chunk: merge its byte ids with the learned merges until none applies.

    ``ranks`` maps each merge to its position in the list (0 = learned first); merge ``r``
    creates id ``256 + r``. At each step, merge the adjacent pair of *lowest rank*: the merges
    must happen in the order they were learned, since later merges are built from earlier ones
    (" th" + "e" needs " th" first).
    """
    # BEGIN SOLUTION
    while len(ids) >= 2:
        pair = min(pairwise(ids), key=lambda p: ranks.get(p, len(ranks)))
        if pair not in ranks:
            break  # no adjacent pair is a learned merge: done
        ids = merge_pair(ids, pair, 256 + ranks[pair])
    return ids
    # END SOLUTION


class ByteBPETokenizer(Tokenizer):
    """Byte-level BPE: 256 byte tokens plus one token per learned merge.

    >>> tok = ByteBPETokenizer.train("low lower lowest " * 10, vocab_size=260)
    >>> [tok.vocab[i] for i in tok.encode(" lowest")]
    [b' lowe', b's', b't']

    ``vocab[i]`` is the bytes of token ``i``; ``merges[k]`` the pair that made token ``256 + k``.
    """

    type = "byte_bpe"

    def __init__(self, merges: Iterable[Pair], pattern: str | None = GPT2_SPLIT_PATTERN) -> None:
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.pattern = pattern
        if pattern is not None:
            re.compile(pattern)  # a bad pattern fails here, not at the first encode
        self.vocab = [bytes([b]) for b in range(256)]
        for new_id, (a, b) in enumerate(self.merges, start=256):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(
                    f"ByteBPETokenizer: merge {new_id - 256} is {(a, b)}, but only tokens "
                    f"0..{new_id - 1} exist before it"
                )
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}  # chunk -> ids: a text repeats its words

    @classmethod
    def train(
        cls, text: str, vocab_size: int, pattern: str | None = GPT2_SPLIT_PATTERN
    ) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text runs out of pairs).

        ``pattern``: the pre-tokenization regex (``None``: no splitting, which is slow on
        large texts, since the whole text is then one chunk).
        """
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(
                f"ByteBPETokenizer.train: vocab_size must be an int >= 256 (the 256 byte "
                f"tokens come first), got {vocab_size!r}"
            )
        chunk_counts = Counter(pretokenize(text, pattern))
        words = {tuple(chunk.encode("utf-8")): n for chunk, n in chunk_counts.items()}
        return cls(learn_merges(words, vocab_size - 256), pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in pretokenize(text, self.pattern):
            chunk_ids = self._cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = apply_merges(list(chunk.encode("utf-8")), self.ranks)
                if len(chunk) <= 64:  # long chunks are rare: caching them only costs memory
                    self._cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Concatenate the tokens' bytes, then decode once: a token may hold part of a
        multi-byte character. Invalid UTF-8 (ids that never came from ``encode``) becomes
        U+FFFD."""
        ids = check_ids(ids, self.vocab_size, "ByteBPETokenizer")
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ByteBPETokenizer:
        return cls([tuple(pair) for pair in data["merges"]], data["pattern"])
