"""Train with your own code: ``use_mine()`` swaps in your lessons that pass their tests.

Models and layers reach their building blocks through ``minimod.nn`` (``nn.Linear(...)``) and
``minimod.optim`` when they are built, so replacing those names for one run is enough:

    with use_mine():
        model = minimod.nn.Sequential(minimod.nn.Linear(2, 16), minimod.nn.GELU(), ...)
        optimizer = minimod.optim.AdamW(model.parameters())
        ...

Inside the block every definition of a passing lesson is replaced, wherever minimod binds it
(``minimod.nn.Linear``, ``minimod.nn.linear.Linear``, ``minimod.nn.functional.linear``, ...),
by yours; on exit everything is restored, even after an error. Build the model inside the block:
an object made before it keeps the class it was made with.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

from minimod.workbook.catalogue import LESSONS, Lesson
from minimod.workbook.checks import NOT_STARTED, PASSING, status
from minimod.workbook.implementations import load_lesson
from minimod.workbook.source import split_definition

NOT_SWAPPABLE = {
    1: "every layer already inherits minimod's Module: Python fixed each class's base when the "
    "class was defined, and a base cannot be replaced for one run, so yours is checked by its "
    "tests but not swapped in",
}


@dataclass
class Choice:
    """Which lessons a run uses from you, and why the others are minimod's."""

    mine: list[Lesson] = field(default_factory=list)
    reference: list[tuple[Lesson, str]] = field(default_factory=list)  # (lesson, why)
    replaced: int = 0  # how many module attributes were swapped

    def describe(self) -> str:
        lines = ["minimod --use-mine: your code for the lessons that pass their tests"]
        for lesson in self.mine:
            names = ", ".join(split_definition(q)[1] for q in lesson.definitions)
            lines.append(f"  yours      e{lesson.number:02d} {lesson.title}: {names}")
        for lesson, why in self.reference:
            lines.append(f"  reference  e{lesson.number:02d} {lesson.title} ({why})")
        return "\n".join(lines)


def _original(qualified: str) -> Any:
    module, name = split_definition(qualified)
    return getattr(importlib.import_module(module), name)


def _is_minimod(name: str) -> bool:
    in_minimod = name == "minimod" or name.startswith("minimod.")
    return in_minimod and not name.startswith("minimod.workbook")


def _bindings(obj: Any, lessons: list[ModuleType]) -> Iterator[tuple[Any, str]]:
    """Every (module, attribute) bound to ``obj`` in the loaded minimod modules and in your
    lesson modules (so your e04 losses call your e03 log_softmax)."""
    loaded = [(name, module) for name, module in list(sys.modules.items()) if module is not None]
    ours = [module for name, module in loaded if _is_minimod(name)]
    for module in [*ours, *lessons]:
        for attribute, value in list(vars(module).items()):
            if value is obj:
                yield module, attribute


def choose(
    lessons: Iterable[int] | None = None,
    lesson_status: Callable[[Lesson], str] = status,
    out: TextIO | None = None,
) -> Choice:
    """Decide, lesson by lesson, whether your code is used (it must pass its tests)."""
    wanted = None if lessons is None else set(lessons)
    choice = Choice()
    if out is not None:
        print("minimod --use-mine: checking your lessons ...", end="", file=out, flush=True)
    for lesson in LESSONS:
        if wanted is not None and lesson.number not in wanted:
            choice.reference.append((lesson, "not requested"))
        elif lesson.number in NOT_SWAPPABLE:
            choice.reference.append((lesson, NOT_SWAPPABLE[lesson.number]))
        else:
            state = lesson_status(lesson)
            if out is not None:
                print(f" e{lesson.number:02d} {state};", end="", file=out, flush=True)
            if state == PASSING:
                choice.mine.append(lesson)
            elif state == NOT_STARTED:
                choice.reference.append((lesson, "not started"))
            else:
                choice.reference.append(
                    (lesson, f"{state}: see `minimod exercises check {lesson.number}`")
                )
    if out is not None:
        print(file=out)
    return choice


@contextmanager
def use_mine(
    lessons: Iterable[int] | None = None,
    quiet: bool = False,
    lesson_status: Callable[[Lesson], str] = status,
) -> Iterator[Choice]:
    """Use your implementations of the lessons that pass their tests for the ``with`` block.

    ``lessons`` limits the choice to these lesson numbers; each candidate's tests run first
    (quietly, in subprocesses, both tiers), unless this exact file passed them before and
    nothing they test has changed (``checks.passed_before``). Prints which parts are yours and
    which are minimod's (unless ``quiet``) and yields that ``Choice``.
    """
    out = None if quiet else sys.stdout
    choice = choose(lessons, lesson_status, out)
    swapped: list[tuple[Any, str, Any]] = []
    try:
        modules = {lesson.number: load_lesson("exercises", lesson) for lesson in choice.mine}
        for lesson in choice.mine:
            for qualified in lesson.definitions:
                original = _original(qualified)
                yours = getattr(modules[lesson.number], split_definition(qualified)[1])
                for namespace, attribute in _bindings(original, list(modules.values())):
                    swapped.append((namespace, attribute, original))
                    setattr(namespace, attribute, yours)
        choice.replaced = len(swapped)
        if out is not None:
            print(choice.describe(), file=out, flush=True)
        yield choice
    finally:
        for namespace, attribute, original in reversed(swapped):
            setattr(namespace, attribute, original)
