"""Speech recognition with CTC: the connected-word data (minimod/data/asr.py) and the conv + GRU
recogniser (minimod/models/asr.py). The CLI runs are in test_asr_cli.py."""

from __future__ import annotations

import math

import pytest
import torch

from minimod.data.asr import (
    DIGIT_WORDS,
    collate,
    connect,
    digit_recordings,
    keyword_recordings,
    spec_augment,
    words_of,
)
from minimod.models.asr import SpeechRecognizer, SpeechRecognizerConfig
from minimod.nn.ctc import ctc_loss
from minimod.optim import AdamW
from minimod.tasks import asr
from minimod.tasks.presets import settings_for


@pytest.fixture(scope="module")
def pool():
    return keyword_recordings(24, seed=0, kind="mfcc")


def utterances(pool, seed=0, n=6, **options):
    return connect(pool, n, torch.Generator().manual_seed(seed), **options)


def find_blocks(features: torch.Tensor, blocks: list[torch.Tensor]) -> bool:
    """Whether ``blocks`` occur in ``features`` (T, F) one after another, without overlapping."""
    at = 0
    for block in blocks:
        while at + len(block) <= len(features) and not torch.equal(
            features[at : at + len(block)], block
        ):
            at += 1
        if at + len(block) > len(features):
            return False
        at += len(block)
    return True


# ------------------------------------------------------------------------------------- data
def test_keyword_recordings_shapes(pool):
    assert len(pool) == 24 and pool.labels.shape == (24,)
    assert all(f.shape == (58, 13) and f.dtype == torch.float32 for f in pool.features)
    assert pool.silence_mean.shape == pool.silence_std.shape == (13,)
    # Silences imitate quiet frames: less energy (MFCC 0) than the average frame.
    assert pool.silence_mean[0] < torch.cat(pool.features)[:, 0].mean()
    with pytest.raises(ValueError, match="kind"):
        keyword_recordings(2, seed=0, kind="spectrogram")


def test_connect_transcripts_match_the_concatenation(pool):
    made = utterances(pool, n=12, max_words=4, silence=(2, 5))
    assert len(made) == 12 and len(made.transcripts) == 12
    for features, labels, sources, text in zip(
        made.features, made.labels, made.sources, made.transcripts, strict=True
    ):
        assert 1 <= len(sources) <= 4
        assert labels == pool.labels[sources].tolist()
        assert text == " ".join(pool.vocabulary[k] for k in labels)
        assert find_blocks(features, [pool.features[i] for i in sources])
        words = sum(len(pool.features[i]) for i in sources)
        assert 2 * (len(sources) + 1) <= len(features) - words <= 5 * (len(sources) + 1)


def test_connect_is_seeded(pool):
    a, b, c = utterances(pool, 3), utterances(pool, 3), utterances(pool, 4)
    assert a.labels == b.labels and a.sources == b.sources
    assert all(torch.equal(x, y) for x, y in zip(a.features, b.features, strict=True))
    assert a.sources != c.sources
    with pytest.raises(ValueError, match="min_words"):
        utterances(pool, min_words=3, max_words=2)


def test_words_of():
    assert words_of([7, 3, 9], DIGIT_WORDS) == "seven three nine"


def test_spec_augment_masks_within_bounds_and_is_seeded():
    x = torch.randn(50, 13)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    out = spec_augment(x, g(), time_masks=2, time_width=6, freq_masks=1, freq_width=3)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(out, spec_augment(x, g(), time_masks=2, time_width=6, freq_masks=1,
                                         freq_width=3))  # fmt: skip
    changed = out != x
    masked_rows, masked_cols = changed.all(1).sum(), changed.all(0).sum()
    assert masked_rows <= 12 and masked_cols <= 3
    assert torch.equal(spec_augment(x, g(), 0, 10, 0, 4), x)  # no masks: unchanged
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        spec_augment(torch.zeros(2, 3, 4), g())


