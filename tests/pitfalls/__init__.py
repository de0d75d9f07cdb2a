"""Every "Classic pitfalls" bullet of a lesson, as a mistake the lesson's own tests must catch.

A *mutant* is the lesson's solution with exactly one pitfall's mistake in it: an exact ``old``
-> ``new`` replacement inside one of the solution's marked regions. ``tests/test_pitfalls.py``
runs the lesson's tests (or the few named in ``tests``) against each mutant and requires the
first failure to say ``says`` -- the pitfall in plain words, as a learner reads it in
``minimod exercises check``. A bullet that no code edit can express is listed with its reason.

One module per lesson, named like the lesson (``e03_activations.py``), holds its ``MUTANTS`` and
``EXCEPTIONS``; each entry names its bullet by the bullet's first words, exactly as the lesson
text spells them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from minimod.workbook.catalogue import Lesson
from minimod.workbook.markers import YOUR_CODE, find_regions


@dataclass(frozen=True)
class Mutant:
    pitfall: str  # the bullet's first words, as the lesson text says them
    old: str  # found exactly once in the solution, inside a marked region
    new: str
    says: str  # what the first failure's report must contain (case-insensitive)
    tests: tuple[str, ...] = ()  # "tests/test_x.py::test_y" selections; () = all the lesson's

    @property
    def id(self) -> str:
        return f"{self.pitfall[:40]} | {self.new.strip()[:30]}"


@dataclass(frozen=True)
class NotAMutant:
    pitfall: str
    reason: str  # why no single edit of the solution expresses this bullet


def bullets(text: str) -> list[str]:
    """The bullets of the "Classic pitfalls" list of a lesson text, each on one line."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Classic pitfalls"), None)
    if start is None:
        return []
    found: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        if line.startswith("- "):
            found.append(line[2:].strip())
        elif line.startswith("  ") and found:
            found[-1] += " " + line.strip()
        else:
            break
    return found


def entries(lesson: Lesson) -> tuple[list[Mutant], list[NotAMutant]] | None:
    """The lesson's mutants and exceptions, or None if it has no module here yet."""
    try:
        module = importlib.import_module(f"pitfalls.{lesson.name}")
    except ModuleNotFoundError as error:
        if error.name != f"pitfalls.{lesson.name}":
            raise
        return None
    return list(module.MUTANTS), list(getattr(module, "EXCEPTIONS", ()))


def apply(mutant: Mutant, source: str, path: str) -> str:
    """``source`` with the mutant's one edit made; the edit must be unique and inside a region."""
    count = source.count(mutant.old)
    if count != 1:
        raise ValueError(f"{mutant.old!r} occurs {count} times in {path}, not exactly once")
    offset = source.index(mutant.old)
    first = source.count("\n", 0, offset) + 1
    last = first + mutant.old.rstrip("\n").count("\n")
    regions = find_regions(source, path, YOUR_CODE)
    if not any(region.begin < first and last < region.end for region in regions):
        raise ValueError(f"{mutant.old!r} (line {first} of {path}) is outside every marked region")
    return source.replace(mutant.old, mutant.new)
