"""Data: text corpora and tokenizers (offline: nothing is downloaded at run time).

- ``load_corpus(path_or_name)``, ``split_text(text, val_fraction)``: text for pretraining.
- ``CharTokenizer``, ``ByteBPETokenizer``, ``WordPieceTokenizer``: text <-> ids, each with
  ``encode``, ``decode``, ``vocab_size``, ``save(path)`` and ``load(path)``;
  ``load_tokenizer(path)`` reads a saved tokenizer of any kind.
"""

from __future__ import annotations

from pathlib import Path

from minimod.data.bpe import ByteBPETokenizer
from minimod.data.text import BUILTIN_CORPORA, load_corpus, pydoc_corpus, split_text
from minimod.data.tokenizers import CharTokenizer, Tokenizer, read_tokenizer_file
from minimod.data.wordpiece import WordPieceTokenizer

TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {
    cls.type: cls for cls in (CharTokenizer, ByteBPETokenizer, WordPieceTokenizer)
}


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer saved by ``save``, whichever kind its ``"type"`` field names."""
    data = read_tokenizer_file(path)
    if data["type"] not in TOKENIZER_TYPES:
        raise ValueError(
            f"{path}: unknown tokenizer type {data['type']!r}; minimod knows "
            f"{', '.join(sorted(TOKENIZER_TYPES))}"
        )
    return TOKENIZER_TYPES[data["type"]].from_file_data(path, data)


__all__ = [
    "BUILTIN_CORPORA",
    "TOKENIZER_TYPES",
    "ByteBPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordPieceTokenizer",
    "load_corpus",
    "load_tokenizer",
    "pydoc_corpus",
    "split_text",
]
