"""Stopping a run cleanly: a stop request the training loop checks after every step, and the
signals that make one (Ctrl-C's SIGINT, and SIGTERM, which schedulers send).

The first signal only sets the flag: the current step finishes, the Trainer writes last.pt and
raises ``Interrupted``, and the command line says how to ``--resume``. A second signal aborts at
once (KeyboardInterrupt); checkpoints are written atomically, so no file is left half-written.

Signal handlers belong to the whole process, so the Trainer never installs any: the task that
runs it wraps ``fit`` in ``stop_on_signals``, which installs them only inside its block, only
in the main thread (Python allows no other), and restores the previous ones afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A flag: ``request(reason)`` asks a training loop to stop after its current step."""

    def __init__(self) -> None:
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str = "stop requested") -> None:
        if self.reason is None:  # the first reason is the one to report
            self.reason = reason


class Interrupted(Exception):
    """A run stopped on request after ``step`` steps; ``checkpoint`` is the last.pt it wrote
    then (None without a run folder), ``reason`` what asked (e.g. "SIGINT")."""

    def __init__(self, step: int, checkpoint: Path | None, reason: str) -> None:
        self.step, self.checkpoint, self.reason = step, checkpoint, reason
        saved = f"saved {checkpoint}" if checkpoint is not None else "no run folder, nothing saved"
        super().__init__(f"interrupted at step {step}: {saved}")


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """Inside the block, the first SIGINT or SIGTERM calls ``stop.request(signal name)`` and a
    second one raises KeyboardInterrupt; the previous handlers come back afterwards. Outside the
    main thread, where Python cannot install handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt  # asked twice: abort now
        stop.request(signal.Signals(signum).name)

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            # None: a handler not installed from Python; the default is the closest to it.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
