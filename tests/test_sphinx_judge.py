"""The second judge of generated speech (experiments/sphinx_judge.py): PocketSphinx, restricted
to the ten digit words, hears eSpeak NG's own digit strings.

Not a lesson: it checks an experiment's tool. It needs eSpeak NG (`make real`, hence the `real`
marker) and pocketsphinx, which is optional: without it the module skips.
"""

from __future__ import annotations

import pytest

from minimod.data.asr import DIGIT_WORDS
from minimod.data.espeak import SAMPLE_RATE
from minimod.train.error_rate import wer

pytest.importorskip("pocketsphinx")
pytest.importorskip("scipy")  # the resampler; scikit-learn's dependency in `make real`

from experiments.sphinx_judge import espeak_digits, sphinx_transcribe  # noqa: E402


@pytest.mark.real
def test_sphinx_hears_espeak_digits():
    texts, waveforms = espeak_digits(3)
    heard = sphinx_transcribe(waveforms, SAMPLE_RATE)
    assert len(heard) == 3
    assert all(word in DIGIT_WORDS for words in heard for word in words.split())
    # Measured: 1 error in 16 words (6.2%) with pocketsphinx 5.1.1; 20.6% on 100 test strings.
    assert wer(heard, texts) <= 0.5
