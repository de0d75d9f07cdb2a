"""Tokenizers: byte-level BPE against a naive reference written here, CharTokenizer, and
WordPiece against Hugging Face's BERT tokenizers (the fast one and the legacy Python one).

The BPE tests go through the ``bpe`` fixture (``minimod.data.bpe`` as implemented by the chosen
``--impl``), so they can check a workbook lesson. The naive reference recounts every pair of
every chunk occurrence after each merge: slow, but too simple to get wrong. The CharTokenizer,
WordPiece and file tests check minimod's own code (``reference_only``).
"""

from __future__ import annotations

import json
import string
import time
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import impl
import minimod.data.bpe
from minimod.data import (
    ByteBPETokenizer,
    CharTokenizer,
    WordPieceTokenizer,
    load_corpus,
    load_tokenizer,
)
from minimod.data.bpe import GPT2_SPLIT_PATTERN, pretokenize
from minimod.workbook.implementations import Namespace

OVERLAP_HINT = (
    "after merging a pair, skip both of its ids: merge_pair([9, 9, 9], (9, 9), 256) is "
    "[256, 9] -- the middle 9 cannot be used by two merges"
)
TIE_HINT = (
    "among equally frequent pairs take the smallest (first, second) -- "
    "min(counts, key=lambda p: (-counts[p], p)) -- so that training is deterministic"
)
FREQUENCY_HINT = (
    "looks like each distinct chunk counted once: `words` maps a chunk to how often it "
    "occurs, and each of its pairs counts that many times"
)
RANK_ORDER_HINT = (
    "looks like you merged the leftmost pair that has a merge; merge the pair of LOWEST rank "
    "(learned first) wherever it is, since later merges are built from earlier ones"
)


@pytest.fixture(scope="module")
def bpe():
    """minimod.data.bpe as implemented by --impl (minimod, solutions or exercises)."""
    return Namespace(minimod.data.bpe, impl.name())


def assert_hint_free(hint: str | None) -> None:
    assert hint is None, hint


# -- the naive reference -----------------------------------------------------------------------


def naive_merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out = list(ids)
    i = 0
    while i < len(out) - 1:
        if (out[i], out[i + 1]) == pair:
            out[i : i + 2] = [new_id]
        i += 1
    return out


def naive_pair_counts(chunks: list[list[int]]) -> Counter:
    return Counter(pair for chunk in chunks for pair in pairwise(chunk))


def naive_bpe(chunks: list[list[int]], num_merges: int, tie=lambda pair: pair):
    """(merges, chunks after all merges): recount everything after every merge."""
    merges = []
    for new_id in range(256, 256 + num_merges):
        counts = naive_pair_counts(chunks)
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], tie(pair)))
        merges.append(best)
        chunks = [naive_merge(chunk, best, new_id) for chunk in chunks]
    return merges, chunks


def chunk_bytes(text: str, pattern: str | None = GPT2_SPLIT_PATTERN) -> list[list[int]]:
    """Every chunk occurrence of ``text`` as byte ids (duplicates kept)."""
    return [list(chunk.encode("utf-8")) for chunk in pretokenize(text, pattern)]


def words_of(text: str, pattern: str | None = GPT2_SPLIT_PATTERN) -> dict[tuple[int, ...], int]:
    """{byte ids of a distinct chunk: frequency}, as learn_merges takes them."""
    return dict(Counter(tuple(chunk) for chunk in chunk_bytes(text, pattern)))


# -- hints -------------------------------------------------------------------------------------


def merge_pair_hint(ids, pair, new_id, got) -> str | None:
    """Merged more often than possible: a run like 9 9 9 was merged as two overlapping pairs."""
    if pair[0] == pair[1] and got.count(new_id) > naive_merge(ids, pair, new_id).count(new_id):
        return OVERLAP_HINT
    return None


