"""Audio features against an independent numpy reference (written here by the formulas' own
definitions, with loops), frame-count formulas, and the synthetic keywords: shapes, balance,
determinism, and that each word's pitch really follows its contour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from minimod.data import audio as A
from minimod.data import cache as C

seeds = st.integers(0, 2**32 - 1)


# -- numpy reference --------------------------------------------------------------------------


def np_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    starts = range(0, x.shape[-1] - n_fft + 1, hop)
    return np.stack([x[..., s : s + n_fft] for s in starts], axis=-2)


def np_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann = symmetric of n + 1, last point dropped
    return np.abs(np.fft.rfft(np_frames(x, n_fft, hop) * window, axis=-1)) ** 2


def np_filterbank(n_fft: int, n_mels: int, sample_rate: int) -> np.ndarray:
    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    top = mel(sample_rate / 2)
    edges = [hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bank = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sample_rate / n_fft
            if lo <= f <= mid:
                bank[k, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                bank[k, m] = (hi - f) / (hi - mid)
    return bank


def np_log_mel(x, sample_rate, n_fft, hop, n_mels):
    energies = np_power(x, n_fft, hop) @ np_filterbank(n_fft, n_mels, sample_rate)
    return np.log(np.maximum(energies, 1e-10))


def np_dct(x: np.ndarray, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II of the last axis, by its definition."""
    n = x.shape[-1]
    out = np.zeros(x.shape[:-1] + (n_out,))
    for k in range(n_out):
        scale = math.sqrt((1 if k == 0 else 2) / n)
        for m in range(n):
            out[..., k] += scale * x[..., m] * math.cos(math.pi * k * (m + 0.5) / n)
    return out


configs = st.fixed_dictionaries(
    dict(
        n_fft=st.sampled_from([8, 16, 25, 64, 400]),
        hop=st.integers(1, 200),
        n_mels=st.integers(1, 40),
        sample_rate=st.sampled_from([8000, 16000, 22050]),
        extra=st.integers(0, 600),
        seed=seeds,
    )
)


@given(c=configs)
@example(c=dict(n_fft=400, hop=160, n_mels=40, sample_rate=16000, extra=1600, seed=0))
def test_log_mel_and_mfcc_match_numpy_reference(c):
    samples = c["n_fft"] + c["extra"]
    x = torch.randn(2, samples, generator=torch.Generator().manual_seed(c["seed"]))
    x = x.double()
    args = (c["sample_rate"], c["n_fft"], c["hop"], c["n_mels"])
    expected = np_log_mel(x.numpy(), *args)
    got = A.log_mel(x, *args)
    assert got.shape == (2, A.n_frames(samples, c["n_fft"], c["hop"]), c["n_mels"])
    torch.testing.assert_close(got, torch.from_numpy(expected), rtol=1e-4, atol=1e-6)
    n_mfcc = min(13, c["n_mels"])
    got_mfcc = A.mfcc(x, *args, n_mfcc=n_mfcc)
    expected_mfcc = torch.from_numpy(np_dct(expected, n_mfcc))
    assert got_mfcc.shape == got.shape[:-1] + (n_mfcc,)
    torch.testing.assert_close(got_mfcc, expected_mfcc, rtol=1e-4, atol=1e-6)


def test_pieces_match_their_references():
    torch.testing.assert_close(
        A.hann_window(400, torch.float64), torch.hann_window(400, dtype=torch.float64)
    )
    torch.testing.assert_close(
        A.mel_filterbank(400, 40, 16000, dtype=torch.float64),
        torch.from_numpy(np_filterbank(400, 40, 16000)),
    )
    x = torch.randn(3, 2000, dtype=torch.float64)
    window = torch.hann_window(400, dtype=torch.float64)
    stft = torch.stft(x, 400, 160, window=window, center=False, return_complex=True)
    torch.testing.assert_close(A.power_spectrum(x), stft.abs().pow(2).transpose(1, 2))
    dct = A.dct_matrix(20, 20, torch.float64)
    torch.testing.assert_close(dct.T @ dct, torch.eye(20, dtype=torch.float64))


@given(samples=st.integers(1, 300), n_fft=st.integers(1, 64), hop=st.integers(1, 40))
def test_frame_count_and_contents(samples, n_fft, hop):
    x = torch.arange(float(samples))
    if samples < n_fft:
        with pytest.raises(ValueError, match="at least n_fft"):
            A.frames(x, n_fft, hop)
        return
    framed = A.frames(x, n_fft, hop)
    count = A.n_frames(samples, n_fft, hop)
    assert framed.shape == (count, n_fft)
    last_end = (count - 1) * hop + n_fft
    assert last_end <= samples < last_end + hop, "not every whole frame was taken"
    for i in (0, count - 1):
        assert torch.equal(framed[i], x[i * hop : i * hop + n_fft])


