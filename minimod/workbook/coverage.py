"""How much of each lesson's marked code its tests run: line and branch coverage of the
``# BEGIN YOUR CODE`` regions of ``solutions/eNN_*.py`` under the lesson's own tests.

``python -m minimod.workbook.coverage [N ...]`` (``make coverage``) runs each lesson's test files
with ``--impl solutions`` (only that lesson's definitions from solutions/, as ``minimod exercises
check`` does, and the ``ci`` hypothesis profile) under the ``coverage`` package with branch
coverage, then reports, for the lines inside the lesson's marked regions only: statements,
statements missed, branches (arcs out of a line that can go two ways), lines with a branch not
taken, the percentage, and every missed line with its source.

A line no test can or should reach (a defensive error on a path torch itself forbids) is listed
in ``EXCEPTIONS`` with its reason: its line and the arcs into and out of it count as covered, and
the report names it. The exit status is 0 only when every lesson's tests pass and every marked
line and branch runs or is excepted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from minimod.workbook.catalogue import LESSONS, Lesson, lesson
from minimod.workbook.implementations import CHECKED_LESSON_ENV, WORKBOOK_ENV, lesson_path
from minimod.workbook.markers import YOUR_CODE, find_regions
from minimod.workbook.source import repo_root


@dataclass(frozen=True)
class Excepted:
    """A marked line that no test of its lesson runs, on purpose, and why."""

    lesson: int
    line: str  # the line's text in solutions/, stripped of indentation
    reason: str


# Lines of marked regions that no lesson test runs, on purpose. Every entry must name a line of
# that lesson's marked regions (tests/test_workbook_coverage.py checks it).
EXCEPTIONS: tuple[Excepted, ...] = (
    Excepted(
        18,
        'if os.name == "posix":  # make the rename itself durable',
        "the other branch is for Windows, where a folder cannot be opened to fsync it; the "
        "tests run on Linux",
    ),
    Excepted(
        18,
        "self._sync.all_reduce()",
        "data-parallel training (torchrun): lesson 26's multi-process tests (tests/"
        "test_distributed.py) run it; a two-process test in lesson 18's own tests aborted "
        "under load (gloo) and cannot fail cleanly on a stub",
    ),
    Excepted(
        18,
        "total_loss = all_reduce_mean(total_loss)",
        "data-parallel training (torchrun): lesson 26's multi-process tests (tests/"
        "test_distributed.py) run it; a two-process test in lesson 18's own tests aborted "
        "under load (gloo) and cannot fail cleanly on a stub",
    ),
    Excepted(
        18,
        "items *= get_world_size()",
        "data-parallel training (torchrun): lesson 26's multi-process tests (tests/"
        "test_distributed.py) run it; a two-process test in lesson 18's own tests aborted "
        "under load (gloo) and cannot fail cleanly on a stub",
    ),
    Excepted(
        25,
        "torch.cuda.set_rng_state(ctx.cuda_rng_state, devices[0])",
        "restores a GPU's random state: runs only when the checkpointed block used CUDA; the "
        "lesson's tests run on the CPU",
    ),
)

MISSING_COVERAGE = (
    "the coverage package is not installed: `make setup` installs it "
    "(or `.venv/bin/python -m pip install -c constraints.txt coverage`)"
)


@dataclass
class LessonCoverage:
    """One lesson's marked-region coverage; arcs are (from line, to line), negative = exit."""

    lesson: Lesson
    returncode: int  # pytest's exit status (0: every test passed)
    source: list[str]  # the lines of solutions/eNN_*.py
    statements: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    arcs: list[tuple[int, int]] = field(default_factory=list)
    missed_arcs: list[tuple[int, int]] = field(default_factory=list)
    excepted: list[int] = field(default_factory=list)  # lines an EXCEPTIONS entry names
    output: str = ""  # pytest's output, shown when a test failed

    @property
    def partial(self) -> list[int]:
        """Lines that run but leave a branch untaken."""
        return sorted({a for a, _ in self.missed_arcs if a not in self.missed})

    @property
    def percent(self) -> float:
        total = len(self.statements) + len(self.arcs)
        covered = total - len(self.missed) - len(self.missed_arcs)
        return 100.0 * covered / total if total else 100.0

    @property
    def measured(self) -> bool:
        """False when the tests never imported the lesson's solution file."""
        return bool(self.statements)

    @property
    def complete(self) -> bool:
        return self.returncode == 0 and self.measured and not self.missed and not self.missed_arcs


def _require_coverage() -> None:
    try:
        import coverage  # noqa: F401  (lazy: a dev tool, not a dependency of minimod)
    except ImportError as error:
        raise RuntimeError(MISSING_COVERAGE) from error


# Several lessons' tests start processes (torch.multiprocessing for data parallelism, the
# command line in a subprocess): coverage follows them and combines their data.
CONFIG = """\
[run]
branch = True
parallel = True
concurrency = multiprocessing, thread
patch = subprocess
data_file = {data}
include = {include}
"""