def learn_merges_hint(chunks: list[list[int]], got: list, expected: list) -> str | None:
    """Replay the naive training up to the first merge that differs and say why it differs."""
    got = [tuple(pair) for pair in got]
    if got == expected:
        return None
    deduplicated = [list(chunk) for chunk in dict.fromkeys(map(tuple, chunks))]
    if got == naive_bpe(deduplicated, len(expected))[0]:
        return FREQUENCY_HINT
    for step, (mine, right) in enumerate(zip(got, expected, strict=False)):
        counts = naive_pair_counts(chunks)
        if mine != right:
            if counts[mine] == counts[right]:
                both = f"merge {step}: {mine} and {right} both occur {counts[right]} times"
                return f"{both}; {TIE_HINT}"
            return (
                f"merge {step} is {mine}, which occurs {counts[mine]} times at that "
                f"point; the most frequent pair then is {right} ({counts[right]} times). Are the "
                "pair counts updated after every merge (the pairs of each changed chunk "
                "subtracted before merging it, its new pairs added after)?"
            )
        chunks = [naive_merge(chunk, right, 256 + step) for chunk in chunks]
    return f"{len(got)} merges learned, expected {len(expected)} (stop only when no pair is left)"


def apply_merges_hint(ids, ranks, got) -> str | None:
    leftmost = list(ids)
    while True:
        i = next((i for i in range(len(leftmost) - 1) if tuple(leftmost[i : i + 2]) in ranks), None)
        if i is None:
            break
        leftmost[i : i + 2] = [256 + ranks[tuple(leftmost[i : i + 2])]]
    if got == leftmost and got != naive_apply(ids, ranks):
        return RANK_ORDER_HINT
    return None


def naive_apply(ids: list[int], ranks: dict) -> list[int]:
    """Every merge in the order learned, each applied to the whole chunk."""
    for pair, rank in sorted(ranks.items(), key=lambda item: item[1]):
        ids = naive_merge(ids, pair, 256 + rank)
    return ids


# -- byte-level BPE: the lesson's properties --------------------------------------------------

ROUND_TRIP_CORPUS = "The cat sat on the mat. The dog didn't. 猫が座った。 😀😀 " * 4
SMALL_TEXT = st.text(alphabet="ab c\n'.é😀", max_size=40)
id_lists = st.lists(st.integers(0, 3), max_size=12)


@given(ids=id_lists, pair=st.tuples(st.integers(0, 3), st.integers(0, 3)))
@example(ids=[9, 9, 9], pair=(9, 9))
@example(ids=[1, 1, 1, 1], pair=(1, 1))
@example(ids=[], pair=(0, 0))
def test_merge_pair_replaces_each_occurrence_left_to_right(bpe, ids, pair):
    got = bpe.merge_pair(list(ids), pair, 256)
    assert_hint_free(merge_pair_hint(ids, pair, 256, got))
    assert got == naive_merge(ids, pair, 256)


@given(words=st.dictionaries(id_lists.map(tuple), st.integers(1, 5)))
@example(words={(1, 2, 1, 2): 3, (2, 1): 2})
def test_count_pairs_weights_each_chunk_by_its_frequency(bpe, words):
    expected, unweighted = Counter(), Counter()
    for word, frequency in words.items():
        for pair in pairwise(word):
            expected[pair] += frequency
            unweighted[pair] += 1
    got = dict(bpe.count_pairs(dict(words)))
    if got != expected and got == unweighted:
        pytest.fail(FREQUENCY_HINT)
    assert got == dict(expected)


@given(text=SMALL_TEXT, num_merges=st.integers(0, 12), pretokenized=st.booleans())
@example(text="aaabdaaabac", num_merges=5, pretokenized=False)
@example(text="the cat the hat the", num_merges=10, pretokenized=True)
def test_learn_merges_matches_the_naive_reference(bpe, text, num_merges, pretokenized):
    pattern = GPT2_SPLIT_PATTERN if pretokenized else None
    expected, _ = naive_bpe(chunk_bytes(text, pattern), num_merges)
    got = bpe.learn_merges(words_of(text, pattern), num_merges)
    assert_hint_free(learn_merges_hint(chunk_bytes(text, pattern), got, expected))
    assert [tuple(pair) for pair in got] == expected


