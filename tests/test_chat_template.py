"""Lesson 33: chat templates and special tokens, against transformers and Hugging Face tokenizers,
with no model file.

``render_chat_template`` (minimod.data.chat) is compared with transformers' own renderer
(``render_jinja_template``) on SmolLM2's template (copied from its GGUF file) and on a template
that uses what transformers' Jinja settings change (block tags on indented lines, loop controls,
filters, special-token variables), for generated conversations. ``PretrainedBPETokenizer``'s
special-token split is compared with a byte-level BPE of the ``tokenizers`` package built from
the same vocabulary, merges and special tokens, on generated text full of special tokens (one
the prefix of another, one holding a regex "|"). Both reach the code through ``impl.chat`` and
``impl.bpe``, so they check minimod, the solutions or a learner's exercises alike.
"""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers.utils.chat_template_utils import render_jinja_template

import impl
from minimod.data.bpe import ByteBPETokenizer, bytes_to_unicode, exact_gpt2_pattern

# tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf, as the file stores it.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Written over indented lines, as most templates are: only trim_blocks and lstrip_blocks keep
# this layout out of the text. {% break %} needs the loop-controls extension.
MULTILINE_TEMPLATE = """\
{{ bos_token }}
{% for message in messages %}
    {% if loop.index0 >= 4 %}
        {% break %}
    {% elif message['role'] == 'system' %}
<<SYS>> {{ message['content'] | trim }} <</SYS>>
    {% else %}
[{{ message['role'] | upper }}]
{{ message['content'] }}{{ eos_token }}
    {% endif %}
{% endfor %}
{% if pad_token is defined %}(padding: {{ pad_token }}){% endif %}
{% if add_generation_prompt %}
[ASSISTANT]
{% endif %}
"""

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sep>", "<sep>|x"]
TRAINING_TEXT = (
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n"
    "def square(x):\n    return x * x  # it's 42, isn't it? 3.14159\n"
) * 3

assigned = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=12)
texts = st.lists(st.one_of(assigned, st.sampled_from(SPECIALS + ["\n", " ", "<sep>|"])), max_size=8)
texts = texts.map("".join)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": texts}
    ),
    min_size=1,
    max_size=6,
)
TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": None, "pad_token": "<pad>"}


def reference_render(template: str, conversation, add_generation_prompt: bool, **tokens) -> str:
    """transformers' rendering, given only the special tokens that are set (as its tokenizer
    passes them)."""
    tokens = {name: value for name, value in tokens.items() if value is not None}
    rendered, _ = render_jinja_template(
        conversations=[conversation],
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        **tokens,
    )
    return rendered[0]


@pytest.mark.parametrize("template", [SMOLLM2_TEMPLATE, MULTILINE_TEMPLATE])
@given(conversation=messages, add_generation_prompt=st.booleans(), pad=st.booleans())
def test_rendering_equals_transformers(template, conversation, add_generation_prompt, pad):
    tokens = TOKENS | {"pad_token": "<pad>" if pad else None}
    ours = impl.chat.render_chat_template(template, conversation, add_generation_prompt, **tokens)
    assert ours == reference_render(template, conversation, add_generation_prompt, **tokens)


