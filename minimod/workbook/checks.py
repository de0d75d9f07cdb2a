"""Run a lesson's tests against the learner's exercises and say, plainly, what went wrong.

The tests run in a fresh ``python -m pytest`` process (so a broken exercise cannot hurt the
caller) with ``--impl exercises``; ``pytest_plugin`` records each outcome as JSON, and
``format_report`` turns the failures into a short report: which property failed, on which
input, the message (the tests' messages give expected vs got and a hint), and the line of your
code where an error was raised. Tests that only hit a stub are summed up in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minimod.workbook.catalogue import Lesson
from minimod.workbook.implementations import WORKBOOK_ENV, lesson_path, workbook_root
from minimod.workbook.markers import has_learner_code
from minimod.workbook.source import repo_root

NOT_STARTED, FAILING, PASSING, MISSING = "not started", "failing", "passing", "missing"
RESULTS_ENV = "MINIMOD_RESULTS"  # where pytest_plugin writes its JSON records
MAX_MESSAGE_LINES = 12
MAX_FAILURES_SHOWN = 6
# Quiet, and no tracebacks: the plugin records what the report needs, and formatting hundreds
# of tracebacks would take longer than running the tests.
PYTEST = ["-m", "pytest", "-q", "--tb=no", "-rN", "-p", "no:cacheprovider"]
PYTEST += ["-p", "minimod.workbook.pytest_plugin"]
# A test still running after this long is stuck (the slowest lesson test takes a few seconds);
# MINIMOD_TEST_TIMEOUT overrides it.
TEST_TIMEOUT_ENV = "MINIMOD_TEST_TIMEOUT"
TEST_TIMEOUT_S = 120.0


@dataclass
class TestRun:
    """The outcome of one run of a lesson's tests."""

    lesson: Lesson
    returncode: int
    records: list[dict] = field(default_factory=list)
    output: str = ""  # pytest's own output, for when no record explains a failure

    @property
    def passed(self) -> list[dict]:
        return [r for r in self.records if r["outcome"] == "passed"]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["outcome"] == "failed"]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed and bool(self.passed)


def _pytest(lesson: Lesson, targets: list[str], implementation: str, options: list[str]):
    root = repo_root()
    missing = [test for test in lesson.tests if not (root / test).exists()]
    if missing:
        raise FileNotFoundError(
            f"the tests of lesson {lesson.number} are missing: {missing} "
            "(they live in the minimod repository, next to exercises/)"
        )
    with tempfile.TemporaryDirectory(prefix="minimod-check-") as tmp:
        results = Path(tmp) / "results.json"
        env = {**os.environ, RESULTS_ENV: str(results), WORKBOOK_ENV: str(workbook_root())}
        timeout = float(os.environ.get(TEST_TIMEOUT_ENV) or TEST_TIMEOUT_S)
        command = [
            sys.executable,
            *PYTEST,
            "--impl",
            implementation,
            "--lesson",
            str(lesson.number),
        ]
        command += ["--test-timeout", str(timeout), *options, *targets]
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, check=False
        )
        records = json.loads(results.read_text(encoding="utf-8")) if results.exists() else []
    return done.returncode, records, done.stdout + done.stderr


def is_stub_error(error: dict, lesson: Lesson) -> bool:
    """The error is this lesson's own NotImplementedError: a region not written yet."""
    prefix = f"e{lesson.number:02d}: "
    return error["exception"] == "NotImplementedError" and error["message"].startswith(prefix)


def run_tests(lesson: Lesson, implementation: str = "exercises", quick: bool = False) -> TestRun:
    """Run ``lesson``'s tests against ``implementation`` in a subprocess.

    ``quick`` stops at the first failure (enough to tell passing from failing). Otherwise all
    tests run without shrinking, and then the ones that fail for another reason than a stub run
    again with shrinking, so the report shows hypothesis' simplest failing input."""
    if quick:
        options = ["-x", "--no-shrink"]
        code, records, output = _pytest(lesson, list(lesson.tests), implementation, options)
        return TestRun(lesson, code, records, output)
    code, records, output = _pytest(lesson, list(lesson.tests), implementation, ["--no-shrink"])
    failed = [r for r in records if r["outcome"] == "failed" and r.get("nodeid")]
    real = [r for r in failed if not all(is_stub_error(e, lesson) for e in r["errors"])]
    real = [r for r in real if _found_by_search(r)]  # explicit examples need no shrinking
    if real:
        nodeids = [r["nodeid"] for r in real[:MAX_FAILURES_SHOWN]]
        _, shrunk, _ = _pytest(lesson, nodeids, implementation, [])
        better = {r["nodeid"]: r for r in shrunk if r["outcome"] == "failed"}
        records = [better.get(r.get("nodeid"), r) for r in records]
    return TestRun(lesson, code, records, output)


def _found_by_search(record: dict) -> bool:
    """Hypothesis generated the failing input (rather than an @example or a plain test)."""
    notes = [note for error in record["errors"] for note in error.get("notes", [])]
    return any(note.startswith("Falsifying example") for note in notes)


def syntax_problem(lesson: Lesson) -> str | None:
    """A readable message if the exercise file cannot even be compiled."""
    path = lesson_path("exercises", lesson)
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as error:
        return f"{_shown(path)}, line {error.lineno}: {error.msg}\n    {(error.text or '').strip()}"
    return None


