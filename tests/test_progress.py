"""The progress bar (minimod.train.progress): a redrawn line on a terminal, quiet otherwise,
a one-line summary at the end. A fake stream and a fake clock keep the tests exact."""

from __future__ import annotations

import pytest

from minimod.train.progress import Progress, format_duration


class FakeStream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text, self.flushes = tty, "", 0

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        self.flushes += 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(tty: bool, total: int | None = 10, **options):
    stream, clock = FakeStream(tty), FakeClock()
    return Progress(total, "train", stream=stream, clock=clock, **options), stream, clock


def test_on_a_terminal_the_bar_is_redrawn_in_place_with_rate_and_eta():
    bar, stream, clock = make(tty=True)
    clock.now = 2.0
    bar.update(4, loss=0.5)
    assert stream.text.startswith("\r") and "\n" not in stream.text
    line = stream.text[1:]
    assert "train 4/10 [########------------]  40%" in line
    assert "2 it/s" in line and "ETA 0:03" in line and line.endswith("loss=0.5")
    assert stream.flushes >= 1, "a bar that is not flushed does not show"


def test_redraws_are_throttled():
    bar, stream, clock = make(tty=True, refresh_s=0.5)
    clock.now = 1.0
    bar.update()
    drawn = stream.text
    clock.now = 1.2
    bar.update()
    assert stream.text == drawn, "a redraw within refresh_s is skipped"
    clock.now = 1.6
    bar.update()
    assert stream.text.count("\r") == 2 and "3/10" in stream.text


def test_the_summary_replaces_the_bar_on_a_terminal():
    bar, stream, clock = make(tty=True)
    clock.now = 1.0
    bar.update(5, loss=1.25)
    clock.now = 4.0
    bar.update(5)
    summary = bar.close()
    assert summary == "train: 10 it in 0:04 (2.5 it/s) loss=1.25"
    *_, bar_line, last = stream.text.split("\r")
    assert last == summary.ljust(len(bar_line)) + "\n", "the summary blanks out the longer bar"


def test_when_not_a_terminal_it_is_quiet_apart_from_rare_plain_lines_and_the_summary():
    bar, stream, clock = make(tty=False, total=1000, plain_every_s=60.0)
    for second in range(1, 100):
        clock.now = float(second)
        bar.update()
    assert "\r" not in stream.text, "no carriage returns in a log file"
    lines = stream.text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("train 60/1000")
    bar.close()
    assert stream.text.splitlines()[-1] == "train: 99 it in 1:39 (1 it/s)"


def test_quiet_modes_write_nothing_or_only_the_summary():
    bar, stream, clock = make(tty=False, plain_every_s=None)
    clock.now = 1000.0
    bar.update(10)
    assert stream.text == ""
    bar.close()
    assert stream.text == "train: 10 it in 16:40 (0.01 it/s)\n"
    bar, stream, clock = make(tty=True, enabled=False)
    clock.now = 5.0
    bar.update(3)
    assert bar.close().startswith("train: 3 it") and stream.text == ""


def test_resumed_runs_count_only_this_sessions_rate_and_unknown_totals_have_no_bar():
    bar, stream, clock = make(tty=True, initial=50, total=100)
    clock.now = 10.0
    bar.update(10)
    assert "60/100" in stream.text and "1 it/s" in stream.text and "ETA 0:40" in stream.text
    bar, stream, clock = make(tty=True, total=None)
    clock.now = 1.0
    bar.update(3)
    assert "3 it 3 it/s" in stream.text and "ETA" not in stream.text and "[" not in stream.text


def test_a_stream_without_isatty_counts_as_not_a_terminal():
    class Plain:
        text = ""

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    stream = Plain()
    bar = Progress(3, stream=stream, clock=lambda: 1.0)
    assert not bar.interactive
    bar.update(3)
    with bar:
        pass
    assert stream.text.count("\n") == 1 and "\r" not in stream.text


@pytest.mark.parametrize(
    "seconds, text", [(0, "0:00"), (47, "0:47"), (61.4, "1:01"), (4000, "1:06:40")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
