"""Where a fine-tune's body comes from, and what it becomes: the source (a run folder, the real
all-MiniLM-L6-v2, torchvision's ImageNet MobileNetV2 or scratch), the model (body + the task's
head) and which of its parameters train (freezing, LoRA, gradual unfreezing) and how fast
(layer-wise lr decay)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from minimod.data import CharTokenizer
from minimod.data.wordpiece import WordPieceTokenizer
from minimod.models.asr import SpeechRecognizer, SpeechRecognizerConfig
from minimod.models.bert import BERT, BERTConfig
from minimod.models.boxes import BoxRegressor
from minimod.models.cnn import AudioCNN, AudioCNNConfig, ResNet, ResNetConfig
from minimod.models.gpt import GPT, GPTConfig
from minimod.models.heads import FeatureClassifier, SequenceClassifier
from minimod.models.mobilenet import MobileNetV2, MobileNetV2Config, mobilenet_v2_path
from minimod.models.pretrained import MissingExtraError, read_pretrained
from minimod.nn.lora import apply_lora, merge_lora
from minimod.tasks import lm
from minimod.tasks.common import UsageError
from minimod.tasks.presets import ASR_TASKS, IMAGENET_TASKS, PRESET_NAMES, settings_for
from minimod.tasks.run import check_finite, one_line, read_run
from minimod.train.checkpoint import (
    CheckpointError,
    config_differences,
    load_checkpoint,
    to_plain,
)
from minimod.train.freezing import (
    GradualUnfreezer,
    freeze,
    layer_stages,
    linear_probe,
    param_groups,
    unfreeze,
)

# The Linear layers LoRA wraps in each body: attention and MLP projections.
LORA_TARGETS = {
    "gpt": ("*.c_attn", "*.c_proj", "*.c_fc"),
    "bert": ("*.query", "*.key", "*.value", "*.out", "*.up", "*.down"),
}
# The --from sources that are not run folders.
BUILT_IN_SOURCES = ("scratch", "minilm", "mobilenet_v2")


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


# -- the source ---------------------------------------------------------------------------------
def model_config(kind: str, plain: dict[str, Any], task: str | None = None) -> Any:
    """The model config of ``kind`` from its plain form (run.json / config.json); an audio
    model of a speech-recognition ``task`` is a SpeechRecognizer."""
    plain = {k: tuple(v) if isinstance(v, list) else v for k, v in plain.items()}
    if kind == "audio" and task in ASR_TASKS:
        return SpeechRecognizerConfig(**plain)
    if kind == "cnn" and "width_mult" in plain:
        return MobileNetV2Config(**plain)
    classes = {"bert": BERTConfig, "gpt": GPTConfig, "cnn": ResNetConfig, "audio": AudioCNNConfig}
    return classes[kind](**plain)


def _check_recognizer(run: Path, task: str | None, source_task: str) -> None:
    """A speech-recognition run feeds only asr-digits, and asr-digits needs one (or scratch)."""
    recognizer, wanted = source_task in ASR_TASKS, task in ASR_TASKS
    if recognizer and not wanted:
        raise UsageError(
            f"--from {run} is a speech-recognition ({source_task}) run: it can be fine-tuned "
            "with --task asr-digits, not as a classifier"
        )
    if wanted and not recognizer:
        raise UsageError(
            f"--task {task} fine-tunes a speech recogniser: --from a run of `minimod pretrain "
            "audio --task asr --features mfcc` (or asr-digits), or --from scratch"
        )


def _scratch_tokenizer(kind: str, settings: dict[str, Any]) -> Any:
    """The tokenizer a pretrain run on the reviews corpus would make (so scratch and pretrained
    models read the same ids)."""
    train_text, val_text = lm.read_text("reviews", kind)
    if kind == "bert":
        return lm.train_wordpiece(train_text, settings["max_words"])
    return CharTokenizer.train(train_text + val_text)


def pretrained_tokenizer(vocab_file: str | Path, config: BERTConfig) -> WordPieceTokenizer:
    """The uncased WordPiece tokenizer over a Hugging Face BERT's ``vocab.txt`` (the path that
    ``models.pretrained.read_pretrained`` gives), checked against the model's vocab_size."""
    tokenizer = WordPieceTokenizer.from_vocab_file(vocab_file, lowercase=True)
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"{vocab_file} has {tokenizer.vocab_size} tokens but config.json says vocab_size "
            f"{config.vocab_size}"
        )
    return tokenizer


def _minilm_source(kind: str) -> Source:
    """all-MiniLM-L6-v2, the real pretrained BERT that `make real` installs."""
    if kind != "bert":
        raise UsageError(f"--from minilm is a BERT: use `minimod finetune bert`, not {kind}")
    try:
        config, vocab_file, state = read_pretrained("minilm")
    except MissingExtraError as error:
        raise UsageError(one_line(error)) from None
    tokenizer = pretrained_tokenizer(vocab_file, config)
    return Source(kind, "minilm", config, tokenizer, state, "", {})


