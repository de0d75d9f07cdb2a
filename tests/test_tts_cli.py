"""``minimod pretrain tts`` and ``minimod speak`` in subprocesses: on the built-in keywords
(always), and on eSpeak NG's digit strings (marked ``real``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import assert_usage_error, minimod
from minimod.data.wav import read_wav

pytestmark = [pytest.mark.slow, pytest.mark.reference_only]


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tts") / "run"
    done = minimod("pretrain", "tts", "--corpus", "keywords", "--max-steps", "3", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert "held-out mel_l1" in done.stdout and "next: minimod speak" in done.stdout
    return run


def test_pretrain_tts_keeps_its_inventory_in_the_config(keyword_run):
    record = json.loads((keyword_run / "run.json").read_text())
    assert record["task"] == "tts" and record["settings"]["corpus"] == "keywords"
    assert set(record["final"]) == {"mel_l1", "duration_mse", "length_error"}
    model = json.loads((keyword_run / "config.json").read_text())["model"]
    assert model["symbols"][0] == "<pad>" and len(model["symbols"]) == model["n_symbols"]
    assert set("flat") <= set(model["symbols"])


def test_speak_writes_a_wav_and_a_spectrogram(keyword_run, tmp_path):
    out = tmp_path / "word.wav"
    done = minimod("speak", "--from", str(keyword_run), "--text", "flat", "--voice", "1",
                   "--iterations", "4", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "said f l a t" in done.stdout and "real-time factor" in done.stdout
    waveform, sample_rate = read_wav(out)
    assert sample_rate == 16000 and waveform.dim() == 1 and len(waveform) > 0
    assert out.with_suffix(".png").is_file()


def test_speak_refuses_bad_input_in_one_line(keyword_run, tmp_path):
    out = str(tmp_path / "x.wav")
    assert_usage_error(
        minimod("speak", "--from", str(keyword_run), "--text", "hello", "--out", out),
        "one keyword",
    )
    assert_usage_error(
        minimod(
            "speak", "--from", str(keyword_run), "--text", "flat", "--voice", "9", "--out", out
        ),  # fmt: skip
        "--voice must be in 0..",
    )
    assert_usage_error(
        minimod("speak", "--from", str(keyword_run), "--text", "  ", "--out", out), "empty"
    )
    assert_usage_error(minimod("speak", "--from", str(tmp_path), "--text", "flat"), "run folder")
    assert_usage_error(
        minimod("pretrain", "gpt", "--corpus", "digits", "--out", str(tmp_path / "g")),
        "--corpus is for tts",
    )


@pytest.mark.real
def test_tts_on_espeak_digits_speaks_with_a_reference(tmp_path):
    run = tmp_path / "digits"
    done = minimod("pretrain", "tts", "--max-steps", "2", "--out", str(run))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "digits.wav"
    done = minimod("speak", "--from", str(run), "--text", "three one four", "--voice", "5",
                   "--iterations", "4", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "said T r 'i:" in done.stdout
    waveform, sample_rate = read_wav(out)
    assert sample_rate == 22050 and len(waveform) > 1000
    assert out.with_suffix(".png").is_file()
    assert_usage_error(
        minimod("speak", "--from", str(run), "--text", "xylophone quiz", "--out", str(out)),
        "never heard",
    )
