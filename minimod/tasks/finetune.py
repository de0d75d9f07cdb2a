"""Fine-tuning: a pretrained body (a pretrain run's checkpoint, or ``scratch``), a new head,
and a task, trained with the same loop as pretraining.

    model  task        data (synthetic, seeded; see data/README.md)          head
    bert   sentiment   labelled reviews: train (seeded draw), val, test       SequenceClassifier
    gpt    sentiment   the same                                               SequenceClassifier
    cnn    shapes      shape images, classes as in pretraining                FeatureClassifier
    cnn    detect      the same images, one bounding box each                 BoxRegressor
    audio  keywords    the three keywords audio pretraining never heard       FeatureClassifier

The options are the practical questions of fine-tuning: which layers train (``freeze``: none,
body = linear probe, or a name pattern; ``unfreeze_every``: gradual unfreezing from the top;
``lora_rank``: low-rank adapters instead of the weights), how fast each layer learns
(``layer_decay``), how many labels (``labels``), and what to do about imbalance
(``imbalance`` 1:R, ``class_weights``, ``sampler``, ``loss`` = focal).

A fine-tune run folder holds run.json (kind "finetune", the source, every option and setting),
tokenizer.json (text tasks), load_report.txt (which pretrained tensors were loaded, which were
skipped and why), last.pt / best.pt, metrics.csv/.jsonl, loss.png, and for classification
confusion.txt/.png; a LoRA run also writes adapter.pt: the adapters and the head only.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minimod.data import (
    CharTokenizer,
    keyword_features,
    load_tokenizer,
    make_reviews,
    make_shapes,
    pad_sequences,
)
from minimod.data.wordpiece import WordPieceTokenizer
from minimod.models.bert import BERT, BERTConfig
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.models.heads import (
    BoxRegressor,
    FeatureClassifier,
    SequenceClassifier,
    box_iou,
    box_loss,
    load_pretrained,
)
from minimod.nn import functional as F
from minimod.nn.lora import apply_lora, lora_state_dict
from minimod.optim import AdamW
from minimod.optim.lr_scheduler import WarmupCosineLR
from minimod.tasks import lm
from minimod.tasks.classify import NEW_WORDS
from minimod.tasks.common import UsageError, device_of
from minimod.tasks.presets import (
    FINETUNE,
    FINETUNE_TASKS,
    PRESET_NAMES,
    TASK_SETTINGS,
    settings_for,
)
from minimod.tasks.run import check_resume, pick_device, plot_losses, read_run
from minimod.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    to_plain,
)
from minimod.train.config import TrainConfig
from minimod.train.finetune import (
    GradualUnfreezer,
    WeightedSampler,
    class_weights,
    count_parameters,
    freeze,
    layer_stages,
    linear_probe,
    param_groups,
    unfreeze,
)
from minimod.train.loop import Trainer
from minimod.train.metrics import (
    classification_metrics,
    confusion_matrix,
    format_confusion_matrix,
    plot_confusion_matrix,
    precision_recall_f1,
)
from minimod.train.runlog import write_text_atomic

RUN_FILE = "run.json"
SHAPES_SEEDS = {"train": 10, "val": 2, "test": 3}  # pretraining used seeds 0 and 1
# The Linear layers LoRA wraps in each body: attention and MLP projections.
LORA_TARGETS = {
    "gpt": ("*.c_attn", "*.c_proj", "*.c_fc"),
    "bert": ("*.query", "*.key", "*.value", "*.dense"),
}


@dataclass
class Source:
    """Where the body comes from: its model config, tokenizer and weights (None = scratch)."""

    kind: str
    name: str  # "scratch" or the run folder
    config: Any
    tokenizer: Any = None
    state: dict[str, torch.Tensor] | None = None
    prefix: str = ""  # where the body's keys start in ``state``
    settings: dict[str, Any] = field(default_factory=dict)  # the source run's settings


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


# -- the source ---------------------------------------------------------------------------------
def _config(kind: str, plain: dict[str, Any]) -> Any:
    plain = {k: tuple(v) if isinstance(v, list) else v for k, v in plain.items()}
    classes = {"bert": BERTConfig, "gpt": GPTConfig, "cnn": ResNetConfig, "audio": AudioCNNConfig}
    return classes[kind](**plain)


def _scratch_tokenizer(kind: str, settings: dict[str, Any]) -> Any:
    """The tokenizer a pretrain run on the reviews corpus would make (so scratch and pretrained
    models read the same ids)."""
    train_text, val_text = lm.read_text("reviews", kind)
    if kind == "bert":
        return lm.train_wordpiece(train_text, settings["max_words"])
    return CharTokenizer.train(train_text + val_text)


def _minilm_source(kind: str) -> Source:
    """all-MiniLM-L6-v2, the real pretrained BERT that `make real` installs."""
    from minimod.models.pretrained import MissingExtraError, read_pretrained

    if kind != "bert":
        raise UsageError(f"--from minilm is a BERT: use `minimod finetune bert`, not {kind}")
    try:
        config, tokenizer, state = read_pretrained("minilm")
    except MissingExtraError as error:
        raise UsageError(str(error).splitlines()[0]) from None
    return Source(kind, "minilm", config, tokenizer, state, "", {})


def read_source(kind: str, source: str, preset: str = "tiny", task: str | None = None) -> Source:
    """The body's config, tokenizer and weights: ``source`` is a run folder (pretrain or
    fine-tune, of the same model kind), ``"minilm"`` (the real all-MiniLM-L6-v2, for bert) or
    ``"scratch"`` (the ``preset``'s architecture, fresh weights)."""
    if source == "minilm":
        return _minilm_source(kind)
    if source == "scratch":
        if preset not in PRESET_NAMES:
            raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
        settings = settings_for(kind, preset)
        model = dict(settings["model"])
        tokenizer = None
        if kind == "bert":
            tokenizer = _scratch_tokenizer(kind, settings)
            config = BERTConfig(
                vocab_size=tokenizer.vocab_size,
                max_position_embeddings=settings["block_size"],
                pad_token_id=tokenizer.pad_token_id,
                **model,
            )
        elif kind == "gpt":
            tokenizer = _scratch_tokenizer(kind, settings)
            config = GPTConfig(vocab_size=tokenizer.vocab_size, **model)
        elif kind == "cnn":
            config = ResNetConfig(in_channels=3, num_classes=6, **model)
        else:
            n_features = 13 if task == "spoken-digits" else 40  # MFCCs, or log-mel bands
            config = AudioCNNConfig(n_features=n_features, num_classes=5, **model)
        return Source(kind, "scratch", config, tokenizer, None, "", to_plain(settings))
    run = Path(source)
    record = read_run(run)
    finetuned = record.get("kind") == "finetune"
    source_kind = record["model"] if finetuned else record["task"]
    if source_kind != kind:
        raise UsageError(f"--from {run} is a {source_kind} run; finetune {kind} needs a {kind} run")
    try:
        saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
        config = _config(kind, record["model_config"] if finetuned else saved["model"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{run}: cannot read the model's config ({error!r})") from None
    tokenizer = None
    if kind in ("bert", "gpt"):
        try:
            tokenizer = load_tokenizer(run / lm.TOKENIZER_FILE)
        except (OSError, ValueError) as error:
            raise UsageError(f"{run}: cannot read {lm.TOKENIZER_FILE} ({error})") from None
    checkpoint = run / ("best.pt" if finetuned and (run / "best.pt").is_file() else "last.pt")
    try:
        state = load_checkpoint(checkpoint)["model"]
    except (CheckpointError, OSError, KeyError) as error:
        raise UsageError(f"{checkpoint}: {str(error).splitlines()[0]}") from None
    prefix = "body." if finetuned else ("bert." if kind == "bert" else "")
    return Source(kind, str(run), config, tokenizer, state, prefix, record.get("settings", {}))


# -- the model ----------------------------------------------------------------------------------
def build_model(kind: str, task: str, config: Any, num_labels: int, options: dict[str, Any]):
    """The body of ``kind`` with the head of ``task`` (fresh weights everywhere)."""
    if kind == "bert":
        body = BERT(config, add_pooling_layer=False)
    elif kind == "gpt":
        body = GPT(config)
    elif kind == "cnn":
        body = ResNet(config)
    else:
        body = AudioCNN(config)
    if task in ("sentiment", "sentiment-real"):
        return SequenceClassifier(body, num_labels, options["pooling"], options["dropout"])
    if task == "detect":
        return BoxRegressor(body)
    return FeatureClassifier(body, num_labels, options["dropout"])


def configure_training(model: Any, kind: str, options: dict[str, Any]) -> GradualUnfreezer | None:
    """Which parameters train: LoRA adapters (+ head), a frozen body (linear probe), a frozen
    pattern, or gradual unfreezing from the top. Returns the unfreezer when there is one."""
    if options["lora_rank"]:
        if kind not in LORA_TARGETS:
            raise UsageError(f"--lora-rank is for the transformers (bert, gpt), not {kind}")
        rank = options["lora_rank"]
        apply_lora(model, LORA_TARGETS[kind], rank=rank, alpha=options["lora_alpha"] or 2 * rank)
        unfreeze(model, "head.*")
    freezing = options["freeze"]
    if freezing == "body":
        linear_probe(model, head="head", batchnorm_eval=True)
    elif freezing not in ("none", None):
        try:
            freeze(model, freezing)
        except ValueError as error:
            raise UsageError(f"--freeze {freezing}: {error}") from None
    if options["unfreeze_every"]:
        if freezing not in ("none", None) or options["lora_rank"]:
            raise UsageError("--unfreeze-every unfreezes layer by layer: drop --freeze/--lora-rank")
        unfreezer = GradualUnfreezer(model, layer_stages(model), options["unfreeze_every"])
        unfreezer.apply(0)
        return unfreezer
    return None


# -- the data -----------------------------------------------------------------------------------
def _take_ratio(items: list, labels: list[int], n: int, ratio: float | None) -> list[int]:
    """Indices of the first ``n`` items, or with ``ratio`` R of the first items so that class 0
    outnumbers class 1 by R : 1 (n in all)."""
    if ratio is None:
        return list(range(min(n, len(items))))
    minority = max(1, round(n / (ratio + 1)))
    wanted = {0: n - minority, 1: minority}
    chosen = []
    for index, label in enumerate(labels):
        if wanted.get(label, 0) > 0:
            chosen.append(index)
            wanted[label] -= 1
    return chosen


def _reviews(n: int, seed: int, split: str, ratio: float | None) -> list[tuple[str, int]]:
    pool = make_reviews(n if ratio is None else 2 * n + 10, seed, split)
    return [pool[i] for i in _take_ratio(pool, [y for _, y in pool], n, ratio)]


def _encode_texts(tokenizer: Any, texts: list[str], max_length: int, kind: str) -> list:
    encoded = []
    for text in texts:
        try:
            ids = tokenizer.encode(text)
        except ValueError as error:
            message = f"the task's text cannot be encoded with the run's tokenizer: {error}"
            raise UsageError(message) from None
        # BERT keeps the start ([CLS] ...); GPT keeps the end (its last token is the summary).
        encoded.append(ids[:max_length] if kind == "bert" else ids[-max_length:])
    return encoded


@dataclass
class Split:
    inputs: Any  # a tensor, or a list of token-id lists
    targets: torch.Tensor  # class labels (N,) or boxes (N, 4)


def load_splits(kind: str, task: str, source: Source, settings: dict[str, Any], seed: int):
    """(train, val, test, {name: extra test split}, class names) of a task, with
    ``settings["n_train"]`` labelled training examples."""
    n_train, n_val, n_test = settings["n_train"], settings["n_val"], settings["n_test"]
    ratio = settings.get("imbalance")
    if task == "sentiment":  # the synthetic reviews
        tokenizer = source.tokenizer
        if isinstance(tokenizer, WordPieceTokenizer):
            max_length = source.config.max_position_embeddings
        else:
            max_length = source.config.block_size
        # val picks best.pt; test is an independent draw of the same distribution; the
        # "test" split of make_reviews holds out compositions ("not" + adjectives it never
        # negates in training): reported as compositional_accuracy, a harder question.
        splits = []
        for n, split_seed, split in (
            (n_train, seed, "train"),
            (n_val, 0, "val"),
            (n_test, 1, "val"),
            (n_test, 0, "test"),
        ):
            rows = _reviews(n, split_seed, split, ratio)
            ids = _encode_texts(tokenizer, [text for text, _ in rows], max_length, kind)
            splits.append(Split(ids, torch.tensor([y for _, y in rows])))
        train, val, test, compositional = splits
        return train, val, test, {"compositional": compositional}, ("negative", "positive")
    if task in REAL_TASKS:
        return _real_splits(kind, task, source, settings, seed)
    if task in ("shapes", "detect"):
        size = source.settings.get("image_size") or settings_for("cnn", "tiny")["image_size"]
        parts = []
        for n, name in ((n_train, "train"), (n_val, "val"), (n_test, "test")):
            data = make_shapes(n, seed=SHAPES_SEEDS[name] + (seed if name == "train" else 0),
                               size=size)  # fmt: skip
            parts.append(Split(data.images, data.boxes if task == "detect" else data.labels))
        return (*parts, {}, data.class_names)
    parts = []
    kind = "mfcc" if source.config.n_features == 13 else "log_mel"  # as the body was trained
    for n, name in ((n_train, "train"), (n_val, "val"), (n_test, "test")):
        data = keyword_features(n, seed=SHAPES_SEEDS[name] + (seed if name == "train" else 0),
                                kind=kind, words=NEW_WORDS)  # fmt: skip
        parts.append(Split(data.features, data.labels))
    return (*parts, {}, tuple(NEW_WORDS))


REAL_TASKS = ("sentiment-real", "digits", "spoken-digits")


def _subset(n: int | None, total: int, seed: int) -> torch.Tensor:
    """All ``total`` rows, or a seeded random ``n`` of them (the few-label studies)."""
    if n is None or n >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def _as_images(images: torch.Tensor) -> torch.Tensor:
    """8×8 grey digits -> 3×16×16, the input of the shapes ResNet (pixels doubled, grey in all
    three channels), so a body pretrained on shapes reads them as it is."""
    return images.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2).expand(-1, 3, -1, -1)


def _real_splits(kind: str, task: str, source: Source, settings: dict[str, Any], seed: int):
    """The real datasets of minimod.data.real (prepared by `make real`)."""
    from minimod.data import real

    n = {"train": settings["n_train"], "val": settings["n_val"], "test": settings["n_test"]}
    parts = []
    try:
        if task == "sentiment-real":
            max_length = min(settings["max_length"], source.config.max_position_embeddings)
            for split in ("train", "val", "test"):
                rows = real.movie_sentiment(split)
                keep = _subset(n[split], len(rows), seed if split == "train" else 0).tolist()
                texts = [rows[i][0] for i in keep]
                ids = _encode_texts(source.tokenizer, texts, max_length, kind)
                parts.append(Split(ids, torch.tensor([rows[i][1] for i in keep])))
            return (*parts, {}, ("negative", "positive"))
        if task == "digits":
            for split in ("train", "val", "test"):
                data = real.digits(split)
                keep = _subset(n[split], len(data.labels), seed if split == "train" else 0)
                parts.append(Split(_as_images(data.images[keep]), data.labels[keep]))
            return (*parts, {}, tuple(str(d) for d in range(10)))
        if source.config.n_features != 13:
            raise UsageError(
                "spoken-digits are 13 MFCCs per frame: --from an audio run pretrained with "
                "--features mfcc (or --from scratch)"
            )
        for split in ("train", "val", "test"):
            data = real.spoken_digits(split)
            keep = _subset(n[split], len(data.labels), seed if split == "train" else 0)
            parts.append(Split(data.features[keep], data.labels[keep]))
        return (*parts, {}, tuple(str(d) for d in range(10)))
    except real.MissingDataError as error:
        raise UsageError(str(error).splitlines()[0]) from None


def _rows(split: Split, rows: torch.Tensor, pad_id: int):
    """The examples ``rows`` of a split as a batch: (ids, mask, labels) or (inputs, targets)."""
    if isinstance(split.inputs, list):
        ids, mask = pad_sequences([split.inputs[i] for i in rows.tolist()], pad_id)
        return ids, mask, split.targets[rows]
    return split.inputs[rows], split.targets[rows]


def _forward(model: Any, batch: tuple) -> torch.Tensor:
    if len(batch) == 3:
        return model(batch[0], batch[1])
    return model(batch[0])


def _predict(model: Any, split: Split, pad_id: int, size: int = 256) -> torch.Tensor:
    """The model's outputs on a whole split, a chunk at a time (eval mode, no gradients)."""
    device = device_of(model)
    outputs = []
    for start in range(0, len(split.targets), size):
        rows = torch.arange(start, min(start + size, len(split.targets)))
        batch = tuple(t.to(device) for t in _rows(split, rows, pad_id))
        outputs.append(_forward(model, batch).cpu())
    return torch.cat(outputs)


# -- putting it together ------------------------------------------------------------------------
def finetune_settings(kind: str, task: str, **overrides: Any) -> dict[str, Any]:
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
    train, val, test, extra, class_names = load_splits(kind, task, source, settings, seed)
    detect = task == "detect"
    num_labels = 4 if detect else len(class_names)
    seed_everything(seed)
    model = build_model(kind, task, source.config, num_labels, {**settings, **options})
    report = None
    if source.state is not None:
        report = load_pretrained(model, source.state, source_prefix=source.prefix)
    unfreezer = configure_training(model, kind, options)
    optimizer = AdamW(
        param_groups(model, settings["lr"], settings["weight_decay"], options["layer_decay"]),
        lr=settings["lr"],
        foreach=True,  # one call per operation for all parameters: less Python per step
    )
    scheduler = WarmupCosineLR(optimizer, settings["warmup_steps"], settings["max_steps"], 0.1)
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
            return _rows(train, sampler.draw(), pad_id)
    else:

        def batches(index: int):
            return _rows(train, torch.randint(n, (batch_size,), generator=generator), pad_id)

    gamma = options["focal_gamma"]

    def loss_fn(model: Any, batch: tuple) -> torch.Tensor:
        output = _forward(model, batch)
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
        return metrics(_predict(model, val, pad_id), val)

    def test_report(model: Any):
        """Test metrics, and the test predictions (classification) for the confusion matrix:
        one pass over the test split."""
        output = _predict(model, test, pad_id)
        results = metrics(output, test)
        for name, split in extra.items():
            results[f"{name}_accuracy"] = metrics(_predict(model, split, pad_id), split)["accuracy"]
        return results, None if detect else (output.argmax(-1), test.targets)

    callbacks = [] if unfreezer is None else [lambda trainer: unfreezer.apply(trainer.step)]
    metric = "iou" if detect else ("macro_f1" if settings.get("imbalance") else "accuracy")
    return Prepared(
        model, optimizer, scheduler, batches, generator, loss_fn, evaluate, test_report,
        class_names, callbacks, metric, report,
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
    **options: Any,
) -> dict[str, Any]:
    """Fine-tune ``kind`` from ``source`` (a run folder or "scratch") on ``task`` into ``out``
    (default runs/finetune-KIND-TASK). options: see DEFAULT_OPTIONS. Returns a summary: run
    folder, test metrics, trainable/total parameters, wall seconds, the model."""
    start = time.perf_counter()
    settings = finetune_settings(
        kind, task, n_train=labels, imbalance=imbalance, max_steps=max_steps,
        batch_size=batch_size, lr=lr,
    )  # fmt: skip
    options = complete_options(settings, options)
    pick_device(device)
    run_dir = Path(out) if out is not None else Path("runs") / f"finetune-{kind}-{task}"
    src = read_source(kind, source, preset, task)
    record = {
        "kind": "finetune", "model": kind, "task": task,
        "source": src.name if src.name in ("scratch", "minilm") else str(Path(src.name).resolve()),
        "preset": preset if source == "scratch" else None, "seed": seed,
        "options": options, "settings": settings, "model_config": to_plain(src.config),
    }  # fmt: skip
    if resume:
        check_resume(run_dir, record, ("model", "task", "source", "preset", "seed", "options"))
    elif (run_dir / "last.pt").exists() and not overwrite:
        raise UsageError(
            f"{run_dir} already holds a run; add --resume to continue it, or pick another --out"
        )
    ready = prepare(kind, task, src, settings, options, seed)
    model = ready.model
    trainable, total = count_parameters(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / RUN_FILE, json.dumps(to_plain(record), indent=2) + "\n")
    if src.tokenizer is not None:
        src.tokenizer.save(run_dir / lm.TOKENIZER_FILE)
    log(f"finetune {kind} on {task} from {src.name}: {trainable:,} of {total:,} parameters train")
    if ready.report is not None and not resume:
        write_text_atomic(run_dir / "load_report.txt", str(ready.report) + "\n")
        log(f"pretrained weights: {ready.report.summary()} (details: {run_dir}/load_report.txt)")
    config = TrainConfig(
        max_steps=settings["max_steps"], clip_grad_norm=1.0,
        log_every=min(10, settings["max_steps"]), eval_every=settings["eval_every"],
        eval_metric=ready.eval_metric, eval_mode="max", checkpoint_every=settings["eval_every"],
        out_dir=str(run_dir), seed=seed, device=device, progress=progress,
    )  # fmt: skip
    trainer = Trainer(
        model, ready.optimizer, ready.batches, config, loss_fn=ready.loss_fn,
        scheduler=ready.scheduler, evaluate=ready.evaluate, data_state=ready.data_state,
        model_config=src.config, callbacks=ready.callbacks,
    )  # fmt: skip
    try:
        result = trainer.fit(resume_from=run_dir / "last.pt" if resume else None)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    # The final report: best.pt's weights (picked on val) on the held-out test split.
    if (run_dir / "best.pt").is_file():
        model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
    summary = _report(model, ready, run_dir, record)
    step_ms = [1000 * row["step_time_s"] for row in result.history if "step_time_s" in row]
    summary.update(
        step=result.step, trainable=trainable, total=total, wall_s=time.perf_counter() - start,
        ms_per_step=statistics.median(step_ms) if step_ms else None, model=model,
        best_step=result.best_step,
    )  # fmt: skip
    if options["lora_rank"]:
        adapter = lora_state_dict(model, extra=("head.*",))
        save_checkpoint({"adapter": adapter, "source": record["source"]}, run_dir / "adapter.pt")
        summary["adapter_bytes"] = (run_dir / "adapter.pt").stat().st_size
    summary["plot"] = plot_losses(run_dir)
    return summary


def _report(model: Any, ready: Prepared, run_dir: Path, record: dict[str, Any]) -> dict:
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
    write_text_atomic(
        run_dir / RUN_FILE, json.dumps(to_plain({**record, "test": metrics}), indent=2) + "\n"
    )
    return summary


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
    record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    kind, task = record["model"], record["task"]
    tokenizer = None
    if (run_dir / lm.TOKENIZER_FILE).is_file():
        tokenizer = load_tokenizer(run_dir / lm.TOKENIZER_FILE)
    source = Source(kind, record["source"], _config(kind, record["model_config"]), tokenizer)
    if record["source"] not in ("scratch", "minilm"):
        try:
            source.settings = json.loads(
                (Path(record["source"]) / RUN_FILE).read_text(encoding="utf-8")
            ).get("settings", {})
        except OSError:
            pass
    options, settings = {**DEFAULT_OPTIONS, **record["options"]}, record["settings"]
    ready = prepare(kind, task, source, settings, options, record["seed"])
    checkpoint = run_dir / ("best.pt" if (run_dir / "best.pt").is_file() else "last.pt")
    try:
        ready.model.load_state_dict(load_checkpoint(checkpoint)["model"])
    except (CheckpointError, OSError, KeyError, RuntimeError) as error:
        raise UsageError(f"{checkpoint}: {str(error).splitlines()[0]}") from None
    ready.model.to(pick_device(device))
    summary = _report(ready.model, ready, run_dir, record)
    summary["record"] = record
    return summary


def find_lr(
    kind: str,
    source: str,
    task: str,
    *,
    preset: str = "tiny",
    out: str | Path = "runs/lr-find",
    seed: int = 0,
    device: str = "auto",
    labels: int | None = None,
    imbalance: float | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 60,
    **options: Any,
) -> dict[str, Any]:
    """The learning-rate finder on a fine-tune set-up: the sweep, the suggestion, a plot in
    ``out``/lr_find.png. The model is restored afterwards (see ``lr_find``)."""
    from minimod.train.lr_find import lr_find, plot_lr_find

    if not start_lr < end_lr:
        raise UsageError(f"--start-lr ({start_lr}) must be below --end-lr ({end_lr})")
    settings = finetune_settings(
        kind, task, n_train=labels, imbalance=imbalance, batch_size=batch_size, lr=lr
    )
    options = complete_options(settings, options)
    target = pick_device(device)
    ready = prepare(kind, task, read_source(kind, source, preset, task), settings, options, seed)
    ready.model.to(target)
    for group in ready.optimizer.param_groups:  # undo the warmup's lr 0 at step 0: the sweep
        group["lr"] = group["initial_lr"]  # keeps the groups' ratios (layer decay)

    def batches(index: int):
        return tuple(t.to(target) for t in ready.batches(index))

    result = lr_find(
        ready.model, ready.optimizer, batches, ready.loss_fn, start_lr=start_lr, end_lr=end_lr,
        num_steps=steps,
    )  # fmt: skip
    Path(out).mkdir(parents=True, exist_ok=True)
    plot = plot_lr_find(result, Path(out) / "lr_find.png")
    if result.suggestion is None:
        advice = "no suggestion: the sweep stopped too early (raise --end-lr or --steps)"
    else:
        advice = f"suggested lr: {result.suggestion:.2g} (the steepest fall of the loss)"
    lowest = min(range(len(result.losses)), key=result.losses.__getitem__)
    text = (
        f"lr sweep over {len(result.lrs)} steps from {result.lrs[0]:.2g} to {result.lrs[-1]:.2g}; "
        f"lowest smoothed loss {result.losses[lowest]:.4g} at lr {result.lrs[lowest]:.2g}\n"
        f"{advice}\n{plot}"
    )
    return {"result": result, "text": text}
