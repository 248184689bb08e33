"""The `luckygas` command: a thin layer that parses arguments and calls the library.

Every error the user can act on is a `UserError`; it is printed as one line on stderr and
the command exits non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from loaders import __version__
from loaders.errors import UserError

err = Console(stderr=True, highlight=False)
# Tables stay readable in logs and pipes too (rich assumes 80 columns off a terminal).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


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

    generate(
        Path(args.out), scale=args.scale, seed=args.seed, console=err, increment=args.increment
    )
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from loaders import connection, raw

    paths = [Path(p) for p in args.paths]
    planned = raw.plan(paths)  # every file found, hashed and opened before anything is written
    target = None if args.dry_run else connection.resolve()
    if target is not None:
        err.print(f"loading into {target.description}", soft_wrap=True)
    results: list[raw.SourceResult] = []
    tasks: dict[int, int] = {}
    started: dict[int, float] = {}

    def rate(n: int, key: int) -> str:
        seconds = max(time.perf_counter() - started[key], 1e-6)
        return f"{n / seconds:,.0f} rows/s"

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:

        def progress(source, n: int) -> None:
            key = id(source)
            if key not in tasks:
                started[key] = time.perf_counter()
                tasks[key] = bar.add_task(
                    f"{source.file.name}: {source.sheet}", total=source.row_count_hint, rate=""
                )
            bar.update(tasks[key], completed=n, rate=rate(n, key))

        try:
            report = raw.load(
                paths,
                None if target is None else lambda: connection.connect(target, autocommit=True),
                planned=planned,
                arguments=["load", *args.paths] + (["--force"] if args.force else []),
                dry_run=args.dry_run,
                force=args.force,
                progress=progress,
                on_result=results.append,
            )
        finally:
            bar.stop()
            if results:
                table = Table(title="dry run: nothing written" if args.dry_run else None)
                for col in (
                    "source",
                    "table",
                    "rows",
                    "columns",
                    "header row",
                    "seconds",
                    "outcome",
                ):
                    table.add_column(
                        col, justify="right" if col in {"rows", "columns", "seconds"} else "left"
                    )
                for r in results:
                    table.add_row(
                        r.file.name, r.sheet, r.table,
                        "-" if r.outcome == "unchanged" else f"{r.rows_read:,}", str(r.columns),
                        "-" if r.header_row is None else str(r.header_row), f"{r.seconds:.2f}",
                        r.outcome + (f" ({r.message})" if r.message else ""),
                    )  # fmt: skip
                out.print(table)
    for note in report.notes:
        err.print(f"note: {escape(note)}", soft_wrap=True)
    total = sum(r.rows_read for r in report.results)
    unchanged = sum(r.outcome == "unchanged" for r in report.results)
    what = "would load" if args.dry_run else f"load {report.load_id}:"
    out.print(
        f"{what} {len(report.results) - unchanged} sources, {total:,} rows"
        + (f"; {unchanged} sources unchanged (use --force to reload them)" if unchanged else "")
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from rich.table import Table

    from loaders import connection, verify

    expected = verify.read_expected(Path(args.sample))
    with connection.connect(autocommit=True) as conn:
        checks = verify.raw_checks(conn, expected) + verify.raw_table_checks(conn, expected)
        checks += verify.customer_checks(conn, expected)
        checks += verify.delivery_checks(conn, expected)
    table = Table(title=f"database against {args.sample}")
    for col in ("what", "expected", "in database", ""):
        table.add_column(col, justify="right" if col in {"expected", "in database"} else "left")
    for c in checks:
        actual = "missing" if c.actual is None else f"{c.actual:,}"
        table.add_row(
            escape(c.what), f"{c.expected:,}", actual, "ok" if c.ok else "[red]DIFFERS[/]"
        )
    out.print(table)
    bad = [c for c in checks if not c.ok]
    out.print(f"{len(checks) - len(bad)} of {len(checks)} checks match expected.json")
    return 1 if bad else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from loaders import connection, report

    out_path = Path(args.out)
    with connection.connect(autocommit=True) as conn:
        tables = report.build(conn)
    if args.format == "csv":
        report.write_csv(tables, out_path)
    else:
        report.write_xlsx(tables, out_path)
    rows = sum(len(t.rows) for t in tables[1:])
    if tables[0].mixed:
        _say(
            "note: the summary's parts come from different dbt runs (rules as of each one's"
            " latest result, the newest reconciliation recorded): its last block names them"
        )
    out.print(
        f"wrote {escape(str(out_path))}: {len(tables) - 1} rule and reason sheets,"
        f" {rows:,} source rows to look at"
    )
    return 0


# -- migrate / rollback (loaders/migrate.py) ------------------------------------------------


def _say(line: str) -> None:
    err.print(escape(line), soft_wrap=True)


def _success_target(text: str) -> tuple[str, float]:
    from loaders.migrate import parse_success_target

    try:
        return parse_success_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_migrate(args: argparse.Namespace) -> int:
    from loaders import migrate

    result = migrate.migrate(
        [Path(p) for p in args.paths],
        dry_run=args.dry_run,
        backup_dir=None if args.backup_dir is None else Path(args.backup_dir),
        verify_restore=args.verify_backup == "restore",
        arguments=["migrate", *(["--dry-run"] if args.dry_run else []), *args.paths],
        success_target_overrides=dict(args.success_target),  # recorded with the arguments
        say=_say,
    )
    if result.migration_id is None:
        out.print("dry run: go; nothing written")
    else:
        backup = result.backup_path or "none (nothing to back up)"
        out.print(f"migration {result.migration_id} succeeded; backup {backup}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from loaders import migrate

    result = migrate.rollback(args.to, say=_say)
    out.print(
        f"rollback {result.rollback_id}: migration {result.migration_id} rolled back in"
        f" {result.total_seconds:.1f} s (restore {result.restore_seconds:.1f} s, verification"
        f" {result.verify_seconds:.1f} s)"
    )
    return 0


def _add_migrate_commands(sub) -> None:
    mig = sub.add_parser(
        "migrate",
        help="the cut-over: checks, backup, load, dbt build, reconciliation; recorded",
    )
    mig.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    mig.add_argument(
        "--dry-run",
        action="store_true",
        help="run the before-checks, print the plan, write nothing",
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


# -- review (loaders/review.py) -------------------------------------------------------------


def _cmd_review(args: argparse.Namespace) -> int:
    from rich.table import Table

    from loaders import connection, review

    with connection.connect(autocommit=True) as conn:
        if args.action == "list":
            reviews = review.current(conn, args.code)
        else:
            selector = review.Selector(args.file, args.sheet, args.row, args.all)
            write = {
                "accept": review.accept,
                "expect-fixed": review.expect_fixed,
                "withdraw": review.withdraw,
            }[args.action]
            done = write(conn, args.code, selector, note=args.note, reviewer=args.by)
    if args.action == "list":
        table = Table(title=f"current reviews{f' of {args.code}' if args.code else ''}")
        for col in ("code", "file", "sheet", "row", "decision", "note", "by", "when", "now"):
            table.add_column(col, justify="right" if col == "row" else "left")
        for r in reviews:
            table.add_row(
                escape(r.code), escape(r.source_file), escape(repr(r.source_sheet)),
                str(r.source_row), r.decision, escape(r.note or ""), escape(r.reviewer),
                f"{r.reviewed_at:%Y-%m-%d %H:%M}", r.state,
            )  # fmt: skip
        out.print(table)
        states = ", ".join(
            f"{sum(r.state == s for r in reviews)} {s}"
            for s in (review.STILL_MATCHING, review.OPEN_AGAIN, review.EXCEPTION_GONE)
        )
        out.print(f"{len(reviews)} current reviews: {states}")
        return 0
    n = len(done.rows)
    what = {"accepted": "accepted", "expected_fixed": "marked expected fixed"}
    noun = "exception" if n == 1 else "exceptions"
    line = (
        f"{n} {'review' if n == 1 else 'reviews'} withdrawn for {done.code}"
        if done.decision == "withdrawn"
        else f"{n} {noun} {what[done.decision]} for {done.code}"
    )
    line += f" by {done.reviewer}"
    if n == 1 and not args.all:
        line += f": {review.where(*done.rows[0])}"
    if done.without_source_row:
        line += (
            f"; {done.without_source_row} exceptions of {done.code} name no source row"
            " (not reviewed)"
        )
    out.print(escape(line), soft_wrap=True)
    return 0


def _add_review_commands(sub) -> None:
    rev = sub.add_parser(
        "review",
        help="mark exceptions accepted or expected fixed (kept across rebuilds), or list reviews",
    )
    actions = rev.add_subparsers(dest="action", required=True)
    for name, text, note in (
        ("accept", "accept exceptions of a rule or quarantine reason (a note and --by required)",
         "why it is accepted (required)"),
        ("expect-fixed", "mark exceptions as expected to be fixed in the source file",
         "what is expected (optional)"),
        ("withdraw", "cancel the current reviews of those rows", "why (optional)"),
    ):  # fmt: skip
        act = actions.add_parser(name, help=text)
        act.add_argument("code", metavar="CODE", help="rule id (C16 ...) or quarantine reason")
        act.add_argument("--file", help="the source file, as validation.exceptions names it")
        act.add_argument("--sheet", help="the source sheet (or SQLite table)")
        act.add_argument("--row", type=int, help="the source row number")
        act.add_argument(
            "--all", action="store_true", help="every current exception of CODE instead of one row"
        )
        act.add_argument("--note", help=note)
        act.add_argument("--by", metavar="NAME", help="who decides (required)")
        act.set_defaults(func=_cmd_review)
    lst = actions.add_parser(
        "list", help="the current reviews, and whether each still matches its exception"
    )
    lst.add_argument("code", metavar="CODE", nargs="?", help="only this rule or reason")
    lst.set_defaults(func=_cmd_review)


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

    load = sub.add_parser(
        "load",
        help="stage every sheet, table and CSV file under PATH into schema raw, as text",
    )
    load.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    load.add_argument(
        "--dry-run", action="store_true", help="read and check everything, write nothing"
    )
    load.add_argument(
        "--force", action="store_true", help="reload sources whose file has not changed"
    )
    load.set_defaults(func=_cmd_load)

    check = sub.add_parser(
        "verify", help="compare the database with a sample's expected.json, count by count"
    )
    check.add_argument("sample", metavar="DIR", help="sample directory (or its expected.json)")
    check.set_defaults(func=_cmd_verify)

    rep = sub.add_parser(
        "report",
        help="write Mary's exception workbook: a summary and every failing row, by rule and reason",
    )
    rep.add_argument(
        "--out", required=True, help="the .xlsx file (or a directory, with --format csv)"
    )
    rep.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    rep.set_defaults(func=_cmd_report)

    sample = sub.add_parser(
        "sample", help="write sample exports shaped like the real ones, with expected.json"
    )
    sample.add_argument("--out", required=True, help="directory to write the files into")
    sample.add_argument("--scale", choices=["small", "full"], default="small")
    sample.add_argument("--seed", type=int, default=20250521)
    sample.add_argument(
        "--increment",
        action="store_true",
        help="write only the daily-load increment of that sample (a further history workbook,"
        " 2025-05-29 to 2025-06-20, in the upload layout) and expected-increment.json",
    )
    sample.set_defaults(func=_cmd_sample)
    _add_migrate_commands(sub)
    _add_review_commands(sub)
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
