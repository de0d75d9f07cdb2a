"""The real datasets' command line: ``python -m minimod.data.real prepare-vader SDIST`` (run by
``make real``) and ``python -m minimod.data.real summary`` (counts per split and class).

The datasets themselves live in ``vader`` (movie-review snippets), ``digitsets`` (handwritten
and spoken digits) and ``formats`` (IDX and text/label TSV files by path); what they share --
fixed splits by content hash and ``MissingDataError`` -- in ``splits``. See data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from minimod.data.digitsets import digits, spoken_digits
from minimod.data.splits import SPLITS, MissingDataError
from minimod.data.vader import VADER_SDIST, movie_sentiment, prepare_vader


def _summary() -> None:
    """Print per-split, per-class counts of every real dataset that is available here."""
    loaders = {
        "movie_sentiment": lambda s: [label for _, label in movie_sentiment(s)],
        "digits": lambda s: digits(s).labels.tolist(),
        "spoken_digits": lambda s: spoken_digits(s).labels.tolist(),
    }
    for name, load in loaders.items():
        try:
            for split in SPLITS:
                labels = load(split)
                counts = np.bincount(labels, minlength=2).tolist()
                print(f"{name:16s} {split:5s} {len(labels):6d}  per class {counts}")
        except MissingDataError as error:
            print(f"{name:16s} unavailable: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimod.data.real", description="Prepare and inspect minimod's real data."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser(
        "prepare-vader", help=f"extract the movie-review ratings from {VADER_SDIST}"
    )
    prepare.add_argument("sdist", help=f"path of {VADER_SDIST} (pip download --no-binary :all:)")
    prepare.add_argument("--cache", default=None, help="minimod cache folder ($MINIMOD_CACHE)")
    commands.add_parser("summary", help="counts per split and class of each available set")
    args = parser.parse_args(argv)
    if args.command == "prepare-vader":
        try:
            path = prepare_vader(args.sdist, cache=args.cache)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(path)
        return 0
    _summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
