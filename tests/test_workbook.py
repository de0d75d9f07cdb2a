"""The workbook machinery: markers, the generator, the sync of exercises/ and solutions/ with
minimod, pristine stubs, lesson independence and ``use_mine()``.

These tests check minimod's own machinery, so they run once, under ``--impl minimod``.
"""

from __future__ import annotations

import ast
import difflib
import doctest
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import minimod.nn
import minimod.nn.functional
import minimod.nn.linear
import minimod.optim
from minimod.workbook import catalogue, generate, mine, source
from minimod.workbook.catalogue import LESSONS, Lesson
from minimod.workbook.checks import NOT_STARTED, PASSING, PYTEST, RESULTS_ENV
from minimod.workbook.implementations import WORKBOOK_ENV, load_lesson
from minimod.workbook.markers import (
    SOLUTION,
    YOUR_CODE,
    MarkerError,
    find_regions,
    has_learner_code,
    mask,
)

pytestmark = pytest.mark.reference_only
ROOT = source.repo_root()
FORBIDDEN = ("torch.nn", "torch.optim")


@pytest.fixture(scope="module")
def expected() -> dict[str, str]:
    """Every generated file, regenerated in memory from minimod's code."""
    return generate.expected_files()


def write_workbook(root: Path, expected: dict[str, str], filled: set[int]) -> None:
    """A workbook whose exercises are stubs, except lessons ``filled`` (the solution code)."""
    for relpath, text in expected.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for lesson in LESSONS:
        if lesson.number in filled:
            solution = expected[f"solutions/{lesson.name}.py"]
            (root / "exercises" / f"{lesson.name}.py").write_text(solution, encoding="utf-8")


# -- markers ---------------------------------------------------------------------------------


GOOD = """\
def f(x):
    y = x
    # BEGIN SOLUTION
    y = y + 1
    # END SOLUTION
    return y
"""


@pytest.mark.parametrize(
    "text, where, what",
    [
        ("    # END SOLUTION\n", ":1:", "without a matching BEGIN"),
        ("# BEGIN SOLUTION\nx = 1\n# BEGIN SOLUTION\n", ":3:", "cannot be nested"),
        ("x = 0\n# BEGIN SOLUTION\nx = 1\n", ":2:", "never closed"),
        ("  # BEGIN SOLUTION\n  x = 1\n# END SOLUTION\n", ":3:", "indented differently"),
        ("# BEGIN SOLUTION:\nx = 1\n# END SOLUTION\n", ":1:", "malformed"),
        ("# BEGIN SOLUTION\n# END SOLUTION\n", ":1:", "empty region"),
    ],
)
def test_bad_markers_are_errors_naming_file_and_line(text, where, what):
    with pytest.raises(MarkerError, match=f"^minimod/nn/fake.py{where}.*{what}"):
        find_regions(text, "minimod/nn/fake.py", SOLUTION)


def test_regions_and_mask():
    (region,) = find_regions(GOOD, "f.py", SOLUTION)
    assert (region.begin, region.end, region.indent) == (3, 5, "    ")
    stub = GOOD.replace("SOLUTION", "YOUR CODE")
    filled = stub.replace("y = y + 1", "y += 1\n    y = int(y)")
    assert mask(filled, "f.py") == mask(stub, "f.py") != mask(stub.replace("y = x", "y = 2"), "f")


# -- the catalogue ---------------------------------------------------------------------------


def test_catalogue_is_consistent():
    assert [lesson.number for lesson in LESSONS] == list(range(1, len(LESSONS) + 1))
    assert len(LESSONS) >= 6
    for lesson in LESSONS:
        assert lesson.name.startswith(f"e{lesson.number:02d}_"), lesson.name
        assert catalogue.lesson(lesson.number) is lesson
        for qualified in lesson.definitions:
            module, name = source.split_definition(qualified)
            obj = getattr(importlib.import_module(module), name)
            assert f"{obj.__module__}.{obj.__qualname__}" == qualified, "named where it is defined"
        for test in lesson.tests:
            assert (ROOT / test).exists(), f"lesson {lesson.number}: no test file {test}"
        lines = lesson.text.strip().splitlines()
        check = [i for i, line in enumerate(lines) if line.startswith("Check it:")]
        assert check, f"{lesson.name} has no Check it line"
        assert lines[check[-1]] == f"Check it: minimod exercises check {lesson.number}"
        assert lines[check[-1] + 1].startswith("Try it"), "Check it, then Try it"
        assert all(line.startswith("    ") for line in lines[check[-1] + 2 :]), "the end"
    with pytest.raises(KeyError, match="no lesson 99"):
        catalogue.lesson(99)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.name)
