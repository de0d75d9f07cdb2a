"""Spectrograms and back (minimod/data/spectral.py, lesson 29): the mel scales and filterbanks
against a NumPy reference written here from librosa's / torchaudio's formulas (neither is
installed), the STFT against torch.stft and its round trip, the inverse mel projection, and
Griffin-Lim: its error never grows (classic), momentum speeds it up, a 440 Hz tone keeps its
pitch through log-mel -> inverse mel -> Griffin-Lim, and a seed fixes the result."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from strategies import batch_shapes, seeds

# -- NumPy reference: the formulas, written out --------------------------------------------------


def np_hz_to_mel(f: float, scale: str) -> float:
    if scale == "htk":
        return 2595.0 * math.log10(1.0 + f / 700.0)
    if f < 1000.0:  # Slaney: linear, 3 mels per 200 Hz ...
        return f / (200.0 / 3.0)
    return 15.0 + math.log(f / 1000.0) / (math.log(6.4) / 27.0)  # ... then logarithmic


def np_mel_to_hz(m: float, scale: str) -> float:
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if m < 15.0:
        return m * 200.0 / 3.0
    return 1000.0 * math.exp((m - 15.0) * math.log(6.4) / 27.0)


def np_filterbank(n_fft, n_mels, sample_rate, f_min, f_max, scale, norm) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels), a triangle per column, as torchaudio.functional.melscale_fbanks
    (and librosa.filters.mel, transposed) define them."""
    low, high = np_hz_to_mel(f_min, scale), np_hz_to_mel(f_max, scale)
    edges = [np_mel_to_hz(low + (high - low) * i / (n_mels + 1), scale) for i in range(n_mels + 2)]
    bank = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sample_rate / n_fft
            if lo <= f <= mid:
                bank[k, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                bank[k, m] = (hi - f) / (hi - mid)
        if norm == "slaney":
            bank[:, m] *= 2.0 / (hi - lo)
    return bank


def reference_stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(samples,) -> (frames, freq), straight from torch.stft: centred, zero-padded, Hann."""
    window = torch.hann_window(n_fft, dtype=x.dtype)
    spectrum = torch.stft(
        x, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return spectrum.transpose(-1, -2)


def _window_hint(x: torch.Tensor, got: torch.Tensor, n_fft: int, hop: int) -> str:
    """A plain-words reason when ``got`` is the STFT of ``x`` without its window, else ""."""
    bare = torch.stft(x, n_fft, hop, center=True, pad_mode="constant", return_complex=True)
    if bare.shape[::-1] != got.shape or not torch.allclose(bare.transpose(-1, -2), got):
        return ""
    return (
        "\nThis is the STFT with NO window: torch.stft's default is a rectangle, whose jumps at "
        "the frame edges leak into every bin; pass window=window"
    )


def convergence(magnitude: torch.Tensor, x: torch.Tensor, n_fft: int, hop: int) -> float:
    """‖S − |STFT(x)|‖ / ‖S‖, measured with the reference STFT."""
    return ((magnitude - reference_stft(x, n_fft, hop).abs()).norm() / magnitude.norm()).item()


def chirp(samples: int, sample_rate: int, f_start: float, f_end: float) -> torch.Tensor:
    """A sine sweeping linearly from f_start to f_end Hz, float64."""
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    sweep = (f_end - f_start) * t**2 / (2 * samples / sample_rate)
    return torch.sin(2 * math.pi * (f_start * t + sweep))


# -- the mel scales and filterbanks -------------------------------------------------------------


def test_mel_scales_at_known_points_and_inverse():
    hz = torch.tensor([0.0, 440.0, 700.0, 1000.0, 6400.0, 8000.0], dtype=torch.float64)
    slaney = impl.spectral.hz_to_mel(hz, "slaney")
    # librosa.hz_to_mel(440) = 6.6; 1000 Hz is mel 15; a factor 6.4 above it is 27 mels more
    torch.testing.assert_close(slaney[:5], torch.tensor([0, 6.6, 10.5, 15, 42], dtype=hz.dtype))
    htk = impl.spectral.hz_to_mel(hz, "htk")
    torch.testing.assert_close(htk[2], torch.tensor(2595 * math.log10(2), dtype=hz.dtype))
    for scale in ("htk", "slaney"):
        mels = impl.spectral.hz_to_mel(hz, scale)
        assert torch.all(torch.diff(mels) > 0), f"{scale}: not increasing"
        torch.testing.assert_close(impl.spectral.mel_to_hz(mels, scale), hz)
        expected = [np_hz_to_mel(f, scale) for f in hz.tolist()]
        torch.testing.assert_close(mels, torch.tensor(expected, dtype=hz.dtype))


configs = st.fixed_dictionaries(
    dict(
        n_fft=st.sampled_from([16, 25, 64, 400, 512, 1024]),
        n_mels=st.integers(1, 80),
        sample_rate=st.sampled_from([8000, 16000, 22050, 24000]),
        f_min=st.sampled_from([0.0, 20.0, 300.0]),
        f_max_fraction=st.sampled_from([None, 0.8, 1.0]),
        scale=st.sampled_from(["htk", "slaney"]),
        norm=st.sampled_from([None, "slaney"]),
    )
)


@given(c=configs)
@example(
    c=dict(
        n_fft=1024,
        n_mels=80,
        sample_rate=22050,
        f_min=0.0,
        f_max_fraction=None,
        scale="slaney",
        norm="slaney",
    )  # the usual speech-synthesis setting
)
def test_filterbank_matches_numpy_reference(c):
    nyquist = c["sample_rate"] / 2
    f_max = None if c["f_max_fraction"] is None else c["f_max_fraction"] * nyquist
    args = (c["n_fft"], c["n_mels"], c["sample_rate"], c["f_min"], f_max)
    bank = impl.spectral.mel_filterbank(
        *args, dtype=torch.float64, scale=c["scale"], norm=c["norm"]
    )
    expected = np_filterbank(*args[:4], f_max or nyquist, c["scale"], c["norm"])
    assert bank.shape == (c["n_fft"] // 2 + 1, c["n_mels"])
    torch.testing.assert_close(bank, torch.from_numpy(expected), rtol=1e-6, atol=1e-9)
    as_float32 = impl.spectral.mel_filterbank(*args, scale=c["scale"], norm=c["norm"])
    assert as_float32.dtype == torch.float32


def test_default_filterbank_is_htk_without_normalisation():
    """The keyword and ASR features depend on these defaults."""
    torch.testing.assert_close(
        impl.spectral.mel_filterbank(400, 40, 16000, dtype=torch.float64),
        torch.from_numpy(np_filterbank(400, 40, 16000, 0.0, 8000.0, "htk", None)),
    )


def test_slaney_norm_gives_each_triangle_unit_area():
    n_fft, sample_rate = 4096, 16000
    bank = impl.spectral.mel_filterbank(
        n_fft, 40, sample_rate, dtype=torch.float64, scale="slaney", norm="slaney"
    )
    area = bank.sum(dim=0) * sample_rate / n_fft  # Σ height · bin width, in Hz
    torch.testing.assert_close(
        area,
        torch.ones(40, dtype=torch.float64),
        rtol=0.02,
        atol=0,
        msg=lambda m: (
            m + "\nWith norm='slaney' every triangle must have area 1 in Hz: divide "
            "filter m by half its width, (edge m+2 - edge m) / 2"
        ),
    )


def test_slaney_mel_has_a_finite_gradient_at_0_hz():
    hz = torch.tensor([0.0, 500.0, 2000.0], dtype=torch.float64, requires_grad=True)
    impl.spectral.hz_to_mel(hz, "slaney").sum().backward()
    assert torch.isfinite(hz.grad).all(), (
        f"hz_to_mel(slaney)'s gradient is {hz.grad.tolist()}: torch.where computes the log branch "
        "at 0 Hz too, log(0) = -inf, and its NaN gradient leaks through; clamp f to ≥ 1000 "
        "inside the log branch"
    )
    torch.testing.assert_close(hz.grad[:2], torch.full((2,), 3 / 200, dtype=torch.float64))


# -- the STFT -------------------------------------------------------------------------------


@given(
    lead=batch_shapes(max_dims=2, max_side=3),
    n_fft=st.sampled_from([4, 8, 25, 64]),
    hop_fraction=st.floats(0.05, 0.5),
    extra=st.integers(0, 200),
    seed=seeds,
)
@example(lead=(), n_fft=400, hop_fraction=0.4, extra=1600, seed=0)
def test_stft_matches_torch_and_istft_inverts_it(lead, n_fft, hop_fraction, extra, seed):
    hop = max(1, int(n_fft * hop_fraction))
    samples = n_fft // 2 + 1 + extra
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, samples, generator=generator, dtype=torch.float64)
    spectrum = impl.spectral.stft(x, n_fft, hop)
    frames = impl.spectral.centred_frames(samples, n_fft, hop)
    assert frames == 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop  # torch.stft's count
    assert spectrum.shape == (*lead, frames, n_fft // 2 + 1) and spectrum.is_complex(), (
        f"stft should return complex (..., frames, freq) = {(*lead, frames, n_fft // 2 + 1)}, got "
        f"{spectrum.dtype} {tuple(spectrum.shape)}: torch.stft returns frequency first, "
        "(batch, freq, frames); transpose its last two axes"
    )
    flat = x.reshape(-1, samples)
    for row, got in zip(flat, spectrum.reshape(-1, *spectrum.shape[-2:]), strict=True):
        torch.testing.assert_close(
            got,
            reference_stft(row, n_fft, hop),
            msg=lambda m, row=row, got=got: m + _window_hint(row, got, n_fft, hop),
        )
    back = impl.spectral.istft(spectrum, n_fft, hop, length=samples)
    assert back.shape == x.shape and back.dtype == x.dtype
    torch.testing.assert_close(back, x)
    if lead == ():  # float32 and a window of one's own
        window = torch.hann_window(n_fft) ** 0.5
        single = impl.spectral.stft(x.float(), n_fft, hop, window)
        assert single.dtype == torch.complex64
        again = impl.spectral.istft(single, n_fft, hop, window, length=samples)
        torch.testing.assert_close(again, x.float(), rtol=1e-4, atol=1e-4)


def test_mel_spectrogram_is_stft_power_through_the_filterbank():
    x = chirp(3000, 16000, 100, 6000)
    mel = impl.spectral.mel_spectrogram(x, 16000, 512, 128, 30, scale="slaney", norm="slaney")
    bank = torch.from_numpy(np_filterbank(512, 30, 16000, 0.0, 8000.0, "slaney", "slaney"))
    torch.testing.assert_close(mel, reference_stft(x, 512, 128).abs() ** 2 @ bank)


# -- back from mel ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale, norm", [("htk", None), ("slaney", "slaney")])
def test_inverse_mel_recovers_a_spectrum_in_the_filterbank_span(scale, norm):
    bank = impl.spectral.mel_filterbank(512, 40, 16000, dtype=torch.float64, scale=scale, norm=norm)
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(2, 7, 40, generator=generator, dtype=torch.float64)  # (..., frames, mels)
    linear = weights @ bank.T  # a non-negative spectrum made of the triangles
    torch.testing.assert_close(impl.spectral.inverse_mel(linear @ bank, bank), linear)
    noise = torch.rand(7, 257, generator=generator, dtype=torch.float64)  # not in the span
    estimate = impl.spectral.inverse_mel(noise @ bank, bank)
    assert estimate.shape == noise.shape and estimate.min() >= 0


# -- Griffin-Lim ------------------------------------------------------------------------------


def test_classic_griffin_lim_error_never_increases_on_a_chirp():
    """Griffin & Lim's theorem: each projection can only move closer, so the spectral
    convergence of the classic algorithm (no momentum) never goes up."""
    n_fft, hop = 128, 32
    x = chirp(2000, 16000, 200, 5000)
    magnitude = reference_stft(x, n_fft, hop).abs()
    errors = []
    for n_iter in range(10):
        y = impl.spectral.griffin_lim(magnitude, n_fft, hop, n_iter, momentum=0.0, length=2000)
        errors.append(convergence(magnitude, y, n_fft, hop))
    assert all(b <= a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.6 * errors[0], errors
    measured = impl.spectral.spectral_convergence(magnitude, y, n_fft, hop)
    assert measured.shape == () and math.isclose(measured.item(), errors[-1], rel_tol=1e-9)


def test_momentum_converges_faster():
    n_fft, hop = 128, 32
    x = chirp(2000, 16000, 200, 5000)
    magnitude = reference_stft(x, n_fft, hop).abs()
    classic = impl.spectral.griffin_lim(magnitude, n_fft, hop, 16, momentum=0.0, length=2000)
    fast = impl.spectral.griffin_lim(magnitude, n_fft, hop, 16, momentum=0.99, length=2000)
    classic_error, fast_error = (convergence(magnitude, y, n_fft, hop) for y in (classic, fast))
    assert fast_error < 0.8 * classic_error, (
        f"with momentum 0.99 the error is {fast_error:.3f}, not well below the classic "
        f"{classic_error:.3f}: put the momentum on the complex numbers, "
        "t = c + α (c - c_previous), "
        "not on their angles (angles wrap around at ±π)"
    )


def test_griffin_lim_stays_finite_over_silence():
    n_fft, hop = 64, 16
    x = torch.cat([chirp(800, 8000, 100, 3000), torch.zeros(800, dtype=torch.float64)])
    magnitude = reference_stft(x, n_fft, hop).abs()  # exact zeros over the silent half
    y = impl.spectral.griffin_lim(magnitude, n_fft, hop, 4, length=1600)
    assert torch.isfinite(y).all(), (
        "griffin_lim returned NaN: where c = 0 (silence), phase = c / |c| is 0 / 0, and the NaN "
        "spreads through istft to every sample; clamp |c| away from 0"
    )
    assert y[1200:].abs().max() < 1e-6, "the silent half should stay silent"


@pytest.mark.parametrize("scale, norm", [("htk", None), ("slaney", "slaney")])
def test_a_440_hz_tone_keeps_its_pitch_through_log_mel_and_griffin_lim(scale, norm):
    sample_rate, n_fft, hop, n_mels, samples = 16000, 1024, 256, 80, 8000
    t = torch.arange(samples) / sample_rate
    tone = 0.5 * torch.sin(2 * math.pi * 440.0 * t)
    mel = impl.spectral.mel_spectrogram(tone, sample_rate, n_fft, hop, n_mels, scale, norm)
    log_mel = mel.clamp(min=1e-10).log()  # what a speech model would predict
    bank = impl.spectral.mel_filterbank(n_fft, n_mels, sample_rate, scale=scale, norm=norm)
    power = impl.spectral.inverse_mel(log_mel.exp(), bank)
    y = impl.spectral.griffin_lim(power.sqrt(), n_fft, hop, length=samples)
    assert y.shape == tone.shape and y.dtype == torch.float32
    peak = reference_stft(y, n_fft, hop).abs().mean(dim=0).argmax().item()
    bin_hz = sample_rate / n_fft
    assert abs(peak * bin_hz - 440.0) <= 2 * bin_hz, f"peak at {peak * bin_hz} Hz"
    assert 0.5 < (y.std() / tone.std()).item() < 2, "loudness lost"


def test_griffin_lim_is_deterministic_with_a_seed_and_batched():
    n_fft, hop = 64, 16
    x = torch.stack([chirp(800, 8000, 100, 3000), chirp(800, 8000, 3000, 100)]).float()
    magnitude = impl.spectral.stft(x, n_fft, hop).abs()  # (2, frames, freq)
    first = impl.spectral.griffin_lim(magnitude, n_fft, hop, 8, seed=3)
    assert first.shape == (2, (magnitude.shape[-2] - 1) * hop) and first.dtype == torch.float32
    assert torch.equal(first, impl.spectral.griffin_lim(magnitude, n_fft, hop, 8, seed=3))
    assert not torch.equal(first, impl.spectral.griffin_lim(magnitude, n_fft, hop, 8, seed=4))
    alone = impl.spectral.griffin_lim(magnitude[1], n_fft, hop, 8, seed=3)
    assert alone.shape == first.shape[1:]
    odd = impl.spectral.stft(x[0], 25, 6).abs()  # an odd n_fft: one more sample by default
    assert impl.spectral.griffin_lim(odd, 25, 6, 2).shape == ((odd.shape[0] - 1) * 6 + 1,)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_are_one_sentence_errors():
    S = impl.spectral
    with pytest.raises(ValueError, match="mel scale must be one of"):
        S.hz_to_mel(torch.ones(2), "bark")
    with pytest.raises(ValueError, match="norm must be None or 'slaney'"):
        S.mel_filterbank(norm="area")
    with pytest.raises(ValueError, match="f_min < f_max"):
        S.mel_filterbank(f_min=9000.0, f_max=8000.0)
    with pytest.raises(ValueError, match="real"):
        S.stft(torch.ones(100, dtype=torch.complex64), 16, 4)
    with pytest.raises(ValueError, match="window: expected shape"):
        S.stft(torch.ones(100), 16, 4, torch.ones(15))
    with pytest.raises(ValueError, match="hop ≤ n_fft // 2"):
        S.istft(torch.ones(5, 9, dtype=torch.complex64), 16, 9)
    with pytest.raises(ValueError, match="mel_power"):
        S.inverse_mel(torch.ones(3, 20), torch.ones(201, 40))
    with pytest.raises(ValueError, match="n_fft // 2 \\+ 1 = 9"):
        S.griffin_lim(torch.ones(5, 10), 16, 4)
    with pytest.raises(ValueError, match="momentum"):
        S.griffin_lim(torch.ones(5, 9), 16, 4, momentum=1.0)
    with pytest.raises(ValueError, match="make 26 frames"):
        S.griffin_lim(torch.ones(5, 9), 16, 4, length=100)
