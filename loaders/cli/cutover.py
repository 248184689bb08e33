"""`luckygas migrate` and `luckygas rollback`: the cut-over (loaders/cutover/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from loaders.cli.output import out, say


def _success_target(text: str) -> tuple[str, float]:
    from loaders.cutover.checks import parse_success_target

    try:
        return parse_success_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_migrate(args: argparse.Namespace) -> int:
    from loaders.cutover.children import sigterm_raises
    from loaders.cutover.migrate import migrate

    flags = [
        *(["--phase", args.phase] if args.phase != "all" else []),
        *(["--rehearse"] if args.rehearse else []),
        *(["--dry-run"] if args.dry_run else []),
    ]
    with sigterm_raises():  # a `kill` unwinds as Ctrl-C does: dbt stopped, steps undone
        result = migrate(
            [Path(p) for p in args.paths],
            phase=args.phase,
            rehearse=args.rehearse,
            dry_run=args.dry_run,
            backup_dir=None if args.backup_dir is None else Path(args.backup_dir),
            verify_restore=args.verify_backup == "restore",
            arguments=["migrate", *flags, *args.paths],
            success_target_overrides=dict(args.success_target),  # recorded with the arguments
            say=say,
        )
    if result.migration_id is None:
        out.print("dry run: go; nothing written")
    elif result.rehearsed:
        out.print(
            f"rehearsal {result.migration_id}: the real run would be a GO; nothing was"
            " published (raw restored from the backup and verified)"
        )
    else:
        backup = result.backup_path or "none (nothing to back up)"
        out.print(f"migration {result.migration_id} succeeded; backup {backup}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from loaders.cutover.children import sigterm_raises
    from loaders.cutover.rollback import rollback

    with sigterm_raises():
        result = rollback(args.to, say=say)
    out.print(
        f"rollback {result.rollback_id}: migration {result.migration_id} rolled back in"
        f" {result.total_seconds:.1f} s (restore {result.restore_seconds:.1f} s, verification"
        f" {result.verify_seconds:.1f} s)"
    )
    return 0


def add_commands(sub) -> None:
    mig = sub.add_parser(
        "migrate",
        help="the cut-over: checks, backup, load, dbt build, reconciliation; recorded",
    )
    mig.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    mig.add_argument(
        "--phase",
        choices=["all", "clients", "deliveries"],
        default="all",
        help="clients: the client workbook (and the app database's clients table);"
        " deliveries: the history workbooks and the app database, after the clients;"
        " all (default): every file given. Each phase is a migration of its own (go/no-go,"
        " backup, record, rollback)",
    )
    how = mig.add_mutually_exclusive_group()
    how.add_argument(
        "--rehearse",
        action="store_true",
        help="run everything a migration runs up to the after-checks (load, shadow build,"
        " checks, success rates), then undo it: say whether the real run would be a GO or"
        " a NO-GO and why; publishes nothing (recorded as `rehearsed` or `no-go`)",
    )
    how.add_argument(
        "--dry-run",
        action="store_true",
        help="only check the inputs and print the plan; writes nothing (what the migration"
        " would do: --rehearse)",
    )
    mig.add_argument(
        "--backup-dir",
        help="where backups go (default: $LUCKYGAS_HOME/backups or ./.luckygas/backups)",
    )
    mig.add_argument(
        "--verify-backup",
        choices=["restore", "list"],
        default="restore",
        help="restore the backup into a scratch database and compare counts (default),"
        " or only check that pg_restore --list lists every table",
    )
    mig.add_argument(
        "--success-target",
        action="append",
        default=[],
        type=_success_target,
        metavar="ENTITY=RATE",
        help="accept this success rate for an entity in this migration instead of the plan's"
        " (dbt_project.yml var migration_success_targets), e.g. delivery=0.995; repeatable;"
        " recorded in validation.migrations",
    )
    mig.set_defaults(func=_cmd_migrate)

    rb = sub.add_parser(
        "rollback",
        help="restore raw and the dbt schemas to their state before a migration, and verify",
    )
    rb.add_argument(
        "--to",
        type=int,
        metavar="MIGRATION_ID",
        help="the migration to undo (default: the latest succeeded one not rolled back)",
    )
    rb.set_defaults(func=_cmd_rollback)