def test_try_it_examples_run_as_printed(lesson, monkeypatch):
    """The "Try it" lines of each lesson, run as a doctest against the lesson's solution."""
    monkeypatch.syspath_prepend(str(ROOT))
    text = lesson.text.replace("from exercises.", "from solutions.")
    example = doctest.DocTestParser().get_doctest(text, {}, lesson.name, lesson.name, 0)
    assert example.examples, f"{lesson.name} has no Try it example"
    report = io.StringIO()
    result = doctest.DocTestRunner().run(example, out=report.write)
    assert result.failed == 0, report.getvalue()


def test_every_marked_region_belongs_to_a_lesson():
    problems = source.uncovered_regions()
    assert not problems, "\n".join(problems)


def test_every_name_the_marked_code_needs_is_in_its_lesson_text():
    problems = generate.text_problems()
    assert not problems, "\n".join(problems)


FAKE_MODULE = """\
import torch


class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.dtype = x.dtype
        # BEGIN SOLUTION
        ctx.factor = factor
        return x * factor
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.factor).to(ctx.dtype), None


class Scale:
    def __init__(self, n):
        self.n = n
        # BEGIN SOLUTION
        self.weight = torch.ones(n)
        self.unused = None
        # END SOLUTION

    def forward(self, x):
        return x * self.weight[: self.n]
"""
FAKE_SENTENCES = (
    "Double.forward returns x · factor and keeps the float factor in ctx.factor for the "
    "given backward.",
    "Scale.__init__ makes the weight, ones of shape (n,).",
)


@pytest.mark.parametrize("removed", [None, 0, 1])
def test_a_name_missing_from_the_text_is_reported(removed, monkeypatch):
    """A synthetic lesson: the functions whose bodies are marked and the attributes only marked
    code sets but given code reads (ctx.factor, self.weight) must be named in its text; names
    given code sets (ctx.dtype, self.n) or nobody reads (self.unused) need not be."""
    fake = source.Source.parse("minimod.fake", ROOT / "minimod" / "fake.py", FAKE_MODULE)
    monkeypatch.setattr(source.Source, "load", lambda module: fake)
    assert source.names_to_explain(fake, ["Double", "Scale"]) == [
        "Double.forward",
        "Scale.__init__",
        "ctx.factor",
        "self.weight",
    ]
    sentences = [s for i, s in enumerate(FAKE_SENTENCES) if i != removed]
    text = "Lesson 99: fake\n\n" + "\n".join(sentences)
    lesson = Lesson(99, "e99_fake", "Fake", ("minimod.fake.Double", "minimod.fake.Scale"), (), text)
    problems = generate.text_problems([lesson])
    if removed is None:
        assert problems == []
        return
    missing = {0: "Double.forward, ctx.factor", 1: "Scale.__init__, self.weight"}[removed]
    (problem,) = problems
    assert problem.startswith(f"lesson e99_fake: the text never names {missing}; ")


def test_a_context_attribute_must_be_named_with_its_ctx():
    assert source.is_named("ctx.scale", "it stores ctx.scale, a float")
    assert not source.is_named("ctx.scale", "the scale is 1/√d"), "a bare word says nothing"
    assert source.is_named("self.weight", "weight (out, in)")
    assert source.is_named("Attention.forward", "Attention's forward")
    assert not source.is_named("Attention.forward", "its forward")
    assert not source.is_named("self.bias", "bias_ih"), "whole identifiers only"


def test_bad_definition_is_a_generation_error():
    bad = Lesson(9, "e09_bad", "Bad", ("minimod.nn.linear.Nothing",), ())
    with pytest.raises(source.GenerationError, match="no top-level function or class 'Nothing'"):
        generate.render_lesson(bad)


# -- the generated files ---------------------------------------------------------------------


def test_generated_files_are_in_sync_with_minimod(expected):
    """Regenerate in memory and compare; your filled-in regions in exercises/ are masked."""
    for folder in generate.KINDS:
        on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).glob("*.py")}
        wanted = {path for path in expected if path.startswith(f"{folder}/")}
        assert on_disk == wanted, f"{folder}/ differs from the catalogue: run `make workbook`"
    for relpath, text in expected.items():
        current = (ROOT / relpath).read_text(encoding="utf-8")
        if relpath.startswith("exercises/"):
            current, text = mask(current, relpath), mask(text, relpath)
        if current != text:
            diff = difflib.unified_diff(
                text.splitlines(), current.splitlines(), "generated now", relpath, lineterm=""
            )
            pytest.fail(
                f"{relpath} is out of date: run `make workbook`\n" + "\n".join(list(diff)[:40])
            )