def test_wikipedia_example_by_hand(bpe):
    # "aaabdaaabac": aa occurs 4 times (overlapping) -> 256; then ab and (256, a) both occur
    # twice, ab = (97, 98) is the smaller -> 257; then (256, 257) twice -> 258.
    tok = bpe.ByteBPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=None)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert tok.vocab[256:] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]


@given(ids=st.lists(st.integers(97, 100), max_size=12), text=SMALL_TEXT)
@example(ids=[97, 98, 99], text="bc bc bc ab ab")
def test_apply_merges_equals_applying_every_merge_in_order(bpe, ids, text):
    """Merging the lowest-rank pair first gives the same as applying merge 0 everywhere, then
    merge 1, ... -- the order they were learned in."""
    ranks = {pair: rank for rank, pair in enumerate(naive_bpe(chunk_bytes(text, None), 8)[0])}
    got = bpe.apply_merges(list(ids), ranks)
    assert_hint_free(apply_merges_hint(ids, ranks, got))
    assert got == naive_apply(ids, ranks)


def test_apply_merges_hand_example(bpe):
    ranks = {(98, 99): 0, (97, 98): 1}  # "bc" was learned before "ab"
    got = bpe.apply_merges([97, 98, 99], ranks)
    assert_hint_free(apply_merges_hint([97, 98, 99], ranks, got))
    assert got == [97, 256]
    assert bpe.apply_merges([97, 98, 98, 99], ranks) == [257, 256]
    assert bpe.apply_merges([], ranks) == [] and bpe.apply_merges([5], ranks) == [5]


@given(text=SMALL_TEXT, extra=st.integers(0, 10))
def test_train_builds_the_vocabulary_from_the_merges(bpe, text, extra):
    tok = bpe.ByteBPETokenizer.train(text, vocab_size=256 + extra)
    assert tok.vocab_size == 256 + len(tok.merges) <= 256 + extra
    assert tok.vocab[:256] == [bytes([b]) for b in range(256)], "ids 0-255 are the bytes"
    for new_id, (a, b) in enumerate(tok.merges, start=256):
        assert tok.vocab[new_id] == tok.vocab[a] + tok.vocab[b]
    # encoding the training text reproduces the chunks as training left them
    _, trained_chunks = naive_bpe(chunk_bytes(text), len(tok.merges))
    assert tok.encode(text) == [i for chunk in trained_chunks for i in chunk]


@given(text=st.text(max_size=60))
@example(text="")
@example(text="\x00 NUL, e\u0301 combining, 👩‍👩‍👧 family, 中文, \U0010ffff, \r\n\t")
def test_decode_encode_round_trips_any_string(bpe, text):
    """Byte-level: every string is bytes, so nothing is unknown and nothing is lost."""
    tok = bpe.ByteBPETokenizer.train(ROUND_TRIP_CORPUS, vocab_size=320)
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    own = bpe.ByteBPETokenizer.train(text, vocab_size=270)
    assert own.decode(own.encode(text)) == text


def test_merges_stay_inside_pretokenized_chunks(bpe):
    tok = bpe.ByteBPETokenizer.train("the tree the tree the tree", vocab_size=300)
    assert b"e t" not in tok.vocab and b" the" in tok.vocab
    glued = bpe.ByteBPETokenizer.train("the tree the tree the tree", 300, pattern=None)
    assert any(b"e t" in token for token in glued.vocab), "without pre-tokenization they cross"


def test_save_load_round_trip_bpe(bpe, tmp_path):
    tok = bpe.ByteBPETokenizer.train("hello world, hello there! " * 5, vocab_size=280)
    tok.save(tmp_path / "bpe.json")
    loaded = bpe.ByteBPETokenizer.load(tmp_path / "bpe.json")
    text = "hello there, world! héllo 😀"
    assert loaded.merges == tok.merges and loaded.encode(text) == tok.encode(text)
    assert load_tokenizer(tmp_path / "bpe.json").encode(text) == tok.encode(text)


