"""The `luckygas` command: a thin layer that parses arguments and calls the library.

Every error the user can act on is a `UserError`; it is printed as one line on stderr and
the command exits non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from loaders import __version__
from loaders.errors import UserError

err = Console(stderr=True, highlight=False)


def _cmd_db(args: argparse.Namespace) -> int:
    from loaders import embedded

    home = embedded.project_home()
    if args.psql_args and args.action != "psql":
        raise UserError(f"`luckygas db {args.action}` takes no arguments: {args.psql_args}")
    if args.action == "start":
        return embedded.cli_start(home)
    if args.action == "stop":
        return embedded.cli_stop(home)
    if args.action == "status":
        return embedded.cli_status(home)
    if args.action == "env":
        return embedded.cli_env(home)
    if args.action == "psql":
        return embedded.cli_psql(home, args.psql_args)
    raise AssertionError(args.action)


def _cmd_sample(args: argparse.Namespace) -> int:
    from loaders.sample.generate import generate

    generate(Path(args.out), scale=args.scale, seed=args.seed, console=err)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luckygas",
        description="Migrate Lucky Gas's exports into PostgreSQL, losslessly.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser(
        "db",
        help="the embedded PostgreSQL (ignored when PG* variables name another server)",
    )
    db.add_argument("action", choices=["start", "stop", "status", "env", "psql"])
    db.add_argument("psql_args", nargs=argparse.REMAINDER, help="arguments passed to psql")
    db.set_defaults(func=_cmd_db)

    sample = sub.add_parser(
        "sample", help="write sample exports shaped like the real ones, with expected.json"
    )
    sample.add_argument("--out", required=True, help="directory to write the files into")
    sample.add_argument("--scale", choices=["small", "full"], default="small")
    sample.add_argument("--seed", type=int, default=20250521)
    sample.set_defaults(func=_cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        # One line, whatever the terminal width (never wrapped at 80 columns when stderr is
        # not a terminal), and no rich markup read into the message: log lines and hints
        # hold square brackets.
        err.print(f"[bold red]luckygas:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[bold red]luckygas:[/] interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
