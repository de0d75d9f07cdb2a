"""SmolLM2's tokenizer read from its GGUF metadata (data/bpe.py ``PretrainedBPETokenizer``,
data/chat.py), against transformers' tokenizer loaded from the same file.

The pre-tokenizer regex is checked against the ``regex`` module (installed with transformers)
on any Unicode text; the tokenizer's ids against ``AutoTokenizer.from_pretrained(folder,
gguf_file=name)`` on generated Unicode text, fixed tricky strings and chat conversations
through the model's template. Both tokenizers are built once per module. Tests marked ``real``
need the SmolLM2 package and transformers/gguf (``make real``); without them they skip.
None of it is a lesson: the file checks minimod's own code (reference_only); lesson 33's tests
(tests/test_chat_template.py) check the template rendering and the special-token split without
the file.
"""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimod.data.bpe import (
    GPT2_SPLIT_PATTERN,
    WHITE_SPACE,
    PretrainedBPETokenizer,
    bytes_to_unicode,
    exact_gpt2_pattern,
    pretokenize,
    unicode_category_class,
)
from minimod.data.chat import render_chat_template

pytestmark = pytest.mark.reference_only

HINT = "run `make real`"

# GPT-2's pattern as transformers and tiktoken write it, for the `regex` module.
REGEX_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>", "<jupyter_code>"]

TRICKY = [
    "Hello world, it's 2024!",
    "I'm sure they'll say we've done what you'd do; THEY'RE 'S 'T ''ll",
    "3.14159 + 1,000,000 = 12345678901234567890 and  42 and   7",
    "tabs\t\tand\nnew\n\n\nlines \n  \r\n spaces   at the end   ",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and ❤️",
    "中文字符测试，日本語のテキスト。한국어 텍스트",
    "accented: café naïve résumé Ångström e\u0301 n\u0303 Zürich",
    "numbers not digits: x² ½ ¾ Ⅻ ① ٣ ३ ๓ 𝟙",
    "odd spaces:\u00a0a\u2003b\u3000c\u202fd\x1ce\x1df\x85g\u2028h\u200bi",
    "code: def f(x):\n    return x**2  # square\n\tprint(f'{x=}')",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "specials glued<|im_end|><|im_end|>text<|endoftext|> <file_sep>x",
    "",
    " ",
    "a",
    "'",
    "_under_score__ and ___",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime > 10."},
        {"role": "assistant", "content": "11"},
        {"role": "user", "content": "Another, in 中文? 😀"},
    ],
    [
        {"role": "user", "content": "Line one\n\n  Line two with  spaces "},
        {"role": "assistant", "content": "It's fine -- really!"},
    ],
]

# The bytes SmolLM2's vocabulary has no token for: both tokenizers drop them, so a character
# whose UTF-8 holds one (control characters such as "\x04", and lead bytes 0xF1/0xF2 of the
# unassigned planes 4-11) does not come back from decode(encode(text)): a control character
# vanishes, and the other bytes of a 4-byte character decode to U+FFFD.
UNKNOWN_BYTES = [4, 6, 19, 20, 22, 29, 192, 193, 241, 242, *range(245, 256)]


def known(text: str) -> str:
    """``text`` without the characters SmolLM2 cannot encode whole."""
    return "".join(c for c in text if not set(c.encode("utf-8")) & set(UNKNOWN_BYTES))


# Characters assigned in this Python's Unicode database: \p{L} and \p{N} are spelled out from
# it, and a character assigned in a later Unicode (Python 3.11 has 14.0; transformers' regex
# engine 15, the regex module 16) is neither letter nor number for minimod.
assigned = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=12)
texts = st.lists(
    st.one_of(assigned, st.sampled_from(SPECIALS), st.sampled_from(TRICKY)),
    max_size=6,
).map("".join)


# ===================================================================== without the model file


def test_bytes_to_unicode_is_gpt2s():
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert (mapping[ord(" ")], mapping[ord("\n")], mapping[ord("A")]) == ("Ġ", "Ċ", "A")


@given(st.one_of(st.text(st.characters(exclude_categories=("Cs", "Cn"))), texts))
def test_exact_pattern_splits_as_the_regex_module(text):
    regex = pytest.importorskip("regex", reason=f"needs the regex package: {HINT}")
    assert re.findall(exact_gpt2_pattern(), text) == regex.findall(REGEX_GPT2, text)