SLOW_HINT = (
    "count each distinct chunk once with its frequency, and after a merge update the counts of "
    "the chunks that changed instead of recounting everything"
)


def assert_tokens_fit(merges: list, words: dict) -> None:
    """No token can be longer than the longest chunk it was learned from (a wrong merge_pair
    can make tokens double in length with each merge, until they fill the memory)."""
    lengths = [1] * 256
    for a, b in merges:
        lengths.append(lengths[a] + lengths[b])
    longest = max(map(len, words), default=0)
    assert max(lengths) <= max(longest, 1), (
        f"a merge makes a token of {max(lengths)} bytes, longer than any chunk of the text "
        f"({longest} bytes): are merged pairs overlapping? {OVERLAP_HINT}"
    )


@pytest.mark.slow
def test_training_on_the_builtin_corpus_is_fast_enough(bpe):
    text = load_corpus()
    # a small run first: a slow or wrong implementation fails here in seconds, not minutes
    words = words_of(text[:40_000])
    start = time.perf_counter()
    assert_tokens_fit(bpe.learn_merges(words, 64), words)
    seconds = time.perf_counter() - start
    assert seconds < 5, f"64 merges on 40 KB took {seconds:.0f} s: {SLOW_HINT}"

    words = words_of(text)
    start = time.perf_counter()
    merges = bpe.learn_merges(words, 256)
    seconds = time.perf_counter() - start
    assert seconds < 30, f"256 merges on {len(text) // 1000} KB took {seconds:.0f} s: {SLOW_HINT}"
    assert len(merges) == 256
    assert_tokens_fit(merges, words)
    tok = bpe.ByteBPETokenizer(merges)
    sample = text[:20_000]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    assert len(sample.encode("utf-8")) / len(ids) > 1.8, "512 tokens compress English ~2x"


# -- BPE: minimod's own behaviour ---------------------------------------------------------------


@pytest.mark.reference_only
@given(text=st.text(max_size=80))
@example(text="Hello world, it's 2024!  ok\n\nx_y")
def test_pretokenize_covers_the_text(text):
    assert "".join(pretokenize(text)) == text


@pytest.mark.reference_only
def test_pretokenize_splits_like_gpt2():
    assert pretokenize("Hello world, it's 2024!  ok") == [
        "Hello",
        " world",
        ",",
        " it",
        "'s",
        " 2024",
        "!",
        " ",
        " ok",
    ]


@pytest.mark.reference_only
def test_bpe_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        ByteBPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(ValueError, match=r"merge 0 is \(256, 1\), but only tokens 0..255"):
        ByteBPETokenizer([(256, 1)])
    with pytest.raises(ValueError, match="id 300 at position 1 is outside the vocabulary"):
        ByteBPETokenizer([]).decode([1, 300])


@pytest.mark.reference_only
def test_bpe_hints_fire_on_wrong_implementations():
    assert merge_pair_hint([9, 9, 9], (9, 9), 256, [256, 256]) == OVERLAP_HINT
    assert merge_pair_hint([9, 9, 9], (9, 9), 256, [256, 9]) is None
    chunks = chunk_bytes("aaabdaaabac", None)
    expected, _ = naive_bpe(chunks, 4)
    largest_first, _ = naive_bpe(chunks, 4, tie=lambda pair: (-pair[0], -pair[1]))
    assert TIE_HINT in learn_merges_hint(chunks, largest_first, expected)
    repeated = chunk_bytes("ab ab ab cd", GPT2_SPLIT_PATTERN) + chunk_bytes("cd", None)
    dedup_merges, _ = naive_bpe([list(c) for c in dict.fromkeys(map(tuple, repeated))], 2)
    assert learn_merges_hint(repeated, dedup_merges, naive_bpe(repeated, 2)[0]) == FREQUENCY_HINT
    stale = [(97, 97), (97, 98), (97, 99)]  # counted once, never updated
    assert "updated after every merge" in learn_merges_hint(chunks, stale, expected[:3])
    assert learn_merges_hint(chunks, expected, expected) is None
    ranks = {(98, 99): 0, (97, 98): 1}
    assert apply_merges_hint([97, 98, 99], ranks, [257, 99]) == RANK_ORDER_HINT
    assert apply_merges_hint([97, 98, 99], ranks, [97, 256]) is None


