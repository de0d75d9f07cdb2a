"""The lesson book: every lesson and guide as a static HTML site, readable offline.

    python -m minimod.workbook.book [--out book]      (or `make book`)

One page per lesson (its text, formulas as MathML, its diagrams, its "Run it" section and the
learner's status), the guides of ``docs/guides/*.md``, an index and one CSS file. No
JavaScript: browsers lay MathML out natively. The book is generated, never committed.

A lesson text is plain text: a title line, short heading lines, paragraphs, "- " bullets, and
blocks indented by four spaces. An indented block is either formulas written in Unicode
(``scores = Q Kᵀ · scale``), converted to presentation MathML by ``formula_mathml``, or code
(a doctest session, a command, Python), kept as ``<pre><code>``; ``is_formula_block`` decides.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

import torch

from minimod.workbook.catalogue import LESSONS, Lesson
from minimod.workbook.checks import passed_before, syntax_problem
from minimod.workbook.diagrams import DIAGRAMS, Diagram
from minimod.workbook.implementations import lesson_path
from minimod.workbook.markers import has_learner_code
from minimod.workbook.plan import PATH, plan, prerequisite_numbers
from minimod.workbook.source import repo_root

# A file in the output folder that marks it as a book: only such a folder is ever emptied.
MARKER = ".minimod-book"

# -- formulas: Unicode text -> presentation MathML -------------------------------------------

GREEK = "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ"
# Characters that only mathematics uses: one of them makes a line a formula.
MATH_SYMBOLS = set(GREEK) | set("·∘√ᵀ−≤≥∂⌊⌋⌈⌉∅∈≈×→←↔≠∞∝∑∏‖≪≫⊙²³⁻¹₀₁₂₃ᵢⱼₖₙₜₛ")
SUPERSCRIPTS = dict(zip("ᵀ⁻¹²³⁰⁴⁵⁶⁷⁸⁹ⁱⁿ⁺", "T−1230456789in+", strict=True))
SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋ₐₑₒₓᵢⱼₖₙₜₛₘₗₚ", "0123456789+−aeoxijkntsmlp", strict=True))
# Operators written with several characters, each tried before its own prefixes.
OPERATORS = {
    "<->": "↔",
    "...": "…",
    "->": "→",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "+=": "+=",
    "-=": "−=",
    "//": "//",
    "..": "..",
}
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# A short subscript written with an underscore: d_v, p_nc, W_q (but not n_embd or log_softmax).
SHORT_SUBSCRIPT = re.compile(r"([A-Za-z]{1,3})_([A-Za-z0-9]{1,2})")
CLOSING = {"(": ")", "{": "}"}
# Operators that MathML spaces on both sides; a middle dot is written as the dot operator,
# which MathML knows as one.
INFIX = set("=+−⋅∘×/→←↔≤≥≈≠<>∈")
RENAMED = {"-": "−", "·": "⋅"}


def _element(tag: str, text: str) -> str:
    return f"<{tag}>{html.escape(text)}</{tag}>"


def _is_infix(node: str) -> bool:
    return node.startswith("<mo>") and html.unescape(node[4:-5]) in INFIX


def _token(text: str) -> str:
    """An identifier or a number as mi / mn (digits alone are a number)."""
    return _element("mn" if text.isdigit() else "mi", text)


def _row(nodes: list[str]) -> str:
    return nodes[0] if len(nodes) == 1 else f"<mrow>{''.join(nodes)}</mrow>"


def _matching(text: str, start: int) -> int:
    """The index of the bracket that closes the one at ``start`` (len(text) if none does)."""
    opening, closing, depth = text[start], CLOSING[text[start]], 0
    for index in range(start, len(text)):
        depth += (text[index] == opening) - (text[index] == closing)
        if depth == 0:
            return index
    return len(text)


def _script_argument(text: str, start: int) -> tuple[list[str], int]:
    """What a ^, _ or √ applies to, starting at ``start``: a bracketed group (the brackets
    dropped), or one optionally signed identifier, number or letter. Returns (nodes, end)."""
    if start < len(text) and text[start] in CLOSING:
        end = _matching(text, start)
        return _math_nodes(text[start + 1 : end]), end + 1
    nodes = []
    if start < len(text) and text[start] in "-−":
        nodes.append(_element("mo", "−"))
        start += 1
    for pattern in (IDENTIFIER, NUMBER):
        match = pattern.match(text, start)
        if match:
            return nodes + [_token(match.group())], match.end()
    if start < len(text) and not text[start].isspace():
        return nodes + [_element("mi", text[start])], start + 1
    return nodes, start


def _math_nodes(text: str) -> list[str]:
    """The MathML elements of one formula (no <math> around them)."""
    nodes: list[str] = []
    index, space = 0, False

    def add(node: str) -> None:
        nonlocal space
        # A space of the source stays visible (between words, implicit products, brackets)
        # except beside an infix operator, which MathML spaces by itself.
        if space and nodes and not (_is_infix(nodes[-1]) or _is_infix(node)):
            nodes.append('<mspace width="0.3em"/>')
        nodes.append(node)
        space = False

    def script(tag: str, argument: list[str]) -> None:
        base = nodes.pop() if nodes and not nodes[-1].startswith("<mspace") else "<mrow/>"
        nodes.append(f"<{tag}>{base}{_row(argument or ['<mrow/>'])}</{tag}>")

    while index < len(text):
        char = text[index]
        if char.isspace():
            space, index = True, index + 1
            continue
        operator = next((op for op in OPERATORS if text.startswith(op, index)), None)
        identifier = IDENTIFIER.match(text, index)
        number = NUMBER.match(text, index)
        if operator:
            add(_element("mo", OPERATORS[operator]))
            index += len(operator)
        elif identifier:
            word = identifier.group()
            short = SHORT_SUBSCRIPT.fullmatch(word)
            if short:
                add(f"<msub>{_token(short.group(1))}{_token(short.group(2))}</msub>")
            else:
                add(_token(word))
            index = identifier.end()
        elif number:
            add(_token(number.group()))
            index = number.end()
        elif char in SUPERSCRIPTS or char in SUBSCRIPTS:
            table, tag = (SUPERSCRIPTS, "msup") if char in SUPERSCRIPTS else (SUBSCRIPTS, "msub")
            end = index
            while end < len(text) and text[end] in table:
                end += 1
            script(tag, _math_nodes("".join(table[c] for c in text[index:end])))
            index = end
        elif char in "^_" and nodes:
            argument, index = _script_argument(text, index + 1)
            script("msup" if char == "^" else "msub", argument)
            space = False
        elif char == "√":
            argument, index = _script_argument(text, index + 1)
            add(f"<msqrt>{''.join(argument) or '<mrow/>'}</msqrt>")
        elif char == "'" and nodes:
            script("msup", [_element("mo", "′")])
            index += 1
        elif char in "ΣΠ∑∏":  # sums and products: large operators, not letters
            add(_element("mo", char))
            index += 1
        elif char.isalpha() or char in "∅∞":
            add(_element("mi", char))
            index += 1
        else:
            add(_element("mo", RENAMED.get(char, char)))
            index += 1
    return nodes


# Segments of a formula line are separated by three or more spaces: the formula, then
# comments (shapes, remarks), or several formulas side by side.
SEGMENT = re.compile(r"\S(?:.*?\S)?(?=\s{3,}|\s*$)")


def _segments(line: str) -> list[tuple[int, str]]:
    """(offset, text) of each segment of ``line``."""
    return [(match.start(), match.group()) for match in SEGMENT.finditer(line)]


def _is_math(segment: str) -> bool:
    """A segment is written as mathematics (else it is a comment in words)."""
    return "=" in segment or "->" in segment or any(c in MATH_SYMBOLS for c in segment)


def formula_mathml(line: str) -> str:
    """One formula line -> the content of an <mtr>: one <mtd> per segment, the formula (the
    first segment, and any other written as mathematics) as MathML, comments as <mtext>."""
    cells = []
    for number, (_, segment) in enumerate(_segments(line)):
        if number == 0 or _is_math(segment):
            cells.append(f"<mtd>{''.join(_math_nodes(segment))}</mtd>")
        else:
            cells.append(f"<mtd>{_element('mtext', segment)}</mtd>")
    return "".join(cells)


# -- indented blocks: formulas or code ---------------------------------------------------------

# What only code (or a command, or a doctest) looks like: a prompt, a shell command, a
# statement, a comment, a string, an attribute call, a keyword argument, a slice.
CODE = re.compile(
    r"""^(>>>|\.\.\.(\s|$)|(minimod|python|make|pip|torchrun|cd|export)\s
          |(def|class|return|import|from|for|if|while|with|raise|print)\b)
      |\#|"|(^|[\s(\[=,])'[^'\s]
      |\b[A-Za-z_]\w*\.[A-Za-z_]\w*\(
      |\b\w+=[\w\-"'(]
      |\[:|:\]""",
    re.VERBOSE,
)
# A shape: a parenthesised tuple, (N, C) or (out_features,).
SHAPE = re.compile(r"\([^()]*,[^()]*\)")


def is_code_line(line: str) -> bool:
    """The line's first segment reads as code (comments after it may say anything)."""
    segments = _segments(line)
    return bool(segments) and CODE.search(segments[0][1]) is not None


def is_formula_line(line: str) -> bool:
    """Not code, and mathematics or a shape: an =, an arrow, a mathematical symbol, a tuple."""
    text = line.strip()
    return not is_code_line(line) and (_is_math(text) or SHAPE.search(text) is not None)


def is_formula_block(lines: list[str]) -> bool:
    """An indented block is formulas when every line is one; lines indented deeper than the
    block's first line continue the line above and are not judged (they hold its comments).
    Anything else, a doctest session, a command or Python, is code."""
    base = _indent(lines[0])
    judged = [line for line in lines if _indent(line) <= base]
    return all(is_formula_line(line) for line in judged)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def formula_block_html(lines: list[str]) -> str:
    """A block of formula lines -> one <math display="block"> holding an <mtable>: the segments
    of each line in columns, so aligned comments stay aligned."""
    base = _indent(lines[0])
    rows, previous = [], []
    for line in lines:
        offset = _indent(line)
        starts = [start for start, _ in previous]
        if offset > base and offset in starts:
            # A continuation aligned with a column of the line above: start in that column.
            lead = "<mtd></mtd>" * starts.index(offset)
        elif offset > base:
            lead = ""
            line = " " * base + "\u2003" * ((offset - base) // 2) + line.lstrip()
        else:
            lead = ""
            previous = _segments(line)
        rows.append(f"<mtr>{lead}{formula_mathml(line)}</mtr>")
    return f'<math display="block"><mtable>{"".join(rows)}</mtable></math>'


def block_html(lines: list[str]) -> str:
    if is_formula_block(lines):
        return f'<div class="formula">{formula_block_html(lines)}</div>'
    base = min(_indent(line) for line in lines)
    code = "\n".join(line[base:] for line in lines)
    return f"<pre><code>{html.escape(code)}</code></pre>"


# -- lesson texts -> HTML ----------------------------------------------------------------------


def inline_html(text: str) -> str:
    """A paragraph's text, escaped, with `backticks` as <code>."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: keep it as it is
        return html.escape(text)
    return "".join(
        f"<code>{html.escape(part)}</code>" if odd else html.escape(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
    )


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def is_heading(lines: list[str], index: int) -> bool:
    """A short line on its own after an empty line: the text goes on below it, and the line
    ends where the author broke it, not where a wrapped paragraph would (its next word would
    have fitted in 93 columns)."""
    line = lines[index]
    if index == 0 or lines[index - 1].strip() or not line.strip() or line[0] == " ":
        return False
    if line.startswith("- ") or len(line) > 90 or line.endswith((",", ";", ":")):
        return False
    if re.search(r"\. [A-Z]", line) or "; " in line:  # two sentences or clauses: a paragraph
        return False
    if index + 1 == len(lines) or not lines[index + 1].strip():
        return False
    following = lines[index + 1]
    if following.startswith((" ", "- ")):
        return True
    return len(line) + 1 + len(following.split()[0]) <= 93


def lesson_body(lesson: Lesson, figures: dict[str, list[str]]) -> str:
    """The lesson's text after its title as HTML; ``figures`` maps a section heading to the
    figures (HTML) that end that section. Every section named there must exist."""
    lines = lesson.text.splitlines()[1:]
    out: list[str] = []
    paragraph: list[str] = []
    bullets: list[list[str]] = []
    section = ""
    placed = set()

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{inline_html(' '.join(paragraph))}</p>")
            paragraph.clear()
        if bullets:
            items = "".join(f"<li>{inline_html(' '.join(item))}</li>" for item in bullets)
            out.append(f"<ul>{items}</ul>")
            bullets.clear()

    def end_section() -> None:
        flush()
        out.extend(figures.get(section, []))
        placed.add(section)

    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            flush()
        elif line.startswith("    "):
            block = []
            while index < len(lines) and lines[index].startswith("    "):
                block.append(lines[index].rstrip())
                index += 1
            flush()
            out.append(block_html(block))
            continue
        elif is_heading(lines, index):
            end_section()
            section = line.strip()
            out.append(f'<h2 id="{slug(section)}">{html.escape(section)}</h2>')
        elif line.startswith("- "):
            if paragraph:
                flush()
            bullets.append([line[2:].strip()])
        elif line.startswith(" ") and bullets:
            bullets[-1].append(line.strip())
        else:
            if bullets:
                flush()
            paragraph.append(line.strip())
        index += 1
    end_section()
    missing = set(figures) - placed
    if missing:
        raise ValueError(
            f"lesson {lesson.number} has no section {sorted(missing)[0]!r} for its diagram"
        )
    return "\n".join(out)


# -- the learner's status ----------------------------------------------------------------------


def learner_status(lesson: Lesson) -> str:
    """The status `minimod exercises` shows, from what is known without running a test: the
    exercise file and the pass cache (a file that passed and has not changed since)."""
    path = lesson_path("exercises", lesson)
    if not path.exists():
        return "missing"
    if not has_learner_code(path.read_text(encoding="utf-8"), str(path)):
        return "not started"
    if syntax_problem(lesson):
        return "in progress (does not compile)"
    if passed_before(lesson) is not None:
        return "passed (cached)"
    return "in progress"


# -- pages -------------------------------------------------------------------------------------

CSS = """\
body { font-family: Georgia, serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; background: #fff; }
nav { font-family: sans-serif; font-size: 0.9rem; display: flex; gap: 1.5rem;
      justify-content: space-between; border-bottom: 1px solid #ccc; padding-bottom: 0.4rem; }
nav.bottom { border-top: 1px solid #ccc; border-bottom: none; padding-top: 0.4rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { font-family: sans-serif; font-size: 0.9rem; color: #555; }
.status { font-weight: bold; }
pre { background: #f5f5f0; padding: 0.6rem 0.8rem; overflow-x: auto; font-size: 0.85rem; }
code { font-family: "DejaVu Sans Mono", monospace; }
.formula { overflow-x: auto; margin: 0.8rem 0 0.8rem 1.5rem; }
.formula math { width: fit-content; margin: 0; }
.formula mtd { text-align: left; padding: 0.15em 1.2em 0.15em 0; }
.formula mtext { color: #555; font-style: italic; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-family: sans-serif; font-size: 0.85rem; color: #555; }
table { border-collapse: collapse; font-family: sans-serif; font-size: 0.9rem; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
.lessons td:nth-child(4) { white-space: nowrap; }
"""


def page(title: str, body: str, css: str = "style.css") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{html.escape(title)}</title>\n<link rel="stylesheet" href="{css}">\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def lesson_file(lesson: Lesson) -> str:
    return f"{lesson.name}.html"


def _navigation(index: int, where: str) -> str:
    links = []
    if index > 0:
        before = PATH[index - 1]
        links.append(
            f'<a rel="prev" href="{lesson_file(before)}">← {before.number}. '
            f"{html.escape(before.title)}</a>"
        )
    else:
        links.append("<span></span>")
    links.append('<a href="index.html">All lessons</a>')
    if index + 1 < len(PATH):
        after = PATH[index + 1]
        links.append(
            f'<a rel="next" href="{lesson_file(after)}">{after.number}. '
            f"{html.escape(after.title)} →</a>"
        )
    else:
        links.append("<span></span>")
    return f'<nav class="{where}">{"".join(links)}</nav>'


def _prerequisite_links(lesson: Lesson) -> str:
    files = {item.number: lesson_file(item) for item in LESSONS}
    numbers = prerequisite_numbers(lesson)
    return ", ".join(f'<a href="{files[n]}">{n}</a>' for n in numbers) or "none"


def figure_html(diagram: Diagram) -> str:
    alt = html.escape(diagram.alt)
    return (
        f'<figure><img src="img/{diagram.name}.png" alt="{alt}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def lesson_page(index: int, status: str) -> str:
    lesson = PATH[index]
    figures: dict[str, list[str]] = {}
    for diagram in DIAGRAMS:
        if diagram.lesson == lesson.number:
            figures.setdefault(diagram.section, []).append(figure_html(diagram))
    title = lesson.text.splitlines()[0]
    meta = (
        f'<p class="meta">After lessons: {_prerequisite_links(lesson)} · about '
        f"{plan(lesson).minutes} minutes · your status: "
        f'<span class="status">{html.escape(status)}</span> '
        f"(<code>minimod exercises check {lesson.number}</code> runs the tests)</p>"
    )
    body = "\n".join(
        [
            _navigation(index, "top"),
            f"<h1>{html.escape(title)}</h1>",
            meta,
            lesson_body(lesson, figures),
            _navigation(index, "bottom"),
        ]
    )
    return page(title, body)


def index_page(statuses: list[str], guides: list[tuple[str, str]]) -> str:
    rows = "\n".join(
        f'<tr><td>{item.number}</td><td><a href="{lesson_file(item)}">'
        f"{html.escape(item.title)}</a></td><td>{_prerequisite_links(item)}</td>"
        f"<td>{plan(item).minutes} min</td><td>{html.escape(status)}</td></tr>"
        for item, status in zip(PATH, statuses, strict=True)
    )
    hours = sum(plan(item).minutes for item in LESSONS) / 60
    if guides:
        items = "".join(
            f'<li><a href="{href}">{html.escape(title)}</a></li>' for href, title in guides
        )
        guide_list = f"<ul>{items}</ul>"
    else:
        guide_list = "<p>No guides yet: they are the Markdown files of docs/guides/.</p>"
    body = (
        "<h1>minimod: the lesson book</h1>\n"
        "<p>Rebuild a deep-learning framework lesson by lesson: read a lesson, fill in the stubs "
        "of <code>exercises/eNN_*.py</code>, then run <code>minimod exercises check N</code>. "
        f"About {hours:.0f} hours in all. The lessons are listed in the order to take them: "
        "tokenization (17) and the training loop (18) come before attention (8).</p>\n"
        '<h2>Lessons</h2>\n<table class="lessons">\n<tr><th>lesson</th><th>title</th><th>after</th>'
        f"<th>time</th><th>your status</th></tr>\n{rows}\n</table>\n"
        '<p class="meta">Status as of the book\'s build, from your exercise files and the '
        "passes <code>minimod exercises</code> remembers; rebuild the book to refresh it.</p>\n"
        f"<h2>Guides</h2>\n{guide_list}"
    )
    return page("minimod: the lesson book", body)


# -- guides ------------------------------------------------------------------------------------


def render_guides(source: Path, out: Path) -> list[tuple[str, str]]:
    """Every ``source/*.md`` as ``out/guides/NAME.html``, with the local images it shows copied
    beside it; links to another guide's .md point to its page. Returns (href, title) pairs."""
    guides = sorted(source.glob("*.md")) if source.is_dir() else []
    if not guides:
        return []
    from markdown_it import MarkdownIt

    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    target = out / "guides"
    target.mkdir(parents=True, exist_ok=True)
    listed = []
    for path in guides:
        # HTML comments (markers for the tools that fill a guide's tables) stay invisible, as
        # on GitHub; any other HTML in a guide is shown escaped.
        text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
        tokens = markdown.parse(text)
        headings = [
            tokens[number + 1].content
            for number, token in enumerate(tokens)
            if token.type == "heading_open" and token.tag == "h1"
        ]
        title = headings[0] if headings else path.stem.replace("_", " ").replace("-", " ")
        for token in tokens:
            for child in [token, *(token.children or [])]:
                _relink(child, path, target)
        body = markdown.renderer.render(tokens, markdown.options, {})
        navigation = '<nav class="top"><a href="../index.html">All lessons and guides</a></nav>'
        (target / f"{path.stem}.html").write_text(
            page(title, f"{navigation}\n{body}", css="../style.css"), encoding="utf-8"
        )
        listed.append((f"guides/{path.stem}.html", title))
    return listed


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _relink(token, guide: Path, target: Path) -> None:
    """Copy a guide's local image next to its page; point links to other guides at pages. A
    local image or guide that does not exist is named on stderr (the book still builds)."""
    if token.type == "image":
        src = token.attrGet("src") or ""
        if src and "://" not in src and not src.startswith("/"):
            image = guide.parent / src
            if image.is_file():
                copy = target / src
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(image, copy)
            else:
                print(f"book: {_shown(guide)} shows {src}, which does not exist", file=sys.stderr)
    elif token.type == "link_open":
        href = token.attrGet("href") or ""
        name, _, anchor = href.partition("#")
        if name.endswith(".md") and "/" not in name:
            if not (guide.parent / name).is_file():
                print(
                    f"book: {_shown(guide)} links to {name}, which does not exist", file=sys.stderr
                )
            token.attrSet("href", name[:-3] + ".html" + (f"#{anchor}" if anchor else ""))


# -- the build ---------------------------------------------------------------------------------


def _prepare(out: Path) -> None:
    """An empty output folder: a new one, or an earlier book's (never any other folder)."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise ValueError(
                f"{out} exists and is not a book this command built: choose another --out"
            )
        shutil.rmtree(out)
    (out / "img").mkdir(parents=True)
    (out / MARKER).write_text("generated by python -m minimod.workbook.book\n", encoding="utf-8")


def build(out: Path, guides: Path | None = None) -> list[Path]:
    """Write the book into ``out`` (emptied first when it holds an earlier book); returns
    the HTML pages written."""
    out = Path(out)
    guides = repo_root() / "docs" / "guides" if guides is None else Path(guides)
    _prepare(out)
    (out / "style.css").write_text(CSS, encoding="utf-8")
    # The diagrams compute on tiny tensors: more threads only cost time (several times over on
    # a busy machine), so they run on one, and the caller's setting comes back after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for diagram in DIAGRAMS:
            diagram.draw(out / "img" / f"{diagram.name}.png")
    finally:
        torch.set_num_threads(threads)
    statuses = [learner_status(item) for item in PATH]
    pages = []
    for index, item in enumerate(PATH):
        path = out / lesson_file(item)
        path.write_text(lesson_page(index, statuses[index]), encoding="utf-8")
        pages.append(path)
    listed = render_guides(guides, out)
    pages += [out / href for href, _ in listed]
    (out / "index.html").write_text(index_page(statuses, listed), encoding="utf-8")
    return [out / "index.html", *pages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimod.workbook.book",
        description="Render every lesson and guide into a static HTML book (open index.html).",
    )
    parser.add_argument("--out", default="book", help="the folder to write (default: book)")
    args = parser.parse_args(argv)
    try:
        pages = build(Path(args.out))
    except ModuleNotFoundError as error:
        print(
            f"book: {error.name} is not installed: pip install -e '.[dev,plot]' (or make book)",
            file=sys.stderr,
        )
        return 2
    except (ValueError, OSError) as error:
        print(f"book: {error}", file=sys.stderr)
        return 2
    print(f"{len(pages)} pages -> {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
