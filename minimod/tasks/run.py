"""Run folders: ``pretrain`` makes one, ``evaluate`` and ``generate`` read one back.

A run folder holds everything needed to rebuild the model without the command line that
made it:

    run.json        task, preset, data path, every setting (model config included), final metrics
    tokenizer.json  the tokenizer (gpt, bert), made from the training data
    last.pt         the checkpoint after the last step (model, optimizer, schedule, RNGs, data)
    best.pt         the checkpoint of the best evaluation
    config.json     the training loop's and the model's settings (written by Trainer)
    metrics.csv/.jsonl  one row every log_every steps, and one per evaluation
    loss.png        the loss curves (when matplotlib is installed)
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minimod.data.text import BUILTIN_CORPORA
from minimod.models.gpt import GPT
from minimod.nn.recompute import enable_checkpointing
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks import classify, lm
from minimod.tasks.common import TaskData, UsageError
from minimod.tasks.presets import PRESET_NAMES, PRESETS, settings_for
from minimod.train.batches import resolve_device
from minimod.train.checkpoint import CheckpointError, load_checkpoint, seed_everything, to_plain
from minimod.train.config import TrainConfig
from minimod.train.distributed import DistEnv, barrier, detect_env, init_distributed, shutdown
from minimod.train.freezing import decay_groups
from minimod.train.loop import Trainer
from minimod.train.runlog import write_text_atomic

BUILDERS: dict[str, Callable[..., TaskData]] = {
    "gpt": lm.gpt,
    "bert": lm.bert,
    "cnn": classify.cnn,
    "audio": classify.audio,
}
RUN_FILE = "run.json"
# Settings that may change when a run resumes: they do not change what the model learns.
RESUMABLE = ("max_steps", "checkpoint_activations")
# The blocks --checkpoint-activations recomputes in the backward pass, per model.
CHECKPOINTED_BLOCKS: dict[str, Callable[[Any], Any]] = {
    "gpt": lambda model: model.transformer.h,
    "bert": lambda model: model.bert.encoder.layer,
}


def make_settings(task: str, preset: str, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """The preset's settings with the options given on the command line (None = keep)."""
    if task not in PRESETS:
        raise UsageError(f"unknown model {task!r}; choose one of {', '.join(PRESETS)}")
    if preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    settings = settings_for(task, preset)
    features = overrides.pop("features", None)
    if features is not None:
        if task != "audio" or features not in ("log_mel", "mfcc"):
            raise UsageError("--features is for audio: log_mel or mfcc")
        settings["features"] = features
    for name, value in overrides.items():
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {value}")
            settings[name] = value
    settings["seed"] = seed
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    return to_plain(settings)


def _data_name(data: str | None) -> str | None:
    """A built-in corpus's name as it is, a file as its absolute path (runs move folders)."""
    if data is None or data in BUILTIN_CORPORA:
        return data
    return str(Path(data).resolve())


