"""How long `minimod exercises check N` takes a learner: a passing check and a failing one.

    python benchmarks/workbook_times.py [--lessons 2,8,13] [--json PATH]

For each lesson, in a temporary workbook whose exercises are the solutions and with an empty
pass cache (so nothing is remembered from an earlier run):
- pass: the lesson's file is correct: both tiers run (the quick tier, then every case);
- fail: the lesson's file has the first of its "Classic pitfalls" mistakes (the first mutant of
  tests/pitfalls/eNN_*.py): the quick tier stops at the first failure, whose first line is shown;
- cached: the passing check again, answered from the pass cache.
Each is the whole command in a fresh process, as a learner runs it (Python, torch and pytest
start every time: about 5 s of each figure on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pitfalls import Mutant, apply, entries  # noqa: E402  (tests/pitfalls/, on sys.path above)

from minimod.workbook.catalogue import LESSONS, lesson  # noqa: E402
from minimod.workbook.implementations import WORKBOOK_ENV  # noqa: E402

MINIMOD = [sys.executable, "-m", "minimod"]


def timed_check(number: int, workbook: Path, cache: Path) -> tuple[float, int, str]:
    """Seconds, exit status and the first report line naming a failure of one check."""
    env = {**os.environ, WORKBOOK_ENV: str(workbook), "MINIMOD_CACHE": str(cache)}
    start = time.perf_counter()
    result = subprocess.run(
        [*MINIMOD, "exercises", "check", str(number)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - start
    lines = (result.stdout + result.stderr).splitlines()
    first = next((line.strip() for line in lines if line.lstrip().startswith("FAIL")), "")
    return seconds, result.returncode, first


def first_mutant(number: int) -> Mutant | None:
    found = entries(lesson(number))
    return found[0][0] if found and found[0] else None


def measure(number: int) -> dict:
    item = lesson(number)
    with tempfile.TemporaryDirectory(prefix="minimod-workbook-") as folder:
        workbook = Path(folder)
        shutil.copytree(ROOT / "solutions", workbook / "exercises")
        shutil.copytree(ROOT / "solutions", workbook / "solutions")
        mine = workbook / "exercises" / f"{item.name}.py"
        row: dict = {"lesson": number, "name": item.name}
        seconds, code, _ = timed_check(number, workbook, workbook / "cache-pass")
        row.update(pass_s=seconds, pass_ok=code == 0)
        seconds, code, _ = timed_check(number, workbook, workbook / "cache-pass")
        row.update(cached_s=seconds)
        mutant = first_mutant(number)
        if mutant is not None:
            mine.write_text(apply(mutant, mine.read_text(), str(mine)))
            seconds, code, first = timed_check(number, workbook, workbook / "cache-fail")
            row.update(fail_s=seconds, fail_caught=code != 0, pitfall=mutant.pitfall, first=first)
        return row


def table(rows: list[dict]) -> str:
    lines = [
        "| lesson | pass (s) | cached (s) | with a pitfall (s) | caught | first failure shown |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        fail = f"{row['fail_s']:.1f}" if "fail_s" in row else "-"
        caught = ("yes" if row["fail_caught"] else "NO") if "fail_s" in row else "-"
        passed = f"{row['pass_s']:.1f}" + ("" if row["pass_ok"] else " (FAILED)")
        first = row.get("first", "")[:70].replace("|", "/")
        lines.append(
            f"| {row['lesson']} | {passed} | {row['cached_s']:.1f} | {fail} | {caught} | {first} |"
        )
    return "\n".join(lines)


def parse_lessons(text: str) -> list[int]:
    numbers = [x.number for x in LESSONS] if text == "all" else [int(n) for n in text.split(",")]
    known = {x.number for x in LESSONS}
    unknown = [n for n in numbers if n not in known]
    if unknown:
        raise SystemExit(f"workbook_times.py: no lesson {unknown[0]} (1-{max(known)})")
    return numbers


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", default="2,8,13,16,35", help="comma-separated, or all")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = []
    for number in parse_lessons(args.lessons):
        rows.append(measure(number))
        print(f"lesson {number}: {rows[-1]}", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