def _mobilenet_source(kind: str) -> Source:
    """torchvision's ImageNet MobileNetV2, the weights `make real` installs (its classifier is
    left behind: a fine-tune puts a new head on ``features``)."""
    if kind != "cnn":
        raise UsageError(f"--from mobilenet_v2 is a CNN: use `minimod finetune cnn`, not {kind}")
    try:
        path = mobilenet_v2_path()
    except MissingExtraError as error:
        raise UsageError(one_line(error)) from None
    state = torch.load(path, weights_only=True)
    check_finite(state, path)
    return Source(kind, "mobilenet_v2", MobileNetV2Config(), None, state, "", {})


def _check_images(source: Source, task: str | None) -> Source:
    """A MobileNetV2 reads ImageNet-normalised images (the IMAGENET_TASKS), and those tasks
    read them with a MobileNetV2: any other pairing is refused in one line."""
    mobilenet = isinstance(source.config, MobileNetV2Config)
    if task is not None and mobilenet and task not in IMAGENET_TASKS:
        raise UsageError(
            f"--from {source.name} is a MobileNetV2 for ImageNet-normalised images: "
            f"--task {' or '.join(IMAGENET_TASKS)}, not {task}"
        )
    if task in IMAGENET_TASKS and not mobilenet:
        raise UsageError(
            f"--task {task} fine-tunes a MobileNetV2: --from mobilenet_v2 (ImageNet weights), "
            f"scratch or a run fine-tuned from one, not the ResNet of {source.name}"
        )
    return source


def read_source(kind: str, source: str, preset: str = "tiny", task: str | None = None) -> Source:
    """The body's config, tokenizer and weights: ``source`` is a run folder (pretrain or
    fine-tune, of the same model kind), ``"minilm"`` (the real all-MiniLM-L6-v2, for bert) or
    ``"mobilenet_v2"`` (torchvision's ImageNet MobileNetV2, for cnn on the IMAGENET_TASKS) or
    ``"scratch"`` (the ``preset``'s architecture, fresh weights; a MobileNetV2 for the
    IMAGENET_TASKS)."""
    if source == "minilm":
        return _minilm_source(kind)
    if source == "mobilenet_v2":
        return _check_images(_mobilenet_source(kind), task)
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
        elif kind == "cnn" and task in IMAGENET_TASKS:
            config = MobileNetV2Config()  # the architecture of mobilenet_v2, fresh weights
        elif kind == "cnn":
            config = ResNetConfig(in_channels=3, num_classes=6, **model)
        elif task in ASR_TASKS:  # the asr-digits preset's recogniser, 13 MFCCs, ten digits
            model = dict(settings_for(task, preset)["model"])
            config = SpeechRecognizerConfig(n_features=13, vocab_size=10, **model)
        else:
            n_features = 13 if task == "spoken-digits" else 40  # MFCCs, or log-mel bands
            config = AudioCNNConfig(n_features=n_features, num_classes=5, **model)
        return Source(kind, "scratch", config, tokenizer, None, "", to_plain(settings))
    run = Path(source)
    record = read_run(run)
    finetuned = record.get("kind") == "finetune"
    source_task = record["task"]
    # A pretrain run's task names its model, except speech recognition: an audio model.
    source_kind = record["model"] if finetuned else source_task
    if source_kind in ASR_TASKS:
        source_kind = "audio"
    if source_kind != kind:
        raise UsageError(f"--from {run} is a {source_kind} run; finetune {kind} needs a {kind} run")
    if kind == "audio":
        _check_recognizer(run, task, source_task)
    try:
        saved = json.loads((run / "config.json").read_text(encoding="utf-8"))
        plain = record["model_config"] if finetuned else saved["model"]
        config = model_config(kind, plain, source_task)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{run}: cannot read the model's config ({error!r})") from None
    tokenizer = None
    if kind in ("bert", "gpt"):
        tokenizer = lm.read_tokenizer(run)
    checkpoint = run / ("best.pt" if finetuned and (run / "best.pt").is_file() else "last.pt")
    try:
        saved_checkpoint = load_checkpoint(checkpoint)
        state = saved_checkpoint["model"]
        differences = config_differences(saved_checkpoint["config"]["model"], config)
    except (CheckpointError, OSError, KeyError, TypeError) as error:
        raise UsageError(f"{checkpoint}: {one_line(error)}") from None
    if differences:  # say, the last.pt of a run of another preset copied in
        raise UsageError(
            f"{checkpoint} does not match the model in {run}: it differs in "
            + "; ".join(differences)
        )
    check_finite(state, checkpoint)
    # Where the body's keys start: a fine-tuned classifier wraps its body, a fine-tuned
    # recogniser is the whole model (with another head), a pretrained BERT sits in "bert.".
    if finetuned:
        prefix = "" if source_task in ASR_TASKS else "body."
        if record["options"].get("lora_rank"):
            state = _merged_adapters(kind, config, state, record["options"])
    else:
        prefix = "bert." if kind == "bert" else ""
    source = Source(kind, str(run), config, tokenizer, state, prefix, record.get("settings", {}))
    return _check_images(source, task) if kind == "cnn" else source