def _run_under_coverage(item: Lesson, path: Path, tmp: Path) -> tuple[int, str, dict]:
    """Run the lesson's tests on solutions/ under coverage: pytest's exit status and output,
    and coverage's JSON report of ``path``."""
    root = repo_root()
    config, report = tmp / "coveragerc", tmp / "coverage.json"
    config.write_text(CONFIG.format(data=tmp / "data", include=path), encoding="utf-8")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", CHECKED_LESSON_ENV: str(item.number)}
    env[WORKBOOK_ENV] = str(path.parent.parent)
    coverage = [sys.executable, "-m", "coverage"]
    pytest = ["-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider"]
    pytest += ["--impl", "solutions", *item.tests]
    done = subprocess.run(
        [*coverage, "run", f"--rcfile={config}", *pytest],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for command in (["combine", "--quiet"], ["json", "-o", str(report)]):
        subprocess.run(
            [*coverage, *command, f"--rcfile={config}"], cwd=root, capture_output=True, check=False
        )
    files = json.loads(report.read_text(encoding="utf-8"))["files"] if report.exists() else {}
    return done.returncode, done.stdout + done.stderr, next(iter(files.values()), {})


def exceptions_of(number: int) -> dict[str, str]:
    """Lesson ``number``'s excepted lines: {stripped text: reason}."""
    return {entry.line: entry.reason for entry in EXCEPTIONS if entry.lesson == number}


def marked_lines(item: Lesson, text: str) -> set[int]:
    """The 1-based numbers of the lines inside the lesson file's marked regions."""
    regions = find_regions(text, str(lesson_path("solutions", item)), YOUR_CODE)
    return {n for region in regions for n in range(region.begin + 1, region.end)}


def measure(item: Lesson) -> LessonCoverage:
    """Run lesson ``item``'s tests on its solution under coverage and keep the marked lines."""
    _require_coverage()
    path = lesson_path("solutions", item).resolve()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    marked = marked_lines(item, text)
    with tempfile.TemporaryDirectory(prefix="minimod-coverage-") as tmp:
        returncode, output, measured = _run_under_coverage(item, path, Path(tmp))
    excepted_text = exceptions_of(item.number)
    excepted = {n for n in marked if lines[n - 1].strip() in excepted_text}

    def in_region(numbers) -> list[int]:
        return sorted(n for n in numbers if n in marked)

    def arcs(key: str) -> list[tuple[int, int]]:
        return sorted(tuple(arc) for arc in measured.get(key, []) if arc[0] in marked)

    executed = in_region(measured.get("executed_lines", []))
    missing = in_region(measured.get("missing_lines", []))
    missed_arcs = arcs("missing_branches")
    return LessonCoverage(
        lesson=item,
        returncode=returncode,
        source=lines,
        statements=sorted(executed + missing),
        missed=[n for n in missing if n not in excepted],
        arcs=sorted(arcs("executed_branches") + missed_arcs),
        missed_arcs=[a for a in missed_arcs if a[0] not in excepted and a[1] not in excepted],
        excepted=sorted(excepted),
        output=output,
    )


HEADER = f"{'lesson':<34}{'lines':>6}{'missed':>7}{'branches':>9}{'partial':>8}{'cover':>8}"


def format_row(result: LessonCoverage) -> str:
    name = f"{result.lesson.number:>2} {result.lesson.name}"
    row = f"{name:<34}{len(result.statements):>6}{len(result.missed):>7}{len(result.arcs):>9}"
    row += f"{len(result.partial):>8}{result.percent:>7.1f}%"
    if result.excepted:
        row += f"  ({len(result.excepted)} excepted)"
    if not result.measured:
        row += f"  NOT MEASURED: the tests never imported solutions/{result.lesson.name}.py"
    if result.returncode != 0:
        row += f"  TESTS FAILED (pytest exit {result.returncode})"
    return row


def format_details(result: LessonCoverage) -> list[str]:
    """The missed lines, the untaken branches and the excepted lines, each with its source."""
    relpath = f"solutions/{result.lesson.name}.py"
    reasons = exceptions_of(result.lesson.number)

    def show(n: int) -> str:
        return result.source[n - 1].strip()

    out = [f"  {relpath}:{n}: missed: {show(n)}" for n in result.missed]
    for a, b in result.missed_arcs:
        if a in result.missed or b in result.missed:
            continue  # the missed line says it
        where = "exit" if b < 0 else f"line {b}"
        out.append(f"  {relpath}:{a}: branch to {where} never taken: {show(a)}")
    out += [f"  {relpath}:{n}: excepted ({reasons[show(n)]}): {show(n)}" for n in result.excepted]
    if result.returncode != 0:
        out += ["  " + line for line in result.output.strip().splitlines()[-15:]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimod.workbook.coverage",
        description="Line and branch coverage of each lesson's marked regions in solutions/ "
        "under that lesson's own tests (--impl solutions, hypothesis profile ci).",
    )
    parser.add_argument(
        "lessons", nargs="*", type=int, metavar="N", help="lesson numbers (default: every lesson)"
    )
    args = parser.parse_args(argv)
    try:
        chosen = [lesson(n) for n in args.lessons] if args.lessons else list(LESSONS)
        _require_coverage()
    except (KeyError, RuntimeError) as error:
        print(f"coverage: {error.args[0]}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    results = []
    for item in chosen:
        result = measure(item)
        results.append(result)
        print("\n".join([format_row(result), *format_details(result)]), flush=True)
    statements = sum(len(r.statements) for r in results)
    missed = sum(len(r.missed) for r in results)
    branches = sum(len(r.arcs) for r in results)
    partial = sum(len(r.partial) for r in results)
    complete = sum(r.complete for r in results)
    print(
        f"{'total':<34}{statements:>6}{missed:>7}{branches:>9}{partial:>8}\n"
        f"{complete} of {len(results)} lessons fully covered (or excepted), tests passing"
    )
    return 0 if complete == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
