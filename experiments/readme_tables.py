"""Write a results table into README.md between its two markers (the experiments' one copy)."""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def write_table(start_marker: str, end_marker: str, text: str) -> bool:
    """Replace what lies between the markers in README.md with ``text``; False (and a line on
    stderr) when README.md lacks them."""
    readme = README.read_text(encoding="utf-8")
    if start_marker not in readme or end_marker not in readme:
        print(f"README.md has no {start_marker} markers: table not written", file=sys.stderr)
        return False
    head, rest = readme.split(start_marker, 1)
    _, tail = rest.split(end_marker, 1)
    README.write_text(f"{head}{start_marker}\n{text}\n{end_marker}{tail}", encoding="utf-8")
    return True
