"""The text-to-speech pieces (lesson 30): the length regulator, frame durations from phoneme
starts, the synthesiser's shapes, masked losses and detached duration predictor, DTW and
mel-cepstral distortion, and the features <-> waveform round trip's shapes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import impl
from minimod.data.spectral import centred_frames
from minimod.data.tts import HOP, N_FFT, N_MELS, features_to_waveform, speech_features
from minimod.models.tts import SpeechSynthesizerConfig


@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=6), min_size=1, max_size=4))
def test_regulate_length_repeats_each_row_its_duration(rows):
    """Frame t of sequence b is row s of x for the durations[b, s] frames after the first
    sum(durations[b, :s]); frames past a sequence's total are zero; gradients reach x."""
    width = max(len(r) for r in rows)
    durations = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    x = torch.randn(len(rows), width, 3, dtype=torch.float64, requires_grad=True)
    out, lengths = impl.tts.regulate_length(x, durations)
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
    durations = impl.tts_data.frame_durations(starts, samples)
    assert durations.shape == (len(starts),)
    assert bool((durations >= 0).all())
    assert int(durations.sum()) == centred_frames(samples, N_FFT, HOP)


def test_frame_durations_by_hand():
    # Frames are centred on 0, 256, 512, ...: a symbol starting at 300 owns frames 2 onwards.
    durations = impl.tts_data.frame_durations
    assert durations([0, 300, 600], 1024).tolist() == [2, 1, 2]
    assert durations([100, 256], 1024).tolist() == [1, 4]  # the lead-in belongs to the first


def _model(**overrides):
    config = dict(n_symbols=12, n_speakers=3, n_mels=8, d_model=16, n_heads=2,
                  encoder_layers=1, decoder_layers=1, dropout=0.0)  # fmt: skip
    torch.manual_seed(0)
    return impl.tts.SpeechSynthesizer(SpeechSynthesizerConfig(**{**config, **overrides}))


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
    alone = impl.tts.synthesis_loss(model, symbols, torch.tensor([1]), durations, features)
    batch_symbols = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    batch_durations = torch.tensor([[2, 1, 3, 0, 0], [2, 2, 2, 2, 2]])
    batch_features = torch.zeros(2, 10, 8)
    batch_features[0, :6] = features[0]
    batch_features[1] = torch.randn(10, 8)
    model_b = _model()
    mel, duration = impl.tts.synthesis_loss(
        model_b, batch_symbols[:1, :3], torch.tensor([1]), batch_durations[:1, :3],
        batch_features[:1, :6],
    )  # fmt: skip
    torch.testing.assert_close(mel, alone[0])
    torch.testing.assert_close(duration, alone[1])
    # The padded row: its frames past 6 and symbols past 3 are masked out of both losses.
    frames, _, _ = model_b(batch_symbols, torch.tensor([1, 0]), batch_durations)
    first, _, _ = model_b(batch_symbols[:1, :3], torch.tensor([1]), batch_durations[:1, :3])
    torch.testing.assert_close(frames[0, :6], first[0], atol=1e-5, rtol=1e-5)


PADDING_HINT = (
    "\nA padded sequence must compute what it computes alone: zero the padding before each "
    "convolution, and again after each LayerNorm (a LayerNorm turns a zero row into its bias β, "
    "not 0), and hide the padded keys with key_padding_mask (True = IGNORE this key)"
)
LOSS_HINT = (
    "\nAverage each loss over the real frames and symbols only, not over the padded tensor: "
    "short utterances would count less, and the loss would change with the batch"
)


