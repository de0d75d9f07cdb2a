"""``minimod speak``: a text-to-speech run reads a text aloud into a WAV file."""

from __future__ import annotations

import argparse

from minimod.cli.common import positive_float, positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    speak = commands.add_parser(
        "speak",
        help="speak a text with a tts run into a WAV file",
        description="Read --text aloud with a text-to-speech run (minimod pretrain tts): the "
        "text becomes phonemes (eSpeak NG's pronunciation, for the digits and sentences "
        "corpora) or letters (keywords), the model predicts how long each lasts and the "
        "log-mel frames, and Griffin-Lim makes the waveform. Writes the WAV (16-bit PCM) and "
        "a spectrogram PNG beside it: minimod's frames above eSpeak's own for the same text.\n\n"
        "  minimod pretrain tts --preset baby --out runs/tts        # after make real\n"
        "  minimod speak --from runs/tts --text 'three one four' --voice 2 --out speech.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    speak.set_defaults(handler=run_speak)
    option = speak.add_argument
    option("--from", dest="run", required=True, metavar="RUN", help="a tts run folder")
    option("--text", required=True, help="what to say (digits corpus: digit words)")
    option("--voice", type=int, default=0, metavar="N",
           help="speaker N of the corpus (eSpeak: 0..7; keywords: 0..5) (default: 0)")  # fmt: skip
    option("--speed", type=positive_float, default=1.0, metavar="X",
           help="speak X times as fast (durations divided by X) (default: 1)")  # fmt: skip
    option("--iterations", type=positive_int, default=48, metavar="N",
           help="Griffin-Lim iterations: more is cleaner and slower (default: 48)")  # fmt: skip
    option("--out", default="speech.wav", metavar="FILE.wav", help="default: speech.wav")
    option("--device", default="cpu", help="default: cpu")


def run_speak(args: argparse.Namespace) -> int:
    from minimod.tasks.speak import speak

    result = speak(args.run, args.text, args.out, args.voice, args.speed, args.iterations,
                   args.device)  # fmt: skip
    print(f"said {' '.join(result['symbols'])}")
    print(
        f"{result['wav']}: {result['seconds']:.2f} s of audio in "
        f"{result['rtf'] * result['seconds']:.2f} s (real-time factor {result['rtf']:.2f})"
    )
    print(result["png"])
    return 0
