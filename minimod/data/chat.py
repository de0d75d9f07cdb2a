"""Chat templates: a conversation turned into the one string a chat model was trained on.

An instruction-tuned model reads a conversation as text with markers around each turn, e.g.
SmolLM2's ``<|im_start|>user\\nhi<|im_end|>\\n``. Each model ships its own format as a Jinja
template (GGUF's ``tokenizer.chat_template``); this renders it the way transformers does, so the
text -- and then the ids -- equal what the model saw in training.
"""

from __future__ import annotations

from typing import Any


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

    # BEGIN SOLUTION
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
    # END SOLUTION
