"""A small progress bar for long loops: count, rate and time left, on stderr.

On a terminal it redraws one line in place (``\\r``) at most ``refresh_s`` apart:

    train  420/1000 [########------------]  42% 12.3 it/s ETA 0:47 loss=1.2345

When stderr is not a terminal (a log file, a pipe, a test) a bar would fill the file with
carriage returns, so it stays quiet: a plain line at most every ``plain_every_s`` seconds
(never, if None). Either way ``close()`` writes a one-line summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """4000 -> '1:06:40', 47 -> '0:47'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """``Progress(total)``; call ``update(n, **values)`` as work is done, then ``close()``.

    ``values`` (e.g. loss=0.42) are shown after the bar. ``initial`` is the count already done
    (a resumed run): the rate counts only the work of this session. ``enabled=False`` writes
    nothing at all. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        stream: TextIO | None = None,
        enabled: bool = True,
        refresh_s: float = 0.1,
        plain_every_s: float | None = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.count = self.initial = initial
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.interactive = enabled and _isatty(self.stream)
        self.refresh_s, self.plain_every_s = refresh_s, plain_every_s
        self.clock = clock
        self.start = self.last_write = clock()
        self.values: dict[str, Any] = {}
        self._width = 0  # length of the line on screen, to blank it out when it shrinks

    def update(self, n: int = 1, **values: Any) -> None:
        self.count += n
        self.values.update(values)
        if not self.enabled:
            return
        now = self.clock()
        if self.interactive and now - self.last_write >= self.refresh_s:
            self._redraw(self.line(now))
            self.last_write = now
        elif not self.interactive and self.plain_every_s is not None:
            if now - self.last_write >= self.plain_every_s:
                self._write(self.line(now) + "\n")
                self.last_write = now

    def rate(self, now: float) -> float:
        """Units per second in this session."""
        elapsed = now - self.start
        return (self.count - self.initial) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> str:
        """The status line: count, bar and ETA (when the total is known), rate, values."""
        rate = self.rate(now)
        parts = [self.desc] if self.desc else []
        if self.total:
            filled = int(20 * min(self.count, self.total) / self.total)
            parts.append(f"{self.count}/{self.total} [{'#' * filled}{'-' * (20 - filled)}]")
            parts.append(f"{100 * self.count / self.total:3.0f}%")
            parts.append(f"{rate:.3g} {self.unit}/s")
            if rate > 0:
                parts.append(f"ETA {format_duration(max(0, self.total - self.count) / rate)}")
        else:
            parts += [f"{self.count} {self.unit}", f"{rate:.3g} {self.unit}/s"]
        return " ".join(parts + [_format_values(self.values)]).rstrip()

    def summary(self, now: float) -> str:
        """'train: 1000 it in 1:21 (12.3 it/s) loss=0.1234'"""
        done = self.count - self.initial
        head = f"{self.desc}: " if self.desc else ""
        return (
            f"{head}{done} {self.unit} in {format_duration(now - self.start)} "
            f"({self.rate(now):.3g} {self.unit}/s) {_format_values(self.values)}"
        ).rstrip()

    def close(self) -> str:
        """Write (if enabled) and return the one-line summary."""
        summary = self.summary(self.clock())
        if self.enabled:
            if self.interactive:
                self._redraw(summary)
                self._write("\n")
            else:
                self._write(summary + "\n")
        return summary

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _redraw(self, line: str) -> None:
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _format_values(values: dict[str, Any]) -> str:
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )
