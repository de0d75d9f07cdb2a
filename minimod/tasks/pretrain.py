"""``pretrain``: train a model from scratch into a run folder (see ``tasks.run`` for the folder).

The preset's settings and the command line's overrides, the model the task builds, AdamW over
``decay_groups`` with warmup + cosine, the Trainer, and around it what a command must guarantee:
one process per run folder (``run.lock``), Ctrl-C saves (``stop_on_signals``), and every failure
of the input one line (``training_refusals``).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from minimod.nn.recompute import enable_checkpointing
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks import lm
from minimod.tasks.common import UsageError
from minimod.tasks.presets import PRESET_NAMES, PRESETS, TTS_CORPORA, settings_for
from minimod.tasks.run import (
    BUILDERS,
    RUN_FILE,
    check_resume,
    data_name,
    final_metrics,
    load_weights,
    model_tuples,
    one_line,
    pick_device,
    plot_losses,
    write_json,
)
from minimod.tasks.runlock import run_folder_lock
from minimod.train.checkpoint import CheckpointError, seed_everything, to_plain
from minimod.train.config import TrainConfig, TrainResult
from minimod.train.diagnostics import Diagnostics
from minimod.train.distributed import DistEnv, barrier, detect_env, init_distributed, shutdown
from minimod.train.freezing import decay_groups
from minimod.train.interrupt import stop_on_signals
from minimod.train.loop import Trainer

# The blocks --checkpoint-activations recomputes in the backward pass, per model.
CHECKPOINTED_BLOCKS: dict[str, Callable[[Any], Any]] = {
    "gpt": lambda model: model.transformer.h,
    "bert": lambda model: model.bert.encoder.layer,
}


# --n-layer, --n-head, --n-embd, --block-size: the field of each transformer's model config they
# set. bert's block_size is a setting beside its model config (its max_position_embeddings).
SHAPE_OPTIONS = ("n_layer", "n_head", "n_embd", "block_size")
SHAPE_FIELDS: dict[str, dict[str, str]] = {
    "gpt": {name: name for name in SHAPE_OPTIONS},
    "bert": {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
             "n_embd": "hidden_size"},
}  # fmt: skip
# The settings that may be 0 (no warmup, no weight decay); every other one must be > 0.
MAY_BE_ZERO = ("warmup_steps", "weight_decay")


def make_settings(task: str, preset: str, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """The preset's settings with the options given on the command line (None = keep).

    overrides: any numeric setting of the preset (max_steps, batch_size, lr, warmup_steps,
    weight_decay, grad_accum, eval_batches, ...), and for gpt and bert the model's shape
    (``SHAPE_OPTIONS``); features, corpus, spec_augment for the tasks that have them.
    """
    if task not in PRESETS:
        raise UsageError(f"unknown model {task!r}; choose one of {', '.join(PRESETS)}")
    if preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    settings = settings_for(task, preset)
    features = overrides.pop("features", None)
    if features is not None:
        # asr-digits reads the dataset's own 13 MFCCs: only the synthetic clips have a choice.
        if task not in ("audio", "asr") or features not in ("log_mel", "mfcc"):
            raise UsageError("--features is for audio's keywords and asr tasks: log_mel or mfcc")
        settings["features"] = features
    corpus = overrides.pop("corpus", None)
    if corpus is not None:
        if task != "tts" or corpus not in TTS_CORPORA:
            raise UsageError(f"--corpus is for tts: one of {', '.join(TTS_CORPORA)}")
        settings["corpus"] = corpus
    spec_augment = overrides.pop("spec_augment", None)
    if spec_augment is not None:
        if "spec_augment" not in settings:
            raise UsageError(
                "--spec-augment is for the speech-recognition tasks (asr, asr-digits, asr-espeak)"
            )
        settings["spec_augment"] = bool(spec_augment)
    shape = {name: overrides.pop(name) for name in SHAPE_OPTIONS if overrides.get(name) is not None}
    for name, value in overrides.items():
        if value is not None:
            if name not in settings:
                raise TypeError(f"make_settings: {task} has no setting {name!r}")
            settings[name] = _checked(name, value, settings[name])
    if shape:
        settings["model"] = _shaped(task, settings, shape)
    if task in SHAPE_FIELDS:
        fields = SHAPE_FIELDS[task]
        heads, width = settings["model"][fields["n_head"]], settings["model"][fields["n_embd"]]
        if width % heads:
            raise UsageError(
                f"--n-embd {width} must be divisible by --n-head {heads} (each head gets "
                "n_embd / n_head of the width)"
            )
    settings["seed"] = seed
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    return to_plain(settings)


def _checked(name: str, value: Any, preset_value: Any) -> Any:
    """``value`` for the setting ``name`` (whose preset value is ``preset_value``), or a
    UsageError: a whole number where the preset has one, finite, ≥ 0 or > 0."""
    option = f"--{name.replace('_', '-')}"
    whole = isinstance(preset_value, int) and not isinstance(preset_value, bool)
    if whole and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{option} must be a whole number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and name not in MAY_BE_ZERO):
        bound = "≥ 0" if name in MAY_BE_ZERO else "> 0"
        raise UsageError(f"{option} must be {bound}, got {value}")
    return value


def _shaped(task: str, settings: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    """The model settings with the shape options (--n-layer, ...) of a gpt or bert over the
    preset's; bert's --block-size goes to ``settings`` itself."""
    if task not in SHAPE_FIELDS:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in shape)
        raise UsageError(f"{options}: the model's shape options are for gpt and bert, not {task}")
    model = dict(settings["model"])
    for name, value in shape.items():
        value = _checked(name, value, 1)
        field = SHAPE_FIELDS[task].get(name)
        if field is None:  # bert's block_size
            settings[name] = value
        elif task == "bert" and name == "n_embd":
            # The feed-forward layer keeps the preset's ratio to the width (2× tiny, 4× others).
            ratio = model["intermediate_size"] // model[field]
            model.update({field: value, "intermediate_size": ratio * value})
        else:
            model[field] = value
    return model


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
    diagnostics: int | None = None,
    init: str | Path | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train ``task`` at ``preset`` into the run folder ``out`` (default runs/TASK-PRESET).

    overrides: ``make_settings``'s (max_steps, batch_size, lr, warmup_steps, weight_decay,
    grad_accum, ...; gpt and bert: n_layer, n_head, n_embd, block_size; features (audio, asr:
    log_mel or mfcc), spec_augment (asr tasks: True/False); None keeps the preset's). All of
    them go to run.json's settings, which rebuild the model. before_training(model,
    tokenizer) is called on the untrained model (the demo samples from it; ``pretrain cnn
    --init RUN`` loads a detector's body there); init: the run those weights came from,
    recorded in run.json. diagnostics N:
    watch one step in every N (``train.diagnostics``: diagnostics.jsonl). Returns a summary
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
    data = data_name(data)
    record = {"task": task, "preset": preset, "data": data, "settings": settings}
    if init is not None:
        record["init"] = str(Path(init).resolve())
    with run_folder_lock(run_dir) if main else contextlib.nullcontext():
        if resume:
            # settings hold a warmup either way (the preset's): check_resume needs the option's
            check_resume(run_dir, record, ("task", "preset", "data"), overrides.get("warmup_steps"))
        elif (run_dir / "last.pt").exists() and not overwrite:
            raise UsageError(
                f"{run_dir} already holds a run; add --resume to continue it, or pick another --out"
            )
        wired = BUILDERS[task](model_tuples(settings), data, run_dir, fresh=not resume)
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
            grad_accum_steps=settings["grad_accum"],
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
            if wired.tokenizer is not None and not resume:
                wired.tokenizer.save(run_dir / lm.TOKENIZER_FILE)
            write_json(run_dir / RUN_FILE, record)
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
            callbacks=[] if not diagnostics or not main else [Diagnostics(diagnostics, run_dir)],
        )
        result = fit_run(
            trainer, run_dir, resume, f"a batch of {settings['batch_size']} at preset {preset}"
        )
        if env is not None:  # rank 0 has written its last checkpoint: the processes are done
            barrier()
            shutdown()
        if not main:
            return {"run": str(run_dir), "step": result.step, "main": False}
        final = final_metrics(model, wired, settings)
        step_ms = [1000 * row["step_time_s"] for row in result.history if "step_time_s" in row]
        summary = {
            "run": str(run_dir),
            "step": result.step,
            "final": final,
            "ms_per_step": statistics.median(step_ms) if step_ms else None,
            "wall_s": time.perf_counter() - start,
        }
        write_json(run_dir / RUN_FILE, {**record, "final": final})
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


def fit_run(trainer: Trainer, run_dir: Path, resume: bool, batch: str) -> TrainResult:
    """``trainer.fit()`` into ``run_dir`` as every training command runs it: with ``resume``,
    RUN/last.pt's weights first (a checkpoint of another model is refused in one line before
    any training) and the fit continues from it; Ctrl-C or SIGTERM finishes the step, saves
    last.pt and raises Interrupted; failures on the input are one line (``training_refusals``,
    ``batch`` naming the batch tried)."""
    if resume:
        load_weights(trainer.model, run_dir / "last.pt")
    with training_refusals(batch, run_dir), stop_on_signals(trainer.stop):
        return trainer.fit(resume_from=run_dir / "last.pt" if resume else None)


@contextlib.contextmanager
def training_refusals(batch: str, run_dir: Path) -> Iterator[None]:
    """Turn the ways a training run fails on its input into one-line UsageErrors: a checkpoint
    that cannot be used, a run folder that cannot be written (a full disk: the previous
    checkpoint survives, writes are atomic), a diverged loss, a batch too large for memory
    (``batch`` says which batch was tried, e.g. "a batch of 12 at preset baby")."""
    try:
        yield
    except CheckpointError as error:
        raise UsageError(one_line(error)) from None
    except BrokenPipeError:  # stdout went away: the command line's to handle
        raise
    except OSError as error:  # a write in the middle of a file names no file: name the folder
        where = error.filename or run_dir
        raise UsageError(f"cannot write {where}: {error.strerror or error}") from None
    except FloatingPointError as error:  # the Trainer's non-finite loss
        raise UsageError(str(error)) from None
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        raise UsageError(
            f"{batch} does not fit in memory ({type(error).__name__}); try a smaller --batch-size"
        ) from None


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (CPU or GPU)."""
    text = str(error)
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or any(
        words in text for words in ("not enough memory", "DefaultCPUAllocator", "out of memory")
    )