def _merged_adapters(
    kind: str, config: Any, state: dict[str, torch.Tensor], options: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """A LoRA fine-tune's body weights with each adapter merged into its layer (``merge_lora``):
    the keys of a plain body (``...query.weight``), which a new fine-tune loads. Unmerged, the
    wrapped layers' keys (``...query.base.weight``, ``lora_A``) would be skipped and those
    layers left at their fresh initialisation."""
    body = BERT(config, add_pooling_layer=False) if kind == "bert" else GPT(config)
    rank = options["lora_rank"]
    apply_lora(body, LORA_TARGETS[kind], rank=rank, alpha=options["lora_alpha"] or 2 * rank)
    body.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("body.")})
    merge_lora(body)
    others = {k: v for k, v in state.items() if not k.startswith("body.")}
    return {**others, **{f"body.{k}": v for k, v in body.state_dict().items()}}


# -- the model ----------------------------------------------------------------------------------
def build_model(kind: str, task: str, config: Any, num_labels: int, options: dict[str, Any]):
    """The body of ``kind`` with the head of ``task`` (fresh weights everywhere). asr-digits: a
    SpeechRecognizer of the source's architecture with a head over ``num_labels`` words."""
    if task in ASR_TASKS:
        if config.n_features != 13:
            raise UsageError(
                f"{task} reads 13 MFCCs per frame, and the source model reads "
                f"{config.n_features}: pretrain it with --features mfcc"
            )
        return SpeechRecognizer(replace(config, vocab_size=num_labels))
    if kind == "bert":
        body = BERT(config, add_pooling_layer=False)
    elif kind == "gpt":
        body = GPT(config)
    elif isinstance(config, MobileNetV2Config):
        body = MobileNetV2(config)
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
        if not any(parameter.requires_grad for parameter in model.parameters()):
            raise UsageError(f"--freeze {freezing} freezes every parameter: nothing would train")
    if options["unfreeze_every"]:
        if freezing not in ("none", None) or options["lora_rank"]:
            raise UsageError("--unfreeze-every unfreezes layer by layer: drop --freeze/--lora-rank")
        unfreezer = GradualUnfreezer(model, _stages(model), options["unfreeze_every"])
        unfreezer.apply(0)
        return unfreezer
    return None


def _mobilenet_blocks(model: Any) -> list[tuple[str, Any]] | None:
    """A MobileNetV2 classifier's layers top first, as (name, module): the head, then each
    ``features.N`` that holds parameters, down to the stem; None for other models (whose
    blocks ``train.freezing.layer_id`` recognises by name)."""
    body = getattr(model, "body", None)
    if not isinstance(body, MobileNetV2):
        return None
    blocks = [(f"body.features.{i}", layer) for i, layer in enumerate(body.features)]
    blocks = [(name, layer) for name, layer in blocks if list(layer.parameters())]
    return [("head", model.head), *reversed(blocks)]


def _stages(model: Any) -> list[list[str]]:
    """Gradual unfreezing's stages, top first (``layer_stages``; a MobileNetV2 by its blocks)."""
    blocks = _mobilenet_blocks(model)
    if blocks is None:
        return layer_stages(model)
    return [[f"{name}.*"] for name, _ in blocks]


def optimizer_groups(
    model: Any, lr: float, weight_decay: float, layer_decay: float | None
) -> list[dict[str, Any]]:
    """``train.freezing.param_groups``; for a MobileNetV2 with ``layer_decay``, its groups
    block by block (the head at ``lr``, each block below ``layer_decay`` times slower)."""
    blocks = _mobilenet_blocks(model)
    if blocks is None or layer_decay is None:
        return param_groups(model, lr, weight_decay, layer_decay)
    if not 0 < layer_decay <= 1:
        raise UsageError(f"--layer-decay must be in (0, 1], got {layer_decay}")
    groups = []
    for depth, (name, module) in enumerate(blocks):
        for group in param_groups(module, lr * layer_decay**depth, weight_decay):
            layer = len(blocks) - 1 - depth
            groups.append({**group, "name": f"{name}/{group['name']}", "layer": layer})
    return groups
