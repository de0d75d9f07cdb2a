"""Run folders: ``pretrain`` (tasks/pretrain.py) makes one; reading one back (``read_run``,
``load_run``, ``load_weights``), ``evaluate`` and ``generate`` are here.

A run folder holds everything needed to rebuild the model without the command line that
made it:

    run.json        task, preset, data path, every setting (model config included), final metrics
    tokenizer.json  the tokenizer (gpt, bert), made from the training data
    last.pt         the checkpoint after the last step (model, optimizer, schedule, RNGs, data)
    best.pt         the checkpoint of the best evaluation
    config.json     the training loop's and the model's settings (written by Trainer)
    metrics.csv/.jsonl  one row every log_every steps, and one per evaluation
    loss.png        the loss curves (when matplotlib is installed)
    run.lock        locked by the process training into the folder (one at a time: runlock.py)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from minimod.data.text import BUILTIN_CORPORA
from minimod.models.gpt import GPT
from minimod.tasks import asr, classify, detect, lm, tts
from minimod.tasks.common import TaskData, UsageError
from minimod.tasks.presets import COMMON
from minimod.train.batches import resolve_device
from minimod.train.checkpoint import CheckpointError, load_checkpoint, to_plain
from minimod.train.runlog import write_text_atomic

BUILDERS: dict[str, Callable[..., TaskData]] = {
    "gpt": lm.gpt,
    "bert": lm.bert,
    "cnn": classify.cnn,
    "audio": classify.audio,
    "asr": asr.asr,
    "asr-digits": asr.asr_digits,
    "asr-espeak": asr.asr_espeak,
    "tts": tts.tts,
    "detect-shapes": detect.detect_shapes,
    "detect-digits": detect.detect_digits,
}
RUN_FILE = "run.json"
# Settings that may change when a run resumes: they do not change what the model learns.
RESUMABLE = ("max_steps", "checkpoint_activations")
# Settings newer than some run folders, and the value those runs trained with.
ADDED_SETTINGS = {"grad_accum": COMMON["grad_accum"]}


def data_name(data: str | None) -> str | None:
    """A built-in corpus's name as it is, a file as its absolute path (runs move folders)."""
    if data is None or data in BUILTIN_CORPORA:
        return data
    return str(Path(data).resolve())


