"""Lesson 29's pitfalls: the STFT, mel filterbanks and Griffin-Lim."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_spectral.py::"
STFT = (T + "test_stft_matches_torch_and_istft_inverts_it",)

MUTANTS = [
    Mutant(
        "(freq, frames) vs (frames, freq)",
        "    ).transpose(-1, -2)  # (batch, freq, frames) -> (batch, frames, freq)\n",
        "    )\n",
        "frequency first",
        STFT,
    ),
    Mutant(
        "No window",
        "flat, n_fft, hop, window=window, center=True, pad_mode",
        "flat, n_fft, hop, center=True, pad_mode",
        "window",
        STFT,
    ),
    Mutant(
        "HTK features into a model trained on Slaney ones",
        '    if norm == "slaney":\n        bank = bank * (2.0 / (upper - lower))\n',
        "",
        "slaney",
        (T + "test_slaney_norm_gives_each_triangle_unit_area",),
    ),
    Mutant(
        "Slaney's log branch",
        "torch.log(hz.clamp(min=SLANEY_BREAK_HZ) / SLANEY_BREAK_HZ)",
        "torch.log(hz / SLANEY_BREAK_HZ)",
        "clamp",
        (T + "test_slaney_mel_has_a_finite_gradient_at_0_hz",),
    ),
    Mutant(
        "phase = c / |c| where c = 0",
        "phase = accelerated / accelerated.abs().clamp(min=torch.finfo(magnitude.dtype).tiny)",
        "phase = accelerated / accelerated.abs()",
        "clamp |c|",
        (T + "test_griffin_lim_stays_finite_over_silence",),
    ),
    Mutant(
        "Momentum on the angles instead of the complex numbers",
        "accelerated = consistent + momentum * (consistent - previous)",
        "accelerated = torch.polar(consistent.abs(), consistent.angle() + momentum * (consistent.angle() - previous.angle()))",
        "momentum on the complex",
        (T + "test_momentum_converges_faster",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "hop > n_fft // 2 with centred frames",
        "istft's hop check is given, outside the marked regions; the tests check that it refuses "
        "such a hop",
    ),
    NotAMutant(
        "Power vs magnitude",
        "mel_spectrogram (given) squares |X|, and the sqrt between inverse_mel's power and "
        "griffin_lim's magnitude is the caller's: no marked region converts between the two",
    ),
]
