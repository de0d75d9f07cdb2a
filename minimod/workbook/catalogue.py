"""The lesson catalogue: which minimod definitions each numbered lesson teaches.

A definition is named by where it lives in minimod ("minimod.nn.linear.Linear"); the generator
copies it into ``exercises/`` and ``solutions/`` and the tests find it there by the same name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    number: int
    name: str  # module name of the generated file, e.g. "e02_linear"
    title: str
    definitions: tuple[str, ...]  # qualified names in minimod, e.g. "minimod.nn.linear.Linear"
    tests: tuple[str, ...]  # test files (relative to the repository) that check this lesson
    text: str = ""  # the lesson: idea, formulas, shapes, pitfalls


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        1,
        "e01_module",
        "Module and Parameter",
        ("minimod.nn.module.Parameter", "minimod.nn.module.Module"),
        ("tests/test_module.py",),
    ),
)


def definition_index() -> dict[str, Lesson]:
    """Qualified name -> the lesson that teaches it."""
    return {name: lesson for lesson in LESSONS for name in lesson.definitions}


def lesson(number: int) -> Lesson:
    for candidate in LESSONS:
        if candidate.number == number:
            return candidate
    raise KeyError(f"no lesson {number}; lessons are {[x.number for x in LESSONS]}")
