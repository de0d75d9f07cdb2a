"""The ``minimod`` command line. Thin: it parses arguments, then calls library functions."""

from __future__ import annotations

import argparse
import sys

from minimod import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimod",
        description="minimod: build deep-learning models from tensor ops, then train them.",
    )
    parser.add_argument("--version", action="version", version=f"minimod {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
