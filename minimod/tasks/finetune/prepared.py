"""A fine-tune set up from its options: the settings (the model's defaults, the task's, the
command line's), the options checked, and ``prepare``: the model with its pretrained body and
trainable set, the optimizer and schedule, the batches, the loss and the evaluations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minimod.models.boxes import box_iou, box_loss
from minimod.models.loading import load_pretrained
from minimod.nn import functional as F
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks import asr
from minimod.tasks.common import UsageError, device_of
from minimod.tasks.finetune.sources import (
    Source,
    build_model,
    configure_training,
    optimizer_groups,
)
from minimod.tasks.finetune.splits import Split, load_splits, split_batch
from minimod.tasks.presets import ASR_TASKS, FINETUNE, FINETUNE_TASKS, TASK_SETTINGS
from minimod.train.checkpoint import seed_everything
from minimod.train.imbalance import WeightedSampler, class_weights
from minimod.train.metrics import classification_metrics


@dataclass
class Prepared:
    """Everything a fine-tune needs, built from its options."""

    model: Any
    optimizer: Any
    scheduler: Any
    batches: Callable[[int], Any]
    data_state: Any
    loss_fn: Callable[[Any, Any], torch.Tensor]
    evaluate: Callable[..., dict[str, float]]  # on val (picks best.pt)
    # on test (the final report): (metrics, (predicted, true) classes or None for boxes)
    test: Callable[[Any], tuple[dict[str, float], tuple[torch.Tensor, torch.Tensor] | None]]
    class_names: tuple[str, ...]
    callbacks: list[Callable[[Any], Any]]
    eval_metric: str
    report: Any = None
    eval_mode: str = "max"  # best.pt: the highest eval_metric, or "min" (error rates)


def finetune_settings(kind: str, task: str, **overrides: Any) -> dict[str, Any]:
    """The settings of fine-tuning ``kind`` on ``task``: the model's (``presets.FINETUNE``), the
    task's over them (``TASK_SETTINGS``), then every override that is not None (each > 0)."""
    if kind not in FINETUNE_TASKS:
        raise UsageError(f"unknown model {kind!r}; choose one of {', '.join(FINETUNE_TASKS)}")
    if task not in FINETUNE_TASKS[kind]:
        raise UsageError(
            f"unknown task {task!r} for {kind}; choose one of {', '.join(FINETUNE_TASKS[kind])}"
        )
    settings = {**FINETUNE[kind], **TASK_SETTINGS.get(task, {})}
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in settings and name != "imbalance":
            raise UsageError(f"--{name.replace('_', '-')} is not a setting of {task}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {value}")
        settings[name] = value
    settings["warmup_steps"] = min(settings["warmup_steps"], settings["max_steps"])
    return settings


def prepare(
    kind: str, task: str, source: Source, settings: dict[str, Any], options: dict[str, Any],
    seed: int,
) -> Prepared:  # fmt: skip
    """Model (pretrained body + new head, trainable set chosen), optimizer, schedule, data."""
    if task in ASR_TASKS:
        return _prepare_recognizer(kind, task, source, settings, options, seed)
    train, val, test, extra, class_names = load_splits(kind, task, source, settings, seed)
    detect = task == "detect"
    num_labels = 4 if detect else len(class_names)
    model, report, unfreezer, optimizer, scheduler = _model_and_optimizer(
        kind, task, source, settings, options, seed, num_labels
    )
    pad_id = getattr(source.tokenizer, "pad_token_id", 0) or 0
    generator = torch.Generator().manual_seed(seed)
    batch_size = settings["batch_size"]
    n = len(train.targets)
    weights = None
    if not detect and options["class_weights"] == "auto":
        weights = class_weights(train.targets, num_labels, "auto")
    if not detect and options["sampler"] == "weighted":
        sampler = WeightedSampler(train.targets, batch_size, generator=generator)

        def batches(index: int):
            return split_batch(train, sampler.draw(), pad_id)
    else:

        def batches(index: int):
            return split_batch(train, torch.randint(n, (batch_size,), generator=generator), pad_id)

    gamma = options["focal_gamma"]

    def loss_fn(model: Any, batch: tuple) -> torch.Tensor:
        output = forward(model, batch)
        if detect:
            return box_loss(output, batch[-1])
        if options["loss"] == "focal":
            return F.focal_loss(output, batch[-1], gamma=gamma, weight=_on(weights, output))
        return F.cross_entropy(output, batch[-1], weight=_on(weights, output))

    def metrics(output: torch.Tensor, split: Split) -> dict[str, float]:
        if detect:
            iou = box_iou(output, split.targets)
            return {"iou": float(iou.mean()), "hit@0.5": float((iou >= 0.5).float().mean())}
        return classification_metrics(output.argmax(-1), split.targets, num_labels)

    def evaluate(model: Any, batches: int | None = None) -> dict[str, float]:
        return metrics(predict(model, val, pad_id), val)

    def test_report(model: Any):
        """Test metrics, and the test predictions (classification) for the confusion matrix:
        one pass over the test split."""
        output = predict(model, test, pad_id)
        results = metrics(output, test)
        for name, split in extra.items():
            results[f"{name}_accuracy"] = metrics(predict(model, split, pad_id), split)["accuracy"]
        return results, None if detect else (output.argmax(-1), test.targets)

    callbacks = [] if unfreezer is None else [lambda trainer: unfreezer.apply(trainer.step)]
    metric = "iou" if detect else ("macro_f1" if settings.get("imbalance") else "accuracy")
    return Prepared(
        model, optimizer, scheduler, batches, generator, loss_fn, evaluate, test_report,
        class_names, callbacks, metric, report,
    )  # fmt: skip


