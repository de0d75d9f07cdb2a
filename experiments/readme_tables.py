"""Write a results table into README.md between its two markers (the experiments' one copy).

The replacing itself is ``experiments/guides/common.py``'s ``replace_between``, which the
practitioner's guides fill their numbers with too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "guides"))
from common import replace_between  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"


def write_table(start_marker: str, end_marker: str, text: str) -> bool:
    """Replace what lies between the markers in README.md with ``text``; False (and a line on
    stderr) when README.md lacks them."""
    try:
        replace_between(README, start_marker, end_marker, text)
    except ValueError:
        print(f"README.md has no {start_marker} markers: table not written", file=sys.stderr)
        return False
    return True