def test_float32_features_close_to_float64():
    x = A.make_keywords(8, 0).waveforms
    f32, f64 = A.mfcc(x), A.mfcc(x.double())
    assert f32.dtype == torch.float32 and f64.dtype == torch.float64
    torch.testing.assert_close(f32.double(), f64, rtol=1e-3, atol=1e-3)


# -- the synthetic keywords -------------------------------------------------------------------


def test_keywords_shapes_balance_and_determinism():
    k = A.make_keywords(20, 3)
    assert k.waveforms.shape == (20, 16000) and k.waveforms.dtype == torch.float32
    assert k.word_names == A.WORD_NAMES and k.sample_rate == 16000
    counts = torch.bincount(k.labels, minlength=len(A.WORD_NAMES))
    assert counts.max() - counts.min() <= 1
    assert k.waveforms.abs().max() < 1.5 and k.waveforms.std(dim=1).min() > 0.01
    again, other = A.make_keywords(20, 3), A.make_keywords(20, 4)
    assert torch.equal(k.waveforms, again.waveforms) and torch.equal(k.labels, again.labels)
    assert not torch.equal(k.waveforms, other.waveforms)
    short = A.make_keywords(4, 0, words=("rise", "fall"), speakers=(2, 5), clip_seconds=0.5)
    assert short.waveforms.shape == (4, 8000) and short.word_names == ("rise", "fall")
    assert set(short.speakers.tolist()) <= {2, 5} and set(short.labels.tolist()) == {0, 1}


def pitch_track(wave: torch.Tensor) -> torch.Tensor:
    """The strongest frequency (Hz) of each loud frame: the fundamental, which is the loudest
    harmonic. 1600-point frames give 10 Hz bins."""
    power = A.power_spectrum(wave.double(), n_fft=1600, hop=400)
    loud = power.sum(dim=-1) > 0.2 * power.sum(dim=-1).max()
    return power[loud].argmax(dim=-1).double() * 10.0


def test_each_word_follows_its_pitch_contour():
    k = A.make_keywords(32, 1)
    for wave, label in zip(k.waveforms, k.labels, strict=True):
        name = k.word_names[label]
        track = pitch_track(wave)
        q = max(1, len(track) // 4)
        start, middle, end = track[:q].mean(), track[len(track) // 2], track[-q:].mean()
        semitones = 12 * torch.log2(end / start)
        message = f"{name}: pitch {track.tolist()}"
        if name in ("rise", "two_tone_up"):
            assert semitones > 2, message
        elif name in ("fall", "two_tone_down"):
            assert semitones < -2, message
        elif name == "rise_fall":
            assert middle > 1.1 * max(start, end), message
        elif name == "fall_rise":
            assert middle < 0.9 * min(start, end), message
        elif name == "flat":
            assert track.max() / track.min() < 2 ** (1.5 / 12), message
        else:  # wobble: goes up and down several times
            direction = torch.sign(torch.diff(track))
            assert (torch.diff(direction[direction != 0]) != 0).sum() >= 2, message


def test_keyword_features_are_the_features_of_the_clips(monkeypatch):
    monkeypatch.setattr(A, "CHUNK", 4)  # rendered in chunks: the last one smaller
    n = 10
    k = A.make_keywords(n, 2)
    f = A.keyword_features(n, 2, kind="mfcc")
    assert f.features.shape == (n, 98, 13)
    assert torch.equal(f.labels, k.labels) and torch.equal(f.speakers, k.speakers)
    torch.testing.assert_close(f.features, A.mfcc(k.waveforms), rtol=1e-5, atol=1e-5)
    small = A.keyword_features(3, 2, kind="log_mel", n_mels=20)
    assert small.features.shape == (3, 98, 20)
    clips = A.make_keywords(3, 2).waveforms
    torch.testing.assert_close(small.features, A.log_mel(clips, n_mels=20))


def test_keyword_features_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path))
    first = A.keyword_features(6, 1, kind="mfcc", speakers=(0, 1), cache=True)
    (path,) = tmp_path.iterdir()
    assert path.name.startswith(f"keywords-v{A.VERSION}-")
    monkeypatch.setattr(A, "_clips", lambda *args: pytest.fail("regenerated, not loaded"))
    again = A.keyword_features(6, 1, kind="mfcc", speakers=(0, 1), cache=True)
    assert torch.equal(first.features, again.features) and torch.equal(first.labels, again.labels)
    assert again.word_names == A.WORD_NAMES


def test_bad_arguments():
    with pytest.raises(ValueError, match="words"):
        A.make_keywords(2, 0, words=("rise", "hum"))
    with pytest.raises(ValueError, match="speakers"):
        A.make_keywords(2, 0, speakers=(9,))
    with pytest.raises(ValueError, match="kind"):
        A.keyword_features(2, 0, kind="spectrogram")
    with pytest.raises(ValueError, match="n_mfcc"):
        A.mfcc(torch.zeros(1, 800), n_mels=10, n_mfcc=11)
