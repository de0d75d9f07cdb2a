"""The ``minimod`` command line. Thin: it parses arguments, then calls library functions.

One module per command family, each with ``add_commands(subparsers)`` that registers its
commands and sets each one's ``handler``:

    workbook.py   exercises [list | check N | reset N]
    pretrain.py   pretrain, generate, demo
    finetune.py   finetune, lr-find
    evaluate.py   evaluate (pretrain and fine-tune runs)
    common.py     the parser class, option types, --use-mine

The command modules import ``minimod.tasks`` (and ``minimod.workbook``) lazily, inside the
handlers, so that ``minimod --help`` answers at once.
"""

from __future__ import annotations

import os
import sys

from minimod import __version__
from minimod.cli import evaluate, finetune, pretrain, workbook
from minimod.cli.common import Parser, add_use_mine_argument, use_mine_if_asked

__all__ = ["add_use_mine_argument", "build_parser", "main", "use_mine_if_asked"]

# Exit status of a command whose output pipe was closed early (`minimod ... | head`): 128 +
# SIGPIPE, what a command killed by the signal reports in a shell.
BROKEN_PIPE_STATUS = 141


def build_parser() -> Parser:
    parser = Parser(
        prog="minimod",
        description="minimod: build deep-learning models from tensor ops, then train them.",
    )
    parser.add_argument("--version", action="version", version=f"minimod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in (workbook, pretrain, finetune, evaluate):
        family.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:  # also after --help's SystemExit: a closed pipe surfaces here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. stdout is pointed at /dev/null so
        # that the interpreter's final flush of the dead pipe raises nothing either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    if args.command == "exercises":  # the workbook needs no torch to list lessons
        return handler(args)
    from minimod.tasks import UsageError

    try:
        return handler(args)
    except UsageError as error:
        print(f"minimod {args.command}: {error}", file=sys.stderr)
        return 2
