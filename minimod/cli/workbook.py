"""``minimod exercises``: list the lessons, check a lesson, reset a lesson."""

from __future__ import annotations

import argparse
import sys

EXERCISES_HELP = """\
The workbook: rebuild minimod lesson by lesson.

  minimod exercises            every lesson: the lessons it builds on, an estimated time, and
                               its status (not started / failing / passing)
  minimod exercises check N    run lesson N's tests on exercises/eNN_*.py and explain failures:
                               a quick tier first, the full sweep once it passes; a file that
                               passed before, unchanged, is not tested again
  minimod exercises reset N    restore lesson N's empty stub (--yes if it holds your code)
"""


def add_commands(commands: argparse._SubParsersAction) -> None:
    exercises = commands.add_parser(
        "exercises",
        help="the workbook: list lessons, check your code, reset a lesson",
        description=EXERCISES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exercises.set_defaults(handler=run_exercises)
    actions = exercises.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser(
        "list", help="every lesson with its prerequisites, time and status (the default)"
    )
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


def run_exercises(args: argparse.Namespace) -> int:
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
