"""Text corpora: the built-in corpus (Python's help() topics), UTF-8 files by path, and the
train/val split. These check minimod's own code (no lesson teaches it)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minimod.data import BUILTIN_CORPORA, load_corpus, pydoc_corpus, split_text


def test_reviews_corpus_by_name_is_the_synthetic_review_corpus():
    from minimod.data import review_corpus

    text = load_corpus("reviews")
    assert text == review_corpus(20000) and len(text.splitlines()) == 20000


def test_builtin_corpus_is_large_deterministic_english_prose():
    from pydoc_data.topics import topics

    text = load_corpus()
    assert len(text.encode("utf-8")) >= 400_000
    assert text == load_corpus(None) == load_corpus("pydoc") == pydoc_corpus()
    assert BUILTIN_CORPORA == ("pydoc", "reviews")
    # every help() topic, in sorted order of its name
    assert text.startswith(topics[min(topics)])
    end = 0
    for name in sorted(topics):
        start = text.find(topics[name], end)
        assert start >= end, f"topic {name!r} is missing or out of order"
        end = start + len(topics[name])
    assert sum(c.isascii() for c in text) / len(text) > 0.99, "mostly English, ASCII text"
    assert 'The "assert" statement' in text


def test_builtin_corpus_splits_90_10():
    text = load_corpus()
    train, val = split_text(text)
    assert train + val == text
    assert len(train) == int(len(text) * 0.9), "nanoGPT: data[:int(n * 0.9)] for training"
    assert abs(len(val) / len(text) - 0.1) < 1e-4


@given(text=st.text(max_size=50), val_fraction=st.floats(0.0, 0.99))
@example(text="abcdefghij", val_fraction=0.1)
@example(text="", val_fraction=0.5)
def test_split_is_a_prefix_and_the_rest(text, val_fraction):
    train, val = split_text(text, val_fraction)
    assert train + val == text
    assert len(train) == int(len(text) * (1 - val_fraction))


def test_split_rejects_a_bad_fraction():
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
            split_text("abc", bad)


def test_load_corpus_reads_utf8_files_by_path(tmp_path):
    text = "To be, or not to be: that is the question.\nÀ bientôt — 😀\r\nend"
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    assert load_corpus(path) == text == load_corpus(str(path)), "line endings are kept"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_corpus(path) == text, "a UTF-8 byte-order mark is dropped"


def test_load_corpus_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match="missing.txt.*built-in corpora are: pydoc"):
        load_corpus(missing)
    with pytest.raises(FileNotFoundError, match="no corpus file at shakespeare"):
        load_corpus("shakespeare")  # not a built-in name, and no such file
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        load_corpus(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text: byte 0xe9 at offset 3"):
        load_corpus(latin1)
    with pytest.raises(ValueError, match="is not a file"):
        load_corpus(tmp_path)
