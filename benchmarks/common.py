"""What every benchmark shares: the machine's description, A/B timing, a matmul peak, memory.

Timing rule: the two contenders (A = minimod, B = its torch.nn twin) run in one process, after
warm-up, alternating pair by pair (A B, B A, A B, ...), and the figure that matters is the
median of the per-pair ratios A / B: absolute times on a shared machine drift, ratios of
neighbouring steps much less.
"""

from __future__ import annotations

import csv
import ctypes
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def machine_info(device: str) -> dict[str, Any]:
    info = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str) -> float:
    """Seconds one call of fn takes (the device synchronised before and after)."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def alternate(
    step_a: Callable[[], Any], step_b: Callable[[], Any], pairs: int, device: str
) -> tuple[list[float], list[float], list[float]]:
    """Time `pairs` pairs of steps, swapping who goes first each pair.
    Returns (seconds of A, seconds of B, ratios A / B), one entry per pair."""
    times_a, times_b, ratios = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            a = timed(step_a, device)
            b = timed(step_b, device)
        else:
            b = timed(step_b, device)
            a = timed(step_a, device)
        times_a.append(a)
        times_b.append(b)
        ratios.append(a / b)
    return times_a, times_b, ratios


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def matmul_peak(device: str, n: int, repeats: int = 3) -> float:
    """FLOP/s of the best of `repeats` fp32 (n, n) @ (n, n) matmuls (2 n³ FLOPs each)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / best


# --------------------------------------------------------------------------------------------
# Memory of one training step

_LIBC = None


def _malloc_trim() -> None:
    """Hand glibc's free heap pages back to the OS, so they do not hide the next peak."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    """Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM (the peak resident set size)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_method(device: str) -> str:
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated during one step (absolute: weights, grads, state)"
    if _reset_high_water_mark() and _proc_status_kb("VmHWM") is not None:
        return (
            "CPU: growth of the resident set (VmHWM after VmHWM reset - VmRSS before) during one "
            "step, after malloc_trim; approximate (allocator caching), activations + grads"
        )
    return "CPU: not measured (needs Linux /proc/self/clear_refs)"


def step_memory(step: Callable[[], Any], device: str) -> float | None:
    """Bytes one call of step needs (see memory_method for what exactly), or None."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device))
    _malloc_trim()
    if not _reset_high_water_mark():
        return None
    before = _proc_status_kb("VmRSS")
    step()
    peak = _proc_status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) * 1024.0


# --------------------------------------------------------------------------------------------
# End to end: the real command line


DONE = re.compile(
    r"done: step (?P<step>\d+), held-out loss (?P<loss>[\d.]+).*?(?P<ms>[\d.]+) ms/step "
    r"\(median\), (?P<wall>[\d.]+) s in all"
)


def pretrain_baby_gpt(
    data: str, *extra: str, device: str = "cpu", processes: int = 1, threads: int | None = None
) -> dict[str, Any]:
    """`minimod pretrain gpt --preset baby --data DATA EXTRA...` in a fresh process (under
    `torchrun --standalone --nproc_per_node=N` for processes > 1, with OMP_NUM_THREADS=threads
    if given): wall time of the whole command, steps, median ms/step, final held-out loss and
    the median tokens/s of the logged rows (the first left out: it includes warm-up)."""
    with tempfile.TemporaryDirectory() as folder:
        args = ["pretrain", "gpt", "--preset", "baby", "--data", data, "--device", device]
        args += ["--out", folder, *extra]
        launcher = [sys.executable]
        if processes > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone"]
            launcher += [f"--nproc_per_node={processes}"]
        command = [*launcher, "-m", "minimod", *args]
        env = dict(os.environ)
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        print(f"... {' '.join(command[1:])}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - start
        found = DONE.search(done.stdout)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"pretrain failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        with open(Path(folder) / "metrics.csv") as f:
            rows = [float(r["items_per_s"]) for r in csv.DictReader(f) if r.get("items_per_s")]
    return dict(
        wall_s=wall,
        steps=int(found["step"]),
        ms_per_step=float(found["ms"]),
        val_loss=float(found["loss"]),
        tokens_per_s=statistics.median(rows[1:] or rows),
    )


# --------------------------------------------------------------------------------------------
# Output


def si(value: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (k, M, G, T)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
