"""The `luckygas` command: a thin layer that parses arguments and calls the library.

Every error the user can act on is a `UserError`; it is printed as one line on stderr and
the command exits non-zero, without a traceback. A database error that no command turned into
a UserError is printed the same way (exit 2). A module per command group: db.py, data.py
(load, verify, report, sample), cutover.py (migrate, rollback), review.py.
"""

from __future__ import annotations

import argparse
import os
import sys

from rich.markup import escape

from loaders import __version__
from loaders.cli import cutover, data, db, review
from loaders.cli.output import err
from loaders.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luckygas",
        description="Migrate Lucky Gas's exports into PostgreSQL, losslessly.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (db, data, cutover, review):
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import psycopg

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except psycopg.Error as exc:
        # A fault the commands do not name themselves (a server that went away, a full
        # disk): still one line, the server's own words, and exit 2.
        first = " ".join(str(exc).split()) or type(exc).__name__
        err.print(f"[bold red]luckygas:[/] database error: {escape(first)}", soft_wrap=True)
        return UserError.exit_code
    except UserError as exc:
        # One line, whatever the terminal width (never wrapped at 80 columns when stderr is
        # not a terminal), and no rich markup read into the message: log lines and hints
        # hold square brackets.
        err.print(f"[bold red]luckygas:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[bold red]luckygas:[/] interrupted")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`luckygas db status | head -2`): stop quietly,
        # as command-line tools do, and keep Python from reporting the pipe again at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool a pipe closed


if __name__ == "__main__":
    sys.exit(main())