def model_tuples(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON gives lists; model configs hold tuples."""
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["model"].items()}
    return {**settings, "model": model}


def pick_device(name: str) -> torch.device:
    """resolve_device, with a bad name or an unavailable device as a UsageError."""
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--device: {error}") from None


def final_metrics(model: Any, wired: TaskData, settings: dict[str, Any]) -> dict[str, float]:
    """The held-out metrics of the final model (on more batches than the periodic checks)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = wired.evaluate(model, settings["final_eval_batches"] or None)
    model.train(was_training)
    if settings["final_eval_batches"]:
        metrics["batches"] = settings["final_eval_batches"]
    return metrics


def check_resume(
    run_dir: Path, record: dict[str, Any], keys: tuple[str, ...], warmup_steps: int | None = None
) -> None:
    """A resumed run must be set up like the one it continues: the same ``keys`` of its
    record and the same settings, but for ``RESUMABLE`` (max_steps may grow). The warmup is the
    run's: run.json holds it cut to the run's max_steps (``make_settings``), so a bigger
    max_steps alone is no difference; ``warmup_steps``, the --warmup-steps the command line
    gave (None: none), must be the run's once cut to max_steps the same way (so the command
    that started a run resumes it). Every difference is refused in one line naming both values
    and what to do instead."""
    saved = read_run(run_dir)
    if not (run_dir / "last.pt").is_file():
        raise UsageError(f"cannot resume: {run_dir} has no last.pt checkpoint")
    differences = []
    for key in keys:
        if saved.get(key) != to_plain(record[key]):
            differences.append(f"{key} (run {saved.get(key)!r}, now {to_plain(record[key])!r})")
    new = to_plain(record["settings"])
    # A run made before a setting existed trained with its default.
    added = {key: ADDED_SETTINGS[key] for key in ADDED_SETTINGS.keys() & new.keys()}
    old = {**added, **saved.get("settings", {})}
    for key in sorted(old.keys() | new.keys()):
        if key not in RESUMABLE and key != "warmup_steps" and old.get(key) != new.get(key):
            differences.append(f"{key} (run {old.get(key)!r}, now {new.get(key)!r})")
    hint = ""
    if warmup_steps is not None and new["warmup_steps"] != old["warmup_steps"]:
        differences.append(f"warmup_steps (run {old['warmup_steps']!r}, now {warmup_steps!r})")
        hint = " (leave out --warmup-steps to keep the run's schedule)"
    if differences:
        raise UsageError(
            f"cannot resume {run_dir}: its config differs in {'; '.join(differences)}; resume "
            f"with the options the run was made with{hint}, or start a new run with another --out"
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
    except ValueError as error:
        raise UsageError(f"{path} is corrupt ({error}); pretrain again") from None
    problem = _record_problem(record)
    if problem is not None:
        raise UsageError(f"{path} is corrupt ({problem}); pretrain again")
    return record


# The keys a run.json must hold, and their types, by run kind.
RECORD_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "pretrain": {"task": str, "preset": str, "data": (str, type(None)), "settings": dict},
    "finetune": {
        "model": str, "task": str, "source": str, "seed": int, "options": dict,
        "settings": dict, "model_config": dict,
    },
}  # fmt: skip


def _record_problem(record: Any) -> str | None:
    """What is wrong with the shape of a parsed run.json, or None."""
    if not isinstance(record, dict):
        return f"it holds a {type(record).__name__}, not an object"
    kind = "finetune" if record.get("kind") == "finetune" else "pretrain"
    for key, kinds in RECORD_KEYS[kind].items():
        if key not in record:
            return f"no {key!r}"
        if not isinstance(record[key], kinds):
            return f"{key!r} is a {type(record[key]).__name__}"
    model = record["model"] if kind == "finetune" else record["task"]
    if model not in BUILDERS:
        return f"unknown model {model!r}"
    if kind == "pretrain" and not isinstance(record["settings"].get("model"), dict):
        return "no model settings"
    return None


def is_domain_mlm(record: Mapping[str, Any]) -> bool:
    """Whether ``record`` (a run.json) is a domain-adaptive MLM run's (``tasks.domain_mlm``):
    MiniLM on a VADER domain, whose held-out text is no corpus a task of ``BUILDERS`` reads."""
    return record.get("kind") != "finetune" and record.get("source") == "minilm"


def load_run(run_dir: str | Path, data: str | None = None, device: str = "cpu"):
    """(record, wired task, model with the last checkpoint's weights) of a run folder."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    if record.get("kind") == "finetune":
        raise UsageError(
            f"{run_dir} is a fine-tune run ({record['model']} on {record['task']}); "
            "load it with minimod.tasks.finetune.evaluate_finetuned"
        )
    if is_domain_mlm(record):
        raise UsageError(
            f"{run_dir} is a domain-adaptive MLM run (MiniLM on {record.get('domain')}): "
            f"`minimod evaluate --from {run_dir}` reports its held-out loss "
            "(minimod.tasks.domain_mlm.evaluate_domain_run), `minimod finetune bert --from "
            f"{run_dir}` fine-tunes it"
        )
    device = pick_device(device)
    data = record["data"] if data is None else data_name(data)
    settings = model_tuples(record["settings"])
    try:
        wired = BUILDERS[record["task"]](settings, data, run_dir, fresh=False)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f"{run_dir}: {error}") from None
    model = wired.build()
    load_weights(model, run_dir / "last.pt")
    model.to(device)
    model.eval()
    return record, wired, model


def load_weights(model: Any, path: Path, key: str = "model") -> dict[str, Any]:
    """Load the ``key`` weights of the checkpoint at ``path`` into ``model`` (strictly), with
    every refusal one line: unreadable, of another model (keys, shapes), or not finite (a
    diverged run). Returns the checkpoint."""
    try:
        checkpoint = load_checkpoint(path)
        state = checkpoint[key]
        model.load_state_dict(state)
    except CheckpointError as error:
        raise UsageError(one_line(error)) from None
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{path} does not match the model: {one_line(error)}") from None
    check_finite(state, path)
    return checkpoint


def one_line(error: BaseException) -> str:
    """The first line of ``error``'s message that says something (not a heading ending in a
    colon, as "Error loading state_dict into GPT:"): one line for the terminal."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = [line for line in lines if not line.endswith(":")] or lines or [repr(error)]
    return said[0]


def check_finite(state: Mapping[str, Any], path: Path) -> None:
    """Refuse weights holding nan or inf: the run that wrote them diverged."""
    for name, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            raise UsageError(
                f"{path} holds non-finite weights ({name}): the run diverged; train it again "
                "with a lower --lr"
            )


def evaluate_run(run_dir: str | Path, data: str | None = None, device: str = "cpu"):
    """(metrics, confusion matrix text or None) of a run's final model on held-out data."""
    record, wired, model = load_run(run_dir, data, device)
    metrics = final_metrics(model, wired, record["settings"])
    undefined = [name for name, value in metrics.items() if not math.isfinite(value)]
    if undefined:
        raise UsageError(
            f"the {' and '.join(undefined)} of {run_dir} on {data or 'its data'} "
            f"{'is not a number' if len(undefined) == 1 else 'are not numbers'}: the model "
            "cannot read this text (no token it knows to score)"
        )
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
def write_json(path: Path, value: Any) -> None:
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
