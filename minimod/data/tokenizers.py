"""Tokenizers turn text into the integer ids a model reads, and ids back into text.

A model never sees characters: it sees ids in ``range(vocab_size)``, each the row of an embedding
table. A tokenizer fixes that mapping. Three kinds live in minimod, from simplest to most used:

- ``CharTokenizer`` (this file): one id per character, as nanoGPT's Shakespeare model.
- ``ByteBPETokenizer`` (``bpe.py``): GPT-2's byte-level byte-pair encoding -- frequent byte
  sequences become single tokens, and any string at all can be encoded.
- ``WordPieceTokenizer`` (``wordpiece.py``): BERT's tokenizer, reading a real ``vocab.txt``.

All of them share the interface of ``Tokenizer`` below: ``encode(text) -> list[int]``,
``decode(ids) -> str``, ``vocab_size``, and ``save(path)`` / ``load(path)`` as a small JSON file
whose ``"type"`` field says which class wrote it (``minimod.data.load_tokenizer`` reads any).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

FORMAT_VERSION = 1


class Tokenizer:
    """The common interface. Subclasses set ``type`` and implement ``encode``, ``decode``,
    ``vocab_size``, ``to_dict`` (their state as JSON-ready data) and ``from_dict``."""

    type: ClassVar[str]

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON: ``{"type": ..., "version": 1, ...its state}``."""
        data = {"type": self.type, "version": FORMAT_VERSION, **self.to_dict()}
        Path(path).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a file written by ``save``; a ValueError if it holds another kind of tokenizer."""
        return cls.from_file_data(path, read_tokenizer_file(path))

    @classmethod
    def from_file_data(cls, path: str | Path, data: dict[str, Any]) -> Tokenizer:
        if data["type"] != cls.type:
            raise ValueError(
                f"{path}: this file holds a {data['type']!r} tokenizer, not a {cls.type!r} one "
                f"({cls.__name__}); minimod.data.load_tokenizer(path) loads any kind"
            )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"{path}: corrupt {cls.type!r} tokenizer file: {error!r}") from error

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def read_tokenizer_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, checked to look like a saved tokenizer (a ``"type"`` field
    and a version this code reads). FileNotFoundError / ValueError name the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a tokenizer file (not valid UTF-8 JSON: {error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError(f'{path}: not a tokenizer file (no "type" field saying which kind)')
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: tokenizer file version {data.get('version')!r}; this minimod reads "
            f"version {FORMAT_VERSION}"
        )
    return data


def check_ids(ids: Iterable[int], vocab_size: int, owner: str) -> list[int]:
    """``ids`` as a list of ints (a 1-D tensor works too); a ValueError for an id out of range."""
    ids = [int(i) for i in ids]
    for position, i in enumerate(ids):
        if not 0 <= i < vocab_size:
            raise ValueError(
                f"{owner}.decode: id {i} at position {position} is outside the vocabulary "
                f"(ids run from 0 to {vocab_size - 1})"
            )
    return ids


class CharTokenizer(Tokenizer):
    """One token per character: the id of a character is its index in the sorted list of the
    distinct characters of the training text.

    The simplest tokenizer there is, and the one of nanoGPT's Shakespeare model (65 characters
    for tinyshakespeare). Sequences are long -- one token per character -- and a character never
    seen in training cannot be encoded at all (a ValueError names it).

    >>> tok = CharTokenizer.train("hello")
    >>> tok.chars, tok.encode("hole")
    (['e', 'h', 'l', 'o'], [1, 3, 2, 0])
    """

    type = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = list(chars)
        if not all(isinstance(c, str) and len(c) == 1 for c in self.chars):
            raise ValueError("CharTokenizer: chars must be single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharTokenizer: chars must be distinct")
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The vocabulary of ``text``: ``sorted(set(text))``."""
        if not text:
            raise ValueError("CharTokenizer.train: the text is empty, so there is no vocabulary")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.char_to_id[c] for c in text]
        except KeyError:
            position, char = next((i, c) for i, c in enumerate(text) if c not in self.char_to_id)
            raise ValueError(
                f"CharTokenizer: character {char!r} (U+{ord(char):04X}) at position {position} "
                f"is not in the vocabulary of {self.vocab_size} characters it was trained on"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in check_ids(ids, self.vocab_size, "CharTokenizer"))

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        return cls(data["chars"])
