TEXT = """Lesson 33: Chat templates -- roles, special tokens, and the exact text a model expects

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
