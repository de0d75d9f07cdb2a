"""Lesson 33's pitfalls: chat templates and special tokens."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_chat_template.py::"
LONGEST = (T + "test_longest_special_token_first",)

MUTANTS = [
    Mutant(
        "Rendering with plain jinja2.Template",
        "trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]",
        "extensions=[jinja2.ext.loopcontrols]",
        "trim_blocks=True and lstrip_blocks=True",
        (T + "test_multiline_template_leaves_no_layout_behind",),
    ),
    Mutant(
        "Forgetting add_generation_prompt",
        "messages=messages, add_generation_prompt=add_generation_prompt, **variables",
        "messages=messages, **variables",
        "pass add_generation_prompt to the template",
        (T + "test_smollm2_template_by_hand",),
    ),
    Mutant(
        "Specials in the regex shortest first, or unescaped",
        "names = sorted(self.special, key=len, reverse=True)",
        "names = sorted(self.special, key=len)",
        "put the longest first",
        LONGEST,
    ),
    Mutant(
        "Specials in the regex shortest first, or unescaped",
        '"|".join(map(re.escape, names))',
        '"|".join(names)',
        "re.escape",
        LONGEST,
    ),
    Mutant(
        "Encoding the rendered text with a tokenizer that does not split specials",
        "pieces = self._special_split.split(text) if self._special_split else [text]",
        "pieces = [text]",
        "cut out whole",
        (T + "test_special_tokens_are_cut_out_whole",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Writing the format by hand",
        "a hand-written format is another program, not one edit of render_chat_template, which "
        "renders whatever template it is given; the tests compare it with transformers' renderer",
    ),
    NotAMutant(
        "The default system prompt",
        "the default system prompt is part of SmolLM2's template (data), not of the code; "
        "test_smollm2_template_by_hand checks that the rendering keeps it",
    ),
    NotAMutant(
        "Not stopping at <|im_end|>",
        "stopping belongs to the generation loop (the chat command), outside this lesson's regions",
    ),
    NotAMutant(
        "Adding a bos token by hand",
        "no code of this lesson adds a bos token: the template writes {{ bos_token }} itself, "
        "and render_chat_template only passes the special tokens through",
    ),
]