def status(lesson: Lesson) -> str:
    """not started / failing / passing (or missing) for the learner's exercise file."""
    path = lesson_path("exercises", lesson)
    if not path.exists():
        return MISSING
    if not has_learner_code(path.read_text(encoding="utf-8"), str(path)):
        return NOT_STARTED
    if syntax_problem(lesson):
        return FAILING
    return PASSING if run_tests(lesson, quick=True).ok else FAILING


# -- the report ------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """A path relative to the current folder when that is shorter."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return relative if len(relative) < len(str(path)) else str(path)


def _example(text: str) -> str:
    """``Falsifying example: test_x(\\n    a=1,\\n    b=2,\\n)`` -> ``a=1, b=2``."""
    lines = [line.strip() for line in text.splitlines()]
    skip = ("Falsifying", "Failing", "Trying", "You can", "(note", "Explanation")
    arguments = [
        line.rstrip(",")
        for line in lines
        if line and not line.endswith(("(", ")")) and not line.startswith(skip)
    ]
    return ", ".join(arguments)


def _message(error: dict) -> list[str]:
    """The useful part of an exception message: pytest's assert introspection is cut."""
    lines = error["message"].strip().splitlines()
    if error["exception"] == "AssertionError" and lines and not lines[0].startswith("assert "):
        cut = next((i for i, line in enumerate(lines) if line.startswith("assert ")), len(lines))
        lines = lines[:cut]
    if len(lines) > MAX_MESSAGE_LINES:
        lines = [*lines[:MAX_MESSAGE_LINES], "..."]
    return lines


def _generic_hint(error: dict) -> str | None:
    """A hint for errors any lesson can meet; the tests' own messages name lesson mistakes."""
    exception, message = error["exception"], error["message"]
    if "cannot be multiplied" in message or "must match the size" in message:
        return (
            "two tensors' shapes do not fit together: print the shapes on that line; is a "
            "transpose (.T) missing, or on the wrong tensor?"
        )
    if exception == "NotImplementedError":
        return "this comes from code that is not written yet (a stub)"
    if exception in ("NameError", "AttributeError", "TypeError", "UnboundLocalError"):
        return "a Python error in your code: look at the line above"
    return None


def format_failure(record: dict, hints_given: set[str]) -> str:
    """One failed test: for each distinct error, its input, message, line and hint."""
    lines = [f"FAIL  {record['test']}  ({record['file']})"]
    for error in record["errors"]:
        example = next((_example(note) for note in error.get("notes", []) if "(" in note), "")
        example = example or _example(record.get("example", ""))
        if example:
            lines.append(f"  input:  {example}")
        message = _message(error)
        head = f"{error['exception']}: " if error["exception"] else ""
        lines.append(f"  error:  {head}{message[0] if message else ''}")
        lines += [f"          {line}" for line in message[1:]]
        if error.get("where"):
            lines.append(f"  where:  {error['where']}")
        hint = _generic_hint(error)
        if hint and hint not in hints_given:
            hints_given.add(hint)
            lines.append(f"  hint:   {hint}")
    return "\n".join(lines)


def format_report(run: TestRun) -> str:
    lesson = run.lesson
    path = _shown(lesson_path("exercises", lesson))
    parts = [
        f"Lesson {lesson.number}: {lesson.title}  ({path})",
        f"{len(run.passed)} passed, {len(run.failed)} failed",
    ]
    stubs = {}  # function name -> how many tests wait on it
    real = []
    for record in run.failed:
        if all(is_stub_error(error, lesson) for error in record["errors"]):
            for error in record["errors"]:
                name = error["message"].split(": ", 1)[1]
                stubs[name] = stubs.get(name, 0) + 1
        else:
            real.append(record)
    if stubs:
        source = lesson_path("exercises", lesson).read_text(encoding="utf-8")
        order = sorted(stubs, key=lambda name: source.find(f"e{lesson.number:02d}: {name}"))
        parts.append(
            f"Still to write: {', '.join(order)} -- {sum(stubs.values())} test(s) stop at a "
            f"`raise NotImplementedError` between BEGIN YOUR CODE and END YOUR CODE in {path}."
        )
    hints_given: set[str] = set()
    parts += [format_failure(record, hints_given) for record in real[:MAX_FAILURES_SHOWN]]
    if len(real) > MAX_FAILURES_SHOWN:
        parts.append(f"... and {len(real) - MAX_FAILURES_SHOWN} more failing test(s).")
    if run.returncode not in (0, 1) or (run.returncode == 1 and not run.failed):
        tail = "\n".join(run.output.strip().splitlines()[-15:])
        parts.append(f"pytest stopped with exit code {run.returncode}:\n{tail}")
    again = f"`minimod exercises check {lesson.number}`"
    if run.ok:
        parts.append(f"All of lesson {lesson.number}'s tests pass. Well done!")
    elif stubs and not real:
        parts.append(
            f"Write them (the lesson text at the top of the file explains how), then {again}."
        )
    else:
        parts.append(
            f"Fix the first failure, then run `minimod exercises check {lesson.number}` again."
        )
    return "\n\n".join(parts)
