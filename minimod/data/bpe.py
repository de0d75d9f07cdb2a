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

import functools
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from minimod.data.chat import render_chat_template
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


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte: vocabularies store tokens as text, and raw bytes
    (a space, a newline, half of a UTF-8 character) would not survive JSON or print legibly.

    Printable Latin-1 bytes stand for themselves; the other 68 get the characters U+0100,
    U+0101, ... in byte order, so a space is ``"Ġ"`` (U+0120) and a newline ``"Ċ"``.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in printable}
    others = (b for b in range(256) if b not in mapping)
    mapping.update({b: chr(256 + n) for n, b in enumerate(others)})
    return dict(sorted(mapping.items()))


# Unicode's White_Space characters, the ``\s`` of the ``regex`` module and of transformers.
WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def unicode_category_class(prefix: str) -> str:
    """A ``re`` character class of every code point whose general category starts with
    ``prefix`` ("L": letters, "N": numbers), as ranges -- ``re`` has no ``\\p{L}``."""
    ranges, start = [], None
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith(prefix)
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return "".join(ranges)


@functools.cache
def exact_gpt2_pattern() -> str:
    """GPT-2's pre-tokenizer regex exactly as the ``regex`` module and Hugging Face tokenizers
    run it, for ``re``: ``\\p{L}`` and ``\\p{N}`` spelled out from ``unicodedata`` (the short
    ``GPT2_SPLIT_PATTERN`` counts "²" or "½" (category No) as letters), and ``\\s`` as the
    Unicode White_Space set (``re``'s ``\\s`` also takes the separators U+001C..U+001F).
    Building the classes scans every code point once (a fraction of a second). The Unicode
    version is Python's (``unicodedata.unidata_version``, 14.0 in Python 3.11): a character
    assigned later counts as neither letter nor number here, unlike in newer regex engines."""
    letters, numbers = unicode_category_class("L"), unicode_category_class("N")
    space = WHITE_SPACE
    return (
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+"
        rf"| ?[^{space}{letters}{numbers}]+|[{space}]+(?![^{space}])|[{space}]+"
    )


# GGUF's ``tokenizer.ggml.pre`` names the pre-tokenizer; these are the names whose regex is
# GPT-2's as transformers runs it when it loads a GGUF file. (llama.cpp splits every digit
# apart first for "smollm"; SmolLM2's merges hold no digits, so that only differs for a run of
# spaces before a digit, where transformers keeps one space with the digits.)
GGUF_PRETOKENIZERS = {"gpt2": exact_gpt2_pattern, "smollm": exact_gpt2_pattern}

GGUF_CONTROL = 3  # ``tokenizer.ggml.token_type`` of special tokens such as <|im_end|>
GGUF_USER_DEFINED = 4  # added tokens, matched whole in text like the control ones


