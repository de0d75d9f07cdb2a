"""The generator: minimod's marked code -> ``exercises/eNN_name.py`` and ``solutions/eNN_name.py``.

A lesson file holds the lesson text as its docstring, the imports its code needs, and a copy of
every definition the lesson teaches, in source order. Each ``# BEGIN SOLUTION`` region becomes a
``# BEGIN YOUR CODE`` region holding ``raise NotImplementedError("e02: Linear.forward")`` in the
exercise and the reference code in the solution. Names the lesson defines resolve to the lesson's
own definitions; every other name is imported from minimod, so each lesson stands alone.

Run ``python -m minimod.workbook.generate`` (``make workbook``) to regenerate both folders.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from minimod.workbook.catalogue import LESSONS, Lesson
from minimod.workbook.markers import YOUR_CODE, MarkerError, has_learner_code
from minimod.workbook.source import (
    GenerationError,
    Source,
    enclosing_function,
    first_line,
    last_line,
    repo_root,
    split_definition,
    uncovered_regions,
    unnamed_in_text,
    used_names,
)

KINDS = ("exercises", "solutions")
PACKAGE_DOCSTRINGS = {
    "exercises": '"""Your workbook: fill in the regions between "BEGIN YOUR CODE" and '
    '"END YOUR CODE".\n\nCheck a lesson with `minimod exercises check N`; restore one with '
    '`minimod exercises reset N`.\n"""\n',
    "solutions": '"""The completed lessons, generated from minimod\'s own code by '
    '`make workbook`."""\n',
}


@dataclass
class Rendered:
    exercise: list[str]
    solution: list[str]
    used: set[str]


def _render_definition(lesson: Lesson, source: Source, name: str) -> Rendered:
    node = source.toplevel.get(name)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        raise GenerationError(
            f"lesson {lesson.name}: {source.module} has no top-level function or class {name!r}"
        )
    start, stop = first_line(source, node), last_line(source, node)
    exercise, solution = [], []
    line = start
    for region in source.regions():
        if region.end < start or region.begin > stop:
            continue
        if region.begin < start or region.end > stop:
            raise MarkerError(f"{source.relpath}:{region.begin}: region straddles {name}")
        where = enclosing_function(source.tree, region.begin)
        if where is None:
            raise MarkerError(f"{source.relpath}:{region.begin}: region outside a function body")
        before = source.lines[line - 1 : region.begin - 1]
        begin, end = (region.indent + marker for marker in YOUR_CODE)
        stub = f'{region.indent}raise NotImplementedError("e{lesson.number:02d}: {where}")'
        exercise += [*before, begin, stub, end]
        solution += [*before, begin, *region.body(source.lines), end]
        line = region.end + 1
    rest = source.lines[line - 1 : stop]
    return Rendered(exercise + rest, solution + rest, used_names(node))


def _import_lines(needed: dict[str, tuple[str, str, str]]) -> list[str]:
    """Import statements for ``needed`` ({bound name: (from module or "", name, bound name)})."""
    plain = sorted({(name, bound) for module, name, bound in needed.values() if not module})
    lines = [
        f"import {name}" if name == bound else f"import {name} as {bound}" for name, bound in plain
    ]
    by_module: dict[str, list[str]] = {}
    for module, name, bound in needed.values():
        if module:
            by_module.setdefault(module, []).append(name if name == bound else f"{name} as {bound}")
    for module in sorted(by_module):
        lines.append(f"from {module} import {', '.join(sorted(set(by_module[module])))}")
    return lines


def render_lesson(lesson: Lesson) -> dict[str, str]:
    """The two files of ``lesson``, before formatting: {"exercises": text, "solutions": text}."""
    defined = {split_definition(q)[1]: q for q in lesson.definitions}
    if len(defined) != len(lesson.definitions):
        raise GenerationError(f"lesson {lesson.name}: two definitions share a name")
    needed: dict[str, tuple[str, str, str]] = {}
    bodies = {kind: [] for kind in KINDS}
    by_source: dict[str, list[str]] = {}
    for qualified in lesson.definitions:
        module, name = split_definition(qualified)
        by_source.setdefault(module, []).append(name)
    for module, names in by_source.items():
        source = Source.load(module)
        order = list(source.toplevel)
        names = sorted(names, key=lambda n: order.index(n) if n in order else -1)
        for kind in KINDS:
            bodies[kind].append(f"# ---- from {source.relpath} " + "-" * 40)
        for name in names:
            rendered = _render_definition(lesson, source, name)
            bodies["exercises"] += ["", "", *rendered.exercise]
            bodies["solutions"] += ["", "", *rendered.solution]
            for used in sorted(rendered.used - defined.keys()):
                if used in source.imports:
                    wanted = source.imports[used]
                elif used in source.toplevel:
                    wanted = (module, used, used)
                else:
                    continue  # a builtin or a local name
                if needed.setdefault(used, wanted) != wanted:
                    raise GenerationError(
                        f"lesson {lesson.name}: {used!r} means different things in its sources"
                    )
        for kind in KINDS:
            bodies[kind] += ["", ""]
    imports = _import_lines(needed)
    files = {}
    for kind in KINDS:
        header = [f'"""{lesson.text.strip()}\n"""', ""]
        if kind == "exercises":
            header += [
                "# Generated by `make workbook` from minimod's own code. Write your code between",
                "# the BEGIN YOUR CODE and END YOUR CODE lines, then run "
                f"`minimod exercises check {lesson.number}`.",
                "# The imports are what the finished code uses, so some are unused until then:",
                "# ruff: noqa: F401, F841",
            ]
        else:
            header += [
                f"# Lesson {lesson.number} solved: minimod's own code, copied by `make workbook`.",
                "# To change it, edit minimod and regenerate; this file is overwritten.",
            ]
        text = "\n".join(
            [*header, "", "from __future__ import annotations", "", *imports, "", *bodies[kind]]
        )
        files[kind] = text
    return files


