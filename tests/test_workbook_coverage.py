"""The coverage tool of the lessons' marked code (``python -m minimod.workbook.coverage``): its
exceptions table names real lines, and it runs end to end on a small lesson."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from minimod.workbook import coverage
from minimod.workbook.catalogue import lesson
from minimod.workbook.implementations import lesson_path
from minimod.workbook.source import repo_root

SMALL_LESSON = 19  # metrics: three short functions, its tests take a few seconds


@pytest.mark.parametrize("entry", coverage.EXCEPTIONS, ids=lambda e: f"e{e.lesson:02d}")
def test_every_exception_names_a_marked_line_of_its_lesson(entry):
    item = lesson(entry.lesson)
    text = lesson_path("solutions", item).read_text(encoding="utf-8")
    lines = text.splitlines()
    marked = {lines[n - 1].strip() for n in coverage.marked_lines(item, text)}
    assert entry.line in marked, (
        f"EXCEPTIONS names {entry.line!r} for lesson {entry.lesson}, but no marked line of "
        f"solutions/{item.name}.py reads so: update or remove the entry"
    )
    assert entry.reason.strip(), f"the exception {entry.line!r} gives no reason"


def test_exceptions_are_listed_once():
    twice = [
        key for key, n in Counter((e.lesson, e.line) for e in coverage.EXCEPTIONS).items() if n > 1
    ]
    assert not twice, f"listed more than once in EXCEPTIONS: {twice}"


def test_an_excepted_line_and_its_branch_count_as_covered_and_other_gaps_do_not(monkeypatch):
    """Coverage data made up for lesson 25: the CUDA line (excepted) and one other line are
    missed, and so is the branch into the CUDA line."""
    item = lesson(25)
    text = lesson_path("solutions", item).read_text(encoding="utf-8")
    lines = text.splitlines()
    marked = sorted(coverage.marked_lines(item, text))
    code = [n for n in marked if lines[n - 1].strip() and not lines[n - 1].strip().startswith("#")]
    cuda = next(n for n in code if lines[n - 1].strip() in coverage.exceptions_of(25))
    other = code[0]
    measured = {
        "executed_lines": [n for n in code if n not in (cuda, other)],
        "missing_lines": [cuda, other],
        "executed_branches": [[cuda - 1, cuda + 1]],
        "missing_branches": [[cuda - 1, cuda]],
    }
    monkeypatch.setattr(coverage, "_run_under_coverage", lambda *args: (0, "", measured))
    result = coverage.measure(item)
    assert result.excepted == [cuda] and result.missed == [other], result
    assert result.missed_arcs == [] and result.partial == [] and not result.complete
    assert result.percent < 100
    details = "\n".join(coverage.format_details(result))
    assert f":{other}: missed: {lines[other - 1].strip()}" in details
    assert f":{cuda}: excepted (restores a GPU's random state" in details


def test_a_small_lesson_is_fully_covered_end_to_end():
    done = subprocess.run(
        [sys.executable, "-m", "minimod.workbook.coverage", str(SMALL_LESSON)],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (
        f"coverage of lesson {SMALL_LESSON} is incomplete:\n{done.stdout}{done.stderr}"
    )
    row = next(line for line in done.stdout.splitlines() if line.startswith(f"{SMALL_LESSON} "))
    columns = row.split()
    assert columns[1] == lesson(SMALL_LESSON).name and int(columns[2]) > 0, row
    assert columns[3] == "0" and columns[6] == "100.0%", row


def test_an_unknown_lesson_is_one_line_and_status_2(capsys):
    assert coverage.main(["99"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coverage: no lesson 99") and "\n" not in err


def test_without_the_coverage_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "coverage", None)  # makes `import coverage` fail
    with pytest.raises(RuntimeError, match="coverage package is not installed.*make setup"):
        coverage.measure(lesson(SMALL_LESSON))
