"""``minimod speak``: a text-to-speech run reads a text aloud into a WAV file.

The text becomes symbols the way the run's corpus made them: eSpeak NG's phonemes for the
digits and sentences corpora (eSpeak is the pronunciation dictionary, as in most open
synthesisers; its audio of the same text is kept as the reference to compare with), the letters
of a keyword for the keywords corpus. The synthesiser predicts each symbol's duration and the
log-mel frames; Griffin-Lim (``data.tts.features_to_waveform``) turns them into samples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from minimod.data.splits import MissingDataError
from minimod.data.tts import features_to_waveform, speech_features
from minimod.data.wav import write_wav
from minimod.tasks.common import UsageError
from minimod.tasks.run import load_run, read_run
from minimod.tasks.tts import encode, n_speakers


def pronounce(text: str, corpus: str, speaker: int):
    """(symbol names, sample rate, eSpeak's own waveform of the text or None)."""
    if corpus == "keywords":
        from minimod.data.audio import SAMPLE_RATE, WORD_NAMES

        if text not in WORD_NAMES:
            raise UsageError(
                f"a keywords run speaks one keyword: one of {', '.join(WORD_NAMES)}; got {text!r}"
            )
        return list(text), SAMPLE_RATE, None
    from minimod.data.espeak import SPEAKERS, render

    voice = SPEAKERS[speaker]
    try:
        rendered = render(text, voice.voice, voice.rate, voice.pitch)
    except MissingDataError as error:
        raise UsageError(str(error)) from None
    except ValueError as error:
        raise UsageError(f"--text: {error}") from None
    return [name for name, _, _ in rendered.phonemes], rendered.sample_rate, rendered.waveform


def synthesize(model: Any, names: list[str], speaker: int, speed: float = 1.0) -> torch.Tensor:
    """Symbol names -> the log-mel frames (frames, n_mels) ``model`` says them with, in voice
    ``speaker`` (eval mode, no gradients, on the model's device; frames on the CPU)."""
    ids = encode(names, model.config.symbols, "--text")
    device = model.head.weight.device
    symbols, speakers = torch.tensor([ids], device=device), torch.tensor([speaker], device=device)
    with torch.no_grad():
        frames, _, _ = model(symbols, speakers, speed=speed)
    return frames[0].float().cpu()


def speak(
    run_dir: str | Path,
    text: str,
    out: str | Path = "speech.wav",
    speaker: int = 0,
    speed: float = 1.0,
    n_iter: int = 48,
    device: str = "cpu",
) -> dict[str, Any]:
    """Speak ``text`` with a tts run in voice ``speaker``, ``speed`` times as fast; write the WAV
    to ``out`` and the spectrogram(s) beside it (``out`` with .png, if matplotlib is installed).
    Returns {"wav", "png" (a line saying where, or why not), "seconds" (audio), "rtf" (seconds
    of computing per second of audio), "symbols"}."""
    record = read_run(run_dir)
    if record.get("task") != "tts":
        raise UsageError(f"{run_dir} is not a tts run; make one with minimod pretrain tts")
    if not text.strip():
        raise UsageError("--text is empty: give the words to speak")
    if speed <= 0:
        raise UsageError(f"--speed must be > 0, got {speed}")
    corpus = record["settings"]["corpus"]
    voices = n_speakers(corpus)
    if not 0 <= speaker < voices:
        raise UsageError(f"--voice must be in 0..{voices - 1} for the {corpus} corpus")
    start = time.perf_counter()
    _, _, model = load_run(run_dir, device=device)
    names, sample_rate, reference = pronounce(text.strip().lower(), corpus, speaker)
    frames = synthesize(model, names, speaker, speed)
    waveform = features_to_waveform(frames, sample_rate, n_iter=n_iter)
    seconds = len(waveform) / sample_rate
    out = Path(out)
    write_wav(out, waveform, sample_rate)
    compute = time.perf_counter() - start
    target = None if reference is None else speech_features(reference, sample_rate)
    return {
        "wav": str(out), "png": plot_spectrograms(frames, target, out.with_suffix(".png")),
        "seconds": seconds, "rtf": compute / seconds, "symbols": names,
    }  # fmt: skip


def plot_spectrograms(generated: torch.Tensor, reference: torch.Tensor | None, path: Path) -> str:
    """The generated log-mel frames (frames, n_mels), above eSpeak's own when given, as a PNG;
    a line saying where, or how to get matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no spectrogram PNG: matplotlib is not installed (pip install 'minimod[plot]')"
    panels = [("minimod", generated)] + ([] if reference is None else [("eSpeak NG", reference)])
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), squeeze=False)
    for axis, (title, frames) in zip(axes[:, 0], panels, strict=True):
        axis.imshow(frames.T.numpy(), origin="lower", aspect="auto", cmap="magma")
        axis.set_title(f"{title}: log-mel, {len(frames)} frames")
        axis.set_ylabel("mel band")
    axes[-1, 0].set_xlabel("frame")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return f"spectrogram: {path}"
