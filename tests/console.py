"""Running the real ``minimod`` console script in a subprocess, as a user would, and the shape
every bad-input error must have: one plain line on stderr and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("minimod")


def minimod(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """``minimod ARGS`` (the installed script, else ``python -m minimod``), one thread, with
    ``env`` added to the environment and ``input`` on stdin; output captured, never raising on
    a non-zero status."""
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "minimod"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, check=False, timeout=300,
        env=environment, input=input,
    )  # fmt: skip


def assert_usage_error(done: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2 and one plain line on stderr that says what is wrong."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
