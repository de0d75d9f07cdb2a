"""A fine-tuning task's data: train / val / test splits (and extra test splits) as inputs and
targets, text encoded with the body's tokenizer; the synthetic tasks draw seeded examples, the
real ones (``REAL_TASKS``) read the datasets ``make real`` prepared (``IMAGENET_TASKS``: grey
images made into what an ImageNet MobileNetV2 reads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from minimod.data import (
    MissingDataError,
    digits,
    keyword_features,
    make_reviews,
    make_shapes,
    pad_sequences,
    spoken_digits,
)
from minimod.data.imagesets import FACE_CLASSES, MNIST_CLASSES, faces, imagenet_input, mnist
from minimod.data.vader import DOMAINS as VADER_DOMAINS
from minimod.data.vader import domain_sentiment
from minimod.data.wordpiece import WordPieceTokenizer
from minimod.tasks.classify import NEW_WORDS
from minimod.tasks.common import UsageError
from minimod.tasks.finetune.sources import Source
from minimod.tasks.presets import IMAGENET_TASKS, settings_for
from minimod.tasks.run import one_line

SHAPES_SEEDS = {"train": 10, "val": 2, "test": 3}  # pretraining used seeds 0 and 1
REAL_TASKS = ("sentiment-real", "digits", "spoken-digits", *IMAGENET_TASKS)


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
    """One split of a task, example by example."""

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
    """The real datasets of minimod.data (prepared by `make real`)."""
    n = {"train": settings["n_train"], "val": settings["n_val"], "test": settings["n_test"]}
    parts = []
    try:
        if task == "sentiment-real":
            max_length = min(settings["max_length"], source.config.max_position_embeddings)

            def snippets(domain: str, split: str) -> Split:
                rows = domain_sentiment(domain, split)
                keep = _subset(n[split], len(rows), seed if split == "train" else 0).tolist()
                texts = [rows[i][0] for i in keep]
                ids = _encode_texts(source.tokenizer, texts, max_length, kind)
                return Split(ids, torch.tensor([rows[i][1] for i in keep]))

            domain = settings["domain"]
            parts = [snippets(domain, split) for split in ("train", "val", "test")]
            # Cross-domain transfer: the other domains' test splits, reported beside the test.
            extra = {other: snippets(other, "test") for other in VADER_DOMAINS if other != domain}
            return (*parts, extra, ("negative", "positive"))
        if task == "digits":
            for split in ("train", "val", "test"):
                data = digits(split)
                keep = _subset(n[split], len(data.labels), seed if split == "train" else 0)
                parts.append(Split(_as_images(data.images[keep]), data.labels[keep]))
            return (*parts, {}, tuple(str(d) for d in range(10)))
        if task in IMAGENET_TASKS:  # the seeded subset first: only it is resized
            load, names = (mnist, MNIST_CLASSES) if task == "mnist" else (faces, FACE_CLASSES)
            for split in ("train", "val", "test"):
                data = load(split)
                keep = _subset(n[split], len(data.labels), seed if split == "train" else 0)
                images = imagenet_input(data.images[keep], settings["image_size"])
                parts.append(Split(images, data.labels[keep]))
            return (*parts, {}, names)
        if source.config.n_features != 13:
            raise UsageError(
                "spoken-digits are 13 MFCCs per frame: --from an audio run pretrained with "
                "--features mfcc (or --from scratch)"
            )
        for split in ("train", "val", "test"):
            data = spoken_digits(split)
            keep = _subset(n[split], len(data.labels), seed if split == "train" else 0)
            parts.append(Split(data.features[keep], data.labels[keep]))
        return (*parts, {}, tuple(str(d) for d in range(10)))
    except MissingDataError as error:
        raise UsageError(one_line(error)) from None


def split_batch(split: Split, rows: torch.Tensor, pad_id: int):
    """The examples ``rows`` of a split as a batch: (ids, mask, labels) or (inputs, targets)."""
    if isinstance(split.inputs, list):
        ids, mask = pad_sequences([split.inputs[i] for i in rows.tolist()], pad_id)
        return ids, mask, split.targets[rows]
    return split.inputs[rows], split.targets[rows]
