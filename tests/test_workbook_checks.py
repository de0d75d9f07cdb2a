"""How ``minimod exercises`` checks a lesson: the quick tier before the rest, the memory of
lessons that passed (keyed by a hash of everything they depend on), lessons that pass while
every other lesson is a stub, and the study plan (prerequisites and time) the table shows.

They run on temporary workbooks (``MINIMOD_WORKBOOK``) and a temporary cache
(``MINIMOD_CACHE``), never on your ``exercises/``, and only under ``--impl minimod``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minimod.workbook import checks, commands
from minimod.workbook.catalogue import LESSONS, lesson
from minimod.workbook.checks import PYTEST
from minimod.workbook.implementations import WORKBOOK_ENV, lesson_path
from minimod.workbook.plan import PATH, PLANS, next_lesson, plan, prerequisite_numbers
from minimod.workbook.source import repo_root

pytestmark = pytest.mark.reference_only
ROOT = repo_root()


@pytest.fixture(scope="module")
def expected() -> dict[str, str]:
    """The generated files as committed (test_workbook.py checks they match minimod)."""
    return {
        f"{kind}/{path.name}": path.read_text(encoding="utf-8")
        for kind in ("exercises", "solutions")
        for path in sorted((ROOT / kind).glob("e*.py"))
    }


@pytest.fixture
def workbook(tmp_path, expected, monkeypatch) -> Path:
    """Every exercise a pristine stub, in a temporary workbook with a temporary cache."""
    root = tmp_path / "workbook"
    for relpath, text in expected.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text, encoding="utf-8")
    monkeypatch.setenv(WORKBOOK_ENV, str(root))
    monkeypatch.setenv(checks.CACHE_ENV, str(tmp_path / "cache"))
    return root


def solve(workbook: Path, expected: dict[str, str], number: int) -> Path:
    """Lesson ``number``'s exercise replaced by its solution."""
    item = lesson(number)
    path = workbook / "exercises" / f"{item.name}.py"
    path.write_text(expected[f"solutions/{item.name}.py"], encoding="utf-8")
    return path


def passing_run(number: int) -> checks.TestRun:
    record = {"test": "test_x", "nodeid": "tests/t.py::test_x", "file": "tests/t.py"}
    return checks.TestRun(lesson(number), 0, [{**record, "outcome": "passed"}])


def failing_run(number: int) -> checks.TestRun:
    record = {"test": "test_x", "nodeid": "tests/t.py::test_x", "file": "tests/t.py"}
    error = {"exception": "AssertionError", "message": "no", "notes": [], "where": ""}
    return checks.TestRun(lesson(number), 1, [{**record, "outcome": "failed", "errors": [error]}])


# -- the report ------------------------------------------------------------------------------


def test_the_report_shows_the_most_diagnostic_failure_first():
    """Named mistakes before generic value comparisons before gradchecks, whatever the order
    the tests ran in; in test order within each kind."""

    def failed(test: str, message: str, exception: str = "AssertionError") -> dict:
        error = {"exception": exception, "message": message, "notes": [], "where": ""}
        nodeid = f"tests/t.py::{test}"
        return {"test": test, "nodeid": nodeid, "file": "tests/t.py", "outcome": "failed",
                "errors": [error]}  # fmt: skip

    records = [
        failed("test_backward_passes_gradcheck", "Jacobian mismatch for output 0"),
        failed("test_values", "Tensor-likes are not close!\n\nMismatched elements: 3 / 4"),
        failed("test_setup", "test setup: a constant greedy sequence"),
        failed("test_named", "softmax: exp overflowed to inf: subtract the max along dim"),
        failed("test_error", "'NoneType' object has no attribute 'add'", "AttributeError"),
    ]
    ranks = [checks.diagnostic_rank(record) for record in records]
    assert ranks == [2, 1, 1, 0, 0]
    report = checks.format_report(checks.TestRun(lesson(3), 1, records))
    shown = re.findall(r"FAIL  (\w+)", report)
    assert shown == ["test_named", "test_error", "test_values", "test_setup",
                     "test_backward_passes_gradcheck"]  # fmt: skip


