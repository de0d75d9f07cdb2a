"""minimod.train.allocator.keep_freed_memory: freed blocks stay in the process, so a step that
allocates the same temporaries again page-faults no more; and the ``minimod`` command turns it
on unless MINIMOD_KEEP_FREED_MEMORY=0. Each case runs in a fresh interpreter: the setting is
process-wide."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc (Linux) is what this tunes"
)

# Rounds of 32 temporaries of 1 MiB, written and freed, like a training step's activations:
# minor page faults per round after a first round that sets the pattern. argv[1] says what runs
# first: nothing, keep_freed_memory(), or a ``minimod`` command (one that fails at once).
PATTERN = textwrap.dedent(
    """
    import resource, sys, torch
    if sys.argv[1] == "keep":
        from minimod.train.allocator import keep_freed_memory
        assert keep_freed_memory()
    elif sys.argv[1] == "command":
        from minimod.cli import main
        assert main(["evaluate", "--from", "/nonexistent-run"]) == 2
    def one_round():
        blocks = [torch.empty(256 * 1024).fill_(1.0) for _ in range(32)]
        del blocks
    one_round()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        one_round()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 4)
    """
)
# 32 MiB of fresh pages is 8,192 faults of 4 KiB; glibc's own adjusting of its thresholds
# returns all of it in most processes and about a quarter in some (seen: 8,152 or 2,096 faults
# per round, by the heap's layout); kept pages fault not at all (seen: ~64).
FRESH = 1000
REUSED = 500


def _faults_per_round(mode: str, **env: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PATTERN, mode],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


def test_freed_blocks_are_reused_without_page_faults():
    default = _faults_per_round("default")
    kept = _faults_per_round("keep")
    assert default > FRESH, f"the default allocator should return the blocks ({default} faults)"
    assert kept < REUSED, f"kept blocks should be reused, got {kept} page faults per round"


def test_the_minimod_command_keeps_freed_memory_unless_told_not_to():
    assert _faults_per_round("command") < REUSED
    assert _faults_per_round("command", MINIMOD_KEEP_FREED_MEMORY="0") > FRESH


def test_the_switch_turns_it_off(monkeypatch):
    from minimod.train.allocator import keep_freed_memory

    monkeypatch.setenv("MINIMOD_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
