"""Find a definition in the chosen implementation: minimod itself, the generated solutions, or
the learner's exercises. The tests and ``use_mine()`` both go through ``swap``.

The lesson files live in ``<workbook root>/exercises/`` and ``<workbook root>/solutions/``. The
root is the repository (the folder holding the minimod package) unless the environment variable
``MINIMOD_WORKBOOK`` names another folder -- which is how the workbook's own tests check stubs
and filled-in lessons without touching your ``exercises/``.

While ``minimod exercises check N`` runs lesson N's tests it sets ``MINIMOD_CHECK_LESSON=N``:
then only lesson N's definitions come from the chosen implementation and everything else from
minimod, so a lesson's tests pass on a correct lesson while the other lessons are stubs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from minimod.workbook.catalogue import Lesson, definition_index

IMPLEMENTATIONS = ("minimod", "solutions", "exercises")
WORKBOOK_ENV = "MINIMOD_WORKBOOK"
CHECKED_LESSON_ENV = "MINIMOD_CHECK_LESSON"


def workbook_root() -> Path:
    """The folder that holds ``exercises/`` and ``solutions/``."""
    configured = os.environ.get(WORKBOOK_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2]


def lesson_path(implementation: str, lesson: Lesson) -> Path:
    return workbook_root() / implementation / f"{lesson.name}.py"


def load_lesson(implementation: str, lesson: Lesson) -> ModuleType:
    """The module ``exercises.e02_linear`` (or ``solutions.…``), loaded from the workbook root."""
    if implementation not in ("solutions", "exercises"):
        raise ValueError(f"lesson files exist for solutions and exercises, not {implementation!r}")
    name = f"{implementation}.{lesson.name}"
    path = lesson_path(implementation, lesson)
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) == path:
        return loaded
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; `minimod exercises reset {lesson.number}` (or `make "
            "workbook`) writes it"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def qualified_name(obj: Any) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def swap(obj: Any, implementation: str) -> Any:
    """The chosen implementation's version of minimod's ``obj`` (``obj`` itself if no lesson
    teaches it, if ``MINIMOD_CHECK_LESSON`` names another lesson, or for
    ``implementation="minimod"``)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    lesson = definition_index().get(qualified_name(obj) or "")
    checked = os.environ.get(CHECKED_LESSON_ENV)
    if implementation == "minimod" or lesson is None or checked not in (None, str(lesson.number)):
        return obj
    return getattr(load_lesson(implementation, lesson), obj.__name__)


class Namespace:
    """A view of a minimod module (``minimod.nn``, ``minimod.optim``, …) in which every name a
    lesson teaches resolves to the chosen implementation's version."""

    def __init__(self, module: ModuleType, implementation: str = "minimod") -> None:
        self._module = module
        self.implementation = implementation

    def __getattr__(self, name: str) -> Any:
        return swap(getattr(self._module, name), self.implementation)

    def __repr__(self) -> str:
        return f"<{self._module.__name__} as implemented in {self.implementation}>"
