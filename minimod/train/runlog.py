"""The run folder's metrics: ``metrics.jsonl`` (one JSON object per line) and ``metrics.csv``.

Each ``log(row)`` appends one line to both files and closes them, so the rows are in the
operating system's hands at once: a crash loses nothing already logged. JSON lines suit code
(any keys per row); the CSV suits spreadsheets and plotting. The JSON lines are the source of
truth: when a row brings a new column (the first evaluation, say), the CSV is rewritten from
them with the wider header. ``StepMeter`` turns the steps between two rows into one row.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import torch


class RunLog:
    """Rows of metrics in ``folder/metrics.jsonl`` and ``folder/metrics.csv``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.folder / "metrics.jsonl"
        self.csv_path = self.folder / "metrics.csv"
        self.columns = _columns(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Every row logged so far (a line cut short by a crash is skipped)."""
        if not self.jsonl_path.exists():
            return []
        rows = []
        for line in self.jsonl_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def log(self, row: dict[str, Any]) -> None:
        with open(self.jsonl_path, "a") as file:
            file.write(json.dumps(row) + "\n")
        if any(key not in self.columns for key in row):
            self._rewrite(self.rows())
        else:
            with open(self.csv_path, "a", newline="") as file:
                csv.DictWriter(file, self.columns).writerow(row)

    def truncate_after(self, step: int) -> None:
        """Forget rows after ``step``: a run resumed from a checkpoint at ``step`` logs them
        again, and a fresh run (step 0) starts from empty files."""
        self._rewrite([row for row in self.rows() if row.get("step", 0) <= step])

    def save_json(self, name: str, value: Any) -> None:
        """Write ``folder/name`` as indented JSON (e.g. the run's config), atomically."""
        write_text_atomic(self.folder / name, json.dumps(value, indent=2) + "\n")

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        self.columns = _columns(rows)
        write_text_atomic(self.jsonl_path, "".join(json.dumps(row) + "\n" for row in rows))
        temp = self.csv_path.with_name(f".{self.csv_path.name}.tmp")
        with open(temp, "w", newline="") as file:
            writer = csv.DictWriter(file, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temp, self.csv_path)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it over ``path``: a crash leaves
    the old file or the new one, never half of one."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


class StepMeter:
    """Sums what the training steps since the last row did; ``row()`` reports their means,
    the items (tokens or examples) per second and the seconds per step, then starts over."""

    def __init__(self) -> None:
        self.steps, self.items, self.start = 0, 0, None
        self.loss = self.norm = torch.zeros(())
        self.lr = 0.0

    def begin(self) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def add(self, stats: dict[str, Any]) -> None:
        self.steps += 1
        self.items += stats["items"]
        self.loss = stats["loss"] + self.loss.to(stats["loss"].device)
        self.norm = stats["grad_norm"] + self.norm.to(stats["grad_norm"].device)
        self.lr = stats["lr"]

    def row(self, step: int) -> dict[str, Any]:
        loss = float(self.loss) / self.steps  # float() waits for the device: timing is honest
        seconds = max(time.perf_counter() - self.start, 1e-9)
        row = {
            "step": step,
            "loss": loss,
            "lr": self.lr,
            "grad_norm": float(self.norm) / self.steps,
            "items_per_s": self.items / seconds,
            "step_time_s": seconds / self.steps,
        }
        self.__init__()
        return row