class PretrainedBPETokenizer(ByteBPETokenizer):
    """A released model's byte-level BPE, read from a GGUF file's metadata (SmolLM2, Llama 3...).

    The same merges as ``ByteBPETokenizer`` -- merge ``k`` still makes internal token
    ``256 + k`` -- plus what a released vocabulary adds: the model numbers its tokens its own
    way (``ids[internal]`` is the model's id, ``self.internal`` the reverse), special tokens
    such as ``<|im_end|>`` are cut out of the text whole before pre-tokenization (so a user's
    text can hold them, as in a chat), and a Jinja chat template formats conversations.
    Built with ``PretrainedBPETokenizer.from_gguf_metadata(read_gguf(path).metadata)``.
    """

    type = "pretrained_byte_bpe"

    def __init__(
        self,
        tokens: list[str],
        merges: list[str],
        token_types: list[int],
        pre: str,
        special_ids: dict[str, int] | None = None,
        chat_template: str | None = None,
    ) -> None:
        if pre not in GGUF_PRETOKENIZERS:
            raise ValueError(
                f"PretrainedBPETokenizer: unknown pre-tokenizer {pre!r}; minimod knows "
                f"{sorted(GGUF_PRETOKENIZERS)}"
            )
        if len(token_types) != len(tokens):
            raise ValueError(
                f"PretrainedBPETokenizer: {len(tokens)} tokens but {len(token_types)} token types"
            )
        self.tokens, self.merge_texts, self.token_types = list(tokens), list(merges), token_types
        self.pre, self.chat_template = pre, chat_template
        self.special_ids = dict(special_ids or {})

        # Internal ids: the 256 bytes, then one per merge, named by their GPT-2 text.
        internal = {char: b for b, char in bytes_to_unicode().items()}
        pairs = []
        for k, merge in enumerate(merges):
            left, space, right = merge.partition(" ")
            if not space or left not in internal or right not in internal:
                raise ValueError(
                    f"PretrainedBPETokenizer: merge {k} {merge!r} is not two known tokens"
                )
            pairs.append((internal[left], internal[right]))
            internal.setdefault(left + right, 256 + k)
        super().__init__(pairs, GGUF_PRETOKENIZERS[pre]())

        specials = {GGUF_CONTROL, GGUF_USER_DEFINED}
        self.special = {
            t: i
            for i, (t, kind) in enumerate(zip(tokens, token_types, strict=True))
            if kind in specials
        }
        self.ids = [-1] * len(self.vocab)  # internal id -> model id (-1: not in the vocabulary)
        for model_id, token in enumerate(tokens):
            if token not in self.special and token in internal:
                self.ids[internal[token]] = model_id
        if -1 in self.ids[256:]:
            k = self.ids.index(-1, 256) - 256
            raise ValueError(
                f"PretrainedBPETokenizer: merge {k} {merges[k]!r} makes a token that is not "
                f"in the vocabulary"
            )
        self.internal = {model_id: i for i, model_id in enumerate(self.ids) if model_id >= 0}
        # BEGIN SOLUTION
        # Longest first, so a special token that starts another never cuts it short.
        names = sorted(self.special, key=len, reverse=True)
        self._special_split = (
            re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None
        )
        # END SOLUTION

    @classmethod
    def from_gguf_metadata(cls, metadata: dict[str, Any]) -> PretrainedBPETokenizer:
        """The tokenizer a GGUF file describes (``read_gguf(path).metadata``)."""
        model = metadata.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise ValueError(
                f"PretrainedBPETokenizer: tokenizer.ggml.model is {model!r}; only byte-level "
                f"BPE ('gpt2') is supported"
            )
        roles = ("bos", "eos", "unknown", "padding")
        special_ids = {
            role: int(metadata[f"tokenizer.ggml.{role}_token_id"])
            for role in roles
            if f"tokenizer.ggml.{role}_token_id" in metadata
        }
        return cls(
            metadata["tokenizer.ggml.tokens"],
            metadata["tokenizer.ggml.merges"],
            metadata["tokenizer.ggml.token_type"],
            metadata.get("tokenizer.ggml.pre", "gpt2"),
            special_ids,
            metadata.get("tokenizer.chat_template"),
        )

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """The model's ids for ``text``; special tokens written in it become their one id."""
        # BEGIN SOLUTION
        pieces = self._special_split.split(text) if self._special_split else [text]
        ids: list[int] = []
        # split() alternates: text, special, text, special, ..., text.
        for index, piece in enumerate(pieces):
            if index % 2:
                ids.append(self.special[piece])
            elif piece:
                ids.extend(self.ids[i] for i in super().encode(piece))
        return ids
        # END SOLUTION

    def byte_ids(self, chunk: str) -> list[int]:
        """The chunk's bytes that have a token: one the vocabulary lacks (SmolLM2 has none for
        21, such as byte 4) is dropped before merging, as transformers does for a BPE without
        an unknown token -- so its neighbours in the chunk may merge across it."""
        return [b for b in chunk.encode("utf-8") if self.ids[b] >= 0]

    def decode(self, ids: Iterable[int]) -> str:
        """Special tokens decode to their text; the rest as ``ByteBPETokenizer.decode``."""
        ids = check_ids(ids, self.vocab_size, "PretrainedBPETokenizer")
        pieces = [
            self.vocab[self.internal[i]] if i in self.internal else self.tokens[i].encode("utf-8")
            for i in ids
        ]
        return b"".join(pieces).decode("utf-8", errors="replace")

    def token_text(self, role: str) -> str | None:
        """The text of the ``role`` token ("bos", "eos", "unknown", "padding"), if any."""
        return self.tokens[self.special_ids[role]] if role in self.special_ids else None

    def apply_chat_template(
        self, messages: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """``messages`` ([{"role": ..., "content": ...}]) formatted by the model's chat template,
        as transformers' ``apply_chat_template(messages, tokenize=False, ...)``."""
        if self.chat_template is None:
            raise ValueError("PretrainedBPETokenizer: this tokenizer has no chat template")
        return render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.token_text("bos"),
            eos_token=self.token_text("eos"),
            unk_token=self.token_text("unknown"),
            pad_token=self.token_text("padding"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "merges": self.merge_texts,
            "token_types": self.token_types,
            "pre": self.pre,
            "special_ids": self.special_ids,
            "chat_template": self.chat_template,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedBPETokenizer:
        return cls(
            data["tokens"],
            data["merges"],
            data["token_types"],
            data["pre"],
            data["special_ids"],
            data["chat_template"],
        )
