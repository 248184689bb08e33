"""`luckygas db`: the embedded PostgreSQL (loaders/db_command.py)."""

from __future__ import annotations

import argparse
import sys

from loaders.errors import UserError


def _cmd_db(args: argparse.Namespace) -> int:
    from loaders import db_command, embedded

    home = embedded.project_home()
    if args.psql_args and args.action != "psql":
        raise UserError(f"`luckygas db {args.action}` takes no arguments: {args.psql_args}")
    if args.action == "psql":
        return db_command.psql(home, args.psql_args)
    command = {
        "start": db_command.start,
        "stop": db_command.stop,
        "status": db_command.status,
        "env": db_command.env,
    }[args.action]
    output = command(home)
    for line in output.lines:
        print(line)  # plain: `eval "$(luckygas db env)"` reads these lines
    # Written now, not at exit: a reader that went away (`luckygas db status | head -1`)
    # is then a BrokenPipeError that `main` ends quietly, not a report at interpreter exit.
    sys.stdout.flush()
    return output.code


def add_commands(sub) -> None:
    db = sub.add_parser(
        "db",
        help="the embedded PostgreSQL (ignored when PG* variables or LUCKYGAS_DSN name another"
        " server); `db env` prints what dbt and psql need to reach the server in use",
    )
    db.add_argument("action", choices=["start", "stop", "status", "env", "psql"])
    db.add_argument("psql_args", nargs=argparse.REMAINDER, help="arguments passed to psql")
    db.set_defaults(func=_cmd_db)
