"""Data: text corpora and tokenizers (offline: nothing is downloaded at run time).

- ``load_corpus(path_or_name)``, ``split_text(text, val_fraction)``: text for pretraining.
- ``CharTokenizer``, ``ByteBPETokenizer``, ``WordPieceTokenizer``: text <-> ids, each with
  ``encode``, ``decode``, ``vocab_size``, ``save(path)`` and ``load(path)``;
  ``load_tokenizer(path)`` reads a saved tokenizer of any kind.
- Seeded synthetic datasets (see data/README.md): ``make_reviews`` / ``review_corpus``
  (compositional sentiment), ``make_shapes`` (images, labels, boxes), ``make_keywords`` /
  ``keyword_features`` (pitch-contour "words", log-mel or MFCC features).
- Sound (``spectral``, ``wav``): ``stft`` / ``istft``, ``mel_filterbank`` (HTK or Slaney),
  ``mel_spectrogram``, ``inverse_mel``, ``griffin_lim``; ``read_wav`` / ``write_wav`` (16-bit PCM).
- ``DataLoader``, ``collate_text`` (padding + attention masks), ``lm_batch`` (LM windows).
- Real datasets, prepared by ``make real`` (see data/README.md): ``movie_sentiment``
  (``vader``), ``digits`` and ``spoken_digits`` (``digitsets``), readers ``read_idx`` and
  ``read_text_label_tsv`` (``formats``); ``python -m minimod.data.real`` prepares and counts.
"""

from __future__ import annotations

from pathlib import Path

from minimod.data.audio import keyword_features, log_mel, make_keywords, mfcc
from minimod.data.bpe import ByteBPETokenizer, PretrainedBPETokenizer
from minimod.data.digitsets import digits, spoken_digits
from minimod.data.formats import read_idx, read_text_label_tsv
from minimod.data.loader import DataLoader, collate_text, lm_batch, pad_sequences
from minimod.data.reviews import make_reviews, review_corpus
from minimod.data.shapes import ShapesData, make_shapes
from minimod.data.spectral import (
    griffin_lim,
    inverse_mel,
    istft,
    mel_filterbank,
    mel_spectrogram,
    stft,
)
from minimod.data.splits import MissingDataError
from minimod.data.text import BUILTIN_CORPORA, load_corpus, pydoc_corpus, split_text
from minimod.data.tokenizers import CharTokenizer, Tokenizer, read_tokenizer_file
from minimod.data.vader import movie_ratings, movie_sentiment, prepare_vader
from minimod.data.wav import read_wav, write_wav
from minimod.data.wordpiece import WordPieceTokenizer

TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {
    cls.type: cls
    for cls in (CharTokenizer, ByteBPETokenizer, PretrainedBPETokenizer, WordPieceTokenizer)
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
    "MissingDataError",
    "digits",
    "movie_ratings",
    "movie_sentiment",
    "prepare_vader",
    "read_idx",
    "read_text_label_tsv",
    "spoken_digits",
    "BUILTIN_CORPORA",
    "DataLoader",
    "ShapesData",
    "collate_text",
    "keyword_features",
    "lm_batch",
    "log_mel",
    "make_keywords",
    "make_reviews",
    "make_shapes",
    "mfcc",
    "pad_sequences",
    "review_corpus",
    "TOKENIZER_TYPES",
    "ByteBPETokenizer",
    "PretrainedBPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordPieceTokenizer",
    "load_corpus",
    "load_tokenizer",
    "pydoc_corpus",
    "split_text",
    "griffin_lim",
    "inverse_mel",
    "istft",
    "mel_filterbank",
    "mel_spectrogram",
    "read_wav",
    "stft",
    "write_wav",
]
