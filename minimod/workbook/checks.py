"""Run a lesson's tests against the learner's exercises and say, plainly, what went wrong.

The tests run in a fresh ``python -m pytest`` process (so a broken exercise cannot hurt the
caller) with ``--impl exercises``; ``pytest_plugin`` records each outcome as JSON, and
``format_report`` turns the failures into a short report: which property failed, on which
input, the message (the tests' messages give expected vs got and a hint), and the line of your
code where an error was raised. Tests that only hit a stub are summed up in one line.

Two tiers, so that a mistake shows sooner: the quick tier runs the first case of every test
(its first parameter set, a property with all its examples); only when all of it passes does
the rest run, in the same process (``pytest_plugin``'s ``--tiers``). A lesson passes only after
both tiers, with the full hypothesis sweep (``ci`` unless ``HYPOTHESIS_PROFILE`` says otherwise).

A lesson that passes is remembered (``<minimod cache>/workbook/``), keyed by a hash of your
file, the lesson's tests and their helpers, and minimod's source: until one of them changes,
``minimod exercises`` and ``--use-mine`` trust it without running its tests again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minimod.workbook.catalogue import Lesson
from minimod.workbook.implementations import (
    CHECKED_LESSON_ENV,
    WORKBOOK_ENV,
    lesson_path,
    workbook_root,
)
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
FULL_PROFILE = "ci"  # the hypothesis profile when HYPOTHESIS_PROFILE is not set (conftest.py)
# minimod.data.cache.cache_dir's rule, repeated: the workbook may not import minimod.data.
CACHE_ENV = "MINIMOD_CACHE"


@dataclass
class TestRun:
    """The outcome of one run of a lesson's tests."""

    lesson: Lesson
    returncode: int
    records: list[dict] = field(default_factory=list)
    output: str = ""  # pytest's own output, for when no record explains a failure
    tier: str = "full"  # "full": both tiers ran; "quick": stopped there; "cached": passed before

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
        env[CHECKED_LESSON_ENV] = str(lesson.number)  # the rest of minimod is minimod's own
        timeout = float(os.environ.get(TEST_TIMEOUT_ENV) or TEST_TIMEOUT_S)
        command = [
            sys.executable,
            *PYTEST,
            "--impl",
            implementation,
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


def run_tests(
    lesson: Lesson, implementation: str = "exercises", stop_early: bool = False
) -> TestRun:
    """Run ``lesson``'s tests against ``implementation`` in a subprocess, the quick tier first
    (the rest only if all of it passes).

    ``stop_early`` stops at the first failure (enough to tell passing from failing). Otherwise
    the tests run without shrinking, and then the ones that fail for another reason than a stub
    run again with shrinking, so the report shows hypothesis' simplest failing input."""
    options = ["--tiers", "--no-shrink"] + (["-x"] if stop_early else [])
    code, records, output = _pytest(lesson, list(lesson.tests), implementation, options)
    failed = [r for r in records if r["outcome"] == "failed" and r.get("nodeid")]
    tier = "quick" if failed and all(r.get("tier") == "quick" for r in records) else "full"
    real = [r for r in failed if not all(is_stub_error(e, lesson) for e in r["errors"])]
    # The failures the report shows first; explicit examples need no shrinking.
    real = [r for r in most_diagnostic_first(real) if _found_by_search(r)]
    if real and not stop_early:
        nodeids = [r["nodeid"] for r in real[:MAX_FAILURES_SHOWN]]
        _, shrunk, _ = _pytest(lesson, nodeids, implementation, [])
        better = {r["nodeid"]: r for r in shrunk if r["outcome"] == "failed"}
        records = [better.get(r.get("nodeid"), r) for r in records]
    return TestRun(lesson, code, records, output, tier)


# Messages of generic comparisons (torch.testing, a bare assert, tests/compare.py): they say
# that a value is wrong, not which mistake made it so.
GENERIC_MESSAGES = (
    "Tensor-likes are not close",
    "Scalars are not close",
    "assert ",
    "the output differs",
    "gradient of ",
    "output shape",
    "test setup",  # a test's own precondition, broken by the mistake but not naming it
)


def diagnostic_rank(record: dict) -> int:
    """0: the failure names a mistake (a test's plain-words message or hint, or an error raised
    in the learner's code); 1: a generic value comparison; 2: a gradcheck."""
    error = record["errors"][0] if record.get("errors") else {"exception": "", "message": ""}
    message = error["message"].lstrip()
    if "gradcheck" in record.get("test", "") or "Jacobian mismatch" in message:
        return 2
    if error["exception"] == "AssertionError" and (
        not message or message.startswith(GENERIC_MESSAGES)
    ):
        return 1
    return 0


def most_diagnostic_first(records: list[dict]) -> list[dict]:
    """``records`` with named-mistake failures first, then generic value comparisons, then
    gradchecks; in test order within each kind."""
    return sorted(records, key=diagnostic_rank)


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
    if passed_before(lesson) is not None:
        return PASSING
    run = run_tests(lesson, stop_early=True)
    if run.ok:
        remember_pass(run)
    return PASSING if run.ok else FAILING


# -- lessons that passed ---------------------------------------------------------------------


def _fingerprint(lesson: Lesson) -> str:
    """A hash of everything a lesson's result depends on: the learner's file, the lesson's
    tests and the helpers beside them (conftest.py, impl.py, ...), the twins in benchmarks/,
    minimod's source (its version included) and the full sweep's hypothesis profile."""
    root = repo_root()
    tests = root / "tests"
    paths = [root / test for test in lesson.tests]
    paths += sorted(path for path in tests.glob("*.py") if not path.name.startswith("test_"))
    paths += sorted((root / "benchmarks").glob("*.py"))
    paths += sorted((root / "minimod").rglob("*.py"))
    digest = hashlib.sha256(os.environ.get("HYPOTHESIS_PROFILE", FULL_PROFILE).encode())
    digest.update(b"\0" + lesson_path("exercises", lesson).read_bytes())
    for path in paths:
        digest.update(b"\0" + str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _entry(lesson: Lesson, fingerprint: str) -> Path:
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "minimod")
    return cache / "workbook" / f"{lesson.name}-{fingerprint[:24]}.json"


def passed_before(lesson: Lesson) -> TestRun | None:
    """The run in which the learner's file last passed every test, if nothing it depends on
    has changed since (same file, tests and minimod); else None. A corrupt entry is ignored."""
    fingerprint = _fingerprint(lesson)
    try:
        entry = json.loads(_entry(lesson, fingerprint).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
        return None
    records = entry.get("records")
    if not isinstance(records, list):
        return None
    if not all(isinstance(r, dict) and r.get("outcome") in ("passed", "skipped") for r in records):
        return None
    run = TestRun(lesson, 0, records, tier="cached")
    return run if run.ok else None


def remember_pass(run: TestRun) -> None:
    """Record that the learner's file passed every test of both tiers (failures never are)."""
    if not run.ok or run.tier != "full":
        raise ValueError("only a run that passed both tiers can be remembered as a pass")
    fingerprint = _fingerprint(run.lesson)
    path = _entry(run.lesson, fingerprint)
    entry = {"lesson": run.lesson.number, "fingerprint": fingerprint, "records": run.records}
    # Written to a temporary file and renamed, so a reader never sees half an entry. A cache
    # that cannot be written only costs a run of the tests next time.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
        ) as temporary:
            json.dump(entry, temporary)
        os.replace(temporary.name, path)
    except OSError:
        return


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
    if exception == "IndexError" and "out of range" in message:
        return (
            "an index past the end of a table: do your positions or ids count from 0 (a table "
            "of n rows takes 0 ... n - 1)?"
        )
    if exception == "RecursionError":
        return (
            "a function calls itself without end: inside __setattr__, `self.x = ...` calls "
            "__setattr__ again (set it with object.__setattr__(self, name, value))"
        )
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


TIER_NOTES = {
    "quick": " in the quick tier (the first case of each test; the other cases run once all of "
    "these pass)",
    "cached": " (this exact file passed them all before, and nothing they test has changed)",
}


def format_report(run: TestRun) -> str:
    lesson = run.lesson
    path = _shown(lesson_path("exercises", lesson))
    parts = [
        f"Lesson {lesson.number}: {lesson.title}  ({path})",
        f"{len(run.passed)} passed, {len(run.failed)} failed{TIER_NOTES.get(run.tier, '')}",
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
    real = most_diagnostic_first(real)
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
