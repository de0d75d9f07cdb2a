"""What every command family shares: the parser class, option types and ``--use-mine``."""

from __future__ import annotations

import argparse
import contextlib
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """Bad options are one plain line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_use_mine_argument(parser: argparse.ArgumentParser) -> None:
    """For training commands: ``--use-mine`` trains with your passing lessons' code."""
    parser.add_argument(
        "--use-mine",
        action="store_true",
        help="build the model from your own exercises/ code for every lesson that passes its "
        "tests (minimod's code for the rest) and say which is which",
    )


def use_mine_if_asked(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The context to build and train in: ``use_mine()`` with ``--use-mine``, else nothing."""
    if getattr(args, "use_mine", False):
        from minimod.workbook import use_mine

        return use_mine()
    return contextlib.nullcontext()
