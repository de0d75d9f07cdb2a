"""Does minimod's text-to-speech speak intelligibly? A recogniser trained on eSpeak NG's real
audio transcribes minimod's generated audio of held-out digit strings.

    python experiments/tts_results.py [--preset baby] [--n 100] [--threads 1]
                                      [--judge RUN] [--tts RUN] [--out runs/tts-results]
                                      [--samples docs/samples] [--no-readme] [--sphinx]

1. The judge: ``pretrain audio --task asr-espeak`` (eSpeak's digit strings, eight voices,
   heard as the synthesiser's own log-mel features), unless --judge names a trained run.
2. The synthesiser: ``pretrain tts --corpus digits``, unless --tts names a trained run.
3. ``--n`` digit strings of the test split (texts never spoken in either training set), each in
   its drawn voice: the judge's WER on eSpeak's audio (the ceiling) and on minimod's (the
   frames -> Griffin-Lim waveform -> the judge's features, so it hears what a listener would);
   the mel-cepstral distortion (DTW-aligned) of minimod's frames against eSpeak's; the real-time
   factor of synthesis + Griffin-Lim on this CPU.
4. With --sphinx, a second, independent judge of the same waveforms (eSpeak's and minimod's):
   PocketSphinx's US-English model restricted to the ten digit words (sphinx_judge.py; needs
   ``pip install pocketsphinx``), as one more column.
Writes the table into README.md between ``<!-- tts-results:start -->`` and
``<!-- tts-results:end -->``, three generated samples into --samples, the rows into
OUT/tts-results.json. Part of ``make results-real``, never of ``make test``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from readme_tables import write_table

from minimod.data.asr import DIGIT_WORDS, Utterances
from minimod.data.espeak import SAMPLE_RATE, SPEAKERS, corpus_texts, render
from minimod.data.tts import features_to_waveform, mel_cepstral_distortion, speech_features
from minimod.data.wav import write_wav
from minimod.tasks import asr, pretrain
from minimod.tasks.run import load_run
from minimod.tasks.speak import synthesize
from minimod.train.error_rate import wer

MARKERS = ("<!-- tts-results:start -->", "<!-- tts-results:end -->")
SEED = 7  # the test texts' draw (any seed: the test split is fixed by text)


def trained(task: str, preset: str, run: str | None, out: Path, **options) -> tuple[Path, float]:
    """(the run folder, seconds of training: 0 for a given run)."""
    if run is not None:
        return Path(run), 0.0
    folder = out / f"{task}-{preset}"
    start = time.perf_counter()
    pretrain(task, preset, out=folder, device="cpu", progress=False, overwrite=True, **options)
    return folder, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="baby", choices=("tiny", "baby", "small"))
    parser.add_argument("--n", type=int, default=100, help="test digit strings (default: 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--judge", help="a trained asr-espeak run (default: train one)")
    parser.add_argument("--tts", help="a trained tts run (default: train one)")
    parser.add_argument("--out", default="runs/tts-results", help="where the runs go")
    parser.add_argument("--samples", default="docs/samples", help="where 3 samples go")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    parser.add_argument(
        "--sphinx", action="store_true", help="also judge with PocketSphinx (sphinx_judge.py)"
    )
    args = parser.parse_args(argv)
    if args.sphinx and importlib.util.find_spec("pocketsphinx") is None:
        parser.error("--sphinx needs pocketsphinx: pip install pocketsphinx==5.1.1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    judge_dir, judge_s = trained("asr-espeak", args.preset, args.judge, out)
    tts_dir, tts_s = trained("tts", args.preset, args.tts, out, corpus="digits")
    judge_record, _, judge = load_run(judge_dir)
    tts_record, _, synthesizer = load_run(tts_dir)
    texts, speakers = corpus_texts(args.n, SEED, "digits", "test")
    real, generated, distortions, compute, audio = [], [], [], 0.0, 0.0
    waveforms = {"espeak": [], "minimod": []}  # for --sphinx, which hears the waveforms
    samples = Path(args.samples)
    for index, (text, speaker) in enumerate(zip(texts, speakers, strict=True)):
        voice = SPEAKERS[speaker]
        rendered = render(text, voice.voice, voice.rate, voice.pitch)
        reference = speech_features(rendered.waveform, rendered.sample_rate)
        start = time.perf_counter()
        frames = synthesize(synthesizer, [p for p, _, _ in rendered.phonemes], speaker)
        waveform = features_to_waveform(frames, rendered.sample_rate)
        compute += time.perf_counter() - start
        audio += len(waveform) / rendered.sample_rate
        waveforms["espeak"].append(rendered.waveform)
        waveforms["minimod"].append(waveform)
        real.append(reference)
        generated.append(speech_features(waveform, rendered.sample_rate))
        distortions.append(mel_cepstral_distortion(frames, reference))
        if index < 3:
            samples.mkdir(parents=True, exist_ok=True)
            name = f"minimod-{text.replace(' ', '-')}-voice{speaker}.wav"
            write_wav(samples / name, waveform, rendered.sample_rate)
    labels = [[DIGIT_WORDS.index(w) for w in text.split()] for text in texts]
    heard = {}
    for name, features in (("espeak", real), ("minimod", generated)):
        utterances = Utterances(features, labels, [[] for _ in labels], DIGIT_WORDS)
        heard[name] = asr.decode(judge, utterances)[0]
    row = {
        "preset": args.preset, "n": args.n, "judge_train_s": round(judge_s),
        "tts_train_s": round(tts_s), "wer_espeak": wer(heard["espeak"], texts),
        "wer_minimod": wer(heard["minimod"], texts), "mcd_db": statistics.mean(distortions),
        "rtf": compute / audio, "threads": args.threads,
        "examples": [
            {"text": t, "heard": h} for t, h in zip(texts[:5], heard["minimod"][:5], strict=True)
        ],
    }  # fmt: skip
    if args.sphinx:
        from sphinx_judge import sphinx_transcribe

        for name, audios in waveforms.items():
            row[f"sphinx_wer_{name}"] = wer(sphinx_transcribe(audios, SAMPLE_RATE), texts)
    print(json.dumps(row, indent=2))
    out.mkdir(parents=True, exist_ok=True)
    (out / "tts-results.json").write_text(json.dumps(row, indent=2) + "\n")

    def sphinx(name: str) -> str:
        return f" {100 * row[f'sphinx_wer_{name}']:.1f}% |" if args.sphinx else ""

    text = "\n".join([
        f"| audio of {args.n} held-out digit strings | judge's WER | MCD vs eSpeak |"
        + (" PocketSphinx's WER |" if args.sphinx else ""),
        "|---|---|---|" + ("---|" if args.sphinx else ""),
        f"| eSpeak NG's own (the ceiling) | {100 * row['wer_espeak']:.1f}% | 0 dB |"
        + sphinx("espeak"),
        f"| minimod `speak` (`{tts_record['preset']}`) | {100 * row['wer_minimod']:.1f}% | "
        f"{row['mcd_db']:.2f} dB |" + sphinx("minimod"),
        "",
        f"Judge: `pretrain audio --task asr-espeak --preset {judge_record['preset']}`"
        + (f" ({judge_s:.0f} s)" if judge_s else "")
        + f"; synthesiser: `pretrain tts --preset {tts_record['preset']}`"
        + (f" ({tts_s:.0f} s)" if tts_s else "")
        + f". Real-time factor of `speak` (synthesis + 48 Griffin-Lim iterations): "
        f"{row['rtf']:.2f} on {args.threads} thread(s) of the shared 2-core CPU."
        + (
            f" Second judge: PocketSphinx {importlib.metadata.version('pocketsphinx')}'s "
            "US-English model restricted to the ten digit words (`experiments/sphinx_judge.py`)."
            if args.sphinx
            else ""
        )
        + f" `python experiments/tts_results.py{' --sphinx' if args.sphinx else ''}`, "
        f"torch {torch.__version__}.",
    ])  # fmt: skip
    print(text)
    if not args.no_readme and not write_table(*MARKERS, text):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
