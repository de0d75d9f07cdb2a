"""Speech recognition with CTC: ``minimod pretrain audio --task asr`` (synthetic keyword
sentences, always available) and ``--task asr-digits`` (connected spoken digits from the Free
Spoken Digit Dataset, after ``make real``).

Training utterances are strung together on the fly from the training recordings, drawn from the
run's data generator (so a resumed run sees the same ones); the held-out utterances are a fixed,
seeded set made only of held-out recordings (digits: the "test" split of ``spoken_digits``;
keywords: clips generated from another seed). Evaluation decodes greedily and reports the word
and character error rates (WER, CER) of the transcripts and the held-out CTC loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minimod.data.asr import (
    DIGIT_WORDS,
    Utterances,
    WordRecordings,
    collate,
    connect,
    digit_recordings,
    keyword_recordings,
    spec_augment,
    words_of,
)
from minimod.data.audio import WORD_NAMES
from minimod.data.splits import MissingDataError
from minimod.data.tts import espeak_examples
from minimod.models.asr import BLANK, SpeechRecognizer, SpeechRecognizerConfig
from minimod.nn.ctc import ctc_beam_search, ctc_greedy_decode, ctc_loss
from minimod.tasks.common import TaskData, UsageError, device_of
from minimod.train.error_rate import cer, wer

TRAIN_SEED, VAL_SEED = 0, 1
HELD_OUT_SPLIT = "test"  # digits: the held-out recordings the reported WER is measured on
DECODE_BATCH = 64


def _recordings(task: str, settings: dict[str, Any], held_out: bool) -> WordRecordings:
    """The training or held-out recordings of ``task``."""
    if task == "asr":
        n, seed = (settings["n_val"], VAL_SEED) if held_out else (settings["n_train"], TRAIN_SEED)
        return keyword_recordings(n, seed, kind=settings["features"])
    try:
        return digit_recordings(HELD_OUT_SPLIT if held_out else "train")
    except MissingDataError as error:
        raise UsageError(str(error)) from None


def espeak_utterances(n: int, split: str) -> Utterances:
    """``n`` eSpeak NG digit strings of ``split`` (held out by text, eight voices) as the log-mel
    frames a synthesiser predicts (``data.tts.espeak_examples``): the recogniser that judges
    generated speech hears it through the same features."""
    try:
        examples = espeak_examples(n, TRAIN_SEED, "digits", split)
    except MissingDataError as error:
        raise UsageError(str(error)) from None
    labels = [[DIGIT_WORDS.index(word) for word in text.split()] for text in examples.texts]
    return Utterances(examples.features, labels, [[] for _ in labels], DIGIT_WORDS)


def held_out(task: str, settings: dict[str, Any], n: int | None = None) -> Utterances:
    """The first ``n`` (default all ``n_val``) of the task's seeded held-out utterances."""
    count = settings["n_val"] if n is None else n
    if count < 1:
        raise UsageError(f"--held-out must be ≥ 1, got {count}")
    if task == "asr-espeak":
        return espeak_utterances(count, HELD_OUT_SPLIT)
    generator = torch.Generator().manual_seed(VAL_SEED)
    pool = _recordings(task, settings, held_out=True)
    return connect(pool, count, generator, settings["max_words"])


def _wire(task: str, settings: dict[str, Any], data: str | None) -> TaskData:
    if data is not None:
        raise UsageError(f"{task} trains on its own recordings; --data is for gpt and bert")
    if task == "asr-espeak":
        train: WordRecordings | Utterances = espeak_utterances(settings["n_train"], "train")
    else:
        train = _recordings(task, settings, held_out=False)
    val = held_out(task, settings)
    config = SpeechRecognizerConfig(
        n_features=train.features[0].shape[-1], vocab_size=len(train.vocabulary),
        **settings["model"],
    )  # fmt: skip
    generator = torch.Generator().manual_seed(settings["seed"])
    return TaskData(
        config=config,
        build=lambda: SpeechRecognizer(config),
        batches=batch_maker(train, settings, generator),
        data_state=generator,
        evaluate=lambda model, batches=None: scores(model, val),
        loss_fn=loss_fn,
        eval_metric="wer",
        eval_mode="min",
        class_names=train.vocabulary,
    )


def batch_maker(
    train: WordRecordings | Utterances, settings: dict[str, Any], generator: torch.Generator
):
    """index -> a collated batch of ``batch_size`` utterances: strung together from ``train``'s
    recordings on the fly, or drawn from ``train``'s utterances; SpecAugment'ed if the settings
    say so; every draw from ``generator``."""

    def batches(index: int):
        if isinstance(train, Utterances):
            rows = torch.randint(len(train), (settings["batch_size"],), generator=generator)
            drawn = Utterances(
                [train.features[i] for i in rows.tolist()],
                [train.labels[i] for i in rows.tolist()], [], train.vocabulary,
            )  # fmt: skip
        else:
            drawn = connect(train, settings["batch_size"], generator, settings["max_words"])
        features = drawn.features
        if settings["spec_augment"]:
            features = [spec_augment(f, generator) for f in features]
        return collate(features, drawn.labels)

    return batches