def _check_text(lesson: Lesson) -> None:
    if '"""' in lesson.text or "\\" in lesson.text:
        raise GenerationError(
            f"lesson {lesson.name}: the text may not contain triple quotes "
            "or backslashes (it becomes the module docstring)"
        )
    long = [line for line in lesson.text.splitlines() if len(line) > 100]
    if long:
        raise GenerationError(
            f"lesson {lesson.name}: text line longer than 100 characters: {long[0]!r}"
        )


def text_problems(lessons=LESSONS) -> list[str]:
    """One message per lesson whose text leaves out a name its marked regions need: a learner
    reading only the text and the stub could not know what to write, or what to set for the
    given code that runs after theirs."""
    problems = []
    for lesson in lessons:
        missing = unnamed_in_text(lesson)
        if missing:
            problems.append(
                f"lesson {lesson.name}: the text never names {', '.join(missing)}; say what "
                "each marked function does and what each attribute holds (and its shape), "
                "since the given code reads it"
            )
    return problems


def ruff_format(text: str, filename: str) -> str:
    """Sort the imports and format ``text`` as ruff would format ``filename`` in this repo."""
    for command in (["check", "--fix", "--select", "I", "--quiet", "--exit-zero"], ["format"]):
        try:
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *command, "--stdin-filename", filename, "-"],
                input=text,
                capture_output=True,
                text=True,
                cwd=repo_root(),
                check=False,
            )
        except FileNotFoundError as error:  # pragma: no cover - no python?
            raise GenerationError(f"cannot run ruff: {error}") from error
        if result.returncode != 0:
            raise GenerationError(
                f"ruff {command[0]} failed on the generated {filename} (is ruff installed? "
                f"`make setup` installs it):\n{result.stderr.strip()}"
            )
        text = result.stdout
    return text


def lesson_files(lesson: Lesson) -> dict[str, str]:
    """{"exercises": text, "solutions": text}: the formatted files of one lesson."""
    _check_text(lesson)
    raw = render_lesson(lesson)
    return {kind: ruff_format(raw[kind], f"{kind}/{lesson.name}.py") for kind in KINDS}


def expected_files() -> dict[str, str]:
    """Every generated file by path relative to the workbook root: ``exercises/e02_linear.py``."""
    numbers = [lesson.number for lesson in LESSONS]
    if len(set(numbers)) != len(numbers) or numbers != sorted(numbers):
        raise GenerationError(f"lesson numbers must be unique and increasing, got {numbers}")
    problems = text_problems()
    if problems:
        raise GenerationError("\n".join(problems))
    files = {f"{kind}/__init__.py": PACKAGE_DOCSTRINGS[kind] for kind in KINDS}
    for lesson in LESSONS:
        for kind, text in lesson_files(lesson).items():
            files[f"{kind}/{lesson.name}.py"] = text
    return files


def write(root: Path | None = None, force: bool = False, out=None) -> list[str]:
    """Write every generated file under ``root`` (default: the repository); returns the paths
    written. An exercise that holds the learner's code is never overwritten unless ``force``."""
    root = repo_root() if root is None else Path(root)
    out = out or sys.stdout
    written = []
    for relpath, text in expected_files().items():
        path = root / relpath
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        if relpath.startswith("exercises/e") and old is not None and not force:
            if has_learner_code(old, relpath):
                print(
                    f"kept {relpath}: it holds your code (`minimod exercises reset N --yes` "
                    "replaces it with the new stub)",
                    file=out,
                )
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(relpath)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="write here, not the repository")
    parser.add_argument(
        "--force", action="store_true", help="also overwrite exercises that hold your code"
    )
    args = parser.parse_args(argv)
    try:
        for problem in uncovered_regions():
            print(f"warning: {problem}", file=sys.stderr)
        written = write(args.root, args.force)
    except (GenerationError, MarkerError) as error:
        print(f"make workbook: {error}", file=sys.stderr)
        return 1
    print(
        f"workbook: {len(LESSONS)} lessons, {len(written)} file(s) updated"
        + "".join(f"\n  {path}" for path in written)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