def test_stubs_name_their_lesson_and_function(expected):
    for lesson in LESSONS:
        stub = expected[f"exercises/{lesson.name}.py"]
        lines = stub.splitlines()
        regions = find_regions(stub, lesson.name, YOUR_CODE)
        assert regions or lesson.number == 1, f"{lesson.name} has nothing to write"
        for region in regions:
            (body,) = region.body(lines)
            assert body.strip().startswith(f'raise NotImplementedError("e{lesson.number:02d}: ')
        solution = expected[f"solutions/{lesson.name}.py"]
        assert len(find_regions(solution, lesson.name, YOUR_CODE)) == len(regions)
        assert "BEGIN SOLUTION" not in stub and "BEGIN SOLUTION" not in solution


def test_generated_files_pass_ruff(expected, tmp_path):
    for relpath, text in expected.items():
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_text(text, encoding="utf-8")
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                *command,
                "--config",
                str(ROOT / "pyproject.toml"),
                "exercises",
                "solutions",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_generated_files_import_nothing_from_torch_nn_or_torch_optim(expected):
    for relpath, text in expected.items():
        for node in ast.walk(ast.parse(text)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            for module in modules:
                assert not module.startswith(FORBIDDEN), f"{relpath} imports {module}"


@pytest.mark.parametrize("kind", ["exercises", "solutions"])
def test_lessons_import_cleanly_and_stand_alone(kind, expected, tmp_path, monkeypatch):
    write_workbook(tmp_path, expected, filled=set())
    monkeypatch.setenv(WORKBOOK_ENV, str(tmp_path))
    for lesson in LESSONS:
        module = load_lesson(kind, lesson)
        assert Path(module.__file__) == tmp_path / kind / f"{lesson.name}.py"
        for qualified in lesson.definitions:
            name = source.split_definition(qualified)[1]
            assert getattr(module, name).__module__ == f"{kind}.{lesson.name}"
    # A lesson's own names resolve to the lesson; names other lessons teach come from minimod.
    e02 = load_lesson(kind, catalogue.lesson(2))
    assert e02.Linear.forward.__globals__["linear"] is e02.linear
    assert e02.Module is minimod.nn.module.Module
    e04 = load_lesson(kind, catalogue.lesson(4))
    assert e04.cross_entropy.__globals__["log_softmax"] is minimod.nn.activation.log_softmax


@pytest.mark.slow
def test_make_workbook_is_idempotent_and_keeps_your_code(expected, tmp_path):
    out = io.StringIO()
    first = generate.write(tmp_path, out=out)
    assert sorted(first) == sorted(expected)
    assert generate.write(tmp_path, out=out) == []
    exercise = tmp_path / "exercises" / "e03_activations.py"
    mine_text = exercise.read_text().replace(
        'raise NotImplementedError("e03: sigmoid")', "return 1 / (1 + torch.exp(-input))"
    )
    exercise.write_text(mine_text)
    assert has_learner_code(mine_text, str(exercise))
    assert not has_learner_code(expected["exercises/e03_activations.py"], "e03")
    (tmp_path / "solutions" / "e03_activations.py").write_text("stale")
    assert generate.write(tmp_path, out=out) == ["solutions/e03_activations.py"]
    assert exercise.read_text() == mine_text, "make workbook must not overwrite your code"
    assert generate.write(tmp_path, force=True, out=out) == ["exercises/e03_activations.py"]
    assert "kept exercises/e03_activations.py" in out.getvalue()


# -- pristine stubs and lesson independence --------------------------------------------------


def run_lesson_tests(root: Path, lessons: list[Lesson], tmp_path: Path) -> list[dict]:
    """Run ``lessons``' tests against ``root``/exercises in one pytest process (no shrinking:
    only pass or fail matters here); the workbook plugin's records."""
    results = tmp_path / "results.json"
    tests = [test for lesson in lessons for test in lesson.tests]
    env = {**os.environ, WORKBOOK_ENV: str(root), RESULTS_ENV: str(results)}
    command = [sys.executable, *PYTEST, "--impl", "exercises", "--no-shrink", *tests]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    records = json.loads(results.read_text())
    owner = {test: lesson for lesson in lessons for test in lesson.tests}
    assert {record["file"] for record in records} == set(owner), "every test file reports"
    for record in records:
        record["lesson"] = owner[record["file"]].number
        record["name"] = f"{record['file']}::{record['test']}"
    return records


@pytest.mark.slow
def test_pristine_stubs_fail_every_lesson_test_with_not_implemented_error(expected, tmp_path):
    """No solution leaked into a stub and no lesson test passes vacuously: against the stubs,
    every test of every lesson fails, and only with its lesson's NotImplementedError."""
    write_workbook(tmp_path / "workbook", expected, filled=set())
    problems = []
    for record in run_lesson_tests(tmp_path / "workbook", list(LESSONS), tmp_path):
        if record["outcome"] != "failed":
            problems.append(f"{record['name']} {record['outcome']} against the empty stub")
            continue
        for error in record["errors"]:
            if error["exception"] != "NotImplementedError" or not error["message"].startswith(
                f"e{record['lesson']:02d}: "
            ):
                problems.append(f"{record['name']}: {error['exception']}: {error['message']}")
    assert not problems, "\n".join(problems)


# -- use_mine --------------------------------------------------------------------------------


def fake_status(lesson: Lesson) -> str:
    """The status use_mine would find, without running the lesson's tests (CLI tests do)."""
    text = load_lesson_text(lesson)
    return PASSING if has_learner_code(text, lesson.name) else NOT_STARTED


def load_lesson_text(lesson: Lesson) -> str:
    return (Path(os.environ[WORKBOOK_ENV]) / "exercises" / f"{lesson.name}.py").read_text()


def train_small_model(steps: int = 30) -> tuple[minimod.nn.Module, list[float]]:
    """A two-layer MLP fitting y = sin(3x), built through the minimod.nn namespace."""
    torch.manual_seed(0)
    nn = minimod.nn
    model = nn.Sequential(nn.Linear(1, 16), nn.GELU(), nn.Linear(16, 1))
    optimizer = minimod.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.linspace(-1, 1, 32)[:, None]
    y = torch.sin(3 * x)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def test_use_mine_trains_with_your_lessons_and_restores_minimod(
    expected, tmp_path, monkeypatch, capsys
):
    write_workbook(tmp_path, expected, filled={1, 2, 3, 4, 6})
    monkeypatch.setenv(WORKBOOK_ENV, str(tmp_path))
    originals = (
        minimod.nn.Linear,
        minimod.nn.linear.linear,
        minimod.nn.functional.linear,
        minimod.nn.GELU,
        minimod.optim.AdamW,
        minimod.nn.Module,
        minimod.nn.LayerNorm,
    )
    with mine.use_mine(lesson_status=fake_status) as choice:
        model, losses = train_small_model()
        assert type(minimod.nn.MSELoss()).__module__ == "exercises.e04_losses"
        assert type(model[0]).__module__ == "exercises.e02_linear"
        assert type(model[1]).__module__ == "exercises.e03_activations"
        yours = model[0].forward.__globals__["linear"]
        assert minimod.nn.functional.linear is minimod.nn.linear.linear is yours
        assert minimod.nn.LayerNorm is originals[-1], "e05 is not started: minimod's LayerNorm"
        assert minimod.nn.Module is originals[-2], "Module is never swapped"
        e03, e04 = (load_lesson("exercises", catalogue.lesson(n)) for n in (3, 4))
        assert e04.cross_entropy.__globals__["log_softmax"] is e03.log_softmax, "yours use yours"
    assert e04.cross_entropy.__globals__["log_softmax"] is minimod.nn.activation.log_softmax
    assert losses[-1] < 0.5 * losses[0], "training with your code should fit the curve"
    assert [lesson.number for lesson in choice.mine] == [2, 3, 4, 6]
    printed = capsys.readouterr().out
    assert "yours      e02 Linear" in printed and "yours      e06" in printed
    assert "reference  e01 Module and Parameter (every layer already inherits" in printed
    assert "reference  e05" in printed and "not started" in printed
    now = (
        minimod.nn.Linear,
        minimod.nn.linear.linear,
        minimod.nn.functional.linear,
        minimod.nn.GELU,
        minimod.optim.AdamW,
        minimod.nn.Module,
        minimod.nn.LayerNorm,
    )
    assert all(a is b for a, b in zip(now, originals, strict=True)), "use_mine must restore minimod"

    with (
        pytest.raises(RuntimeError, match="boom"),
        mine.use_mine(lessons=[2], quiet=True, lesson_status=fake_status) as choice,
    ):
        assert minimod.nn.Linear is not originals[0]
        raise RuntimeError("boom")
    assert minimod.nn.Linear is originals[0], "restored even when the block raises"
    assert [lesson.number for lesson in choice.mine] == [2]
