"""``python -m lab COMMAND``: the lab's command line without the rest of mlconsole."""

from __future__ import annotations

import argparse
import os
import sys

from lab.cli import add_lab_parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as ``lab`` subcommand arguments and run the command."""
    # The program name makes the lab parser's usage read "python -m lab ...".
    parser = argparse.ArgumentParser(prog="python -m")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        # Output piped into something like `head` that stopped reading: not an error
        # worth a traceback. Point stdout at devnull so the interpreter's final flush
        # does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
