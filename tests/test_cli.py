"""The ``minimod`` console script, run for real in a subprocess.

The workbook commands work on a temporary workbook (``MINIMOD_WORKBOOK``), never on your
``exercises/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minimod
from console import SCRIPT, assert_usage_error
from console import minimod as run_minimod
from minimod import cli
from minimod.workbook import commands, generate
from minimod.workbook.catalogue import LESSONS
from minimod.workbook.implementations import WORKBOOK_ENV
from minimod.workbook.markers import YOUR_CODE, find_regions

pytestmark = pytest.mark.reference_only

# A hand-written linear (not the reference's wording) and the classic transposed mistake.
CORRECT_LINEAR = """\
    out = torch.matmul(input, weight.transpose(0, 1))
    return out if bias is None else out + bias"""
ENDLESS_LINEAR = """\
    while bias is None or bias is not None:
        pass"""
TRANSPOSED_LINEAR = """\
    out = input @ weight
    return out if bias is None else out + bias"""
STUB = '    raise NotImplementedError("e02: linear")'


def minimod_cli(*args: str, workbook: Path | None = None) -> subprocess.CompletedProcess:
    """``minimod ARGS``; with ``workbook``, on it, remembering passes in its own cache folder."""
    if workbook is None:
        return run_minimod(*args)
    return run_minimod(
        *args, env={WORKBOOK_ENV: str(workbook), "MINIMOD_CACHE": str(workbook / "cache")}
    )


@pytest.fixture(scope="module")
def expected() -> dict[str, str]:
    return generate.expected_files()


@pytest.fixture
def workbook(tmp_path, expected) -> Path:
    """A fresh workbook: every exercise a pristine stub."""
    for relpath, text in expected.items():
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_text(text, encoding="utf-8")
    return tmp_path


def fill_lesson_2(workbook: Path, expected: dict[str, str], linear_body: str) -> Path:
    """Lesson 2 with ``linear`` written by hand and every other region from the solution."""
    stub = expected["exercises/e02_linear.py"].splitlines()
    solution = expected["solutions/e02_linear.py"].splitlines()
    stub_regions = find_regions("\n".join(stub), "stub", YOUR_CODE)
    solved_regions = find_regions("\n".join(solution), "solution", YOUR_CODE)
    lines, previous = [], 0
    for ours, theirs in zip(stub_regions, solved_regions, strict=True):
        lines += stub[previous : ours.begin]
        body = ours.body(stub)
        lines += linear_body.splitlines() if body == [STUB] else theirs.body(solution)
        previous = ours.end - 1
    path = workbook / "exercises" / "e02_linear.py"
    path.write_text("\n".join(lines + stub[previous:]) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_version_and_help():
    done = minimod_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"minimod {minimod.__version__}"
    module = subprocess.run(
        [sys.executable, "-m", "minimod", "--version"], capture_output=True, text=True, check=False
    )
    assert module.stdout == done.stdout
    top = minimod_cli("--help").stdout
    assert "exercises" in top and "the workbook" in top
    workbook_help = minimod_cli("exercises", "--help").stdout
    for words in ("check N", "reset N", "not started / failing / passing", "--yes"):
        assert words in workbook_help, words


def test_use_mine_flag_for_training_commands():
    parser = argparse.ArgumentParser()
    cli.add_use_mine_argument(parser)
    assert isinstance(cli.use_mine_if_asked(parser.parse_args([])), contextlib.nullcontext)
    context = cli.use_mine_if_asked(parser.parse_args(["--use-mine"]))
    assert type(context).__name__ == "_GeneratorContextManager"  # use_mine(), not entered


@pytest.mark.parametrize(
    "args", [("check", "99"), ("check", "0"), ("check", "-1"), ("reset", "99")]
)
@pytest.mark.slow
def test_unknown_lesson_is_a_clear_error(workbook, args):
    done = minimod_cli("exercises", *args, workbook=workbook)
    assert_usage_error(done, f"there is no lesson {args[1]}; the lessons are 1 to")
    assert done.stdout == ""


@pytest.mark.slow
def test_reset_restores_the_stub_and_asks_before_overwriting_your_code(
    workbook, expected, monkeypatch, capsys
):
    path = workbook / "exercises" / "e03_activations.py"
    stub = expected["exercises/e03_activations.py"]
    mine = stub.replace(
        'raise NotImplementedError("e03: sigmoid")', "return 1 / (1 + torch.exp(-input))"
    )
    path.write_text(mine)
    done = minimod_cli("exercises", "reset", "3", workbook=workbook)
    assert done.returncode == 1 and "minimod exercises reset 3 --yes" in done.stdout
    assert path.read_text() == mine, "without --yes your code is kept"
    done = minimod_cli("exercises", "reset", "3", "--yes", workbook=workbook)
    assert done.returncode == 0 and path.read_text() == stub
    # The same function, in-process: a pristine stub and a missing file need no --yes.
    monkeypatch.setenv(WORKBOOK_ENV, str(workbook))
    assert commands.reset(3) == 0 and "already the pristine stub" in capsys.readouterr().out
    path.unlink()
    assert commands.reset(3) == 0 and path.read_text() == stub


@pytest.mark.slow
def test_check_passes_on_a_correct_linear(workbook, expected):
    fill_lesson_2(workbook, expected, CORRECT_LINEAR)
    done = minimod_cli("exercises", "check", "2", workbook=workbook)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout and "All of lesson 2's tests pass" in done.stdout


@pytest.mark.slow
def test_check_explains_a_transposed_weight(workbook, expected):
    fill_lesson_2(workbook, expected, TRANSPOSED_LINEAR)
    done = minimod_cli("exercises", "check", "2", workbook=workbook)
    report = done.stdout
    assert done.returncode == 1, report + done.stderr
    assert "FAIL  test_linear_matches_torch  (tests/test_linear.py)" in report
    assert "input:  batch=" in report and "in_features=" in report
    assert "used as x @ W.T: your output equals x @ W" in report  # the test's own hint
    assert "where:  exercises/e02_linear.py:" in report and "out = input @ weight" in report
    assert "Traceback" not in report and len(report.splitlines()) < 120


@pytest.mark.slow
def test_status_table_and_lessons_standing_alone(workbook, expected):
    """`minimod exercises` runs the tests of the lessons you started. Lessons stand alone: e02
    passes although e01 (whose Module its Linear subclasses) is a stub, and e05 passes although
    e02 is unfinished."""
    fill_lesson_2(workbook, expected, CORRECT_LINEAR)
    solved = expected["solutions/e05_embedding_norm.py"]
    (workbook / "exercises" / "e05_embedding_norm.py").write_text(solved)
    e07 = workbook / "exercises" / "e07_schedules_clipping.py"
    e07.write_text(
        e07.read_text().replace('raise NotImplementedError("e07: clip_grad_value_")', "return None")
    )
    done = minimod_cli("exercises", workbook=workbook)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isdigit()}
    assert set(rows) == {str(lesson.number) for lesson in LESSONS}
    assert rows["1"].endswith("not started") and rows["3"].endswith("not started")
    assert rows["2"].endswith("passing") and rows["5"].endswith("passing")
    assert rows["7"].endswith("failing")


@pytest.mark.parametrize("args", [("--help",), ("exercises",), ("pretrain", "--help")])
@pytest.mark.slow
def test_a_closed_output_pipe_ends_quietly(args):
    """`minimod ... | head`: the reader is gone before minimod writes (its end of the pipe is
    closed first), so every write fails with EPIPE: nothing on stderr, and the shell's status
    141 (argparse's own --help output ignores write errors and exits 0)."""
    reader, writer = os.pipe()
    os.close(reader)
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "minimod"]
    try:
        done = subprocess.run(
            [*command, *args], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(writer)
    assert done.stderr == "", done.stderr
    expected = 0 if "--help" in args else cli.BROKEN_PIPE_STATUS
    assert done.returncode == expected


@pytest.mark.slow
def test_check_stops_an_endless_loop_with_a_plain_message(workbook, expected):
    fill_lesson_2(workbook, expected, ENDLESS_LINEAR)
    done = run_minimod(
        "exercises", "check", "2", env={WORKBOOK_ENV: str(workbook), "MINIMOD_TEST_TIMEOUT": "2"}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "lesson 2's test" in done.stdout and "did not finish in 2 s: an infinite loop?" in (
        done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr
