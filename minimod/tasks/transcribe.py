"""``minimod transcribe``: what a speech-recognition run hears in held-out utterances.

Kept apart from ``tasks/asr.py`` because it reads a run folder through ``tasks/run.py``, which
imports ``tasks/asr.py`` for its builders (the layer graph allows no cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minimod.tasks import asr
from minimod.tasks.common import UsageError
from minimod.tasks.run import load_run, read_run
from minimod.train.error_rate import cer, wer

ASR_TASKS = ("asr", "asr-digits")


def transcribe(
    run_dir: str | Path, held_out: int = 10, beam: int | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Decode the first ``held_out`` held-out utterances with a run's last checkpoint, greedily
    or with a prefix beam of width ``beam``. Returns {"record", "references", "hypotheses",
    "wer", "cer", "loss"}."""
    record = read_run(run_dir)
    if record.get("kind") == "finetune" or record["task"] not in ASR_TASKS:
        raise UsageError(
            f"{run_dir} is not a speech-recognition run; make one with "
            "minimod pretrain audio --task asr"
        )
    if beam is not None and beam < 1:
        raise UsageError(f"--beam must be ≥ 1, got {beam}")
    record, _, model = load_run(run_dir, device=device)
    utterances = asr.held_out(record["task"], record["settings"], held_out)
    hypotheses, loss = asr.decode(model, utterances, beam)
    references = utterances.transcripts
    return {
        "record": record,
        "references": references,
        "hypotheses": hypotheses,
        "wer": wer(hypotheses, references),
        "cer": cer(hypotheses, references),
        "loss": loss,
    }
