"""The project cites only documents it carries: every ``docs/...``, ``data/README.md`` or other
``*.md`` path named in the code, the tests, the lessons or the docs exists in the repository,
so nothing points at a design file that sits beside the repository, where no user finds it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("minimod", "tests", "exercises", "solutions", "benchmarks", "experiments", "examples")
CITATION = re.compile(r"(?<![\w/.])((?:docs|data)/[\w./-]+\.md|[A-Z][A-Z_]*\.md)\b")


def cited_files() -> list[tuple[Path, int, str]]:
    paths = [p for folder in SCANNED for p in sorted((ROOT / folder).rglob("*.py"))]
    paths += [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [(path, number, match) for match in CITATION.findall(line)]
    return found


def test_every_cited_document_is_in_the_repository():
    citations = cited_files()
    assert any(cited == "docs/architecture.md" for _, _, cited in citations)
    missing = [
        f"{path.relative_to(ROOT)}:{number}: {cited}"
        for path, number, cited in citations
        if not ((ROOT / cited).is_file() or (path.parent / cited).is_file())
    ]
    assert not missing, "documents cited that the repository lacks:\n  " + "\n  ".join(missing)
