"""``minimod transcribe``: what a speech-recognition run hears, in held-out utterances or in a
feature file of your own.

Kept apart from ``tasks/asr.py`` because it reads a run folder through ``tasks/run.py``, which
imports ``tasks/asr.py`` for its builders (the layer graph allows no cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minimod.data.asr import Utterances
from minimod.tasks import asr
from minimod.tasks.common import UsageError
from minimod.tasks.finetune.sources import build_model, model_config
from minimod.tasks.presets import ASR_TASKS
from minimod.tasks.run import load_run, load_weights, pick_device, read_run
from minimod.train.error_rate import cer, wer


def load_recognizer(run_dir: str | Path, device: str = "cpu") -> tuple[dict[str, Any], Any]:
    """(run record, SpeechRecognizer in eval mode) of a speech-recognition run: a pretrain run
    (asr, asr-digits: its last checkpoint) or an asr-digits fine-tune (best.pt, else last.pt)."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    if record["task"] not in ASR_TASKS:
        raise UsageError(
            f"{run_dir} is not a speech-recognition run; make one with "
            "minimod pretrain audio --task asr (or finetune audio --task asr-digits)"
        )
    if record.get("kind") == "finetune":
        config = model_config("audio", record["model_config"], record["task"])
        words = len(asr.vocabulary_of(record["task"]))
        model = build_model("audio", record["task"], config, words, {})
        best = run_dir / "best.pt"
        load_weights(model, best if best.is_file() else run_dir / "last.pt")
        model.to(pick_device(device))
    else:
        record, _, model = load_run(run_dir, device=device)
    return record, model.eval()


def transcribe(
    run_dir: str | Path, held_out: int = 10, beam: int | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Decode the first ``held_out`` held-out utterances (made only of recordings the run never
    trained on), greedily or with a prefix beam of width ``beam``. Returns {"record",
    "references", "hypotheses", "wer", "cer", "loss"}."""
    if beam is not None and beam < 1:
        raise UsageError(f"--beam must be ≥ 1, got {beam}")
    record, model = load_recognizer(run_dir, device)
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


def read_features(path: str | Path, n_features: int) -> list[torch.Tensor]:
    """The utterances in a feature file: a ``.pt`` (torch.save) or ``.npy`` (numpy.save) array
    of one utterance (frames, n_features) or a batch (N, frames, n_features); a ``.pt`` may also
    hold a list of (frames_i, n_features) tensors. -> a list of float32 (frames, n_features)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--features {path}: no such file")
    try:
        if path.suffix == ".npy":
            import numpy

            content: Any = torch.from_numpy(numpy.load(path, allow_pickle=False))
        elif path.suffix == ".pt":
            content = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise UsageError(f"--features {path}: expected a .pt or .npy file")
    except (OSError, ValueError, RuntimeError) as error:
        raise UsageError(f"--features {path}: cannot read it ({error})") from None
    if isinstance(content, torch.Tensor):
        content = [content] if content.dim() == 2 else list(content.unbind(0))
    if not isinstance(content, (list, tuple)) or not content:
        raise UsageError(f"--features {path}: expected a tensor or a non-empty list of tensors")
    utterances = []
    for index, item in enumerate(content):
        if (
            not isinstance(item, torch.Tensor)
            or item.dim() != 2
            or item.shape[-1] != n_features
            or item.shape[0] < 1
            or not (item.is_floating_point() and bool(torch.isfinite(item).all()))
        ):
            shape = tuple(item.shape) if isinstance(item, torch.Tensor) else type(item).__name__
            raise UsageError(
                f"--features {path}: utterance {index} must be finite floats of shape (frames, "
                f"{n_features}) -- the run's features per frame -- got {shape}"
            )
        utterances.append(item.float())
    return utterances


def transcribe_features(
    run_dir: str | Path, path: str | Path, beam: int | None = None, device: str = "cpu"
) -> list[str]:
    """What a run hears in each utterance of a feature file (see ``read_features``). The
    features must be the run's own kind: for asr-digits the dataset's 13 standardized MFCCs,
    for asr the synthetic clips' log-mel bands or MFCCs (``minimod.data.audio``)."""
    if beam is not None and beam < 1:
        raise UsageError(f"--beam must be ≥ 1, got {beam}")
    record, model = load_recognizer(run_dir, device)
    features = read_features(path, model.config.n_features)
    vocabulary = asr.vocabulary_of(record["task"])
    utterances = Utterances(features, [[] for _ in features], [[] for _ in features], vocabulary)
    return asr.decode(model, utterances, beam, with_loss=False)[0]