# -- CharTokenizer -------------------------------------------------------------------------------

# nanoGPT's shakespeare_char vocabulary: sorted(set(tinyshakespeare)), 65 characters.
NANOGPT_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.mark.reference_only
def test_char_tokenizer_gives_nanogpts_vocabulary(tmp_path):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" + "".join(
        reversed(NANOGPT_CHARS)
    )
    (tmp_path / "shakespeare.txt").write_text(text, encoding="utf-8")
    tok = CharTokenizer.train(load_corpus(tmp_path / "shakespeare.txt"))
    assert tok.vocab_size == 65 and "".join(tok.chars) == NANOGPT_CHARS
    assert tok.encode("hii there") == [NANOGPT_CHARS.index(c) for c in "hii there"]
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.reference_only
@given(text=st.text(min_size=1, max_size=50))
def test_char_tokenizer_round_trips_its_training_text(text):
    tok = CharTokenizer.train(text)
    assert tok.chars == sorted(set(text))
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.reference_only
def test_char_tokenizer_errors_name_the_problem():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"character 'é' \(U\+00E9\) at position 2 is not in"):
        tok.encode("abéa")
    with pytest.raises(ValueError, match="id 3 at position 0 is outside the vocabulary"):
        tok.decode([3])
    with pytest.raises(ValueError, match="id -1"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.train("")


# -- WordPiece against Hugging Face --------------------------------------------------------------

LETTERS = string.ascii_lowercase.replace("z", "")  # no "z" at all: words with z are [UNK]
VOCAB = list(  # dict.fromkeys: each token once, in this order
    dict.fromkeys(
        ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list(LETTERS + string.digits + string.punctuation + "中文字")
        + ["##" + c for c in LETTERS.replace("q", "") + string.digits]  # no "##q": "aq" is [UNK]
        + ["hello", "world", "un", "##aff", "##able", "don", "the", "##ing", "##s", "play", "##ed"]
        + ["cafe", "he", "##llo", "wor", "##ld", "##wor", "a", "an", "##ion", "nation", "##al"]
    )
)
WORDS = ["Hello", "WORLD", "unaffable", "don't", "Café", "playing", "[MASK]", "nationAL"]
ALPHABET = (
    string.ascii_letters
    + string.digits
    + string.punctuation
    + "éÉàÀçñüÖ"  # accents are stripped
    + " \t\n\xa0"  # whitespace, incl. a no-break space
    + "中文字你"  # CJK: each its own word; 你 is not in the vocabulary
    + "\x00\u200b\u0301°¿"  # NUL, zero-width space (format), combining accent, symbol, punct.
)
bert_texts = st.lists(
    st.one_of(st.sampled_from(WORDS), st.text(ALPHABET, max_size=6)), max_size=10
).map("".join)
HAND_PICKED = [
    "Héllo, WORLD!",
    "unaffable",
    "don't",
    "a\tb\nc",
    "",
    "   ",
    "z",
    "playing the nation's national cafés",
    "中文字你好",
    "x" * 100,
    "x" * 101,
    "[CLS] hello [MASK] world[SEP]",
    "ÀÉÎÕÜ ñ ç",
    "hello\x00world\u200b!",
]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """(minimod's WordPieceTokenizer, Hugging Face's fast BertTokenizer, its legacy one)."""
    from transformers import BertTokenizer
    from transformers.models.bert import BertTokenizerLegacy

    path = tmp_path_factory.mktemp("bert") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # transformers 5's BertTokenizer takes the file as `vocab`; `vocab_file=` is ignored there.
    fast = BertTokenizer(vocab=str(path), do_lower_case=True)
    legacy = BertTokenizerLegacy(vocab_file=str(path), do_lower_case=True)
    assert fast.vocab_size == legacy.vocab_size == len(VOCAB), "HF did not read our vocab.txt"
    return WordPieceTokenizer.from_vocab_file(path, lowercase=True), fast, legacy


@pytest.mark.reference_only
@pytest.mark.parametrize("text", HAND_PICKED)
def test_wordpiece_matches_hugging_face_on_hand_picked_text(bert, text):
    mine, fast, legacy = bert
    assert mine.encode(text) == fast(text)["input_ids"] == legacy(text)["input_ids"], text
    assert mine.encode(text, add_special_tokens=False) == fast.encode(
        text, add_special_tokens=False
    )


@pytest.mark.reference_only
@given(text=bert_texts)
def test_wordpiece_matches_hugging_face_on_random_text(bert, text):
    mine, fast, legacy = bert
    expected = fast(text)["input_ids"]
    assert legacy(text)["input_ids"] == expected, "the two HF tokenizers disagree on this text"
    assert mine.encode(text) == expected


@pytest.mark.reference_only
def test_wordpiece_pieces_special_ids_and_decode(bert):
    mine, fast, _ = bert
    assert mine.tokenize("Unaffable!") == ["un", "##aff", "##able", "!"]
    assert mine.tokenize("aq zoo") == ["[UNK]", "[UNK]"]
    assert mine.tokenize("x" * 100) != ["[UNK]"] and mine.tokenize("x" * 101) == ["[UNK]"]
    for name in ("pad", "unk", "cls", "sep", "mask"):
        assert getattr(mine, f"{name}_token_id") == getattr(fast, f"{name}_token_id"), name
    assert mine.vocab_size == len(VOCAB)
    ids = mine.encode("Unaffable, Héllo!")
    assert mine.decode(ids) == "[CLS] unaffable , hello ! [SEP]"
    assert mine.decode(ids, skip_special_tokens=True) == "unaffable , hello !"


@pytest.mark.reference_only
def test_wordpiece_vocab_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "nothing.txt")
    (tmp_path / "small.txt").write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"small.txt: .*lacks \[CLS\], \[SEP\], \[MASK\]"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "small.txt")


