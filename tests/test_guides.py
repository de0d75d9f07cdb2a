"""The practitioner's guides (docs/guides/) show only commands that run, and their numbers come
from their scripts.

Fast, for every guide: each ```` ```sh ```` line that starts with ``minimod`` parses with
minimod's own argument parser (the lessons' "Run it" check), each ``make X`` it names is a
Makefile target, each ``python experiments/...`` script exists, each image it shows is a PNG
in the repository, and every ``<!-- guide:KEY -->`` marker is closed and filled. Slow: each
``experiments/guides/<name>.py`` runs with ``--quick`` into a copy of its guide and fills it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_run_it import check_command

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ROOT / "docs" / "guides"
SCRIPTS = ROOT / "experiments" / "guides"
GUIDE_FILES = sorted(GUIDES.glob("*.md"))
SCRIPT_FILES = sorted(p for p in SCRIPTS.glob("*.py") if p.stem not in ("common", "__init__"))
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
MAKE = re.compile(r"`make ([a-z][\w-]*)")  # in inline code; ```sh lines are read word by word
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
MARKER = re.compile(r"<!-- guide:([\w-]+) -->(.*?)<!-- /guide:\1 -->", re.DOTALL)
PNG = b"\x89PNG\r\n\x1a\n"


def sh_lines(text: str) -> list[str]:
    """The commands of the guide's ```sh blocks (comments dropped, continuation lines joined)."""
    found = []
    for block in SH_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def problems(path: Path) -> list[str]:
    """Everything wrong with the guide at ``path``, one line each."""
    text = path.read_text(encoding="utf-8")
    found, named = [], []
    for line in sh_lines(text):
        words = shlex.split(line)
        if words[0] == "minimod":
            try:
                check_command(line)
            except SystemExit:
                found.append(f"minimod refuses {line!r}")
        elif words[0] == "python" and not (ROOT / words[1]).is_file():
            found.append(f"no script {words[1]} ({line!r})")
        elif words[0] == "make":
            named += [word for word in words[1:] if "=" not in word and not word.startswith("-")]
    targets = make_targets()
    found += [f"no Makefile target {t!r}" for t in named + MAKE.findall(text) if t not in targets]
    for image in IMAGE.findall(text):
        file = path.parent / image
        if not file.is_file() or file.read_bytes()[:8] != PNG:
            found.append(f"image {image} is not a PNG file")
    opened = re.findall(r"<!-- guide:([\w-]+) -->", text)
    filled = {key: body for key, body in MARKER.findall(text)}
    found += [f"marker {key!r} is not closed" for key in opened if key not in filled]
    found += [f"marker {key!r} is empty" for key, body in filled.items() if not body.strip()]
    return found


def test_there_are_guides_and_scripts():
    names = {path.stem for path in GUIDE_FILES}
    assert {"README", "architecture", "hyperparameters"} <= names
    assert {"architecture", "hyperparameters"} <= {p.stem for p in SCRIPT_FILES}


@pytest.mark.parametrize("path", GUIDE_FILES, ids=lambda path: path.stem)
def test_guide_commands_images_and_markers(path: Path):
    found = problems(path)
    assert not found, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(found)


def test_the_checks_catch_a_bad_guide(tmp_path: Path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "fake.png").write_text("not a png")
    guide = tmp_path / "bad.md"
    guide.write_text(
        "```sh\nminimod pretrain gpt --no-such-option\npython experiments/missing.py\n"
        "make guides GUIDES=x no-such-target\n```\nRun `make absent` to make it.\n"
        "![x](figures/fake.png) ![y](figures/absent.png)\n"
        "<!-- guide:empty -->\n\n<!-- /guide:empty --> <!-- guide:open -->\n"
    )
    assert problems(guide) == [
        "minimod refuses 'minimod pretrain gpt --no-such-option'",
        "no script experiments/missing.py ('python experiments/missing.py')",
        "no Makefile target 'no-such-target'",
        "no Makefile target 'absent'",
        "image figures/fake.png is not a PNG file",
        "image figures/absent.png is not a PNG file",
        "marker 'open' is not closed",
        "marker 'empty' is empty",
    ]


def test_fill_replaces_between_the_markers_or_says_they_are_missing(tmp_path: Path):
    from experiments.guides.common import fill

    guide = tmp_path / "g.md"
    guide.write_text("a\n<!-- guide:x -->\nold\n<!-- /guide:x -->\nb\n")
    fill(guide, "x", "new")
    fill(guide, "x", "newer")
    assert guide.read_text() == "a\n<!-- guide:x -->\nnewer\n<!-- /guide:x -->\nb\n"
    with pytest.raises(ValueError, match=r"has no <!-- guide:y --> \.\.\. <!-- /guide:y -->"):
        fill(guide, "y", "text")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPT_FILES, ids=lambda path: path.stem)
def test_guide_script_runs_quick(script: Path, tmp_path: Path):
    name = script.stem.replace("_", "-")
    guide_dir = tmp_path / "guide"
    guide_dir.mkdir()
    shutil.copyfile(GUIDES / f"{name}.md", guide_dir / f"{name}.md")
    before = (guide_dir / f"{name}.md").read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path / "runs"),
         "--guide-dir", str(guide_dir)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    after = (guide_dir / f"{name}.md").read_text(encoding="utf-8")
    assert re.findall(r"<!-- guide:([\w-]+) -->", after) == re.findall(
        r"<!-- guide:([\w-]+) -->", before
    ), "the markers stay where they were"
    for image in IMAGE.findall(after):
        assert (guide_dir / image).read_bytes()[:8] == PNG, f"{image} not written"
