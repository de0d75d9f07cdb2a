"""Lesson 17: Tokenization -- byte-level BPE merges

The idea
A language model reads integers, not text. A tokenizer maps text to token ids and back:
    encode("the cat") -> [262, 3797]        decode([262, 3797]) -> "the cat"
One id per character makes long sequences; one id per word cannot spell a word it never saw.
Byte-pair encoding (BPE, Sennrich et al. 2016; byte-level in GPT-2) sits between the two.

Bytes first
UTF-8 turns any string into bytes 0-255. Those 256 bytes are the base vocabulary (id = byte
value), so every string -- emoji, Chinese, a NUL character -- can be encoded: a byte-level
tokenizer has no unknown token.

Merges next
Training repeats: count every adjacent pair of ids in the text; take the most frequent pair
(ties: the smallest (first, second), so training is deterministic); give it the next id
(256, 257, …); replace each occurrence of the pair by that id, left to right, never using one id
in two overlapping merges ([9, 9, 9] with (9, 9) -> [256, 9]). Stop at vocab_size ids. The list
of merges, in order, IS the tokenizer.
    vocab[256 + k] = vocab[a] + vocab[b]     for merge k = (a, b)

Pre-tokenization and speed
The text is first split into chunks (words with their leading space, digits, punctuation,
whitespace) by GPT-2's regular expression; pairs are counted and merged inside a chunk only, so
no token glues the end of one word to the next. A text repeats its words: store each distinct
chunk ONCE with its frequency ({byte ids: count}), and count a pair with that weight. After a
merge, only chunks containing the merged pair change: subtract their old pairs' counts, merge,
add the new pairs' counts (``where[pair]`` remembers which chunks hold a pair).

Encoding new text
Apply the learned merges to each chunk's bytes, always the adjacent pair of LOWEST rank (learned
earliest) first -- later merges are built from earlier ones (" th" + "e" needs " th" first).
Decoding concatenates the tokens' bytes and decodes once as UTF-8 (a token may hold half of a
multi-byte character), so decode(encode(s)) == s for every string s.

What you write
count_pairs (weighted pair counts), merge_pair (left-to-right, non-overlapping), learn_merges
(the training loop with incremental counts), apply_merges (encoding one chunk by rank). The
ByteBPETokenizer class that calls them, pretokenize and saving/loading are given.

Classic pitfalls
- Overlapping merges: [9, 9, 9] must become [256, 9], not [256, 256] (lengths then blow up).
- Counting each chunk once instead of frequency times.
- Ties broken by dictionary order: training then depends on insertion order.
- Encoding by applying merges left to right in the text instead of by rank.

Run it
Your BPE learns merges from Python's own documentation (the built-in corpus) and encodes it:
    python -c "if 1:
        from minimod.data import load_corpus
        from exercises.e17_bpe import ByteBPETokenizer
        text = load_corpus()[:50000]
        tok = ByteBPETokenizer.train(text, vocab_size=512)
        ids = tok.encode(text)
        print(len(text.encode()), 'bytes ->', len(ids), 'tokens', tok.decode(ids) == text)
        print([tok.decode([i]) for i in ids[:8]])"
prints 50091 bytes -> 22170 tokens True (256 merges make the text 2.3 times shorter), then the
first tokens: ['The', ' "', 'a', 'ss', 'er', 't', '"', ' state']
(about 15 s).
Next: lesson 18 (The training loop: accumulation, clipping, schedules, evaluation, checkpoints)

Check it: minimod exercises check 17
Try it (python, in the repository folder):
    >>> from exercises.e17_bpe import ByteBPETokenizer, merge_pair
    >>> merge_pair([9, 9, 9], (9, 9), 256)
    [256, 9]
    >>> tok = ByteBPETokenizer.train("low lower lowest " * 10, vocab_size=260)
    >>> [tok.vocab[i] for i in tok.encode(" lowest")]
    [b' lowe', b's', b't']
    >>> tok.decode(tok.encode("héllo 🙂")) == "héllo 🙂"
    True
"""

# Lesson 17 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from minimod.data.bpe import GPT2_SPLIT_PATTERN, Pair, pretokenize
from minimod.data.tokenizers import Tokenizer, check_ids

# ---- from minimod/data/bpe.py ----------------------------------------


def count_pairs(words: dict[tuple[int, ...], int]) -> dict[Pair, int]:
    """How often each adjacent pair of ids occurs, over ``words`` ({token ids: frequency}).

    >>> count_pairs({(1, 2, 3): 1, (1, 2): 5})
    {(1, 2): 6, (2, 3): 1}
    """
    # BEGIN YOUR CODE
    counts: dict[Pair, int] = defaultdict(int)
    for word, frequency in words.items():
        for pair in pairwise(word):
            counts[pair] += frequency
    return dict(counts)
    # END YOUR CODE


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair`` replaced by ``new_id``, scanning left to right
    and never reusing an id in two merges: ``merge_pair([9, 9, 9], (9, 9), 256) == [256, 9]``.
    """
    # BEGIN YOUR CODE
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            merged.append(new_id)
            i += 2  # both ids are used up by this merge
        else:
            merged.append(ids[i])
            i += 1
    return merged
    # END YOUR CODE


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
    # BEGIN YOUR CODE
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
    # END YOUR CODE


def apply_merges(ids: list[int], ranks: dict[Pair, int]) -> list[int]:
    """Encode one chunk: merge its byte ids with the learned merges until none applies.

    ``ranks`` maps each merge to its position in the list (0 = learned first); merge ``r``
    creates id ``256 + r``. At each step, merge the adjacent pair of *lowest rank*: the merges
    must happen in the order they were learned, since later merges are built from earlier ones
    (" th" + "e" needs " th" first).
    """
    # BEGIN YOUR CODE
    while len(ids) >= 2:
        pair = min(pairwise(ids), key=lambda p: ranks.get(p, len(ranks)))
        if pair not in ranks:
            break  # no adjacent pair is a learned merge: done
        ids = merge_pair(ids, pair, 256 + ranks[pair])
    return ids
    # END YOUR CODE


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
                chunk_ids = apply_merges(self.byte_ids(chunk), self.ranks)
                if len(chunk) <= 64:  # long chunks are rare: caching them only costs memory
                    self._cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def byte_ids(self, chunk: str) -> list[int]:
        """The ids a chunk starts from, before any merge: its UTF-8 bytes."""
        return list(chunk.encode("utf-8"))

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
