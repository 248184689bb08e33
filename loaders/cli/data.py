"""`luckygas load`, `verify`, `report` and `sample`: exports into raw, counts against
expected.json, Mary's exception workbook, and the sample exports."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from rich.markup import escape

from loaders.cli.output import err, out, say


def _cmd_sample(args: argparse.Namespace) -> int:
    from loaders.sample.generate import generate

    generate(
        Path(args.out), scale=args.scale, seed=args.seed, console=err, increment=args.increment
    )
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the load is, so it unwinds like Ctrl-C."""


def _terminated(signum, frame) -> None:
    raise _Terminated()


SUMMARY_COLUMNS = ("source", "sheet", "table", "rows", "columns", "header row", "seconds",
                   "outcome")  # fmt: skip
_RIGHT = {"rows", "columns", "header row", "seconds"}


def _summary(results, dry_run: bool):
    """The load's table: one row per source, one value per column of SUMMARY_COLUMNS."""
    from rich.table import Table

    table = Table(title="dry run: nothing written" if dry_run else None)
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="right" if col in _RIGHT else "left")
    for r in results:
        table.add_row(
            escape(r.file.name), escape(r.sheet), r.table,
            "-" if r.outcome == "unchanged" else f"{r.rows_read:,}", str(r.columns),
            "-" if r.header_row is None else str(r.header_row), f"{r.seconds:.2f}",
            escape(r.outcome + (f" ({r.message})" if r.message else "")),
        )  # fmt: skip
    return table


def _cmd_load(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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

        # SIGTERM ends the load like Ctrl-C: rolled back and recorded `interrupted`.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
        try:
            report = raw.load(
                planned,
                None if target is None else lambda: connection.connect(target, autocommit=True),
                arguments=["load", *args.paths] + (["--force"] if args.force else []),
                dry_run=args.dry_run,
                force=args.force,
                progress=progress,
                on_result=results.append,
            )
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
            bar.stop()
    # Only a load that was kept is shown: after a failure nothing of it is (one error line).
    if results:
        out.print(_summary(results, args.dry_run))
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
        say(
            "note: the summary's parts come from different dbt runs (rules as of each one's"
            " latest result, the newest reconciliation recorded): its last block names them"
        )
    out.print(
        f"wrote {escape(str(out_path))}: {len(tables) - 1} rule and reason sheets,"
        f" {rows:,} source rows to look at"
    )
    return 0


def add_commands(sub) -> None:
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
