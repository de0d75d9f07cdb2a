"""The text-to-speech pieces: the length regulator, frame durations from phoneme starts, the
synthesiser's shapes and masked losses, and the features <-> waveform round trip's shapes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minimod.data.spectral import centred_frames
from minimod.data.tts import (
    HOP,
    N_FFT,
    N_MELS,
    dtw_path,
    features_to_waveform,
    frame_durations,
    mel_cepstral_distortion,
    speech_features,
)
from minimod.models.tts import (
    SpeechSynthesizer,
    SpeechSynthesizerConfig,
    regulate_length,
    synthesis_loss,
)


@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=6), min_size=1, max_size=4))
def test_regulate_length_repeats_each_row_its_duration(rows):
    """Frame t of sequence b is row s of x for the durations[b, s] frames after the first
    sum(durations[b, :s]); frames past a sequence's total are zero; gradients reach x."""
    width = max(len(r) for r in rows)
    durations = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    x = torch.randn(len(rows), width, 3, dtype=torch.float64, requires_grad=True)
    out, lengths = regulate_length(x, durations)
    assert lengths.tolist() == [sum(r) for r in rows]
    assert out.shape == (len(rows), max(1, max(lengths.tolist())), 3)
    for b, row in enumerate(rows):
        expected = torch.cat(
            [x[b, s].expand(d, 3) for s, d in enumerate(row)] + [x.new_zeros(0, 3)]
        )
        torch.testing.assert_close(out[b, : len(expected)], expected)
        assert bool((out[b, len(expected) :] == 0).all())
    out.sum().backward()
    expected_grad = durations[..., None].expand(-1, -1, 3).to(x.dtype)
    torch.testing.assert_close(x.grad, expected_grad)


@given(st.lists(st.integers(0, 30000), min_size=1, max_size=12), st.integers(1, 40000))
def test_frame_durations_cover_every_frame_once(starts, samples):
    """Durations are ≥ 0, sum to the number of centred frames, and a symbol starting later
    never starts at an earlier frame (the first owns the lead-in)."""
    starts = sorted(starts)
    durations = frame_durations(starts, samples)
    assert durations.shape == (len(starts),)
    assert bool((durations >= 0).all())
    assert int(durations.sum()) == centred_frames(samples, N_FFT, HOP)


def test_frame_durations_by_hand():
    # Frames are centred on 0, 256, 512, ...: a symbol starting at 300 owns frames 2 onwards.
    assert frame_durations([0, 300, 600], 1024).tolist() == [2, 1, 2]
    assert frame_durations([100, 256], 1024).tolist() == [1, 4]  # the lead-in belongs to the first


def _model(**overrides) -> SpeechSynthesizer:
    config = dict(n_symbols=12, n_speakers=3, n_mels=8, d_model=16, n_heads=2,
                  encoder_layers=1, decoder_layers=1, dropout=0.0)  # fmt: skip
    torch.manual_seed(0)
    return SpeechSynthesizer(SpeechSynthesizerConfig(**{**config, **overrides}))


def test_synthesizer_shapes_with_given_and_predicted_durations():
    model = _model()
    symbols = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    durations = torch.tensor([[2, 1, 3, 0], [1, 1, 1, 1]])
    frames, lengths, log_durations = model(symbols, torch.tensor([0, 2]), durations)
    assert frames.shape == (2, 6, 8) and lengths.tolist() == [6, 4]
    assert log_durations.shape == (2, 4) and log_durations[0, 3] == 0
    model.eval()
    frames, lengths, _ = model(symbols, torch.tensor([0, 2]), speed=2.0)
    assert frames.shape[0] == 2 and bool((lengths >= torch.tensor([3, 4])).all())


def test_padding_does_not_change_the_losses():
    """An utterance's losses are the same alone or padded in a batch with a longer one."""
    model = _model()
    symbols, durations = torch.tensor([[3, 4, 5]]), torch.tensor([[2, 1, 3]])
    features = torch.randn(1, 6, 8)
    alone = synthesis_loss(model, symbols, torch.tensor([1]), durations, features)
    batch_symbols = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    batch_durations = torch.tensor([[2, 1, 3, 0, 0], [2, 2, 2, 2, 2]])
    batch_features = torch.zeros(2, 10, 8)
    batch_features[0, :6] = features[0]
    batch_features[1] = torch.randn(10, 8)
    model_b = _model()
    mel, duration = synthesis_loss(model_b, batch_symbols[:1, :3], torch.tensor([1]),
                                   batch_durations[:1, :3], batch_features[:1, :6])  # fmt: skip
    torch.testing.assert_close(mel, alone[0])
    torch.testing.assert_close(duration, alone[1])
    # The padded row: its frames past 6 and symbols past 3 are masked out of both losses.
    frames, _, _ = model_b(batch_symbols, torch.tensor([1, 0]), batch_durations)
    first, _, _ = model_b(batch_symbols[:1, :3], torch.tensor([1]), batch_durations[:1, :3])
    torch.testing.assert_close(frames[0, :6], first[0], atol=1e-5, rtol=1e-5)


def test_config_refuses_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        SpeechSynthesizerConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="odd"):
        SpeechSynthesizerConfig(kernel_size=4)
    with pytest.raises(ValueError, match="symbol names"):
        SpeechSynthesizerConfig(n_symbols=3, symbols=("<pad>", "a"))


def test_features_and_back_keep_the_length():
    """speech_features makes 1 + samples // HOP frames; Griffin-Lim gives back that many hops."""
    sample_rate = 22050
    t = torch.arange(sample_rate // 2) / sample_rate
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t)
    features = speech_features(tone, sample_rate)
    assert features.shape == (1 + len(tone) // HOP, N_MELS)
    waveform = features_to_waveform(features, sample_rate, n_iter=4)
    assert abs(len(waveform) - len(tone)) < HOP
    spectrum = torch.fft.rfft(waveform).abs()
    peak_hz = int(spectrum.argmax()) * sample_rate / len(waveform)
    assert abs(peak_hz - 440) < 40, peak_hz  # the mel bands are ~30 Hz wide at 440 Hz


@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**16))
def test_dtw_path_is_monotonic_and_complete(rows, cols, seed):
    cost = torch.rand(rows, cols, generator=torch.Generator().manual_seed(seed))
    path = dtw_path(cost)
    assert path[0] == (0, 0) and path[-1] == (rows - 1, cols - 1)
    for (i, j), (k, m) in zip(path, path[1:], strict=False):
        assert (k - i, m - j) in ((1, 0), (0, 1), (1, 1))


def test_mel_cepstral_distortion_ignores_speaking_rate_only():
    """0 dB for the same frames, also when one copy lasts twice as long; > 0 otherwise."""
    frames = torch.randn(30, N_MELS, generator=torch.Generator().manual_seed(0))
    assert mel_cepstral_distortion(frames, frames) < 1e-6
    assert mel_cepstral_distortion(frames, frames.repeat_interleave(2, 0)) < 1e-6
    assert mel_cepstral_distortion(frames, frames + torch.randn(30, N_MELS)) > 1.0
