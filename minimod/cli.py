"""The ``minimod`` command line. Thin: it parses arguments, then calls library functions."""

from __future__ import annotations

import argparse
import contextlib
import sys

from minimod import __version__

EXERCISES_HELP = """\
The workbook: rebuild minimod lesson by lesson.

  minimod exercises            every lesson with its status (not started / failing / passing)
  minimod exercises check N    run lesson N's tests on exercises/eNN_*.py and explain failures
  minimod exercises reset N    restore lesson N's empty stub (--yes if it holds your code)
"""


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimod",
        description="minimod: build deep-learning models from tensor ops, then train them.",
    )
    parser.add_argument("--version", action="version", version=f"minimod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    exercises = commands.add_parser(
        "exercises",
        help="the workbook: list lessons, check your code, reset a lesson",
        description=EXERCISES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = exercises.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="every lesson with its status (the default)")
    check = actions.add_parser(
        "check",
        help="run lesson N's tests on your exercises/eNN_*.py and explain failures",
    )
    check.add_argument("lesson", type=int, metavar="N", help="the lesson number, e.g. 2")
    reset = actions.add_parser("reset", help="restore lesson N's stub in exercises/")
    reset.add_argument("lesson", type=int, metavar="N", help="the lesson number, e.g. 2")
    reset.add_argument(
        "--yes", action="store_true", help="overwrite the file even though it holds your code"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "exercises":
        from minimod.workbook import commands

        try:
            if args.action == "check":
                return commands.check(args.lesson)
            if args.action == "reset":
                return commands.reset(args.lesson, yes=args.yes)
            return commands.list_lessons()
        except FileNotFoundError as error:
            print(f"minimod exercises: {error}", file=sys.stderr)
            return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
