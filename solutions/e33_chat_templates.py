"""Lesson 33: Chat templates -- roles, special tokens, and the exact text a model expects

Why the exact template
A pretrained language model continues text. An INSTRUCTION-TUNED one (SmolLM2-135M-Instruct,
lesson 32) was then fine-tuned on conversations, every one of them written out as one string in
one fixed format, with markers around each turn. At inference it answers well only when it
reads that format again, byte for byte: ask "What is 2+2?" as plain text and it continues the
text (maybe with more questions); put the same question in its turn markers and it answers, as
the assistant, and then closes its turn. The format ships with the model as a Jinja template
(GGUF's tokenizer.chat_template, transformers' tokenizer.chat_template), so that every program
renders it the same way. SmolLM2 uses ChatML (also Qwen's):
    {% for message in messages %}
      {% if loop.first and messages[0]['role'] != 'system' %}  <|im_start|>system + newline +
          "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>" + newline
      <|im_start|> + role + newline + content + <|im_end|> + newline
    {% if add_generation_prompt %}  <|im_start|>assistant + newline
(the file's template is one line; here spread out, and "newline" is the character). Roles:
"system" (instructions for the whole conversation), "user" (the person), "assistant" (the
model's earlier answers, so it sees what it said). messages is a list of
{"role": ..., "content": ...} dictionaries, oldest first.

The generation prompt
Rendered for training, a conversation ends after the last turn's <|im_end|> and newline. To
make the model ANSWER, add_generation_prompt=True ends the text with the opening of an
assistant turn, "<|im_start|>assistant" and a newline: the likeliest continuation is then the
answer, not a guess at who speaks next. The model ends its answer with <|im_end|> (id 2, the
file's eos token, tokenizer.ggml.eos_token_id): generation stops THERE, and a chat program
appends the answer with "<|im_end|>" and a newline to the conversation before the next user
turn. A program that only stops at <|endoftext|> (id 0) lets the model write the next user
turn itself.

Rendering like transformers: render_chat_template(template, messages, add_generation_prompt,
**special_tokens)
Jinja is a template language: {{ expression }} writes text, {% for %} / {% if %} are block tags.
The same template must give the same string everywhere, so render with transformers' settings:
- jinja2.sandbox.ImmutableSandboxedEnvironment: a template comes inside a downloaded file, so it
  is untrusted code; the sandbox forbids reaching Python internals (no obj.__class__...) and
  the immutable one also forbids changing lists or dictionaries (no messages.append).
- trim_blocks=True: the first newline after a block tag is removed; lstrip_blocks=True: spaces
  and tabs before a block tag on its line are removed. Templates are written over many
  indented lines for readability; without these two settings the indentation and line breaks
  around every {% ... %} end up in the text -- and in the ids.
- extensions=[jinja2.ext.loopcontrols]: {% break %} and {% continue %} in loops.
- a global raise_exception(message) that a template calls to refuse a conversation ("roles
  must alternate"): here it raises ValueError("chat template: " + message).
- render(messages=messages, add_generation_prompt=add_generation_prompt, and the special
  tokens bos_token, eos_token, unk_token, pad_token as variables) -- only those that are not
  None: an absent variable is "undefined" in Jinja (empty when written, false in an if), a
  None would be written as the text "None".
environment.from_string(template) compiles the template; .render(**variables) returns the text.

Special tokens are cut out whole: PretrainedBPETokenizer
<|im_start|>, <|im_end|> and <|endoftext|> are single tokens (ids 1, 2 and 0) that the model
learned as turn markers. Byte-level BPE (lesson 17) would never produce them: the 12 characters
of "<|im_start|>" become 7 ordinary tokens ('<', '|', 'im', '_', 'start', '|', '>') that the
model has seen in code, not as a turn. So before pre-tokenization the text is SPLIT at every
special token, and each one becomes its own id; only the text between them goes through the
merges. GGUF marks them in tokenizer.ggml.token_type (3: control, 4: user-defined);
PretrainedBPETokenizer.__init__ (given, up to the end) collects them in self.special, a dict
{token text: model id}, and self.ids maps the merges' internal ids to the model's ids.
You write the end of __init__: self._special_split, a compiled re pattern with ONE capturing
group of every special token's text, re.escape'd (they are full of | and other regex
characters), joined by "|" and ordered LONGEST FIRST -- or None when there is no special token.
re tries the alternatives of a group from left to right and takes the first that matches, so
"<|im|>" listed before "<|im|>x" would cut the longer one short. And encode(text): with a
pattern, pieces = self._special_split.split(text) (else [text]); because the group captures,
the pieces alternate text, special, text, special, ..., text (a text piece may be empty). A
special piece (odd index) appends self.special[piece]; a non-empty text piece appends the
model ids of ByteBPETokenizer.encode(piece) (super().encode: pre-tokenize, merge), each mapped
through self.ids.
A special token TYPED by a user is cut out too: minimod does what transformers does by default,
so user content holding "<|im_end|>" and a newline and "<|im_start|>system" forges a turn (a
prompt injection at the token level). A program that must keep user text literal would encode
it without the split (transformers' split_special_tokens=True).

A worked example
SmolLM2's template with [{"role": "user", "content": "What is 2+2?"}] and the generation prompt:
    <|im_start|>system                      (then a newline)
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    What is 2+2?<|im_end|>
    <|im_start|>assistant
(each line ending in a newline): 37 ids, starting 1, 9690, 198 ('<|im_start|>', 'system', the
newline) and ending 2, 198, 1, 520, 9531, 198 ('<|im_end|>', newline, '<|im_start|>', 'ass',
'istant', newline); 21 of the 37 are the default system prompt the template inserted.
A missing newline changes the ids: "<|im_start|>user" + newline + "hi" is 1, 4093, 198, 6004;
"<|im_start|>userhi" is 1, 4093, 6004; "<|im_start|>user hi" is 1, 4093, 15876 (' hi').

Classic pitfalls
- Writing the format by hand: one missing or extra newline or space gives other ids than the
  ones the model was tuned on; it still answers, a little worse, and nothing tells you why.
- The default system prompt: SmolLM2's template inserts "You are a helpful AI assistant named
  SmolLM..." when the first message is not a system one; a hand-made prompt without it is not
  what the model saw in tuning. To change it, pass your own system message first.
- Rendering with plain jinja2.Template (no trim_blocks / lstrip_blocks): stray newlines and
  indentation from multi-line templates.
- Forgetting add_generation_prompt: the model may write "<|im_start|>user" and a question.
- Not stopping at <|im_end|>: the model writes both sides of the conversation.
- Specials in the regex shortest first, or unescaped ("|" then means "or").
- Encoding the rendered text with a tokenizer that does not split specials: every turn marker
  becomes 7 tokens the model never saw as one.
- Adding a bos token by hand when the template already writes {{ bos_token }} (Llama's do;
  SmolLM2's does not): two of them.

What you write
In minimod/data/chat.py: render_chat_template after its lazy imports (raise_exception, the
environment, the variables, the rendering). In minimod/data/bpe.py: the end of
PretrainedBPETokenizer.__init__ (self._special_split) and PretrainedBPETokenizer.encode. The
rest of the class (reading the GGUF metadata, the id maps, byte_ids, decode, token_text,
apply_chat_template, which calls your render_chat_template with the file's template and
special tokens) and ByteBPETokenizer (lesson 17) are given.

Run it
Your template and tokenizer prepare a real conversation for SmolLM2 (after `make real`):
    python -c "if 1:
        from minimod.models.gguf import read_gguf
        from minimod.models.pretrained import smollm2_path
        from exercises.e33_chat_templates import PretrainedBPETokenizer
        tok = PretrainedBPETokenizer.from_gguf_metadata(read_gguf(smollm2_path()).metadata)
        text = tok.apply_chat_template([{'role': 'user', 'content': 'What is 2 + 2?'}])
        ids = tok.encode(text)
        print(repr(text))
        print(len(ids), 'tokens:', ids[:6], tok.decode(ids) == text)"
prints the text SmolLM2 was trained on -- the default system prompt ("You are a helpful AI
assistant named SmolLM, trained by Hugging Face"), the user turn, and the opening
<|im_start|>assistant -- then 38 tokens: [1, 9690, 198, 2683, 359, 253] True (<|im_start|> is
the single id 1) (about 15 s). `minimod chat` talks to the model through the same two steps.
Next: lesson 34 (FlashAttention: the online softmax, and attention in O(T) memory)

Check it: minimod exercises check 33
Try it (python, in the repository folder):
    >>> from minimod.data.bpe import bytes_to_unicode
    >>> from exercises.e33_chat_templates import PretrainedBPETokenizer, render_chat_template
    >>> template = (
    ...     "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}"
    ...     "{% if add_generation_prompt %}[assistant] {% endif %}"
    ... )
    >>> render_chat_template(template, [{"role": "user", "content": "hi"}], eos_token="</s>")
    '[user] hi</s>[assistant] '
    >>> tokens = ["<|im_start|>", "<|im_end|>", *bytes_to_unicode().values(), "hi"]
    >>> types = [3, 3] + [1] * 257  # 3: control (special), 1: normal
    >>> tok = PretrainedBPETokenizer(tokens, ["h i"], types, "gpt2")
    >>> tok.encode("<|im_start|>hi<|im_end|>h")  # byte b has id 2 + b; the merge "hi" id 258
    [0, 258, 1, 106]
    >>> tok.decode([0, 258, 1])
    '<|im_start|>hi<|im_end|>'
"""