def _tuples(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON gives lists; model configs hold tuples."""
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["model"].items()}
    return {**settings, "model": model}


def _optimizer(model: Any, settings: dict[str, Any]) -> AdamW:
    """AdamW over ``decay_groups``: weight decay on matrices, not on biases or norms' gains."""
    groups = decay_groups(model, settings["weight_decay"])
    # foreach: one call per operation for all parameters (less Python per step), same numbers.
    return AdamW(groups, lr=settings["lr"], betas=tuple(settings["betas"]), foreach=True)


def pretrain(
    task: str,
    preset: str = "tiny",
    data: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    device: str = "auto",
    compile: bool = False,
    precision: str = "fp32",
    checkpoint_activations: bool = False,
    overfit_batch: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    before_training: Callable[[Any, Any], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train ``task`` at ``preset`` into the run folder ``out`` (default runs/TASK-PRESET).

    overrides: max_steps, batch_size, lr, features (audio: log_mel or mfcc) (None keeps the
    preset's). before_training(model,
    tokenizer) is called on the untrained model (the demo samples from it). Returns a summary
    dict: run folder, steps, final metrics, median ms per step, wall seconds, the model.
    """
    start = time.perf_counter()
    if checkpoint_activations and task not in CHECKPOINTED_BLOCKS:
        raise UsageError(
            f"--checkpoint-activations recomputes transformer blocks: gpt and bert have them, "
            f"{task} does not"
        )
    env = _torchrun_env()
    if env is not None:  # launched by torchrun: one process of a data-parallel run
        device = str(init_distributed(env, device))
    main = env is None or env.is_main  # only rank 0 writes and prints
    settings = make_settings(task, preset, seed, **overrides)
    settings["checkpoint_activations"] = checkpoint_activations
    if env is not None and settings["batch_size"] % env.world_size:
        raise UsageError(
            f"--batch-size {settings['batch_size']} is the global batch, split over "
            f"{env.world_size} processes: it must be divisible by {env.world_size}"
        )
    pick_device(device)
    run_dir = Path(out) if out is not None else Path("runs") / f"{task}-{preset}"
    data = _data_name(data)
    record = {"task": task, "preset": preset, "data": data, "settings": settings}
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    if resume:
        check_resume(run_dir, record, ("task", "preset", "data"))
    elif (run_dir / "last.pt").exists() and not overwrite:
        raise UsageError(
            f"{run_dir} already holds a run; add --resume to continue it, or pick another --out"
        )
    wired = BUILDERS[task](_tuples(settings), data, run_dir, fresh=not resume)
    seed_everything(seed)  # before building: the initial weights are repeatable too
    model = wired.build()
    if checkpoint_activations:
        enable_checkpointing(CHECKPOINTED_BLOCKS[task](model))
    optimizer = _optimizer(model, settings)
    schedule = WarmupCosineLR(
        optimizer, settings["warmup_steps"], settings["max_steps"], settings["min_lr_ratio"]
    )
    config = TrainConfig(
        max_steps=settings["max_steps"],
        clip_grad_norm=settings["clip_grad_norm"],
        log_every=min(settings["log_every"], settings["max_steps"]),
        eval_every=settings["eval_every"],
        eval_metric=wired.eval_metric,
        eval_mode=wired.eval_mode,
        checkpoint_every=settings["eval_every"],
        out_dir=str(run_dir),
        seed=seed,
        device=device,
        compile=compile,
        precision=precision,
        data_parallel=env is not None,  # under torchrun: the process group made above
        overfit_batch=overfit_batch,
        progress=progress,
    )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if wired.tokenizer is not None and not resume:
            wired.tokenizer.save(run_dir / lm.TOKENIZER_FILE)
        _write_json(run_dir / RUN_FILE, record)
        processes = "" if env is None else f", {env.world_size} processes"
        log(
            f"{task} ({preset}): {model.num_parameters():,} parameters, run folder {run_dir}"
            + processes
        )
    if before_training is not None:
        before_training(model, wired.tokenizer)
    trainer = Trainer(
        model,
        optimizer,
        wired.batches,
        config,
        loss_fn=wired.loss_fn,
        scheduler=schedule,
        evaluate=wired.evaluate,
        data_state=wired.data_state,
    )
    try:
        result = trainer.fit(resume_from=run_dir / "last.pt" if resume else None)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    if env is not None:  # rank 0 has written its last checkpoint: the processes are done
        barrier()
        shutdown()
    if not main:
        return {"run": str(run_dir), "step": result.step, "main": False}
    final = _final_metrics(model, wired, settings)
    step_ms = [1000 * row["step_time_s"] for row in result.history if "step_time_s" in row]
    summary = {
        "run": str(run_dir),
        "step": result.step,
        "final": final,
        "ms_per_step": statistics.median(step_ms) if step_ms else None,
        "wall_s": time.perf_counter() - start,
    }
    _write_json(run_dir / RUN_FILE, {**record, "final": final})
    summary["plot"] = plot_losses(run_dir)
    summary["main"] = True
    summary["confusion"] = None if wired.confusion is None else wired.confusion(model)
    summary["model"], summary["tokenizer"] = model, wired.tokenizer
    return summary


def _torchrun_env() -> DistEnv | None:
    """torchrun's environment variables (RANK, WORLD_SIZE, ...), or None for one process."""
    try:
        return detect_env()
    except ValueError as error:
        raise UsageError(f"torchrun environment: {error}") from None


def pick_device(name: str) -> torch.device:
    """resolve_device, with a bad name or an unavailable device as a UsageError."""
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--device: {error}") from None


def _final_metrics(model: Any, wired: TaskData, settings: dict[str, Any]) -> dict[str, float]:
    """The held-out metrics of the final model (on more batches than the periodic checks)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = wired.evaluate(model, settings["final_eval_batches"] or None)
    model.train(was_training)
    if settings["final_eval_batches"]:
        metrics["batches"] = settings["final_eval_batches"]
    return metrics


def check_resume(run_dir: Path, record: dict[str, Any], keys: tuple[str, ...]) -> None:
    """A resumed run must be set up like the one it continues: the same ``keys`` of its
    record and the same settings, but for max_steps (which may grow). The warmup is the run's."""
    saved = read_run(run_dir)
    if not (run_dir / "last.pt").is_file():
        raise UsageError(f"cannot resume: {run_dir} has no last.pt checkpoint")
    differences = []
    for key in keys:
        if saved.get(key) != to_plain(record[key]):
            differences.append(f"{key} (run {saved.get(key)!r}, now {to_plain(record[key])!r})")
    old, new = saved.get("settings", {}), to_plain(record["settings"])
    for key in sorted(old.keys() | new.keys()):
        if key not in RESUMABLE and key != "warmup_steps" and old.get(key) != new.get(key):
            differences.append(f"{key} (run {old.get(key)!r}, now {new.get(key)!r})")
    if differences:
        raise UsageError(
            f"cannot resume {run_dir}: its config differs in " + "; ".join(differences)
        )
    record["settings"]["warmup_steps"] = old["warmup_steps"]


# -- reading a run back -------------------------------------------------------------------------
def read_run(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a run folder (no {RUN_FILE}); make one with pretrain")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        model = record["model"] if record.get("kind") == "finetune" else record["task"]
        if model not in BUILDERS or not isinstance(record["settings"], dict):
            raise ValueError(model)
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path} is corrupt ({error!r}); pretrain again") from None
    return record


def load_run(run_dir: str | Path, data: str | None = None, device: str = "cpu"):
    """(record, wired task, model with the last checkpoint's weights) of a run folder."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    if record.get("kind") == "finetune":
        raise UsageError(
            f"{run_dir} is a fine-tune run ({record['model']} on {record['task']}); "
            "load it with minimod.tasks.finetune.evaluate_finetuned"
        )
    device = pick_device(device)
    data = record["data"] if data is None else _data_name(data)
    settings = _tuples(record["settings"])
    try:
        wired = BUILDERS[record["task"]](settings, data, run_dir, fresh=False)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f"{run_dir}: {error}") from None
    model = wired.build()
    try:
        checkpoint = load_checkpoint(run_dir / "last.pt")
        model.load_state_dict(checkpoint["model"])
    except CheckpointError as error:
        raise UsageError(str(error).splitlines()[0]) from None
    except (RuntimeError, KeyError) as error:
        first = str(error).splitlines()[0] if str(error) else repr(error)
        raise UsageError(
            f"{run_dir}/last.pt does not match the model in {RUN_FILE}: {first}"
        ) from None
    model.to(device)
    model.eval()
    return record, wired, model


def evaluate_run(run_dir: str | Path, data: str | None = None, device: str = "cpu"):
    """(metrics, confusion matrix text or None) of a run's final model on held-out data."""
    record, wired, model = load_run(run_dir, data, device)
    metrics = _final_metrics(model, wired, record["settings"])
    return record, metrics, None if wired.confusion is None else wired.confusion(model)


def generate_text(
    model: GPT,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> str:
    """The prompt and the ``max_new_tokens`` tokens sampled after it, as text."""
    for name, value, ok in (
        ("--max-new-tokens", max_new_tokens, max_new_tokens >= 1),
        ("--temperature", temperature, temperature >= 0),
        ("--top-k", top_k, top_k is None or top_k >= 1),
        ("--top-p", top_p, top_p is None or 0 < top_p <= 1),
    ):
        if not ok:
            raise UsageError(f"{name} is out of range: {value}")
    if not prompt:
        raise UsageError("--prompt must hold at least one character")
    try:
        ids = tokenizer.encode(prompt)
    except ValueError as error:
        raise UsageError(f"the prompt cannot be encoded: {error}") from None
    device = next(iter(model.parameters())).device
    idx = torch.tensor([ids], device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    out = model.generate(idx, max_new_tokens, temperature, top_k, top_p, generator=g)
    return tokenizer.decode(out[0].tolist())


# -- files --------------------------------------------------------------------------------------
def _write_json(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(to_plain(value), indent=2) + "\n")


def plot_losses(run_dir: str | Path) -> str:
    """Draw the training and evaluation curves to run_dir/loss.png; return a line saying where,
    or how to get matplotlib when it is missing."""
    run_dir = Path(run_dir)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return (
            "no loss.png: matplotlib is not installed (pip install 'minimod[plot]'); "
            f"the numbers are in {run_dir / 'metrics.csv'}"
        )
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train loss"), ("eval_loss", "held-out loss")):
        points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        if points:
            axes.plot(*zip(*points, strict=True), label=label, marker="." if "eval" in key else "")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(run_dir / "loss.png", dpi=100)
    plt.close(figure)
    return f"loss curves: {run_dir / 'loss.png'}"
