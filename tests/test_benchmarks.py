"""Smoke test of the benchmark harness: benchmarks/bench.py --quick runs, every model passes the
twin-equivalence check, and the table has a ratio column of finite positive numbers."""

from __future__ import annotations

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
