"""``minimod transcribe``: a speech-recognition run's transcripts of held-out utterances."""

from __future__ import annotations

import argparse

from minimod.cli.common import positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe held-out utterances with a speech-recognition run",
        description="Decode held-out utterances (made only of recordings the run never trained "
        "on) with an asr or asr-digits run; print each reference beside what the model heard, "
        "then the word and character error rates.\n\n"
        "  minimod pretrain audio --task asr --out runs/asr\n"
        "  minimod transcribe --from runs/asr --beam 8 --held-out 20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    transcribe.set_defaults(handler=run_transcribe)
    option = transcribe.add_argument
    option("--from", dest="run", required=True, metavar="RUN", help="an asr run folder")
    option(
        "--beam",
        type=positive_int,
        metavar="N",
        help="prefix beam search of width N (default: greedy, the best class per frame)",
    )
    option(
        "--held-out",
        type=positive_int,
        default=10,
        metavar="N",
        help="how many held-out utterances (default: 10)",
    )
    option("--device", default="cpu", help="default: cpu")


def run_transcribe(args: argparse.Namespace) -> int:
    from minimod.tasks.transcribe import transcribe

    result = transcribe(args.run, args.held_out, args.beam, args.device)
    for reference, heard in zip(result["references"], result["hypotheses"], strict=True):
        mark = "  " if heard == reference else "x "
        print(f"{mark}said:  {reference}\n  heard: {heard}")
    decoder = "greedy" if args.beam is None else f"beam {args.beam}"
    print(
        f"{len(result['references'])} held-out utterances ({decoder}): "
        f"WER {100 * result['wer']:.1f}%, CER {100 * result['cer']:.1f}%"
    )
    return 0