# Lesson 33 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from minimod.data.bpe import (
    GGUF_CONTROL,
    GGUF_PRETOKENIZERS,
    GGUF_USER_DEFINED,
    ByteBPETokenizer,
    bytes_to_unicode,
)
from minimod.data.tokenizers import check_ids

# ---- from minimod/data/chat.py ----------------------------------------


def render_chat_template(
    template: str,
    messages: list[dict[str, str]],
    add_generation_prompt: bool = True,
    **special_tokens: str | None,
) -> str:
    """``template`` rendered for ``messages``; ``add_generation_prompt`` ends the text with the
    opening of an assistant turn, for the model to continue. ``special_tokens`` (``bos_token``,
    ``eos_token``, ...) are visible to the template, as in transformers."""
    # Lazily: jinja2 is only needed by chat models (it is installed with torch).
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # BEGIN YOUR CODE
    def raise_exception(message: str) -> None:
        raise ValueError(f"chat template: {message}")

    # The settings transformers renders with: a template cannot touch Python objects, and
    # block tags leave no stray newlines or indentation behind.
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.globals["raise_exception"] = raise_exception
    variables: dict[str, Any] = {k: v for k, v in special_tokens.items() if v is not None}
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **variables
    )
    # END YOUR CODE


# ---- from minimod/data/bpe.py ----------------------------------------


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
        # BEGIN YOUR CODE
        # Longest first, so a special token that starts another never cuts it short.
        names = sorted(self.special, key=len, reverse=True)
        self._special_split = (
            re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None
        )
        # END YOUR CODE

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
        # BEGIN YOUR CODE
        pieces = self._special_split.split(text) if self._special_split else [text]
        ids: list[int] = []
        # split() alternates: text, special, text, special, ..., text.
        for index, piece in enumerate(pieces):
            if index % 2:
                ids.append(self.special[piece])
            elif piece:
                ids.extend(self.ids[i] for i in super().encode(piece))
        return ids
        # END YOUR CODE

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
