"""The lesson book (`make book`): the formula/code classifier and the MathML converter on real
lesson lines, then one build into a temporary folder: every lesson has its page, every formula
block became <math>, every image is a PNG that is not one flat colour, every link resolves.
The browser's view of the same book is tests/test_book_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from minimod.workbook import book
from minimod.workbook.catalogue import LESSONS, lesson

pytestmark = pytest.mark.reference_only


def blocks(text: str) -> list[list[str]]:
    """The indented blocks of a lesson text, as the book cuts them."""
    found, current = [], []
    for line in text.splitlines():
        if line.startswith("    "):
            current.append(line.rstrip())
        elif current:
            found.append(current)
            current = []
    return found + ([current] if current else [])


def block_with(number: int, fragment: str) -> list[str]:
    """The indented block of lesson ``number`` that holds ``fragment`` (a real lesson line)."""
    (found,) = [b for b in blocks(lesson(number).text) if any(fragment in line for line in b)]
    return found


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        (8, "scores  = Q Kᵀ · scale"),
        (8, "dS = P ∘ (dP − rowsum(dP ∘ P))"),
        (8, "dS_i = Σ_j dP_j P_j ([i = j] − P_i)"),
        (13, "O = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1"),
        (13, "Y = b + Σ_t W_t X_t"),
        (22, "LoRALinear:   y = x Wᵀ + b + (α/r) · dropout(x) Aᵀ Bᵀ"),
        (28, "α_t(s) = (α_{t-1}(s) + α_{t-1}(s − 1)"),
        (28, "c = ∅                 -> same prefix"),
    ],
)
def test_formula_blocks_of_real_lessons(number, fragment):
    assert book.is_formula_block(block_with(number, fragment))


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        (8, "ctx.save_for_backward(query, key, value, P, keep)"),
        (8, 'rearrange(q, "b t (h d) -> b h t d", h=H)'),
        (8, ">>> causal_mask(3).int().tolist()"),
        (8, "minimod pretrain gpt --use-mine --out runs/e08"),
        (13, "ctx.save_for_backward(weight, *taps)"),
        (13, "for each tap: product.baddbmm_(W_t, X_t)"),
        (22, ">>> layer = LoRALinear(base, rank=4, alpha=8.0)"),
        (28, "minimod pretrain audio --task asr --use-mine --out runs/e28"),
    ],
)
def test_code_blocks_of_real_lessons(number, fragment):
    assert not book.is_formula_block(block_with(number, fragment))


def _line_of(number: int, start: str) -> tuple[list[str], int]:
    lines = lesson(number).text.splitlines()
    return lines, next(i for i, line in enumerate(lines) if line.startswith(start))


@pytest.mark.parametrize(
    ("number", "start", "heading"),
    [
        (28, "Decoding", True),
        (8, "Multi-head attention, torch.nn.MultiheadAttention's layout", True),
        (3, "A backward pass by hand: GELUFunction", True),
        (28, "Reductions, as torch:", False),  # a paragraph whose first line is short
        (28, "The speed: the loop costs", False),
    ],
)
def test_headings_of_real_lessons(number, start, heading):
    lines, index = _line_of(number, start)
    assert book.is_heading(lines, index) is heading


def test_formula_lines_become_presentation_mathml():
    math = "".join(book._math_nodes("scores = Q Kᵀ · scale / √d"))
    assert "<msup><mi>K</mi><mi>T</mi></msup>" in math
    assert "<msqrt><mi>d</mi></msqrt>" in math
    assert "<mo>⋅</mo>" in math and "<mo>=</mo>" in math
    assert "<msub><mi>k</mi><mn>1</mn></msub>" in "".join(book._math_nodes("k₁"))
    assert "<msub><mo>Σ</mo><mi>j</mi></msub>" in "".join(book._math_nodes("Σ_j dP_j"))
    assert "<msub><mi>d</mi><mi>v</mi></msub>" in "".join(book._math_nodes("(..., L, d_v)"))
    assert "<mi>n_embd</mi>" in "".join(book._math_nodes("C = n_embd"))
    superscript = "".join(book._math_nodes("e^(−inf) = 0"))
    assert superscript.startswith("<msup><mi>e</mi><mrow><mo>−</mo><mi>inf</mi></mrow></msup>")
    # a shape comment after three spaces is words, not mathematics
    row = book.formula_mathml("y = x Wᵀ + b        x (*, in_features)")
    assert row.endswith("<mtd><mtext>x (*, in_features)</mtext></mtd>")
    assert "&lt;" in "".join(book._math_nodes("j < i")) and "<mo><" not in row


def test_paragraphs_are_escaped_and_keep_inline_code():
    assert book.inline_html("a <b> & `x < y`") == "a &lt;b&gt; &amp; <code>x &lt; y</code>"


class Page(HTMLParser):
    """What the tests read off a page: links, images, <math> and <pre> counts."""

    def __init__(self, path: Path):
        super().__init__()
        self.links, self.images, self.maths, self.pres = [], [], 0, []
        self._pre = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("a", "link") and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "math":
            self.maths += 1
            assert attrs.get("display") == "block"
        if tag == "pre":
            self._pre = []

    def handle_data(self, data):
        if self._pre is not None:
            self._pre.append(data)

    def handle_endtag(self, tag):
        if tag == "pre":
            self.pres.append("".join(self._pre))
            self._pre = None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the book's diagrams need matplotlib")
    pytest.importorskip("markdown_it", reason="the guides need markdown-it-py")
    guides = tmp_path_factory.mktemp("guides")
    (guides / "figures").mkdir()
    (guides / "figures" / "plot.png").write_bytes(_png())
    (guides / "first.md").write_text(
        "# Training a model\n\nSee ![a plot](figures/plot.png) and [the next](second.md).\n"
        "<script>alert(1)</script>\n<!-- guide:table -->\n",
        encoding="utf-8",
    )
    (guides / "second.md").write_text(
        "# Second\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8"
    )
    out = tmp_path_factory.mktemp("book") / "book"
    return out, book.build(out, guides)


def _png() -> bytes:
    import io

    from PIL import Image

    image = Image.new("RGB", (4, 4), "white")
    image.putpixel((1, 1), (0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_lesson_has_a_page_with_its_formulas_as_math(built):
    out, pages = built
    assert out / "index.html" in pages and (out / "style.css").is_file()
    for item in LESSONS:
        page = Page(out / book.lesson_file(item))
        formulas = [b for b in blocks(item.text) if book.is_formula_block(b)]
        assert page.maths == len(formulas), item.name
        assert "Run it" in (out / book.lesson_file(item)).read_text(encoding="utf-8")
        # no formula was left as code
        for code in page.pres:
            assert not book.is_formula_block(["    " + line for line in code.splitlines()])


def test_every_image_is_a_png_that_is_not_blank(built):
    from PIL import Image

    out, pages = built
    images = [(page.parent / src) for page in pages for src in Page(page).images]
    assert len(images) >= len(book.DIAGRAMS) + 1  # the guide's figure too
    for path in images:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        with Image.open(path) as image:
            low, high = zip(*image.convert("RGB").getextrema(), strict=True)
            assert max(high) - min(low) > 0, f"{path} is one flat colour"


def test_every_link_resolves(built):
    out, pages = built
    for page in pages:
        for href in Page(page).links:
            target = href.split("#")[0]
            if target and "://" not in target:
                assert (page.parent / target).is_file(), f"{page.name} links to {href}"


def test_index_lists_lessons_statuses_and_guides(built):
    out, _ = built
    index = (out / "index.html").read_text(encoding="utf-8")
    for item in LESSONS:
        assert f'href="{book.lesson_file(item)}"' in index
    assert 'href="guides/first.html">Training a model</a>' in index
    guide = (out / "guides" / "first.html").read_text(encoding="utf-8")
    assert 'href="second.html"' in guide and "<script>" not in guide and "guide:table" not in guide
    statuses = re.findall(
        r"<td>(not started|missing|in progress[^<]*|passed \(cached\))</td>", index
    )
    assert len(statuses) == len(LESSONS)


def test_a_book_without_guides_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "DIAGRAMS", ())
    book.build(tmp_path / "book", tmp_path / "no-guides")
    assert "No guides yet" in (tmp_path / "book" / "index.html").read_text(encoding="utf-8")


def test_the_build_never_empties_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a book"):
        book.build(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_learner_status_without_running_tests(tmp_path, monkeypatch):
    from minimod.workbook.generate import lesson_files

    item = LESSONS[0]
    monkeypatch.setattr(book, "lesson_path", lambda _, __: tmp_path / "e01.py")
    assert book.learner_status(item) == "missing"
    (tmp_path / "e01.py").write_text(lesson_files(item)["exercises"], encoding="utf-8")
    assert book.learner_status(item) == "not started"
