"""Find a definition in the chosen implementation: minimod itself, the generated solutions, or
the learner's exercises. The tests and ``use_mine()`` both go through ``swap``."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from minimod.workbook.catalogue import definition_index

IMPLEMENTATIONS = ("minimod", "solutions", "exercises")


def qualified_name(obj: Any) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def swap(obj: Any, implementation: str) -> Any:
    """The chosen implementation's version of minimod's ``obj`` (``obj`` itself if no lesson
    teaches it, or for ``implementation="minimod"``)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    lesson = definition_index().get(qualified_name(obj) or "")
    if implementation == "minimod" or lesson is None:
        return obj
    module = importlib.import_module(f"{implementation}.{lesson.name}")
    return getattr(module, obj.__name__)


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
