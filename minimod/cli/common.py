"""What every command family shares: the parser class, option types and ``--use-mine``."""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
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


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer option type that refuses values below ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be ≥ {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value"
    return parse


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # nan and inf parse as floats, then wreck training
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def fraction(text: str) -> float:
    """A float in (0, 1]: a decay factor."""
    value = _finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def seed(text: str) -> int:
    """An integer torch's generators accept: from -2**63 to 2**64 - 1."""
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must fit in 64 bits, got {text}")
    return value


def output_folder(text: str) -> str:
    """A folder that can be made and written: not empty, not a file, not under a file, in a
    folder this process can write to (probed with a nameless temp file: nothing is left)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is under {existing}, which is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot write in {existing} ({error.strerror or error})"
        ) from None
    return text


def add_use_mine_argument(parser: argparse.ArgumentParser) -> None:
    """For training commands: ``--use-mine`` trains with your passing lessons' code."""
    parser.add_argument(
        "--use-mine",
        action="store_true",
        help="build the model from your own exercises/ code for every lesson that passes its "
        "tests (minimod's code for the rest) and say which is which",
    )


def add_diagnostics_argument(parser: argparse.ArgumentParser) -> None:
    """For training commands: ``--diagnostics N`` watches one step in every N."""
    parser.add_argument(
        "--diagnostics",
        type=positive_int,
        metavar="N",
        help="every N steps, record per-layer activation statistics, dead units, gradient "
        "norms, update/weight ratios and the attention entropy of every head into "
        "diagnostics.jsonl; read them with `minimod "
        "diagnose --from RUN` (default: off)",
    )


def add_spec_augment_argument(parser: argparse.ArgumentParser) -> None:
    """For the speech-recognition tasks: SpecAugment on or off (default: the preset's)."""
    parser.add_argument(
        "--spec-augment",
        action=argparse.BooleanOptionalAction,
        help="asr tasks: mask random runs of frames and bands of coefficients in every "
        "training utterance (SpecAugment) (default: on, off for the tiny preset)",
    )


def use_mine_if_asked(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The context to build and train in: ``use_mine()`` with ``--use-mine``, else nothing."""
    if getattr(args, "use_mine", False):
        from minimod.workbook import use_mine

        return use_mine()
    return contextlib.nullcontext()