# -- the plan --------------------------------------------------------------------------------


def test_every_lesson_has_prerequisites_and_a_time():
    assert set(PLANS) == {item.name for item in LESSONS}, "one plan per catalogued lesson"
    for item in LESSONS:
        assert 10 <= plan(item).minutes <= 180, item.name
        for number in prerequisite_numbers(item):
            assert number < item.number, f"{item.name} builds on a later lesson {number}"


def test_the_path_takes_every_lesson_once_after_what_it_builds_on():
    assert sorted(x.number for x in PATH) == [x.number for x in LESSONS]
    position = {x.name: i for i, x in enumerate(PATH)}
    for item in LESSONS:
        for name in plan(item).prerequisites:
            assert position[name] < position[item.name], f"{item.name} comes before {name}"
    # Tokenization and the training loop before attention, so GPT (10) can be trained.
    assert position["e17_bpe"] < position["e18_training_loop"] < position["e08_attention"]
    assert [next_lesson(x) for x in PATH[:-1]] == list(PATH[1:]) and next_lesson(PATH[-1]) is None


def test_the_table_shows_prerequisites_and_time(monkeypatch):
    monkeypatch.setattr(commands, "status", lambda item: checks.NOT_STARTED)
    out = io.StringIO()
    assert commands.list_lessons(out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["lesson", "title", "after", "time", "status"]
    rows = {line.split()[0]: line for line in lines if line[:1].isdigit()}
    assert list(rows) == [str(item.number) for item in PATH], "the rows follow the path"
    assert "  13, 15  " in rows["16"] and "45 min" in rows["16"]
    assert rows["16"].endswith("not started") and "  -  " in rows["1"]
    assert lines[-1] == f"Next on the path: lesson 1 ({lesson(1).title})."


def test_the_table_names_the_next_lesson_on_the_path(monkeypatch):
    passing = {x.number for x in PATH[:8]}  # lessons 1-7 and 17 pass: 18 is next
    monkeypatch.setattr(
        commands, "status", lambda x: checks.PASSING if x.number in passing else checks.FAILING
    )
    out = io.StringIO()
    commands.list_lessons(out)
    assert out.getvalue().splitlines()[-1] == f"Next on the path: lesson 18 ({lesson(18).title})."
    monkeypatch.setattr(commands, "status", lambda x: checks.PASSING)
    out = io.StringIO()
    commands.list_lessons(out)
    assert out.getvalue().splitlines()[-1] == "Every lesson passes."


# -- the memory of passing lessons -----------------------------------------------------------


def test_a_pass_is_remembered_until_the_file_changes(workbook, expected, monkeypatch):
    path = solve(workbook, expected, 2)
    runs = []

    def run_tests(item, stop_early=False):
        runs.append(item.number)
        return passing_run(item.number)

    monkeypatch.setattr(checks, "run_tests", run_tests)
    assert checks.status(lesson(2)) == checks.PASSING and runs == [2]
    assert checks.status(lesson(2)) == checks.PASSING and runs == [2], "verified once"
    assert checks.passed_before(lesson(2)).tier == "cached"
    path.write_text(path.read_text() + "\n# an edit\n")
    assert checks.passed_before(lesson(2)) is None
    assert checks.status(lesson(2)) == checks.PASSING and runs == [2, 2], "an edit re-verifies"


def test_a_failure_is_never_remembered_as_a_pass(workbook, expected, monkeypatch):
    solve(workbook, expected, 2)
    monkeypatch.setattr(checks, "run_tests", lambda item, stop_early=False: failing_run(2))
    assert checks.status(lesson(2)) == checks.FAILING
    assert checks.passed_before(lesson(2)) is None
    with pytest.raises(ValueError, match="only a run that passed"):
        checks.remember_pass(failing_run(2))
    quick = passing_run(2)
    quick.tier = "quick"
    with pytest.raises(ValueError, match="passed both tiers"):
        checks.remember_pass(quick)


def test_a_corrupt_entry_is_ignored(workbook, expected):
    solve(workbook, expected, 2)
    checks.remember_pass(passing_run(2))
    [entry] = (Path(os.environ[checks.CACHE_ENV]) / "workbook").glob("e02_linear-*.json")
    assert not list(entry.parent.glob("*.tmp")), "written atomically: no temporary file left"
    for text in ("{not json", "[]", json.dumps({"records": "x"}), ""):
        entry.write_text(text)
        assert checks.passed_before(lesson(2)) is None, text


def test_changed_tests_or_minimod_forget_a_pass(workbook, expected, tmp_path, monkeypatch):
    """The hash covers the lesson's tests, their helpers and minimod's source."""
    solve(workbook, expected, 2)
    source = tmp_path / "source"
    for relpath in ("tests/test_linear.py", "tests/test_init.py", "tests/impl.py"):
        (source / relpath).parent.mkdir(parents=True, exist_ok=True)
        (source / relpath).write_text("# v1\n")
    (source / "minimod").mkdir()
    (source / "minimod" / "__init__.py").write_text('__version__ = "1"\n')
    monkeypatch.setattr(checks, "repo_root", lambda: source)
    checks.remember_pass(passing_run(2))
    assert checks.passed_before(lesson(2)) is not None
    for relpath in ("tests/test_init.py", "tests/impl.py", "minimod/__init__.py"):
        (source / relpath).write_text("# v2\n")
        assert checks.passed_before(lesson(2)) is None, f"{relpath} changed"
        checks.remember_pass(passing_run(2))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "dev")
    assert checks.passed_before(lesson(2)) is None, "a larger sweep is not yet verified"


