"""Text corpora for language-model pretraining, offline: nothing is ever downloaded.

The built-in corpus is Python's own documentation. Every CPython ships the text of the
``help()`` topics -- the language reference's chapters on statements, expressions, the data
model and more -- as the dict ``pydoc_data.topics.topics``: about 465 KB of English prose and
code, enough to pretrain a small GPT. Any UTF-8 text file works too, by path.

>>> text = load_corpus()  # or load_corpus("pydoc"), or load_corpus("data/my_book.txt")
>>> train, val = split_text(text, val_fraction=0.1)
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_CORPORA = ("pydoc", "reviews")
REVIEW_SENTENCES = 20000  # the "reviews" corpus: this many synthetic reviews (seed 0)


def pydoc_corpus() -> str:
    """The ``help()`` topics of this Python, in sorted order of their names, each followed by
    a blank line. The same on every run of one Python version (the text changes between
    versions, as the documentation does)."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some Linux distributions package it separately
        raise RuntimeError(
            "this Python was installed without pydoc_data (the help() topics), so the built-in "
            "corpus is unavailable; pass the path of a UTF-8 .txt file instead"
        ) from error
    return "\n".join(topics[name] for name in sorted(topics))


def load_corpus(path_or_name: str | Path | None = None) -> str:
    """The text of a built-in corpus (``None`` or ``"pydoc"``: Python's documentation;
    ``"reviews"``: the synthetic reviews of ``review_corpus``) or of a UTF-8 text file.

    A missing file is a FileNotFoundError; an empty or non-UTF-8 one a ValueError. Both name the
    path. Line endings are kept as they are in the file.
    """
    if path_or_name is None or path_or_name == "pydoc":
        return pydoc_corpus()
    if path_or_name == "reviews":
        from minimod.data.reviews import review_corpus

        return review_corpus(REVIEW_SENTENCES)
    path = Path(path_or_name)
    if not path.exists():
        raise FileNotFoundError(
            f"no corpus file at {path} (the built-in corpora are: {', '.join(BUILTIN_CORPORA)})"
        )
    if not path.is_file():
        raise ValueError(f"{path} is not a file; load_corpus reads one UTF-8 text file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text: byte {data[error.start]:#04x} at offset {error.start} "
            "cannot be decoded (convert the file to UTF-8, e.g. with iconv)"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the text
    if not text:
        raise ValueError(f"{path} is empty: there is nothing to train on")
    return text


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, val)``: the first ``1 - val_fraction`` of the characters, then the rest.

    A split by position, not at random, as nanoGPT does: validation text is a stretch the model
    never saw, rather than sentences shuffled in among the training ones (which would let it
    score well by memorising their neighbours).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"split_text: val_fraction must be in [0, 1), got {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]
