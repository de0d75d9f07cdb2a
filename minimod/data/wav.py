"""WAV files, read and written with the standard library's ``wave`` module: 16-bit PCM only,
any sample rate, any number of channels to read, mono or stereo to write.

Samples are float32 in [-1, 1): the int16 value divided by 32768 (torchaudio's convention),
mono as (samples,), several channels as (channels, samples). ``write_wav`` clips to [-1, 1]
(louder samples would wrap around in int16), rounds to the nearest int16 and writes atomically
(a temporary file in the same folder, then ``os.replace``), so an interrupted write leaves the
old file or the new one. Anything else -- a missing file, a file that is not WAV, 8/24/32-bit or
compressed or floating-point WAV, a truncated file, a bad waveform -- is one plain sentence:
``FileNotFoundError`` for a missing file, ``TypeError`` for a waveform that is not a float
tensor, ``ValueError`` for the rest.
"""

from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np
import torch

SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
FULL_SCALE = 32768  # int16 covers [-32768, 32767]
# The format tags of the fmt chunk (RFC 2361) most often met instead of 1 (PCM)
FORMAT_NAMES = {2: "ADPCM", 3: "floating-point", 6: "A-law", 7: "μ-law", 17: "IMA ADPCM"}
FORMAT_NAMES |= {85: "MP3", 0xFFFE: "extensible-format"}


def read_wav(path: str | Path) -> tuple[torch.Tensor, int]:
    """(waveform, sample_rate) from a 16-bit PCM WAV file: float32 in [-1, 1), (samples,) for
    mono, (channels, samples) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_wav: no file at {path}")
    with path.open("rb") as file:
        header = file.read(4096)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise ValueError(f"read_wav: {path} is not a WAV file (it has no RIFF/WAVE header)")
    try:
        with wave.open(str(path), "rb") as file:
            width, channels = file.getsampwidth(), file.getnchannels()
            sample_rate, count = file.getframerate(), file.getnframes()
            if width != SAMPLE_WIDTH:
                raise ValueError(
                    f"read_wav: only 16-bit PCM WAV is supported, {path} is {8 * width}-bit"
                )
            raw = file.readframes(count)
    except (wave.Error, EOFError) as error:  # wave's own words: "unknown format: 3", ...
        reason = _describe(header) or str(error) or "it ends inside its header"
        raise ValueError(
            f"read_wav: only 16-bit PCM WAV is supported, {path} is not ({reason})"
        ) from None
    if len(raw) != count * channels * SAMPLE_WIDTH:
        raise ValueError(
            f"read_wav: {path} is truncated: its header promises {count} frames, its data holds "
            f"{len(raw) // (channels * SAMPLE_WIDTH)}"
        )
    # WAV samples are little-endian int16, channels interleaved: (samples, channels)
    interleaved = np.frombuffer(raw, dtype="<i2").reshape(count, channels)
    waveform = torch.from_numpy(interleaved.T.astype(np.float32) / FULL_SCALE)
    return (waveform[0] if channels == 1 else waveform), sample_rate


def _describe(header: bytes) -> str | None:
    """The format, e.g. "32-bit floating-point", from the fmt chunk's format tag and bit depth,
    when that chunk is there and names a format other than PCM (then ``wave``'s reason says
    more)."""
    at = header.find(b"fmt ")
    tag = int.from_bytes(header[at + 8 : at + 10], "little") if at >= 0 else 1
    if tag == 1 or len(header) < at + 24:
        return None
    return f"{header[at + 22]}-bit {FORMAT_NAMES.get(tag, f'format {tag}')}"


def write_wav(path: str | Path, waveform: torch.Tensor, sample_rate: int) -> None:
    """Write ``waveform`` (samples,) or (channels, samples) with 1 or 2 channels, floating
    point, to ``path`` as 16-bit PCM at ``sample_rate``, clipped to [-1, 1]; atomically."""
    if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point():
        kind = waveform.dtype if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise TypeError(f"write_wav: waveform must be a floating-point tensor, got {kind}")
    if waveform.dim() not in (1, 2) or (waveform.dim() == 2 and waveform.shape[0] not in (1, 2)):
        raise ValueError(
            "write_wav: waveform must be (samples,) or (channels, samples) with 1 or 2 channels, "
            f"got shape {tuple(waveform.shape)}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"write_wav: sample_rate must be a positive int, got {sample_rate!r}")
    if not torch.isfinite(waveform).all():
        raise ValueError("write_wav: waveform has NaN or infinite samples")
    channels = torch.atleast_2d(waveform).detach().cpu().double()  # (channels, samples)
    scaled = (channels.clamp(-1, 1) * FULL_SCALE).round().clamp(-FULL_SCALE, FULL_SCALE - 1)
    raw = scaled.T.numpy().astype("<i2").tobytes()  # interleaved: sample by sample
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file, wave.open(file, "wb") as out:
            out.setnchannels(channels.shape[0])
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(sample_rate)
            out.writeframes(raw)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
