"""Smoke test of the benchmark harness: benchmarks/bench.py --quick runs, every model passes the
twin-equivalence check, and the table has a ratio column of finite positive numbers. The
targets table it ends with is checked on fabricated results (nothing timed)."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"


def table_column(markdown: str, header: str) -> list[str]:
    """The cells of the first markdown table's column `header`."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header in headers, f"no column {header!r} in {headers}"
    index = headers.index(header)
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(headers):  # the next table starts
            break
        rows.append(cells[index])
    return rows


@pytest.mark.slow
def test_bench_quick_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "bench.json"
    models = "gpt-baby,bert-tiny,resnet,generate"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--models", models, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "twin check FAILED" not in result.stdout + result.stderr

    ratios = table_column(result.stdout, "ratio minimod/torch")
    assert len(ratios) == 3
    for cell in ratios:
        assert math.isfinite(float(cell)) and float(cell) > 0, cell

    report = json.loads(out.read_text())
    assert [row["model"] for row in report["rows"]] == ["gpt-baby", "bert-tiny", "resnet"]
    for row in report["rows"]:
        assert row["twin_check"] == "ok"
        assert row["loss_diff"] <= 1e-4
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0
        assert row["minimod_ms"] > 0 and row["torch_ms"] > 0
    generation = report["generation"]
    assert generation["speedup"] > 0 and generation["same_tokens"]
    assert report["machine"]["torch"] and report["command"].startswith("python benchmarks/")
    # The targets table comes last, built from this run's rows.
    assert "## Performance targets: " in result.stdout.split("### KV-cache generation")[-1]
    measured = {t["which"]: t["status"] for t in report["targets"] if t["measure"] == "ratio"}
    assert measured["resnet"] in ("met", "missed") and measured["mobilenet"] == "not measured"


# --------------------------------------------------------------------------------------------
# The targets table, from fabricated results (nothing timed)