# -- saving and loading ------------------------------------------------------------------------


@pytest.mark.reference_only
def test_save_load_round_trip_every_kind(tmp_path, bert):
    text = "Hello, world! héllo wörld 😀 the cat"
    tokenizers = {
        "char": CharTokenizer.train(text),
        "byte_bpe": ByteBPETokenizer.train(text * 3, vocab_size=270),
        "wordpiece": bert[0],
    }
    for kind, tok in tokenizers.items():
        path = tmp_path / f"{kind}.json"
        tok.save(path)
        assert json.loads(path.read_text(encoding="utf-8"))["type"] == kind
        for loaded in (type(tok).load(path), load_tokenizer(path)):
            assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
            assert loaded.encode(text) == tok.encode(text)
            assert loaded.decode(tok.encode(text)) == tok.decode(tok.encode(text))


@pytest.mark.reference_only
def test_loading_the_wrong_or_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "tok.json"
    CharTokenizer.train("abc").save(path)
    with pytest.raises(ValueError, match="holds a 'char' tokenizer, not a 'byte_bpe' one"):
        ByteBPETokenizer.load(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_tokenizer(tmp_path / "missing.json")
    cases = {
        "{not json": "not valid UTF-8 JSON",
        "[1, 2]": 'no "type" field',
        '{"type": "char"}': "version None",
        '{"type": "sentencepiece", "version": 1}': "unknown tokenizer type 'sentencepiece'",
        '{"type": "char", "version": 1}': "corrupt 'char' tokenizer file",
        '{"type": "byte_bpe", "version": 1, "pattern": null, "merges": [[300, 1]]}': "corrupt",
        '{"type": "wordpiece", "version": 1, "vocab": ["a"], "lowercase": true, '
        '"max_input_chars_per_word": 100}': "lacks",
    }
    for content, message in cases.items():
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ValueError, match=message) as error:
            load_tokenizer(path)
        assert str(path) in str(error.value)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="tok.json: not a tokenizer file"):
        load_tokenizer(path)
