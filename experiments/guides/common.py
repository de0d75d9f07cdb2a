"""What every guide script shares: filling a guide's markers, running minimod, plotting.

A guide script ``experiments/guides/<name>.py`` imports it as ``from common import ...`` (run as
a script, its own folder is on ``sys.path``) and follows one shape::

    def main(argv=None):
        args = options(__doc__, "<name>", argv)   # --out, --quick, --guide-dir
        run = run_minimod(["pretrain", "gpt", "--preset", "tiny"], args.out / "first")
        fill(guide_path(args, "<name>"), "loss", f"{metrics(run)[-1]['eval_loss']:.3f}")
        fig, ax = figure()
        ...
        save(fig, figure_path(args, "<name>", "curve"))

    if __name__ == "__main__":
        main()

``fill`` replaces the text between ``<!-- guide:KEY -->`` and ``<!-- /guide:KEY -->``; the
README's tables (``experiments/readme_tables.py``) go through the same ``replace_between``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ROOT / "docs" / "guides"


def replace_between(path: Path, start: str, end: str, text: str) -> None:
    """Replace what lies between the ``start`` and ``end`` markers of the file at ``path`` with
    ``text`` on lines of its own; ValueError when the file lacks either marker."""
    path = Path(path)
    document = path.read_text(encoding="utf-8")
    if start not in document or end not in document.split(start, 1)[1]:
        raise ValueError(f"{path} has no {start} ... {end} markers to fill")
    head, rest = document.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


def markers(key: str) -> tuple[str, str]:
    """The pair of HTML comments around a guide's generated text ``key``."""
    return f"<!-- guide:{key} -->", f"<!-- /guide:{key} -->"


def fill(guide_path: Path, key: str, text: str) -> None:
    """Put ``text`` between ``<!-- guide:KEY -->`` and ``<!-- /guide:KEY -->`` in the guide;
    ValueError when the guide lacks them."""
    replace_between(guide_path, *markers(key), text)


