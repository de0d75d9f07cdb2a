"""What ``minimod exercises`` does: the status table, ``check N`` and ``reset N``.

Each function prints to ``out`` and returns the exit status for the command line.
"""

from __future__ import annotations

import sys
from typing import TextIO

from minimod.workbook.catalogue import LESSONS, lesson
from minimod.workbook.checks import (
    PASSING,
    format_report,
    passed_before,
    remember_pass,
    run_tests,
    status,
    syntax_problem,
)
from minimod.workbook.generate import lesson_files
from minimod.workbook.implementations import lesson_path
from minimod.workbook.markers import has_learner_code
from minimod.workbook.plan import PATH, plan, prerequisite_numbers


def _find(number: int, action: str):
    """The lesson, or None after one line on stderr (the command then exits with 2)."""
    try:
        return lesson(number)
    except KeyError:
        numbers = f"{LESSONS[0].number} to {LESSONS[-1].number}"
        print(
            f"minimod exercises {action}: there is no lesson {number}; the lessons are {numbers}",
            file=sys.stderr,
        )
        return None


def list_lessons(out: TextIO | None = None) -> int:
    """Print every lesson, in the order to take them (the path: 17 and 18 come before 8), with
    the lessons it builds on, its estimated time and its status, running the tests of the
    lessons you started (unless they passed before, unchanged)."""
    out = out or sys.stdout
    width = max(len(x.title) for x in LESSONS)
    after = {x.number: ", ".join(map(str, prerequisite_numbers(x))) or "-" for x in LESSONS}
    after_width = max(len("after"), *map(len, after.values())) + 2
    columns = f"{'lesson':<8}{'title':<{width + 2}}{'after':<{after_width}}{'time':<9}status"
    print(columns, file=out)
    upcoming = None  # the first lesson on the path that does not pass yet
    for item in PATH:
        time = f"{plan(item).minutes} min"
        row = f"{item.number:<8}{item.title:<{width + 2}}{after[item.number]:<{after_width}}"
        print(f"{row}{time:<9}", end="", file=out, flush=True)
        state = status(item)
        print(state, file=out, flush=True)
        if upcoming is None and state != PASSING:
            upcoming = item
    total = sum(plan(item).minutes for item in LESSONS) / 60
    print(
        f"\n'after': the lessons whose ideas a lesson builds on (its tests pass without them); "
        f"'time': an estimate, about {total:.0f} hours in all. The rows are in the order to take "
        "the lessons: tokenization (17) and the training loop (18) come before attention (8).\n"
        "Work on a lesson in exercises/eNN_*.py, then `minimod exercises check N`.",
        file=out,
    )
    if upcoming is None:
        print("Every lesson passes.", file=out)
    else:
        print(f"Next on the path: lesson {upcoming.number} ({upcoming.title}).", file=out)
    return 0


def check(number: int, out: TextIO | None = None) -> int:
    """Run lesson ``number``'s tests on your exercise file; 0 only when all of them pass."""
    out = out or sys.stdout
    item = _find(number, "check")
    if item is None:
        return 2
    path = lesson_path("exercises", item)
    if not path.exists():
        print(f"{path} is missing: `minimod exercises reset {number}` writes the stub.", file=out)
        return 1
    problem = syntax_problem(item)
    if problem:
        print(f"Lesson {number}: your file does not compile.\n\n{problem}", file=out)
        return 1
    cached = passed_before(item)
    if cached is not None:
        print(format_report(cached), file=out)
        return 0
    print(f"Running lesson {number}'s tests on {path.name} ...", file=out, flush=True)
    run = run_tests(item)
    if run.ok:
        remember_pass(run)
    print(format_report(run), file=out)
    return 0 if run.ok else 1


def reset(number: int, yes: bool = False, out: TextIO | None = None) -> int:
    """Write lesson ``number``'s pristine stub; a file holding your code needs ``yes``."""
    out = out or sys.stdout
    item = _find(number, "reset")
    if item is None:
        return 2
    path = lesson_path("exercises", item)
    stub = lesson_files(item)["exercises"]
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if text == stub:
            print(f"{path.name} is already the pristine stub.", file=out)
            return 0
        if has_learner_code(text, str(path)) and not yes:
            print(
                f"{path} holds your code. To replace it with the empty stub (your code is "
                f"lost), run:\n  minimod exercises reset {number} --yes",
                file=out,
            )
            return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stub, encoding="utf-8")
    print(f"{path.name}: restored the stub of lesson {number} ({item.title}).", file=out)
    return 0