@pytest.fixture(scope="module")
def bench():
    """benchmarks/bench.py as a module (it imports its neighbours as top-level modules)."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        return importlib.import_module("bench")
    finally:
        sys.path.remove(str(BENCH.parent))


def fabricated(**extra) -> dict:
    """A results dictionary as bench.main builds it, for a run of gpt-baby and bert-tiny."""

    def row(model: str, ratio: float, mine_mib: float, torch_mib: float) -> dict:
        return dict(
            model=model,
            ratio=ratio,
            minimod_ms=10.0 * ratio,
            torch_ms=10.0,
            minimod_mem_bytes=mine_mib * 2**20,
            torch_mem_bytes=torch_mib * 2**20,
        )

    rows = [row("gpt-baby", 1.14, 40, 35), row("bert-tiny", 1.31, 60, 40)]
    return {"rows": rows, "compile_failures": {}, "memory": "CPU: resident set", **extra}


def by_target(table: list[dict]) -> dict[str, dict]:
    return {(row["measure"], row["which"]): row for row in table}


def test_targets_met_missed_and_not_measured(bench):
    table = by_target(bench.targets(fabricated()))
    assert len(table) == len(bench.TARGETS)
    gpt = table["ratio", "gpt-baby"]
    assert (gpt["status"], gpt["value"], gpt["bound"]) == ("met", 1.14, 1.2)
    assert gpt["measured"].startswith("1.14×")
    assert table["ratio", "bert-tiny"]["status"] == "missed"
    assert table["memory", "gpt-baby"]["measured"].startswith("1.14×")  # 40 / 35 MiB
    assert table["memory", "bert-tiny"]["status"] == "missed"  # 1.50
    resnet = table["ratio", "resnet (compiled)"]
    assert resnet["status"] == "not measured" and "--compile" in resnet["measured"]
    assert "--models mobilenet" in table["ratio", "mobilenet"]["measured"]
    nanogpt = table["nanogpt wall", "bf16"]
    assert nanogpt["status"] == "not measured" and "--nanogpt DIR" in nanogpt["measured"]
    assert {row["status"] for row in table.values()} == {"met", "missed", "not measured"}


def test_targets_judge_the_printed_figure_and_report_failures(bench):
    result = fabricated(compile_failures={"bert-tiny": "BackendCompilerFailed: boom"})
    result["rows"][0]["ratio"] = 1.2049  # printed 1.20: on the bound, met
    result["rows"][1]["torch_mem_bytes"] = None  # no /proc here
    table = by_target(bench.targets(result))
    assert table["ratio", "gpt-baby"]["status"] == "met"
    compiled = table["ratio", "bert-tiny (compiled)"]
    assert compiled["status"] == "not measured" and "FAILED" in compiled["measured"]
    memory = table["memory", "bert-tiny"]
    assert memory["status"] == "not measured" and "resident set" in memory["measured"]


def test_targets_from_a_fabricated_side_by_side(bench):
    def run(pair, name, precision, wall_ratio, val_diff):
        return dict(
            pair=pair, run=name, precision=precision, wall_ratio=wall_ratio, val_diff=val_diff
        )

    nanogpt = [
        run(0, "nanoGPT", "fp32", 1.0, 0.0),
        run(0, "minimod", "fp32", 0.99, 0.005),
        run(0, "minimod", "bf16", 0.79, 0.0024),
        run(1, "nanoGPT", "fp32", 1.0, 0.0),
        run(1, "minimod", "fp32", 1.05, 0.0050),
        run(1, "minimod", "bf16", 0.85, -0.0300),
    ]
    table = by_target(bench.targets(fabricated(nanogpt=nanogpt)))
    # The medians over the pairs, as the side-by-side script's own summary.
    assert table["nanogpt wall", "fp32"]["value"] == 1.02
    assert table["nanogpt wall", "fp32"]["status"] == "missed"
    assert table["nanogpt wall", "bf16"]["value"] == 0.82
    assert table["nanogpt val", "fp32"]["status"] == "met"
    bf16 = table["nanogpt val", "bf16"]
    assert bf16["value"] == 0.0138 and bf16["status"] == "missed"
    assert bf16["measured"].startswith("-0.0138 (median over 2 pair(s))")


def test_targets_attention_and_workbook(bench):
    peaks = {
        "minimod sdpa": (13, 197, 3090),
        "minimod flash_attention": (13, 30, 122),
        "torch F.sdpa": (3, 12, 58),
    }
    attention = [
        dict(method=method, length=length, bytes=mib * 2**20)
        for method, figures in peaks.items()
        for length, mib in zip((512, 2048, 8192), figures, strict=True)
    ]
    workbook = [
        dict(lesson=2, pass_s=6.0, cached_s=1.5, fail_s=5.0),
        dict(lesson=8, pass_s=8.0, cached_s=1.7),
    ]
    result = fabricated(
        attention_memory=attention,
        workbook=workbook,
        test_fast=dict(seconds=612.3, returncode=0),
    )
    table = by_target(bench.targets(result))
    flash = table["attention", "minimod flash_attention"]
    assert flash["status"] == "met" and flash["value"] == 4.07
    assert "minimod sdpa 3090 MiB (15.69×)" in flash["measured"]
    check = table["workbook", "check"]
    assert check["status"] == "reported" and "pass 7.0 s" in check["measured"]
    assert table["workbook", "test-fast"]["measured"] == "612 s, passed"
    # --quick measures T = 512 alone: no growth to judge.
    quick = by_target(bench.targets(fabricated(attention_memory=attention[:1])))
    assert quick["attention", "minimod flash_attention"]["status"] == "not measured"


def test_targets_table_names_the_cpu_and_threads(bench):
    machine = dict(cpu="Fabricated CPU 9000", threads=3)
    text = bench.format_targets(bench.targets(fabricated()), machine, quick=True)
    header = text.splitlines()[0]
    assert "Fabricated CPU 9000" in header and "3 threads" in header
    statuses = table_column(text, "status")
    assert len(statuses) == len(bench.TARGETS)
    assert set(statuses) <= {"met", "missed", "not measured", "reported"}
    assert table_column(text, "bound")[0] == "≤ 1.20×"
    assert "--quick" in text
