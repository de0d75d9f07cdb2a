"""``minimod transcribe``: a speech-recognition run's transcripts of held-out utterances."""

from __future__ import annotations

import argparse

from minimod.cli.common import positive_int


def add_commands(commands: argparse._SubParsersAction) -> None:
    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe held-out utterances with a speech-recognition run",
        description="Decode held-out utterances (made only of recordings the run never trained "
        "on) with a speech-recognition run (pretrain audio --task asr or asr-digits, or finetune "
        "audio --task asr-digits); print each reference beside what the model heard, then the "
        "word and character error rates. With --features, transcribe your own utterances "
        "instead: a .pt or .npy file of one (frames, F) array or a batch (N, frames, F), F the "
        "run's features per frame (asr-digits: the dataset's 13 standardized MFCCs; asr: "
        "minimod.data.audio's log_mel or mfcc of a 16 kHz waveform).\n\n"
        "  minimod pretrain audio --task asr --out runs/asr\n"
        "  minimod transcribe --from runs/asr --beam 8 --held-out 20\n"
        "  minimod transcribe --from runs/asr --features my_utterances.pt",
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
    option(
        "--features",
        metavar="FILE",
        help="transcribe the utterances in FILE (.pt or .npy) instead of held-out ones",
    )
    option("--device", default="cpu", help="default: cpu")


def run_transcribe(args: argparse.Namespace) -> int:
    from minimod.tasks.transcribe import transcribe, transcribe_features

    if args.features is not None:
        heard = transcribe_features(args.run, args.features, args.beam, args.device)
        for index, text in enumerate(heard):
            print(f"{index}: {text}" if text else f"{index}: (nothing heard)")
        return 0
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
