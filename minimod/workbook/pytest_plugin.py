"""A pytest plugin that records each lesson test's outcome for ``minimod exercises``.

Loaded with ``-p minimod.workbook.pytest_plugin`` by the workbook's test runner; it writes one
JSON record per test to the file named by ``MINIMOD_RESULTS``: the outcome and, for a failure,
the exception, its message, the hypothesis example that triggered it and the line of the
learner's code where it was raised. Nothing is recorded when the variable is not set.

``--no-shrink`` skips hypothesis' search for the simplest failing input: much faster when all
that matters is whether a lesson passes (a stub fails for every input, and shrinking a complex
input that fails everywhere can take seconds per test).

``--tiers`` runs the tests in two tiers in one process (a second process would cost another
few seconds of imports): first the quick tier, the first case of every test function (its
first parameter set; a test without parameters is its own first case), then the rest. If any
test of the quick tier fails, the run ends there: the learner sees the mistake without waiting
for the other cases, which would mostly fail the same way. Each record says its tier.

``--test-timeout S`` stops a test that runs longer than S seconds (a learner's ``while`` loop
that never ends) with a plain message, and ends the run there: every later test would most
likely hang the same way.
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from minimod.workbook.checks import RESULTS_ENV
from minimod.workbook.implementations import CHECKED_LESSON_ENV

_records: list[dict] = []


def _leaf_exceptions(error: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (hypothesis reports distinct failures so)."""
    inner = getattr(error, "exceptions", None)  # an ExceptionGroup (duck-typed for Python 3.10)
    if isinstance(inner, (list, tuple)) and all(isinstance(e, BaseException) for e in inner):
        return [leaf for exception in inner for leaf in _leaf_exceptions(exception)]
    return [error]


def _learner_line(error: BaseException) -> str:
    """``exercises/e02_linear.py:36: output = input @ weight``: the deepest frame of the
    traceback that is in a lesson file, or ""."""
    found = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.parent.name in ("exercises", "solutions") and path.name.startswith("e"):
            found = f"{path.parent.name}/{path.name}:{frame.lineno}: {(frame.line or '').strip()}"
    return found


def _describe(error: BaseException) -> dict:
    notes = [str(note) for note in getattr(error, "__notes__", [])]
    return {
        "exception": type(error).__name__,
        "message": str(error),
        "notes": notes,
        "where": _learner_line(error),
    }


class TestTimeout(BaseException):
    """A test ran past ``--test-timeout``. A BaseException, so that neither the test's own
    ``except Exception`` nor hypothesis (which retries and shrinks on Exceptions) swallows it."""


def pytest_addoption(parser):
    parser.addoption(
        "--no-shrink",
        action="store_true",
        help="minimod workbook: report the first failing input, do not shrink it",
    )
    parser.addoption(
        "--test-timeout",
        type=float,
        default=0,
        metavar="S",
        help="minimod workbook: stop a test after S seconds (0: never) and end the run",
    )
    parser.addoption(
        "--tiers",
        action="store_true",
        help="minimod workbook: run the first case of every test first, and stop there if one "
        "of them fails",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    limit = item.config.getoption("--test-timeout")
    if not limit or not hasattr(signal, "setitimer"):
        return (yield)

    def expire(signum, frame):
        item.session.shouldstop = f"{item.name} did not finish in {limit:g} s"
        number = os.environ.get(CHECKED_LESSON_ENV)
        lesson = f"lesson {number}" if number else "the lesson"
        raise TestTimeout(
            f"{lesson}'s test {item.name} did not finish in {limit:g} s: an infinite loop? "
            "(a `while` whose condition never becomes false, or a loop over a growing list)"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if config.getoption("--no-shrink"):  # after conftest.py has loaded its profile
        phases = [phase for phase in settings.default.phases if phase != Phase.shrink]
        settings.register_profile("minimod-no-shrink", parent=settings.default, phases=phases)
        settings.load_profile("minimod-no-shrink")


_quick: set[str] = set()  # the nodeids of the quick tier, with --tiers
_quick_failed: list[str] = []


@pytest.hookimpl(trylast=True)  # after conftest.py has chosen the lesson tests
def pytest_collection_modifyitems(config, items):
    if not config.getoption("--tiers"):
        return
    seen, first, rest = set(), [], []
    for item in items:
        function = (item.path, getattr(item, "cls", None), getattr(item, "originalname", item.name))
        (rest if function in seen else first).append(item)
        seen.add(function)
    _quick.update(item.nodeid for item in first)
    items[:] = first + rest


def pytest_runtest_logreport(report):
    if report.nodeid in _quick and report.failed:
        _quick_failed.append(report.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    result = yield
    if _quick_failed and (nextitem is None or nextitem.nodeid not in _quick):
        item.session.shouldfail = f"{len(_quick_failed)} test(s) of the quick tier failed"
    return result


def _tier(nodeid: str) -> str:
    return "quick" if nodeid in _quick else "rest"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not os.environ.get(RESULTS_ENV):
        return report
    if report.failed and call.excinfo is not None:
        errors = _leaf_exceptions(call.excinfo.value)
        _records.append(
            {
                "test": item.name,
                "nodeid": item.nodeid,
                "file": item.nodeid.split("::")[0],
                "outcome": "failed",
                "tier": _tier(item.nodeid),
                "when": report.when,
                "errors": [_describe(error) for error in errors],
                "example": getattr(item, "hypothesis_report_information", "") or "",
            }
        )
    elif report.when == "call":
        _records.append(
            {
                "test": item.name,
                "nodeid": item.nodeid,
                "file": item.nodeid.split("::")[0],
                "outcome": "skipped" if report.skipped else "passed",
                "tier": _tier(item.nodeid),
            }
        )
    return report


def pytest_collectreport(report):
    if os.environ.get(RESULTS_ENV) and report.failed:
        _records.append(
            {
                "test": "(collecting the tests)",
                "file": report.nodeid,
                "outcome": "failed",
                "when": "collect",
                "errors": [
                    {"exception": "", "message": str(report.longreprtext), "notes": [], "where": ""}
                ],
                "example": "",
            }
        )


def pytest_sessionstart(session):
    # Each session records only its own tests, also when several run in one process
    # (tests/test_pitfalls.py runs one per deliberately wrong solution).
    _records.clear()
    _quick.clear()
    _quick_failed.clear()


def pytest_sessionfinish(session):
    path = os.environ.get(RESULTS_ENV)
    if path:
        Path(path).write_text(json.dumps(_records, indent=1), encoding="utf-8")
