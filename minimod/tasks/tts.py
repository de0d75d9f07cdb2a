"""Text to speech: ``minimod pretrain tts`` trains a ``SpeechSynthesizer`` on eSpeak NG's speech
(``--corpus digits`` or ``sentences``, after ``make real``) or the synthetic keywords
(``--corpus keywords``); ``synthesize`` turns a text into log-mel frames and a waveform.

The symbol inventory (eSpeak's phonemes, or letters) is made from the training utterances and
kept in the model's config (``symbols``, index = id, 0 = padding), so a run folder rebuilds its
model from config.json without rendering the corpus again. The data is read lazily: loading a
run to speak never touches the corpus.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import torch

from minimod.data.splits import MissingDataError
from minimod.data.tts import PAD, SpeechExamples, espeak_examples, keyword_examples
from minimod.models.tts import SpeechSynthesizer, SpeechSynthesizerConfig, synthesis_loss
from minimod.tasks.common import TaskData, UsageError, device_of

TRAIN_SEED, VAL_SEED = 0, 1
EVAL_BATCH = 32


def _examples(corpus: str, n: int, split: str) -> SpeechExamples:
    """The corpus's utterances: eSpeak's (held out by text) or the synthetic keywords'
    (held out by seed)."""
    if corpus == "keywords":
        return keyword_examples(n, TRAIN_SEED if split == "train" else VAL_SEED)
    try:
        return espeak_examples(n, TRAIN_SEED, corpus, split)
    except MissingDataError as error:
        raise UsageError(f"{error} (or train on --corpus keywords, built in)") from None


def n_speakers(corpus: str) -> int:
    if corpus == "keywords":
        from minimod.data.audio import SPEAKERS
    else:
        from minimod.data.espeak import SPEAKERS
    return len(SPEAKERS)


def encode(symbols: list[str], inventory: tuple[str, ...], where: str) -> list[int]:
    """Symbol names -> ids; a symbol the model never saw is one UsageError naming it."""
    ids = {name: index for index, name in enumerate(inventory)}
    unknown = sorted({name for name in symbols if name not in ids or name == PAD})
    if unknown:
        raise UsageError(
            f"{where}: the model never heard {', '.join(map(repr, unknown))} in training "
            f"(it knows {len(inventory) - 1} symbols)"
        )
    return [ids[name] for name in symbols]


def collate(examples: SpeechExamples, ids: list[list[int]], rows: list[int]):
    """Utterances ``rows`` (``ids``: every utterance's symbol ids, ``encode``d once) ->
    (symbols (B, S) padded with 0, speakers (B,), durations (B, S) padded with 0,
    features (B, T, n_mels) padded with 0)."""
    width = max(len(ids[i]) for i in rows)
    frames = max(len(examples.features[i]) for i in rows)
    n_mels = examples.features[rows[0]].shape[-1]
    symbols = torch.zeros(len(rows), width, dtype=torch.long)
    durations = torch.zeros(len(rows), width, dtype=torch.long)
    features = torch.zeros(len(rows), frames, n_mels)
    for b, i in enumerate(rows):
        symbols[b, : len(ids[i])] = torch.tensor(ids[i])
        durations[b, : len(ids[i])] = examples.durations[i]
        features[b, : len(examples.features[i])] = examples.features[i]
    return symbols, examples.speakers[rows].long(), durations, features


def tts(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    """The synthesiser of ``settings["corpus"]``; the inventory from the training utterances
    (fresh) or from the run's config.json."""
    if data is not None:
        raise UsageError("tts trains on its own speech; pick it with --corpus, not --data")
    corpus = settings["corpus"]
    train = cache(lambda: _examples(corpus, settings["n_train"], "train"))
    val = cache(lambda: _examples(corpus, settings["n_val"], "val"))
    if fresh:
        names = sorted({name for symbols in train().symbols for name in symbols})
        config = SpeechSynthesizerConfig(
            n_symbols=len(names) + 1, n_speakers=n_speakers(corpus),
            symbols=(PAD, *names), **settings["model"],
        )  # fmt: skip
    else:
        config = saved_config(run_dir)
    generator = torch.Generator().manual_seed(settings["seed"])
    weight = settings["lambda_duration"]
    # Every utterance's symbols as ids, once per split (not once per batch).
    train_ids = cache(lambda: [encode(s, config.symbols, "training data") for s in train().symbols])
    val_ids = cache(lambda: [encode(s, config.symbols, "held-out data") for s in val().symbols])

    def batches(index: int):
        rows = torch.randint(len(train()), (settings["batch_size"],), generator=generator)
        return collate(train(), train_ids(), rows.tolist())

    def loss_fn(model: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        mel_loss, duration_loss = synthesis_loss(model, *batch)
        return mel_loss + weight * duration_loss

    def evaluate(model: Any, batches: int | None = None) -> dict[str, float]:
        """Teacher-forced L1 of the frames and MSE of the log durations on the val utterances,
        and the mean absolute error of the predicted lengths in frames."""
        examples, device = val(), device_of(model)
        totals = {"mel_l1": 0.0, "duration_mse": 0.0, "length_error": 0.0}
        with torch.no_grad():
            for start in range(0, len(examples), EVAL_BATCH):
                rows = list(range(start, min(start + EVAL_BATCH, len(examples))))
                batch = [t.to(device) for t in collate(examples, val_ids(), rows)]
                mel_loss, duration_loss = synthesis_loss(model, *batch)
                _, lengths, _ = model(batch[0], batch[1])
                error = (lengths - batch[2].sum(1)).abs().float().sum()
                totals["mel_l1"] += float(mel_loss) * len(rows)
                totals["duration_mse"] += float(duration_loss) * len(rows)
                totals["length_error"] += float(error)
        return {name: value / len(examples) for name, value in totals.items()}

    return TaskData(
        config=config,
        build=lambda: SpeechSynthesizer(config),
        batches=batches,
        data_state=generator,
        evaluate=evaluate,
        loss_fn=loss_fn,
        eval_metric="mel_l1",
        eval_mode="min",
    )


def saved_config(run_dir: Path) -> SpeechSynthesizerConfig:
    """The synthesiser's config from a run folder's config.json (written when training began)."""
    path = Path(run_dir) / "config.json"
    try:
        plain = json.loads(path.read_text(encoding="utf-8"))["model"]
        plain = {k: tuple(v) if isinstance(v, list) else v for k, v in plain.items()}
        return SpeechSynthesizerConfig(**plain)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: cannot read the synthesiser's config ({error})") from None