def test_smollm2_template_by_hand():
    conversation = [{"role": "user", "content": "What is 2+2?"}]
    text = impl.chat.render_chat_template(SMOLLM2_TEMPLATE, conversation)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    ), f"rendered {text!r}" + (
        "; with add_generation_prompt=True (the default) the text must end with the opening "
        "of an assistant turn: pass add_generation_prompt to the template"
        if not text.endswith("<|im_start|>assistant\n")
        else ""
    )
    system = [{"role": "system", "content": "Be terse."}, *conversation]
    text = impl.chat.render_chat_template(SMOLLM2_TEMPLATE, system, add_generation_prompt=False)
    assert (
        text
        == "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    )


def test_multiline_template_leaves_no_layout_behind():
    conversation = [
        {"role": "system", "content": "  Be terse. "},
        {"role": "user", "content": "hi"},
    ]
    text = impl.chat.render_chat_template(
        MULTILINE_TEMPLATE, conversation, True, bos_token="<s>", eos_token="</s>", pad_token=None
    )
    assert text == "<s>\n<<SYS>> Be terse. <</SYS>>\n[USER]\nhi</s>\n[ASSISTANT]\n", (
        f"rendered {text!r}: stray newlines or indentation from the template's layout; render "
        "with trim_blocks=True and lstrip_blocks=True, as transformers does"
    )


def test_raise_exception_is_one_value_error():
    template = (
        "{% if messages[0]['role'] == 'assistant' %}"
        "{{ raise_exception('conversations start with a user turn') }}{% endif %}ok"
    )
    with pytest.raises(ValueError, match="^chat template: conversations start with a user turn$"):
        impl.chat.render_chat_template(template, [{"role": "assistant", "content": "hi"}])
    assert impl.chat.render_chat_template(template, [{"role": "user", "content": "hi"}]) == "ok"


def test_templates_run_in_an_immutable_sandbox():
    conversation = [{"role": "user", "content": "hi"}]
    with pytest.raises(jinja2.exceptions.SecurityError):
        impl.chat.render_chat_template("{{ messages.append(messages[0]) }}", conversation)
    with pytest.raises(jinja2.exceptions.SecurityError):
        impl.chat.render_chat_template("{{ messages.__class__.__mro__ }}", conversation)


# ------------------------------------------------------------------- special tokens, whole


def gpt2_text(token: bytes) -> str:
    """A token's text in a GGUF (GPT-2) vocabulary: each byte as its printable stand-in."""
    mapping = bytes_to_unicode()
    return "".join(mapping[b] for b in token)


def vocabulary() -> tuple[list[str], list[str], list[int]]:
    """(tokens, merges, token types) of a small byte-level BPE: the special tokens first (type 3,
    control), then the 256 bytes and the merges' tokens (type 1, normal)."""
    trained = ByteBPETokenizer.train(TRAINING_TEXT, vocab_size=320, pattern=exact_gpt2_pattern())
    merges = [
        f"{gpt2_text(trained.vocab[a])} {gpt2_text(trained.vocab[b])}" for a, b in trained.merges
    ]
    ordinary = [gpt2_text(token) for token in trained.vocab]
    assert len(set(ordinary)) == len(ordinary), "the training text made one token twice"
    tokens = SPECIALS + ordinary
    return tokens, merges, [3] * len(SPECIALS) + [1] * len(ordinary)


@pytest.fixture(scope="module")
def twins():
    """(minimod's PretrainedBPETokenizer, a ``tokenizers`` byte-level BPE) of one vocabulary."""
    tokens, merges, types = vocabulary()
    ours = impl.bpe.PretrainedBPETokenizer(tokens, merges, types, "gpt2")
    model = models.BPE(
        vocab={token: i for i, token in enumerate(tokens)},
        merges=[tuple(merge.split(" ")) for merge in merges],
    )
    theirs = Tokenizer(model)
    theirs.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    theirs.decoder = decoders.ByteLevel()
    theirs.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return ours, theirs


@pytest.mark.parametrize(
    "text",
    [
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<sep>|x<sep>|<sep>x|<sep><sep>|xx",
        "glued<|im_end|><|im_end|>text<|endoftext|> <|im_start",
        "x|x xx| |",
        "",
    ],
)
def test_special_tokens_are_cut_out_whole(twins, text):
    ours, theirs = twins
    assert ours.encode(text) == theirs.encode(text).ids, (
        f"{ours.encode(text)} instead of {theirs.encode(text).ids}: each special token written "
        "in the text must become its one id, cut out whole before the BPE sees the text"
    )
    assert ours.decode(ours.encode(text)) == text


def _encode(tokenizer, text: str) -> list[int]:
    """tokenizer.encode(text), a piece cut out that is no special token said in words."""
    try:
        return tokenizer.encode(text)
    except KeyError as error:
        raise AssertionError(
            f"encoding {text!r} cut out {error}, which is no special token: escape each special "
            'token in the regex with re.escape ("|" then means "or")'
        ) from error


def test_longest_special_token_first(twins):
    ours, _ = twins
    sep, longer = SPECIALS.index("<sep>"), SPECIALS.index("<sep>|x")
    longest_first = (
        "the special token <sep>|x starts with the special token <sep>: put the longest first in "
        "the regex (an alternation takes the first that matches)"
    )
    assert _encode(ours, "<sep>|x") == [longer], longest_first
    assert _encode(ours, "<sep><sep>|x") == [sep, longer], longest_first
    assert len(_encode(ours, "x|x")) > 0 and sep not in ours.encode("x|x")  # "|" is escaped


@given(texts)
def test_text_with_special_tokens_gives_the_reference_ids(twins, text):
    ours, theirs = twins
    ids = ours.encode(text)
    assert ids == theirs.encode(text).ids
    assert ours.decode(ids) == text


@given(conversation=messages, add_generation_prompt=st.booleans())
def test_rendered_conversation_gives_the_reference_ids(twins, conversation, add_generation_prompt):
    ours, theirs = twins
    text = impl.chat.render_chat_template(SMOLLM2_TEMPLATE, conversation, add_generation_prompt)
    ids = ours.encode(text)
    assert ids == theirs.encode(text).ids
    assert ids[0] == SPECIALS.index("<|im_start|>")
