"""``finetune``: a fine-tune run from start to report -- settings, source, set-up, the training
loop of pretraining (``train.Trainer``), the test report, and a LoRA run's adapter file."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minimod.nn.lora import lora_state_dict
from minimod.tasks import lm
from minimod.tasks.common import UsageError
from minimod.tasks.finetune.prepared import complete_options, finetune_settings, prepare
from minimod.tasks.finetune.report import write_report
from minimod.tasks.finetune.sources import BUILT_IN_SOURCES, read_source
from minimod.tasks.presets import DETECT_TASKS
from minimod.tasks.pretrain import fit_run
from minimod.tasks.run import (
    RUN_FILE,
    check_resume,
    pick_device,
    plot_losses,
)
from minimod.tasks.runlock import run_folder_lock
from minimod.train.checkpoint import load_checkpoint, save_checkpoint, to_plain
from minimod.train.config import TrainConfig
from minimod.train.diagnostics import Diagnostics
from minimod.train.freezing import count_parameters
from minimod.train.loop import Trainer
from minimod.train.runlog import write_text_atomic


def finetune(
    kind: str,
    source: str,
    task: str,
    *,
    preset: str = "tiny",
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
    labels: int | None = None,
    imbalance: float | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    spec_augment: bool | None = None,
    diagnostics: int | None = None,
    domain: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune ``kind`` from ``source`` (a run folder or "scratch") on ``task`` into ``out``
    (default runs/finetune-KIND-TASK). options: see DEFAULT_OPTIONS. Returns a summary: run
    folder, test metrics, trainable/total parameters, wall seconds, the model. diagnostics N:
    watch one step in every N (``train.diagnostics``). domain: sentiment-real's VADER domain
    (movies, amazon, nyt, tweets; the others are tested too). A detection task (detect-digits)
    is ``tasks.detect_images.finetune_detector``'s."""
    if task in DETECT_TASKS:  # a Detector: a detection run folder (tasks.detect_images)
        # Imported here: detect_images reads finetune.sources, whose package imports this module.
        from minimod.tasks.detect_images import finetune_detector

        return finetune_detector(
            kind, source, task, preset=preset, out=out, resume=resume, overwrite=overwrite,
            seed=seed, device=device, progress=progress, log=log, labels=labels,
            imbalance=imbalance, max_steps=max_steps, batch_size=batch_size, lr=lr,
            spec_augment=spec_augment, diagnostics=diagnostics, domain=domain, **options,
        )  # fmt: skip
    start = time.perf_counter()
    settings = finetune_settings(
        kind, task, n_train=labels, imbalance=imbalance, max_steps=max_steps,
        batch_size=batch_size, lr=lr, spec_augment=spec_augment, domain=domain,
    )  # fmt: skip
    options = complete_options(settings, options)
    pick_device(device)
    run_dir = Path(out) if out is not None else Path("runs") / f"finetune-{kind}-{task}"
    src = read_source(kind, source, preset, task)
    record = {
        "kind": "finetune", "model": kind, "task": task,
        "source": src.name if src.name in BUILT_IN_SOURCES else str(Path(src.name).resolve()),
        "preset": preset if source == "scratch" else None, "seed": seed,
        "options": options, "settings": settings, "model_config": to_plain(src.config),
    }  # fmt: skip
    with run_folder_lock(run_dir):
        if resume:
            check_resume(run_dir, record, ("model", "task", "source", "preset", "seed", "options"))
        elif (run_dir / "last.pt").exists() and not overwrite:
            raise UsageError(
                f"{run_dir} already holds a run; add --resume to continue it, or pick another --out"
            )
        ready = prepare(kind, task, src, settings, options, seed)
        model = ready.model
        trainable, total = count_parameters(model)
        write_text_atomic(run_dir / RUN_FILE, json.dumps(to_plain(record), indent=2) + "\n")
        if src.tokenizer is not None:
            src.tokenizer.save(run_dir / lm.TOKENIZER_FILE)
        trains = f"{trainable:,} of {total:,} parameters train"
        log(f"finetune {kind} on {task} from {src.name}: {trains}")
        if ready.report is not None and not resume:
            write_text_atomic(run_dir / "load_report.txt", str(ready.report) + "\n")
            log(
                f"pretrained weights: {ready.report.summary()} (details: {run_dir}/load_report.txt)"
            )
        config = TrainConfig(
            max_steps=settings["max_steps"], clip_grad_norm=1.0,
            log_every=min(10, settings["max_steps"]), eval_every=settings["eval_every"],
            eval_metric=ready.eval_metric, eval_mode=ready.eval_mode,
            checkpoint_every=settings["eval_every"], out_dir=str(run_dir), seed=seed,
            device=device, progress=progress,
        )  # fmt: skip
        watched = [Diagnostics(diagnostics, run_dir)] if diagnostics else []
        trainer = Trainer(
            model, ready.optimizer, ready.batches, config, loss_fn=ready.loss_fn,
            scheduler=ready.scheduler, evaluate=ready.evaluate, data_state=ready.data_state,
            model_config=src.config, callbacks=ready.callbacks + watched,
        )  # fmt: skip
        batch = f"a batch of {settings['batch_size']} for {kind} from {src.name}"
        result = fit_run(trainer, run_dir, resume, batch)
        # The final report: best.pt's weights (picked on val) on the held-out test split.
        if (run_dir / "best.pt").is_file():
            model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
        summary = write_report(model, ready, run_dir, record)
        step_ms = [1000 * row["step_time_s"] for row in result.history if "step_time_s" in row]
        summary.update(
            step=result.step, trainable=trainable, total=total, wall_s=time.perf_counter() - start,
            ms_per_step=statistics.median(step_ms) if step_ms else None, model=model,
            best_step=result.best_step,
        )  # fmt: skip
        if options["lora_rank"]:
            adapter = lora_state_dict(model, extra=("head.*",))
            save_checkpoint(
                {"adapter": adapter, "source": record["source"]}, run_dir / "adapter.pt"
            )
            summary["adapter_bytes"] = (run_dir / "adapter.pt").stat().st_size
        summary["plot"] = plot_losses(run_dir)
        return summary