def test_a_padded_sequence_computes_what_it_computes_alone():
    """Row 0, padded in a batch with a longer row, gives the log durations and frames it gives
    alone, and the batch's losses are the real-frame (real-symbol) weighted means of the rows'
    own. The LayerNorms get a bias β ≠ 0: a zero row no longer stays zero through them."""
    model = _model()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("bias"):
                param.fill_(0.5)
    symbols = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    durations = torch.tensor([[2, 1, 3, 0, 0], [2, 2, 2, 2, 2]])
    speakers = torch.tensor([1, 0])
    features = torch.randn(2, 10, 8, generator=torch.Generator().manual_seed(1))
    features[0, 6:] = 0
    frames, _, log_durations = model(symbols, speakers, durations)
    first, _, first_log = model(symbols[:1, :3], speakers[:1], durations[:1, :3])
    close = dict(atol=1e-5, rtol=1e-5, msg=lambda m: m + PADDING_HINT)
    torch.testing.assert_close(log_durations[0, :3], first_log[0], **close)
    torch.testing.assert_close(frames[0, :6], first[0], **close)
    mel, duration = impl.tts.synthesis_loss(model, symbols, speakers, durations, features)
    rows = [
        impl.tts.synthesis_loss(model, symbols[:1, :3], speakers[:1], durations[:1, :3],
                                features[:1, :6]),
        impl.tts.synthesis_loss(model, symbols[1:], speakers[1:], durations[1:], features[1:]),
    ]  # fmt: skip
    close = dict(msg=lambda m: m + LOSS_HINT)
    torch.testing.assert_close(mel, (6 * rows[0][0] + 10 * rows[1][0]) / 16, **close)
    torch.testing.assert_close(duration, (3 * rows[0][1] + 5 * rows[1][1]) / 8, **close)


def test_losses_by_their_formulas():
    """The mel loss: L1 over the real frames of the frames made with the GIVEN durations; the
    duration loss: MSE between the predicted log durations and log(1 + frames), real symbols
    only (a symbol may last 0 frames)."""
    model = _model()
    symbols, speakers = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]]), torch.tensor([0, 2])
    durations = torch.tensor([[2, 0, 3, 0], [1, 1, 1, 1]])
    features = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    given = "\nTrain on the given durations: with predicted ones the frames no longer line up"
    try:
        mel, duration = impl.tts.synthesis_loss(model, symbols, speakers, durations, features)
    except NotImplementedError:  # a stub: the learner has not written it yet
        raise
    except RuntimeError as error:
        raise AssertionError(f"synthesis_loss failed: {error}{given}") from error
    predicted, lengths, log_durations = model(symbols, speakers, durations)
    real_frames = torch.arange(5)[None] < torch.tensor([5, 4])[:, None]
    expected_mel = (predicted - features).abs().mean(-1)[real_frames].mean()
    torch.testing.assert_close(mel, expected_mel, msg=lambda m: m + given)
    target = torch.log1p(durations.float())[symbols != 0]
    expected_duration = ((log_durations[symbols != 0] - target) ** 2).mean()
    torch.testing.assert_close(
        duration,
        expected_duration,
        msg=lambda m: (
            m + "\nThe duration loss compares the log durations with log(1 + frames): "
            "not with raw frames, and not with log(frames) (-inf for a symbol of 0 frames)"
        ),
    )


def test_every_real_symbol_keeps_at_least_one_predicted_frame():
    model = _model()
    model.eval()
    symbols = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    with torch.no_grad():
        model.duration.out.weight.zero_()
        model.duration.out.bias.fill_(math.log1p(0.2))  # 0.2 frames a symbol: rounds to 0
        _, lengths, _ = model(symbols, torch.tensor([0, 2]))
    assert lengths.tolist() == [3, 4], (
        f"frame lengths {lengths.tolist()} for 3 and 4 symbols predicted to last 0.2 frames: "
        "every real symbol must keep at least 1 frame (clamp the rounded durations to ≥ 1), or "
        "a short phoneme disappears"
    )


def test_duration_loss_does_not_reach_the_encoder():
    """The duration predictor reads the encoder's output detached: the duration loss trains
    the predictor only, the mel loss trains everything but the predictor."""
    model = _model()
    symbols, durations = torch.tensor([[3, 4, 5, 0]]), torch.tensor([[2, 1, 3, 0]])
    mel, duration = impl.tts.synthesis_loss(
        model, symbols, torch.tensor([1]), durations, torch.randn(1, 6, 8)
    )
    duration.backward(retain_graph=True)
    for name, param in model.named_parameters():
        reached = param.grad is not None and bool(param.grad.abs().sum() > 0)
        assert reached == name.startswith("duration."), (
            f"the duration loss reaches {name}: it must train the duration predictor only; give "
            "the predictor x.detach()"
            if reached
            else f"the duration loss does not reach {name}"
        )
    model.zero_grad()
    mel.backward()
    for name, param in model.named_parameters():
        if name.startswith("duration."):
            assert param.grad is None or not bool(param.grad.any()), f"mel loss and {name}"


