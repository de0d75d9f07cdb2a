"""The ``minimod`` command line. Thin: it parses arguments, then calls library functions.

One module per command family, each with ``add_commands(subparsers)`` that registers its
commands and sets each one's ``handler``:

    workbook.py   exercises [list | check N | reset N]
    pretrain.py   pretrain, generate, demo
    finetune.py   finetune, lr-find
    evaluate.py   evaluate (pretrain and fine-tune runs)
    transcribe.py transcribe (speech-recognition runs)
    classify.py   classify (ImageNet classes of photographs, a pretrained model)
    detect.py     detect (a detection run's boxes drawn into a picture)
    common.py     the parser class, option types, --use-mine

The command modules import ``minimod.tasks`` (and ``minimod.workbook``) lazily, inside the
handlers, so that ``minimod --help`` answers at once.
"""

from __future__ import annotations

import os
import shlex
import sys

from minimod import __version__
from minimod.cli import classify, detect, evaluate, finetune, pretrain, speak, transcribe, workbook
from minimod.cli.common import Parser, add_use_mine_argument, use_mine_if_asked

__all__ = ["add_use_mine_argument", "build_parser", "main", "use_mine_if_asked"]

# Exit status of a command whose output pipe was closed early (`minimod ... | head`): 128 +
# SIGPIPE, what a command killed by the signal reports in a shell.
BROKEN_PIPE_STATUS = 141
# Exit status of a run stopped by Ctrl-C or SIGTERM: 128 + SIGINT, as a shell reports Ctrl-C.
INTERRUPTED_STATUS = 130


def build_parser() -> Parser:
    parser = Parser(
        prog="minimod",
        description="minimod: build deep-learning models from tensor ops, then train them.",
    )
    parser.add_argument("--version", action="version", version=f"minimod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for family in (workbook, pretrain, finetune, evaluate, transcribe, speak, classify, detect):
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
    from minimod.tasks import Interrupted, UsageError, keep_freed_memory

    keep_freed_memory()  # every step's temporaries reuse the last step's pages (no page faults)
    try:
        return handler(args)
    except UsageError as error:
        print(f"minimod {args.command}: {error}", file=sys.stderr)
        return 2
    except Interrupted as error:  # the first Ctrl-C: the run saved last.pt after a whole step
        resumable = hasattr(args, "resume")  # pretrain, finetune
        _report(f"{error}; continue with: {_resume_command(argv)}" if resumable else str(error))
        return INTERRUPTED_STATUS
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training: stop at once
        _report(f"minimod {args.command}: aborted; checkpoints are whole (written atomically)")
        return INTERRUPTED_STATUS
    except BrokenPipeError:  # main's to handle: stdout went away
        raise
    except OSError as error:  # a disk full, a folder made read-only during the run, ...
        where = f" {error.filename}" if error.filename else ""
        print(f"minimod {args.command}: cannot write or read{where}: {error.strerror or error}",
              file=sys.stderr)  # fmt: skip
        return 2


def _report(line: str) -> None:
    """One line on stderr; under torchrun from rank 0 only (every process gets the signal)."""
    if os.environ.get("RANK", "0") == "0":
        print(line, file=sys.stderr)


def _resume_command(argv: list[str] | None) -> str:
    """The command line that was run, with --resume: it continues the run where it stopped."""
    words = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["minimod", *words, *([] if "--resume" in words else ["--resume"])])
