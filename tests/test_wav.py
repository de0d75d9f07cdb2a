"""WAV files (minimod/data/wav.py): round trips through files the tests write (mono, stereo,
any sample rate), agreement with the standard ``wave`` module and the int16 convention, clipping,
atomic writes, and each refusal as one sentence."""

from __future__ import annotations

import math
import struct
import wave

import numpy as np
import pytest
import torch

from minimod.data.wav import read_wav, write_wav


def riff(fmt_tag: int, channels: int, sample_rate: int, bits: int, data: bytes) -> bytes:
    """A minimal RIFF/WAVE file: a 16-byte fmt chunk and a data chunk, built by hand."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("channels, sample_rate", [(1, 16000), (2, 44100), (1, 7999)])
def test_round_trip(tmp_path, channels, sample_rate):
    t = torch.arange(1000) / sample_rate
    waveform = torch.stack([0.5 * torch.sin(2 * math.pi * 440 * (c + 1) * t) for c in range(2)])
    waveform = waveform[0] if channels == 1 else waveform
    path = tmp_path / "tone.wav"
    write_wav(path, waveform, sample_rate)
    back, rate = read_wav(path)
    assert rate == sample_rate and back.dtype == torch.float32 and back.shape == waveform.shape
    torch.testing.assert_close(back, waveform, rtol=0, atol=0.5 / 32768 + 1e-7)
    write_wav(path, back.double(), sample_rate)  # already on the int16 grid: exact
    assert torch.equal(read_wav(path)[0], back)
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_matches_the_wave_module_and_the_int16_convention(tmp_path):
    ints = np.array([[0, 1, -1, 32767, -32768, 1000], [5, -5, 16384, -16384, 2, -2]])
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:  # written independently of minimod
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(22050)
        out.writeframes(ints.T.astype("<i2").tobytes())
    waveform, rate = read_wav(path)
    assert rate == 22050 and waveform.shape == (2, 6)
    torch.testing.assert_close(waveform, torch.from_numpy(ints / 32768).float())
    copy = tmp_path / "copy.wav"
    write_wav(copy, waveform, rate)
    with wave.open(str(copy), "rb") as back:
        assert (back.getnchannels(), back.getsampwidth(), back.getframerate()) == (2, 2, 22050)
        assert back.readframes(6) == ints.T.astype("<i2").tobytes()


def test_write_clips_to_full_scale_and_overwrites(tmp_path):
    path = tmp_path / "sub" / "loud.wav"  # the folder is created
    write_wav(path, torch.tensor([2.0, -3.0, 1.0, -1.0, 0.25]), 8000)
    back, _ = read_wav(path)
    torch.testing.assert_close(back, torch.tensor([32767, -32768, 32767, -32768, 8192]) / 32768)
    write_wav(path, torch.zeros(3), 8000)
    assert torch.equal(read_wav(path)[0], torch.zeros(3))
    write_wav(path, torch.zeros(0), 8000)
    assert read_wav(path)[0].shape == (0,)


def test_unsupported_files_are_one_sentence_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="read_wav: no file at"):
        read_wav(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(ValueError, match="notes.wav is not a WAV file"):
        read_wav(text)
    for bits in (8, 24, 32):
        path = tmp_path / f"pcm{bits}.wav"
        path.write_bytes(riff(1, 1, 16000, bits, bytes(bits // 8 * 10)))
        message = f"only 16-bit PCM WAV is supported, {path} is {bits}-bit"
        with pytest.raises(ValueError, match=message):
            read_wav(path)
    floating = tmp_path / "float.wav"
    floating.write_bytes(riff(3, 1, 16000, 32, bytes(40)))  # format 3: IEEE float
    with pytest.raises(ValueError, match=r"float.wav is not \(32-bit floating-point\)"):
        read_wav(floating)
    adpcm = tmp_path / "adpcm.wav"
    adpcm.write_bytes(riff(17, 1, 16000, 4, bytes(40)))
    with pytest.raises(ValueError, match=r"adpcm.wav is not \(4-bit IMA ADPCM\)"):
        read_wav(adpcm)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(riff(1, 1, 16000, 16, bytes(20))[:-6])
    with pytest.raises(
        ValueError,
        match="truncated.wav is truncated: its header promises 10 frames, its data holds 7",
    ):
        read_wav(truncated)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(riff(1, 1, 16000, 16, b"")[:20])
    with pytest.raises(ValueError, match="only 16-bit PCM WAV is supported"):
        read_wav(header_only)


def test_bad_waveforms_are_refused(tmp_path):
    path = tmp_path / "x.wav"
    with pytest.raises(TypeError, match="floating-point tensor, got torch.int16"):
        write_wav(path, torch.zeros(4, dtype=torch.int16), 8000)
    with pytest.raises(TypeError, match="floating-point tensor, got list"):
        write_wav(path, [0.0, 0.1], 8000)
    with pytest.raises(ValueError, match=r"1 or 2 channels, got shape \(100, 2\)"):
        write_wav(path, torch.zeros(100, 2), 8000)
    with pytest.raises(ValueError, match="got shape"):
        write_wav(path, torch.zeros(1, 2, 3), 8000)
    with pytest.raises(ValueError, match="sample_rate must be a positive int"):
        write_wav(path, torch.zeros(4), 0)
    with pytest.raises(ValueError, match="sample_rate"):
        write_wav(path, torch.zeros(4), 16000.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_wav(path, torch.tensor([0.0, math.nan]), 8000)
    assert not list(tmp_path.iterdir()), "a refused write leaves nothing"
