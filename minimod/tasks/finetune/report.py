"""The final report of a fine-tune: test metrics into run.json, and for classification the
confusion matrix (text and PNG) with a per-class table; ``evaluate_finetuned`` rebuilds a run
from its folder and reports again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from minimod.tasks import lm
from minimod.tasks.finetune.prepared import DEFAULT_OPTIONS, Prepared, prepare
from minimod.tasks.finetune.sources import BUILT_IN_SOURCES, Source, model_config
from minimod.tasks.run import RUN_FILE, load_weights, pick_device, read_run
from minimod.train.checkpoint import to_plain
from minimod.train.metrics import (
    confusion_matrix,
    format_confusion_matrix,
    plot_confusion_matrix,
    precision_recall_f1,
)
from minimod.train.runlog import write_text_atomic


def write_report(model: Any, ready: Prepared, run_dir: Path, record: dict[str, Any]) -> dict:
    """Test metrics (and the confusion matrix, as text and PNG) into run.json and the summary."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics, predictions = ready.test(model)
    model.train(was_training)
    summary: dict[str, Any] = {"run": str(run_dir), "test": metrics}
    if predictions is not None:
        num_classes = len(ready.class_names)
        matrix = confusion_matrix(*predictions, num_classes)
        table = format_confusion_matrix(matrix, ready.class_names)
        table += "\n\n" + per_class_table(*predictions, ready.class_names)
        write_text_atomic(run_dir / "confusion.txt", table + "\n")
        summary["confusion"] = table
        summary["confusion_png"] = plot_confusion_matrix(
            matrix, ready.class_names, run_dir / "confusion.png"
        )
        summary["chance"] = chance_note(metrics.get("accuracy"), predictions, ready.class_names)
    write_text_atomic(
        run_dir / RUN_FILE, json.dumps(to_plain({**record, "test": metrics}), indent=2) + "\n"
    )
    return summary


def chance_note(
    accuracy: float | None, predictions: tuple[torch.Tensor, torch.Tensor], names: tuple[str, ...]
) -> str | None:
    """A plain sentence when the test accuracy is no better than always answering the most
    frequent class (a run that learnt nothing usable says so, instead of a bare number)."""
    pred, target = predictions
    if accuracy is None or not len(target):
        return None
    counts = torch.bincount(target, minlength=len(names))
    majority = float(counts.max()) / len(target)
    if accuracy > majority + 0.02:
        return None
    said = torch.bincount(pred, minlength=len(names)).argmax()
    return (
        f"at chance: test accuracy {accuracy:.1%} is no better than always answering "
        f"{names[int(counts.argmax())]!r} ({majority:.1%}); the model mostly answers "
        f"{names[int(said)]!r}. More steps, a higher --lr, more labels or a better pretrained "
        "body may help (`minimod lr-find`, `--diagnostics N`)"
    )


def per_class_table(pred: torch.Tensor, target: torch.Tensor, names: tuple[str, ...]) -> str:
    """Precision, recall, F1 and support of every class, and their macro averages."""
    precision, recall, f1 = precision_recall_f1(pred, target, len(names))
    support = torch.bincount(target, minlength=len(names))
    width = max(len("macro avg"), *(len(name) for name in names))
    lines = [f"{'':<{width}}  precision  recall     f1  support"]
    for i, name in enumerate(names):
        lines.append(f"{name:<{width}}  {precision[i]:9.3f}  {recall[i]:6.3f}  {f1[i]:5.3f}  "
                     f"{int(support[i]):7d}")  # fmt: skip
    lines.append(f"{'macro avg':<{width}}  {precision.mean():9.3f}  {recall.mean():6.3f}  "
                 f"{f1.mean():5.3f}  {int(support.sum()):7d}")  # fmt: skip
    return "\n".join(lines)


def evaluate_finetuned(run_dir: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Rebuild a fine-tune run's model from its folder, load best.pt (else last.pt) and report
    the test metrics (writing confusion.txt/.png for classification)."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    kind, task = record["model"], record["task"]
    tokenizer = None
    if (run_dir / lm.TOKENIZER_FILE).is_file():
        tokenizer = lm.read_tokenizer(run_dir)
    config = model_config(kind, record["model_config"], task)
    source = Source(kind, record["source"], config, tokenizer)
    if record["source"] not in BUILT_IN_SOURCES:
        try:
            source.settings = json.loads(
                (Path(record["source"]) / RUN_FILE).read_text(encoding="utf-8")
            ).get("settings", {})
        except OSError:
            pass
    options, settings = {**DEFAULT_OPTIONS, **record["options"]}, record["settings"]
    ready = prepare(kind, task, source, settings, options, record["seed"])
    checkpoint = run_dir / ("best.pt" if (run_dir / "best.pt").is_file() else "last.pt")
    load_weights(ready.model, checkpoint)
    ready.model.to(pick_device(device))
    summary = write_report(ready.model, ready, run_dir, record)
    summary["record"] = record
    return summary