def test_predicted_durations_are_rounded_at_least_one_and_scaled_by_speed():
    """Without durations, symbol s lasts max(1, round((exp(log_durations[s]) - 1) / speed))
    frames, padding none: the frame lengths are their sums."""
    model = _model()
    model.eval()
    symbols = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    with torch.no_grad():
        model.duration.out.bias.fill_(math.log1p(6.0))  # about 6 frames a symbol
        for speed in (1.0, 2.0, 0.5):
            frames, lengths, log_durations = model(symbols, torch.tensor([0, 2]), speed=speed)
            expected = torch.round(torch.expm1(log_durations) / speed).clamp(min=1)
            expected = (expected * (symbols != 0)).sum(1).long()
            assert lengths.tolist() == expected.tolist()
            assert frames.shape == (2, int(lengths.max()), 8)


@pytest.mark.reference_only
def test_config_refuses_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        SpeechSynthesizerConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="odd"):
        SpeechSynthesizerConfig(kernel_size=4)
    with pytest.raises(ValueError, match="symbol names"):
        SpeechSynthesizerConfig(n_symbols=3, symbols=("<pad>", "a"))


@pytest.mark.reference_only
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
    path = impl.tts_data.dtw_path(cost)
    assert path[0] == (0, 0) and path[-1] == (rows - 1, cols - 1)
    for (i, j), (k, m) in zip(path, path[1:], strict=False):
        assert (k - i, m - j) in ((1, 0), (0, 1), (1, 1))


def _monotonic_paths(i: int, j: int):
    """Every path from (0, 0) to (i, j) with steps (1, 0), (0, 1), (1, 1), as lists."""
    if (i, j) == (0, 0):
        yield [(0, 0)]
        return
    for di, dj in ((1, 0), (0, 1), (1, 1)):
        if i - di >= 0 and j - dj >= 0:
            for path in _monotonic_paths(i - di, j - dj):
                yield [*path, (i, j)]


@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16))
def test_dtw_path_has_the_least_total_cost(rows, cols, seed):
    """Against every monotonic path, enumerated (at most 1683 of them for 5 x 5)."""
    cost = torch.rand(rows, cols, generator=torch.Generator().manual_seed(seed))
    path = impl.tts_data.dtw_path(cost)
    best = min(sum(float(cost[p]) for p in candidate)
               for candidate in _monotonic_paths(rows - 1, cols - 1))  # fmt: skip
    assert sum(float(cost[p]) for p in path) == pytest.approx(best)


def test_mel_cepstral_distortion_ignores_speaking_rate_only():
    """0 dB for the same frames, also when one copy lasts twice as long; > 0 otherwise."""
    frames = torch.randn(30, N_MELS, generator=torch.Generator().manual_seed(0))
    assert impl.tts_data.mel_cepstral_distortion(frames, frames) < 1e-6
    assert impl.tts_data.mel_cepstral_distortion(frames, frames.repeat_interleave(2, 0)) < 1e-6
    assert impl.tts_data.mel_cepstral_distortion(frames, frames + torch.randn(30, N_MELS)) > 1.0


def test_more_frames_than_max_frames_is_an_error():
    """The decoder's positions stop at max_frames: durations that add up to more are refused."""
    model = _model(max_frames=8)
    symbols = torch.tensor([[3, 4, 5]])
    frames, lengths, _ = model(symbols, torch.tensor([1]), torch.tensor([[3, 3, 2]]))
    assert lengths.tolist() == [8] and frames.shape == (1, 8, 8), "8 frames fit in max_frames 8"
    with pytest.raises(ValueError):
        model(symbols, torch.tensor([1]), torch.tensor([[3, 3, 3]]))
