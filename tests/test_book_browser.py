"""The lesson book in a real browser: Debian's Chromium, headless, driven by playwright (never
`playwright install`: the test uses the system's browser). Every page of a fresh build loads
from file:// without a console error or a failed request, every formula is laid out as MathML
(a math box of non-zero size), every image has loaded and its pixels on screen are not blank.

Without Chromium the test skips with the command that installs it, except in CI (CI=true),
where it must run."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from minimod.workbook import book

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]

HINT = "run `make browser` (installs Chromium from Debian's packages)"


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run the browser test; {HINT}")
    pytest.skip(f"{reason}; {HINT}")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    _unavailable("no Chromium found")


# One evaluate per page: what the page's formulas and images look like to the browser.
INSPECT = """() => ({
    maths: [...document.querySelectorAll('math')].map(m => {
        const box = m.getBoundingClientRect();
        return {width: box.width, height: box.height, display: getComputedStyle(m).display,
                mathml: m instanceof MathMLElement};
    }),
    images: [...document.querySelectorAll('img')].map(i => ({
        src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth})),
})"""


def test_every_page_renders_in_chromium(tmp_path):
    executable = chromium()
    pytest.importorskip("matplotlib", reason="the book's diagrams need matplotlib")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (the dev extra)")
    from PIL import Image

    pages = book.build(tmp_path / "book")
    # Chromium refuses to start as root inside its sandbox (containers, CI runners).
    arguments = ["--no-sandbox"] if os.geteuid() == 0 else []
    problems, maths, images = [], 0, 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=arguments)
        try:
            tab = browser.new_page(viewport={"width": 1000, "height": 800})
            current = {"page": ""}
            tab.on(
                "console",
                lambda m: m.type == "error" and problems.append(f"{current['page']}: {m.text}"),
            )
            tab.on("pageerror", lambda e: problems.append(f"{current['page']}: {e}"))
            tab.on("requestfailed", lambda r: problems.append(f"{current['page']}: failed {r.url}"))
            for path in pages:
                current["page"] = path.name
                tab.goto(path.as_uri(), wait_until="load")
                seen = tab.evaluate(INSPECT)
                for number, math in enumerate(seen["maths"]):
                    if not (math["mathml"] and math["display"] == "block math"):
                        problems.append(f"{path.name}: formula {number} is not laid out as MathML")
                    if math["width"] <= 0 or math["height"] <= 0:
                        problems.append(f"{path.name}: formula {number} has an empty box")
                maths += len(seen["maths"])
                for number, image in enumerate(seen["images"]):
                    if not image["complete"] or image["width"] <= 0:
                        problems.append(f"{path.name}: image {image['src']} did not load")
                        continue
                    element = tab.locator("img").nth(number)
                    element.scroll_into_view_if_needed()
                    pixels = Image.open(io.BytesIO(element.screenshot())).convert("L")
                    low, high = pixels.getextrema()
                    if high - low < 32:
                        problems.append(f"{path.name}: image {image['src']} is blank on screen")
                    images += 1
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert maths > 0 and images >= len(book.DIAGRAMS)