def scores(model: Any, utterances: Utterances) -> dict[str, float]:
    """Greedy WER, CER and the mean CTC loss of ``model`` on ``utterances``."""
    hyps, loss = decode(model, utterances)
    refs = utterances.transcripts
    return {"wer": wer(hyps, refs), "cer": cer(hyps, refs), "loss": loss}


@dataclass
class DigitSplits:
    """Connected-digit fine-tuning data: the training recordings (utterances are strung from them
    per batch), val utterances (pick best.pt) and test utterances (the report)."""

    train: WordRecordings
    val: Utterances
    test: Utterances


def digit_splits(settings: dict[str, Any], seed: int) -> DigitSplits:
    """The FSDD recordings for fine-tuning: ``settings["n_train"]`` training recordings (a seeded
    subset; None: all), ``n_val`` utterances of the val recordings, and ``n_test`` of the test
    recordings -- the first n_test of the held-out utterances ``pretrain audio --task
    asr-digits`` reports on, so the two tables read the same test set."""
    try:
        train = digit_recordings("train")
        val_pool = digit_recordings("val")
    except MissingDataError as error:
        raise UsageError(str(error)) from None
    n_train = settings["n_train"]
    if n_train is not None:
        if n_train > len(train):
            raise UsageError(
                f"--labels: the train split has {len(train)} recordings, not {n_train}"
            )
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_train]
        train = WordRecordings(
            [train.features[i] for i in keep.tolist()], train.labels[keep], train.vocabulary,
            train.silence_mean, train.silence_std,
        )  # fmt: skip
    max_words = settings["max_words"]
    val = connect(val_pool, settings["n_val"], torch.Generator().manual_seed(VAL_SEED), max_words)
    test = held_out("asr-digits", settings, settings["n_test"])
    return DigitSplits(train, val, test)


def loss_fn(model: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The CTC loss of a collated batch; word k is class k + 1 (0 is the blank)."""
    x, lengths, targets, target_lengths = batch
    return _ctc(*model(x, lengths), targets, target_lengths)


def _ctc(log_probs, out_lengths, targets, target_lengths) -> torch.Tensor:
    return ctc_loss(log_probs, targets + 1, out_lengths, target_lengths, blank=BLANK)


def vocabulary_of(task: str) -> tuple[str, ...]:
    """The words a run of ``task`` transcribes into (word k is class k + 1)."""
    return WORD_NAMES if task == "asr" else DIGIT_WORDS


def decode(
    model: Any, utterances: Utterances, beam: int | None = None, with_loss: bool = True
) -> tuple[list[str], float | None]:
    """(the transcripts the model hears, greedy or with a prefix beam of width ``beam``; the
    mean CTC loss per batch against the utterances' labels, or None without). Call in eval
    mode."""
    device, hyps, losses = device_of(model), [], []
    with torch.no_grad():
        for start in range(0, len(utterances), DECODE_BATCH):
            rows = slice(start, start + DECODE_BATCH)
            batch = collate(utterances.features[rows], utterances.labels[rows])
            x, lengths, targets, target_lengths = (t.to(device) for t in batch)
            log_probs, out_lengths = model(x, lengths)
            if with_loss:
                losses.append(float(_ctc(log_probs, out_lengths, targets, target_lengths)))
            log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
            if beam is None:
                labels = ctc_greedy_decode(log_probs, out_lengths, blank=BLANK)
            else:
                labels = [
                    list(ctc_beam_search(log_probs[:n, i], beam, blank=BLANK)[0][0])
                    for i, n in enumerate(out_lengths.tolist())
                ]
            hyps += [words_of([c - 1 for c in row], utterances.vocabulary) for row in labels]
    return hyps, sum(losses) / len(losses) if losses else None


def asr(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    """Synthetic keyword sentences (1..max_words of the eight keywords)."""
    return _wire("asr", settings, data)


def asr_digits(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    """Connected spoken digits (FSDD recordings, ``make real``)."""
    return _wire("asr-digits", settings, data)


def asr_espeak(settings: dict[str, Any], data: str | None, run_dir: Path, fresh: bool) -> TaskData:
    """eSpeak NG's digit strings in eight voices (``make real``), heard as ``speech_features``:
    the judge of ``minimod speak``'s digits."""
    return _wire("asr-espeak", settings, data)