def test_collate_pads_and_counts(pool):
    made = utterances(pool, n=5)
    x, lengths, targets, target_lengths = collate(made.features, made.labels)
    assert x.shape == (5, max(len(f) for f in made.features), 13)
    assert lengths.tolist() == [len(f) for f in made.features]
    assert target_lengths.tolist() == [len(t) for t in made.labels]
    assert targets.shape == (5, max(target_lengths.tolist()))
    for i, (f, t) in enumerate(zip(made.features, made.labels, strict=True)):
        assert torch.equal(x[i, : len(f)], f) and not x[i, len(f) :].any()
        assert targets[i, : len(t)].tolist() == t


def test_synthetic_held_out_set_uses_other_clips():
    settings = {**settings_for("asr", "tiny"), "seed": 0}
    train = asr._recordings("asr", settings, held_out=False)
    val = asr._recordings("asr", settings, held_out=True)
    held = asr.held_out("asr", settings, 4)
    seen = {f.numpy().tobytes() for f in train.features}
    assert not any(f.numpy().tobytes() in seen for f in val.features)
    assert len(held) == 4 and held.labels == asr.held_out("asr", settings, 4).labels


@pytest.mark.real
def test_digit_utterances_use_held_out_recordings_only():
    train, test = digit_recordings("train"), digit_recordings("test")
    assert train.vocabulary == DIGIT_WORDS and len(train) == 2400 and len(test) == 300
    assert all(f.shape[-1] == 13 and len(f) >= 6 for f in test.features)
    seen = {f.numpy().tobytes() for f in train.features}
    assert not any(f.numpy().tobytes() in seen for f in test.features)
    settings = {**settings_for("asr-digits", "tiny"), "seed": 0}
    held = asr.held_out("asr-digits", settings, 20)
    for features, sources in zip(held.features, held.sources, strict=True):
        assert 1 <= len(sources) <= 7
        assert find_blocks(features, [test.features[i] for i in sources])
    assert held.transcripts == asr.held_out("asr-digits", settings, 20).transcripts
    assert set(" ".join(held.transcripts).split()) <= set(DIGIT_WORDS)


# ------------------------------------------------------------------------------------ model
def small_model(**config) -> SpeechRecognizer:
    torch.manual_seed(0)
    defaults = dict(n_features=13, vocab_size=8, conv_widths=(16,), hidden_size=16, num_layers=1)
    return SpeechRecognizer(SpeechRecognizerConfig(**{**defaults, **config}))


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_model_shapes_and_output_lengths(stride):
    model = small_model(stride=stride, num_layers=2, conv_widths=(8, 8))
    x, lengths = torch.randn(3, 31, 13), torch.tensor([31, 20, 7])
    log_probs, out_lengths = model(x, lengths)
    frames = math.ceil(31 / stride)
    assert log_probs.shape == (frames, 3, 9)
    assert out_lengths.tolist() == [math.ceil(n / stride) for n in lengths.tolist()]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(frames, 3))
    assert model(x)[1].tolist() == [frames] * 3


def test_padding_does_not_change_a_shorter_utterance():
    model = small_model().eval()
    x = torch.randn(2, 40, 13)
    x[1, 25:] = 0  # padding
    with torch.no_grad():
        batched, out_lengths = model(x, torch.tensor([40, 25]))
        alone, _ = model(x[1:, :25], torch.tensor([25]))
    n = int(out_lengths[1])
    torch.testing.assert_close(batched[:n, 1], alone[:, 0])


@pytest.mark.slow
def test_ctc_loss_decreases_on_a_tiny_batch(pool):
    made = utterances(pool, n=4, max_words=3)
    x, lengths, targets, target_lengths = collate(made.features, made.labels)
    model = small_model(hidden_size=32)
    optimizer = AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        log_probs, out_lengths = model(x, lengths)
        loss = ctc_loss(log_probs, targets + 1, out_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_model_errors_are_one_sentence():
    with pytest.raises(ValueError, match="kernel_size"):
        SpeechRecognizerConfig(kernel_size=4)
    with pytest.raises(ValueError, match="≥ 1"):
        SpeechRecognizerConfig(stride=0)
    with pytest.raises(ValueError, match=r"\(B, T, 13\)"):
        small_model()(torch.randn(2, 10, 40))