def test_exact_pattern_classifies_every_assigned_code_point_as_the_regex_module():
    regex = pytest.importorskip("regex", reason=f"needs the regex package: {HINT}")
    everything = "".join(
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) not in ("Cs", "Cn")
    )
    classes = {
        r"\p{L}": unicode_category_class("L"),
        r"\p{N}": unicode_category_class("N"),
        r"\s": WHITE_SPACE,
    }
    for theirs, ours in classes.items():
        assert re.findall(f"[{ours}]", everything) == regex.findall(theirs, everything), theirs


def test_exact_pattern_differs_from_the_lesson_pattern_on_other_numbers():
    # The lesson's short pattern counts "²" (category No) as a letter; the exact one as a number.
    assert pretokenize("x²", GPT2_SPLIT_PATTERN) == ["x²"]
    assert pretokenize("x²", exact_gpt2_pattern()) == ["x", "²"]


def test_chat_template_raise_exception_is_a_value_error():
    template = "{{ raise_exception('only user turns') }}"
    with pytest.raises(ValueError, match="chat template: only user turns"):
        render_chat_template(template, [])


def test_bad_metadata_is_named():
    with pytest.raises(ValueError, match="only byte-level BPE"):
        PretrainedBPETokenizer.from_gguf_metadata({"tokenizer.ggml.model": "llama"})
    with pytest.raises(ValueError, match="unknown pre-tokenizer 'qwen2'"):
        PretrainedBPETokenizer(["a"], [], [1], "qwen2")
    with pytest.raises(ValueError, match="merge 0 'a' is not two known tokens"):
        PretrainedBPETokenizer(["a"], ["a"], [1], "gpt2")


# ======================================================================== SmolLM2 itself (real)


@pytest.fixture(scope="module")
def tokenizers():
    """(minimod's tokenizer, transformers'), both from SmolLM2-135M-Instruct.Q4_1.gguf."""
    pytest.importorskip("gguf", reason=f"needs the gguf package: {HINT}")
    transformers = pytest.importorskip("transformers", reason=f"needs transformers: {HINT}")
    from minimod.models.gguf import read_gguf
    from minimod.models.pretrained import MissingExtraError, smollm2_path

    try:
        path = smollm2_path()
    except MissingExtraError:
        pytest.skip(f"needs SmolLM2: {HINT}")
    mine = PretrainedBPETokenizer.from_gguf_metadata(read_gguf(path).metadata)
    theirs = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return mine, theirs


@pytest.mark.real
@pytest.mark.parametrize("text", TRICKY)
def test_fixed_strings_give_transformers_ids(tokenizers, text):
    mine, theirs = tokenizers
    ids = mine.encode(text)
    assert ids == theirs.encode(text)
    assert mine.decode(ids) == known(text) == theirs.decode(ids)


@pytest.mark.real
@given(texts)
def test_unicode_text_gives_transformers_ids(tokenizers, text):
    mine, theirs = tokenizers
    ids = mine.encode(text)
    assert ids == theirs.encode(text)
    assert mine.decode(ids) == theirs.decode(ids)
    if known(text) == text:  # else the dropped byte's neighbours decode to U+FFFD
        assert mine.decode(ids) == text


@pytest.mark.real
def test_special_tokens_and_unknown_bytes(tokenizers):
    mine, _ = tokenizers
    assert mine.encode("<|im_start|><|im_end|><|endoftext|>") == [1, 2, 0]
    assert mine.token_text("bos") == "<|im_start|>" and mine.token_text("eos") == "<|im_end|>"
    # No token for byte 4: it is dropped, and "a" and "b" stay apart (as in transformers).
    assert mine.encode("a\x04b") == mine.encode("a") + mine.encode("b")
    assert mine.vocab_size == 49152
    assert [b for b in range(256) if mine.ids[b] < 0] == UNKNOWN_BYTES


@pytest.mark.real
@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_gives_transformers_text_and_ids(tokenizers, messages, add_generation_prompt):
    mine, theirs = tokenizers
    text = mine.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    expected = theirs.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert text == expected
    assert mine.encode(text) == theirs.encode(text)
    assert text.startswith("<|im_start|>") and text.endswith(
        "<|im_start|>assistant\n" if add_generation_prompt else "<|im_end|>\n"
    )


@pytest.mark.real
def test_save_and_load_round_trip(tokenizers, tmp_path):
    mine, _ = tokenizers
    mine.save(tmp_path / "smollm2.json")
    again = PretrainedBPETokenizer.load(tmp_path / "smollm2.json")
    text = CONVERSATIONS[1][3]["content"] + "<|im_end|>"
    assert again.encode(text) == mine.encode(text)
    from minimod.data import load_tokenizer  # the registry reads it back by its "type" too

    assert load_tokenizer(tmp_path / "smollm2.json").encode(text) == mine.encode(text)
