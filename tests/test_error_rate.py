"""Edit distance, character and word error rates: hand cases and the metric's properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import impl

words = st.text(alphabet="abc ", max_size=8)
label_lists = st.lists(st.integers(0, 3), max_size=7)


@pytest.mark.parametrize(
    "a, b, distance",
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("kitten", "sitting", 3),  # k→s, e→i, +g
        ("flaw", "lawn", 2),  # −f, +n
        ("abc", "acb", 2),  # no transpositions in Levenshtein
        ([1, 2, 3], [1, 3], 1),
        (["the", "cat"], ["the", "hat"], 1),
    ],
)
def test_edit_distance_hand_cases(a, b, distance):
    assert impl.error_rate.edit_distance(a, b) == distance


def test_rates_are_corpus_level():
    # 1 edit over 10 reference characters, then 3 over 2: (1 + 3) / (10 + 2), not a mean of rates.
    hyps, refs = ["abcdefghiX", "xyz"], ["abcdefghij", "xy"]
    assert impl.error_rate.cer(hyps, refs) == pytest.approx(2 / 12)
    assert impl.error_rate.cer("abd", "abc") == pytest.approx(1 / 3)
    assert impl.error_rate.wer("the cat sat", "the hat sat down") == pytest.approx(2 / 4)
    assert impl.error_rate.wer(["a b", "c"], ["a  b", "d e"]) == pytest.approx(2 / 4)
    assert impl.error_rate.wer("a b c d", "x") == 4.0  # insertions: a rate can exceed 1


@given(a=label_lists, b=label_lists)
def test_zero_iff_equal_symmetric_and_bounded(a, b):
    d = impl.error_rate.edit_distance(a, b)
    assert (d == 0) == (a == b)
    assert d == impl.error_rate.edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@given(a=label_lists, b=label_lists, c=label_lists)
def test_triangle_inequality(a, b, c):
    distance = impl.error_rate.edit_distance
    assert distance(a, c) <= distance(a, b) + distance(b, c)


@given(hyps=st.lists(words, min_size=1, max_size=4), data=st.data())
def test_cer_of_references_against_themselves_is_zero(hyps, data):
    refs = [data.draw(words.filter(str.strip)) for _ in hyps]
    assert impl.error_rate.cer(refs, refs) == 0.0
    assert impl.error_rate.wer(refs, refs) == 0.0
    assert impl.error_rate.cer(hyps, refs) >= 0.0


@pytest.mark.reference_only
def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one hypothesis per reference, got 2 hypotheses and 1"):
        impl.error_rate.cer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="references are empty"):
        impl.error_rate.wer(["a"], [" "])
    with pytest.raises(TypeError, match="must be strings"):
        impl.error_rate.cer([["a"]], ["a"])
