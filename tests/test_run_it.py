"""Every lesson ends with "Run it": real commands that run the learner's code, and the next lesson.

The section sits between "Classic pitfalls" and "Check it". Its commands are the lines indented
by four spaces that start with ``minimod``, ``python`` or ``torchrun`` (a line indented by eight
continues the one above); each is checked without running it: a ``minimod`` command parses with
minimod's own argument parser, an ``examples/`` script exists, ``python -c`` code compiles and
imports only modules that exist. It ends with "Next: lesson N (title)" (a long title wraps),
naming by its exact title the next lesson on the path (``minimod/workbook/plan.py``: 17 and 18
come before 8); the last lesson's says "Next: ..." without a number.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from minimod.cli import build_parser
from minimod.workbook.catalogue import LESSONS, Lesson
from minimod.workbook.plan import next_lesson

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ("minimod ", "python ", "torchrun ")
NEXT = re.compile(r"Next: lesson (\d+) \((.+)\)")


def run_it_section(text: str) -> list[str]:
    """The lines of the "Run it" section, without its heading: up to the "Check it" line."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "Run it"]
    assert len(starts) == 1, "one 'Run it' heading, alone on its line"
    end = next(i for i, line in enumerate(lines) if line.startswith("Check it:"))
    pitfalls = [i for i, line in enumerate(lines) if line == "Classic pitfalls"]
    assert all(i < starts[0] for i in pitfalls), "Run it comes after the classic pitfalls"
    assert starts[0] < end, "Run it comes before Check it"
    return [line for line in lines[starts[0] + 1 : end] if line.strip()]


def commands(section: list[str]) -> list[str]:
    """Each command of the section, its continuation lines kept as the shell reads them: after a
    newline, with their indentation (inside ``python -c "if 1:`` they are the code's block)."""
    found: list[str] = []
    open_command = False  # the previous line belongs to a command
    for line in section:
        if line.startswith("    ") and line.strip().startswith(PROGRAMS):
            found.append(line.strip())
            open_command = True
        elif line.startswith("        ") and open_command:
            found[-1] += "\n" + line[4:]
        else:
            open_command = False
    return found


def check_python(words: list[str]) -> None:
    if words[:2] == ["-m", "minimod"]:
        build_parser().parse_args(words[2:])
    elif words[0] == "-c":
        tree = ast.parse(words[1])
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                if module.startswith("exercises."):  # the learner's file, generated
                    assert (ROOT / f"{module.replace('.', '/')}.py").exists(), module
                else:
                    assert importlib.util.find_spec(module) is not None, f"no module {module}"
    else:
        assert words[0].startswith("examples/"), f"python runs an examples/ script: {words}"
        assert (ROOT / words[0]).is_file(), f"no script {words[0]}"


def check_command(command: str) -> None:
    """Raise if ``command`` (possibly several joined by &&) is not one minimod would run."""
    words = shlex.split(command)
    parts: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            parts.append([])
        else:
            parts[-1].append(word)
    for program, *arguments in parts:
        if program == "minimod":
            build_parser().parse_args(arguments)
        elif program == "python":
            check_python(arguments)
        elif program == "torchrun":
            start = arguments.index("-m")
            check_python(arguments[start:])
        else:
            raise AssertionError(f"unknown program {program!r} in {command!r}")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_run_it_commands_parse(lesson: Lesson):
    found = commands(run_it_section(lesson.text))
    assert found, f"{lesson.name}: no command in its Run it section"
    for command in found:
        try:
            check_command(command)
        except SystemExit as exit:  # argparse refused it
            raise AssertionError(f"{lesson.name}: minimod refuses {command!r}") from exit


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_run_it_ends_with_the_next_lesson(lesson: Lesson):
    section = run_it_section(lesson.text)
    starts = [i for i, line in enumerate(section) if line.startswith("Next: ")]
    assert starts, f"{lesson.name}: Run it ends with a 'Next:' line"
    last = " ".join(line.strip() for line in section[starts[-1] :])  # a long title wraps
    match = NEXT.fullmatch(last)
    following = next_lesson(lesson)
    if following is None and match is None:
        return
    assert match, f"{lesson.name}: {last!r} is not 'Next: lesson N (title)'"
    assert following is not None, f"{lesson.name} is the last on the path: {last!r}"
    number = int(match.group(1))
    assert number == following.number, (
        f"{lesson.name}: the next lesson on the path (minimod/workbook/plan.py) is "
        f"{following.number}, not {number}"
    )
    assert match.group(2) == following.title, f"lesson {number} is titled {following.title!r}"


def test_the_checks_catch_a_bad_command():
    with pytest.raises(SystemExit):
        check_command("minimod pretrain gpt --no-such-option")
    with pytest.raises(AssertionError, match="no script"):
        check_command("python examples/missing.py")
    with pytest.raises(AssertionError, match="no module"):
        check_command("python -c 'import minimod.no_such_module'")
    assert commands(["    minimod pretrain gpt", "        --use-mine", "prints", "        x"]) == [
        "minimod pretrain gpt\n    --use-mine"
    ]