def options(doc: str | None, name: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the options every guide script takes: ``--out`` (run folders), ``--quick`` (a
    smoke run of under a minute) and ``--guide-dir`` (where <name>.md and figures/ are rewritten).

    ``--quick`` without ``--guide-dir`` writes into a copy of the guide under ``OUT/guide``, so
    a smoke run never puts its meaningless numbers into docs/guides.
    """
    found = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    found.add_argument(
        "--out",
        type=Path,
        default=ROOT / "runs" / "guides" / name,
        help=f"folder for the run folders (default: runs/guides/{name})",
    )
    found.add_argument(
        "--quick",
        action="store_true",
        help="tiny settings, a smoke run of under a minute (the numbers mean nothing)",
    )
    found.add_argument(
        "--guide-dir",
        type=Path,
        help="folder holding <name>.md and figures/ to rewrite (default: docs/guides; "
        "with --quick: a copy in OUT/guide)",
    )
    args = found.parse_args(argv)
    if args.guide_dir is None and args.quick:
        args.guide_dir = args.out / "guide"
        args.guide_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GUIDES / f"{name}.md", args.guide_dir / f"{name}.md")
    elif args.guide_dir is None:
        args.guide_dir = GUIDES
    return args


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table: ``header``, then one line per row (cells as given, str() of each)."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def guide_path(args: argparse.Namespace, name: str) -> Path:
    """The guide ``<name>.md`` this run fills (under ``--guide-dir``)."""
    return Path(args.guide_dir) / f"{name}.md"


def figure_path(args: argparse.Namespace, name: str, what: str) -> Path:
    """``figures/<name>-<what>.png`` under ``--guide-dir`` (the folder is created)."""
    folder = Path(args.guide_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-{what}.png"


def run_minimod(args: list[str], out: Path, *, threads: int = 1) -> Path:
    """Run ``minimod ARGS --out OUT`` in a subprocess on ``threads`` CPU threads, streaming its
    output line by line (prefixed with the run folder's name); return ``out``.

    A run that fails raises RuntimeError naming the command and its last line of output.
    """
    out = Path(out)
    command = [sys.executable, "-m", "minimod", *map(str, args), "--out", str(out)]
    # One thread by default: the guides' timings compare runs, and the machine is shared.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    print(f"$ minimod {' '.join(map(str, args))} --out {out}", flush=True)
    started = time.perf_counter()
    last = ""
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        for line in process.stdout or ():
            # The progress bar redraws with carriage returns: show its latest state only.
            line = line.rstrip("\n").split("\r")[-1]
            if line.strip():
                last = line
                print(f"  [{out.name}] {line}", flush=True)
    if process.returncode != 0:
        raise RuntimeError(
            f"minimod {' '.join(map(str, args))} failed with status {process.returncode}: {last}"
        )
    print(f"  [{out.name}] done in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def metrics(run: Path) -> list[dict]:
    """Every row of a run folder's ``metrics.jsonl`` (training rows and evaluation rows)."""
    lines = (Path(run) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def plot_defaults() -> None:
    """Matplotlib without a display, small figures, readable fonts: PNGs of a few tens of KB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.figsize": (6.0, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def figure(ncols: int = 1):
    """A new figure with ``ncols`` axes side by side, in the guides' style: ``(fig, axes)``."""
    plot_defaults()
    import matplotlib.pyplot as plt

    width = plt.rcParams["figure.figsize"][0] * (1 if ncols == 1 else 0.6 * ncols)
    return plt.subplots(1, ncols, figsize=(width, plt.rcParams["figure.figsize"][1]))


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a compact PNG at ``path``, close it and return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {path}", flush=True)
    return Path(path)


def train_gpt(
    out: Path,
    *,
    preset: str = "baby",
    model: dict | None = None,
    data: str | None = None,
    seed: int = 0,
    **settings: Any,
) -> dict:
    """Pretrain a GPT into the run folder ``out`` with the library's ``pretrain`` (what
    ``minimod pretrain gpt`` runs): ``model`` holds the shape (n_layer, n_head, n_embd,
    block_size over the preset's: --n-layer ...), ``settings`` any other setting of the preset
    (``grad_accum=4``; ``warmup_steps=0``: none; ``weight_decay=0``; and those without an
    option, as ``final_eval_batches``). It prints the equivalent command line.

    Returns ``{"params", "val_loss", "train_loss", "tokens", "tokens_per_s", "seconds"}``:
    val_loss on ``final_eval_batches`` held-out batches, train_loss the mean of the last tenth
    of the logged steps, tokens/s the median of the logged rows but the first (warm-up),
    seconds the training steps' time (evaluations aside), from the run's metrics. One thread,
    as every guide measures.
    """
    import torch

    from minimod.tasks.pretrain import pretrain

    options = {**(model or {}), **settings}
    print(f"$ {pretrain_command(out, preset, data, seed, options)}", flush=True)
    torch.set_num_threads(1)
    summary = pretrain(
        "gpt", preset, data=data, out=out, overwrite=True, seed=seed, device="cpu",
        progress=False, log=lambda line: print(f"  [{Path(out).name}] {line}", flush=True),
        **options,
    )  # fmt: skip
    found = json.loads((Path(out) / "run.json").read_text(encoding="utf-8"))["settings"]
    rows = [row for row in metrics(out) if "step_time_s" in row]
    tail = [row["loss"] for row in rows[-max(1, len(rows) // 10) :]]
    speeds = sorted(row["items_per_s"] for row in rows[1:] or rows)
    # A row's step_time_s is the mean over the steps since the row before it.
    since = [0] + [row["step"] for row in rows[:-1]]
    steps, per_step = summary["step"], found["grad_accum"] * found["batch_size"]
    return {
        "params": summary["model"].num_parameters(),
        "val_loss": summary["final"]["loss"],
        "train_loss": sum(tail) / len(tail),
        "tokens": steps * per_step * found["model"]["block_size"],
        "tokens_per_s": speeds[len(speeds) // 2],
        "seconds": sum(row["step_time_s"] * (row["step"] - before)
                       for row, before in zip(rows, since, strict=True)),
    }  # fmt: skip


def pretrain_command(
    out: Path, preset: str, data: str | None, seed: int, settings: dict[str, Any]
) -> str:
    """``minimod pretrain gpt ...`` with ``settings`` as its options (--n-layer 2 ...); the
    settings it has no option for follow as a comment."""
    from minimod.cli import build_parser

    commands = next(action for action in build_parser()._actions if action.dest == "command")
    flags = {
        flag for action in commands.choices["pretrain"]._actions for flag in action.option_strings
    }
    words = ["minimod", "pretrain", "gpt", "--preset", preset]
    words += ["--data", str(data)] if data is not None else []
    words += ["--seed", str(seed)] if seed else []
    others = []
    for name, value in settings.items():
        flag = f"--{name.replace('_', '-')}"
        if flag in flags:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        else:
            others.append(f"{name}={value}")
    words += ["--device", "cpu", "--out", str(out)]
    return shlex.join(words) + (f"  # and {', '.join(others)}" if others else "")
