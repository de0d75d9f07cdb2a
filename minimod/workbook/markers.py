"""The marked regions: the lines a learner writes, between a BEGIN and an END comment line.

In minimod's own code the markers are ``# BEGIN SOLUTION`` / ``# END SOLUTION``; in the
generated lesson files they become ``# BEGIN YOUR CODE`` / ``# END YOUR CODE``. A region is
never nested in another, and its two marker lines have the same indentation.
"""

from __future__ import annotations

from dataclasses import dataclass

SOLUTION = ("# BEGIN SOLUTION", "# END SOLUTION")
YOUR_CODE = ("# BEGIN YOUR CODE", "# END YOUR CODE")


class MarkerError(ValueError):
    """A marker is unmatched, nested, malformed or misplaced; the message names file and line."""


@dataclass(frozen=True)
class Region:
    begin: int  # 1-based line number of the BEGIN marker
    end: int  # 1-based line number of the END marker
    indent: str  # the markers' indentation

    def body(self, lines: list[str]) -> list[str]:
        """The lines strictly between the two markers."""
        return lines[self.begin : self.end - 1]


def find_regions(text: str, path: str, markers: tuple[str, str] = SOLUTION) -> list[Region]:
    """Every region of ``text`` in order; raises MarkerError for any malformed marker."""
    begin_marker, end_marker = markers
    regions: list[Region] = []
    open_line, open_indent = 0, ""
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        is_begin, is_end = stripped == begin_marker, stripped == end_marker
        for marker, exact in ((begin_marker, is_begin), (end_marker, is_end)):
            keyword = marker.lstrip("# ")
            if stripped.lstrip("# ").startswith(keyword) and not exact:
                raise MarkerError(
                    f"{path}:{lineno}: malformed marker {stripped!r}; "
                    f"write exactly {marker!r} on a line of its own"
                )
        if is_begin:
            if open_line:
                raise MarkerError(
                    f"{path}:{lineno}: {begin_marker!r} inside the region opened at line "
                    f"{open_line}; regions cannot be nested"
                )
            open_line, open_indent = lineno, indent
        elif is_end:
            if not open_line:
                raise MarkerError(f"{path}:{lineno}: {end_marker!r} without a matching BEGIN")
            if indent != open_indent:
                raise MarkerError(
                    f"{path}:{lineno}: {end_marker!r} is indented differently from its BEGIN "
                    f"at line {open_line}"
                )
            if lineno == open_line + 1:
                raise MarkerError(f"{path}:{open_line}: empty region")
            regions.append(Region(open_line, lineno, open_indent))
            open_line = 0
    if open_line:
        raise MarkerError(f"{path}:{open_line}: {begin_marker!r} is never closed by an END")
    return regions


def mask(text: str, path: str, markers: tuple[str, str] = YOUR_CODE) -> str:
    """``text`` with every region's body replaced by one placeholder line: what stays the same
    however a learner fills in the regions."""
    lines = text.splitlines()
    out: list[str] = []
    previous_end = 0
    for region in find_regions(text, path, markers):
        out += lines[previous_end : region.begin]
        out.append(f"{region.indent}...")
        previous_end = region.end - 1
    out += lines[previous_end:]
    return "\n".join(out) + "\n"


def has_learner_code(text: str, path: str) -> bool:
    """Some YOUR CODE region holds something else than the stub's ``raise``."""
    try:
        regions = find_regions(text, path, YOUR_CODE)
    except MarkerError:
        return True
    lines = text.splitlines()
    for region in regions:
        body = [line.strip() for line in region.body(lines) if line.strip()]
        if len(body) != 1 or not body[0].startswith("raise NotImplementedError("):
            return True
    return False