# -- the tiers -------------------------------------------------------------------------------


def collected(*options: str) -> list[str]:
    command = [sys.executable, *PYTEST, "--co", *options, "tests/test_linear.py"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if "::" in line]


@pytest.mark.slow
def test_the_quick_tier_runs_the_first_case_of_every_test_first():
    every, tiered = collected(), collected("--tiers")
    functions = list(dict.fromkeys(nodeid.split("[")[0] for nodeid in every))
    quick = tiered[: len(functions)]
    assert [nodeid.split("[")[0] for nodeid in quick] == functions, "each test function once"
    assert quick == [next(n for n in every if n.split("[")[0] == f) for f in functions]
    assert sorted(tiered) == sorted(every) and len(every) > len(functions)


@pytest.mark.slow
def test_a_mistake_stops_at_the_quick_tier_and_a_pass_is_remembered(workbook, expected):
    path = solve(workbook, expected, 2)
    solution = path.read_text()
    transposed = solution.replace("input @ weight.T", "input @ weight")
    assert transposed != solution
    path.write_text(transposed)
    out = io.StringIO()
    assert commands.check(2, out) == 1
    report = out.getvalue()
    assert "failed in the quick tier" in report and "FAIL  " in report, report
    path.write_text(solution)
    assert commands.check(2, out := io.StringIO()) == 0, out.getvalue()
    assert "in the quick tier" not in out.getvalue()
    ran = [
        sum(map(int, re.findall(r"(\d+) (?:passed|failed)", text)))
        for text in (report, out.getvalue())
    ]
    assert ran[0] < ran[1], "after a failure in the quick tier the other cases do not run"
    assert commands.check(2, out := io.StringIO()) == 0
    assert "passed them all before" in out.getvalue()


# -- lessons stand alone ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_correct_lesson_passes_while_every_other_lesson_is_a_stub(workbook, expected):
    """Lesson 16's tests build a ResNet, train it with cross-entropy and AdamW: with lessons 2,
    3, 4, 6, 13 and 15 stubs, only its own definitions may come from the learner."""
    solve(workbook, expected, 16)
    run = checks.run_tests(lesson(16), stop_early=True)
    assert run.ok, checks.format_report(run)
    assert lesson_path("exercises", lesson(2)).read_text() == expected["exercises/e02_linear.py"]