def _model_and_optimizer(
    kind: str, task: str, source: Source, settings: dict[str, Any], options: dict[str, Any],
    seed: int, num_labels: int,
):  # fmt: skip
    """(model with the pretrained weights loaded, the load report or None, the gradual
    unfreezer or None, AdamW, the warmup-cosine schedule)."""
    seed_everything(seed)
    model = build_model(kind, task, source.config, num_labels, {**settings, **options})
    report = None
    if source.state is not None:
        # A recogniser is fine-tuned whole (only its head is new); classifiers wrap a body.
        target = "" if task in ASR_TASKS else "body."
        report = load_pretrained(model, source.state, source.prefix, target)
    unfreezer = configure_training(model, kind, options)
    optimizer = AdamW(
        optimizer_groups(model, settings["lr"], settings["weight_decay"], options["layer_decay"]),
        lr=settings["lr"],
        foreach=True,  # one call per operation for all parameters: less Python per step
    )
    scheduler = WarmupCosineLR(optimizer, settings["warmup_steps"], settings["max_steps"], 0.1)
    return model, report, unfreezer, optimizer, scheduler


def _prepare_recognizer(
    kind: str, task: str, source: Source, settings: dict[str, Any], options: dict[str, Any],
    seed: int,
) -> Prepared:  # fmt: skip
    """asr-digits: the recogniser (its new head over the ten digits), trained with CTC on
    utterances strung from the training recordings; best.pt by the val WER, the report on
    the test utterances."""
    for name, plain in (("class_weights", "none"), ("sampler", "random"), ("loss", "ce")):
        if options[name] != plain:
            raise UsageError(f"--{name.replace('_', '-')} is for the classification tasks")
    data = asr.digit_splits(settings, seed)
    vocabulary = data.train.vocabulary
    model, report, unfreezer, optimizer, scheduler = _model_and_optimizer(
        kind, task, source, settings, options, seed, len(vocabulary)
    )
    generator = torch.Generator().manual_seed(seed)
    callbacks = [] if unfreezer is None else [lambda trainer: unfreezer.apply(trainer.step)]
    return Prepared(
        model, optimizer, scheduler, asr.batch_maker(data.train, settings, generator), generator,
        asr.loss_fn, lambda model, batches=None: asr.scores(model, data.val),
        lambda model: (asr.scores(model, data.test), None), vocabulary, callbacks, "wer",
        report, eval_mode="min",
    )  # fmt: skip


def _on(weights: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if weights is None else weights.to(like.device, like.dtype)


DEFAULT_OPTIONS: dict[str, Any] = {
    "freeze": "none",
    "unfreeze_every": None,
    "lora_rank": None,
    "lora_alpha": None,
    "layer_decay": None,
    "class_weights": "none",
    "sampler": "random",
    "loss": "ce",
    "focal_gamma": 2.0,
    "pooling": None,
}


def complete_options(settings: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """DEFAULT_OPTIONS with ``options`` over them, the task's pooling when none is given, and
    the options with a fixed set of values checked."""
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise TypeError(f"finetune: unknown options {sorted(unknown)}")
    options = {**DEFAULT_OPTIONS, **options}
    if options["pooling"] is None:
        options["pooling"] = settings["pooling"]
    for name, choices in (("class_weights", ("none", "auto")), ("sampler", ("random", "weighted")),
                          ("loss", ("ce", "focal"))):  # fmt: skip
        if options[name] not in choices:
            raise UsageError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}")
    return options


def forward(model: Any, batch: tuple) -> torch.Tensor:
    """The model's output on a batch: (ids, mask, labels) or (inputs, targets)."""
    if len(batch) == 3:
        return model(batch[0], batch[1])
    return model(batch[0])


def predict(model: Any, split: Split, pad_id: int, size: int = 256) -> torch.Tensor:
    """The model's outputs on a whole split, a chunk at a time (eval mode, no gradients)."""
    device = device_of(model)
    outputs = []
    for start in range(0, len(split.targets), size):
        rows = torch.arange(start, min(start + size, len(split.targets)))
        batch = tuple(t.to(device) for t in split_batch(split, rows, pad_id))
        outputs.append(forward(model, batch).cpu())
    return torch.cat(outputs)
