"""The raw loader: every source row into schema `raw`, as text, with lineage, by COPY.

`plan(paths)` finds, hashes and opens every file first; `load(plan, connect)` writes them.

Each write states its mode: a source (one sheet or table of one file) is *replaced* in one
transaction: its table is emptied (TRUNCATE, so views built on it survive) and refilled by
streaming the reader's rows into COPY, then its `raw._sources` row is written. A failure at
any point (a truncated file, a killed process, a lost connection) rolls the transaction back
and the previous rows of that source stay as they were. Loading an unchanged file again is
detected by its SHA-256 and skipped unless `force`.

Bookkeeping tables (created on first use):

- `raw._loads`: one row per `luckygas load` (id, started, finished, user, host, arguments,
  outcome, message);
- `raw._sources`: one row per source per load (file, path, hash, sheet, target table, rows
  read, rows written, header row, columns, seconds, outcome, message);
- `raw._columns`: the column map of each raw table (position, column name, original header);
- `raw._above_header`: the non-blank rows above a sheet's header row (the dispatch sheets'
  title row: area, route, time, plate), one array of cell texts per row, so they are not lost.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg import sql

from loaders import __version__
from loaders.hashing import sha256_of
from loaders.naming import LINEAGE_COLUMNS, column_names, table_name
from loaders.readers import discover, open_file
from loaders.readers.base import Source, SourceError

SCHEMA = "raw"

BOOKKEEPING_DDL = """
create schema if not exists raw;
create table if not exists raw._loads (
    load_id bigint generated always as identity primary key,
    started_at timestamptz not null default clock_timestamp(),
    finished_at timestamptz,
    db_user text not null default current_user,
    os_user text,
    host text,
    arguments text[] not null,
    tool_version text not null,
    outcome text not null default 'running'
        check (outcome in ('running', 'loaded', 'failed', 'interrupted')),
    message text
);
create table if not exists raw._sources (
    load_id bigint not null references raw._loads (load_id),
    source_file text not null,
    source_path text not null,
    file_kind text not null,
    file_sha256 text not null,
    file_bytes bigint not null,
    sheet text not null,
    table_name text not null,
    header_row integer,
    columns integer not null,
    rows_read bigint not null,
    rows_written bigint not null,
    seconds numeric(10, 3) not null,
    outcome text not null check (outcome in ('loaded', 'unchanged', 'failed')),
    message text,
    recorded_at timestamptz not null default clock_timestamp(),
    primary key (load_id, source_file, sheet)
);
create table if not exists raw._above_header (
    table_name text not null,
    row_number integer not null,
    cells text[] not null,
    source_file text not null,
    sheet text not null,
    load_id bigint not null references raw._loads (load_id),
    primary key (table_name, row_number)
);
create table if not exists raw._columns (
    table_name text not null,
    position integer not null,
    column_name text not null,
    original_header text,
    source_file text not null,
    sheet text not null,
    load_id bigint not null references raw._loads (load_id),
    primary key (table_name, position)
);
"""


@dataclass
class SourceResult:
    """What happened to one source in one load."""

    file: Path
    sheet: str
    table: str
    rows_read: int = 0
    rows_written: int = 0
    header_row: int | None = None
    columns: int = 0
    seconds: float = 0.0
    outcome: str = "pending"  # loaded, unchanged, failed, would load (dry run)
    message: str = ""


@dataclass
class LoadReport:
    load_id: int | None
    results: list[SourceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.outcome == "failed"]


Progress = Callable[[Source, int], None]  # called with rows done so far


@dataclass
class PlannedFile:
    """A file found, hashed and opened by `plan`."""

    path: Path
    sha256: str
    size: int
    sources: list[Source]


class Plan(NamedTuple):
    """What `load` loads: the files, in order, and the notes on what was skipped."""

    files: list[PlannedFile]
    notes: list[str]


def plan(paths: Iterable[Path]) -> Plan:
    """Find, hash and open every file before anything is written: a file that cannot be read
    stops the load here, with nothing half-written."""
    files, notes = discover([Path(p) for p in paths])
    opened = []
    for path in files:
        sources = open_file(path)
        opened.append(PlannedFile(path, sha256_of(path), path.stat().st_size, sources))
    names: dict[str, tuple[Path, str]] = {}
    for f in opened:
        for s in f.sources:
            table = table_name(f.path.name, s.sheet, s.file_kind)
            other = names.setdefault(table, (f.path, s.sheet))
            if other != (f.path, s.sheet):
                raise SourceError(
                    f.path,
                    f"sheet {s.sheet!r} would load into the same table as {other[0]} "
                    f"sheet {other[1]!r} (two files with one name)",
                    "load them in separate runs",
                )
    return Plan(opened, notes)


def ensure_bookkeeping(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(BOOKKEEPING_DDL)


def _start_load(conn: psycopg.Connection, arguments: list[str]) -> int:
    with conn.transaction():
        row = conn.execute(
            "insert into raw._loads (os_user, host, arguments, tool_version)"
            " values (%s, %s, %s, %s) returning load_id",
            (getpass.getuser(), socket.gethostname(), arguments, __version__),
        ).fetchone()
    return int(row[0])


def _finish_load(conn: psycopg.Connection, load_id: int, outcome: str, message: str) -> None:
    with conn.transaction():
        conn.execute(
            "update raw._loads set finished_at = clock_timestamp(), outcome = %s, message = %s"
            " where load_id = %s",
            (outcome, message or None, load_id),
        )


def _unchanged(conn: psycopg.Connection, f: PlannedFile, s: Source, table: str) -> bool:
    """The last successful load of this source came from a file with the same hash."""
    row = conn.execute(
        "select file_sha256 from raw._sources"
        " where source_file = %s and sheet = %s and outcome in ('loaded', 'unchanged')"
        " order by load_id desc limit 1",
        (f.path.name, s.sheet),
    ).fetchone()
    exists = conn.execute("select to_regclass(%s) is not null", (f"{SCHEMA}.{table}",)).fetchone()
    return bool(row and row[0] == f.sha256 and exists and exists[0])


def _prepare_table(conn: psycopg.Connection, table: str, columns: list[str]) -> None:
    """Create the table, or add the columns it lacks (views on it survive), then empty it."""
    ident = sql.Identifier(SCHEMA, table)
    lineage = [
        sql.SQL("{} bigint not null").format(sql.Identifier("_load_id")),
        sql.SQL("{} text not null").format(sql.Identifier("_source_file")),
        sql.SQL("{} text not null").format(sql.Identifier("_source_sha256")),
        sql.SQL("{} text not null").format(sql.Identifier("_source_sheet")),
        sql.SQL("{} integer not null").format(sql.Identifier("_source_row")),
        # When the row was staged (the load's transaction time): dbt's source freshness.
        sql.SQL("{} timestamptz not null default now()").format(sql.Identifier("_loaded_at")),
    ]
    data = [sql.SQL("{} text").format(sql.Identifier(c)) for c in columns]
    conn.execute(
        sql.SQL("create table if not exists {} ({})").format(
            ident, sql.SQL(", ").join(lineage + data)
        )
    )
    existing = {
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass"
            " and attnum > 0 and not attisdropped",
            (f'{SCHEMA}."{table}"',),
        )
    }
    if "_loaded_at" not in existing:  # a table staged before the column existed
        conn.execute(
            sql.SQL("alter table {} add column {} timestamptz not null default now()").format(
                ident, sql.Identifier("_loaded_at")
            )
        )
    for c in columns:
        if c not in existing:
            conn.execute(
                sql.SQL("alter table {} add column {} text").format(ident, sql.Identifier(c))
            )
    conn.execute(sql.SQL("truncate table {}").format(ident))


def _record(
    conn: psycopg.Connection, load_id: int, f: PlannedFile, s: Source, r: SourceResult
) -> None:
    conn.execute(
        "insert into raw._sources (load_id, source_file, source_path, file_kind, file_sha256,"
        " file_bytes, sheet, table_name, header_row, columns, rows_read, rows_written, seconds,"
        " outcome, message) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            load_id, f.path.name, str(f.path), s.file_kind, f.sha256, f.size, s.sheet, r.table,
            r.header_row, r.columns, r.rows_read, r.rows_written, round(r.seconds, 3),
            r.outcome, r.message or None,
        ),
    )  # fmt: skip


def _load_source(
    conn: psycopg.Connection,
    load_id: int,
    f: PlannedFile,
    s: Source,
    result: SourceResult,
    progress: Progress | None,
) -> None:
    """Replace one source's rows in one transaction."""
    columns = column_names(s.headers)
    result.columns, result.header_row = len(columns), s.header_row
    started = time.perf_counter()
    with conn.transaction():
        _prepare_table(conn, result.table, columns)
        copy_sql = sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(SCHEMA, result.table),
            sql.SQL(", ").join(sql.Identifier(c) for c in (*LINEAGE_COLUMNS, *columns)),
        )
        lineage = (load_id, f.path.name, f.sha256, s.sheet)
        n = 0
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            write = copy.write_row
            for row_number, cells in s.rows():
                write((*lineage, row_number, *cells))
                n += 1
                if progress and n % 5000 == 0:
                    progress(s, n)
        if progress:
            progress(s, n)
        result.rows_read = result.rows_written = n
        written = conn.execute(
            sql.SQL("select count(*) from {} where {} = %s").format(
                sql.Identifier(SCHEMA, result.table), sql.Identifier("_load_id")
            ),
            (load_id,),
        ).fetchone()[0]
        if written != n:  # cannot happen unless something else writes to the table
            raise RuntimeError(f"{result.table}: read {n} rows but the table holds {written}")
        conn.execute("delete from raw._columns where table_name = %s", (result.table,))
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw._columns (table_name, position, column_name, original_header,"
                " source_file, sheet, load_id) values (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (result.table, i, c, h, f.path.name, s.sheet, load_id)
                    for i, (c, h) in enumerate(zip(columns, s.headers, strict=True), start=1)
                ],
            )
        conn.execute("delete from raw._above_header where table_name = %s", (result.table,))
        if s.above_header:
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into raw._above_header (table_name, row_number, cells, source_file,"
                    " sheet, load_id) values (%s, %s, %s, %s, %s, %s)",
                    [
                        (result.table, number, cells, f.path.name, s.sheet, load_id)
                        for number, cells in s.above_header
                    ],
                )
        result.seconds = time.perf_counter() - started
        result.outcome = "loaded"
        if s.notes:
            result.message = "; ".join(s.notes)
        _record(conn, load_id, f, s, result)


def load(
    planned: Plan,
    connect: Callable[[], psycopg.Connection] | None,
    *,
    arguments: list[str],
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    on_result: Callable[[SourceResult], None] | None = None,
) -> LoadReport:
    """Load every source of `planned` (from `plan`). Raises SourceError for a source that
    cannot be read; sources loaded before it stay loaded, the failing one is rolled back and
    recorded. `connect` may be None for a dry run."""
    files, notes = planned
    report = LoadReport(load_id=None, notes=notes)
    if dry_run:
        for f in files:
            for s in f.sources:
                r = SourceResult(f.path, s.sheet, table_name(f.path.name, s.sheet, s.file_kind))
                started = time.perf_counter()
                for _ in s.rows():
                    r.rows_read += 1
                    if progress and r.rows_read % 5000 == 0:
                        progress(s, r.rows_read)
                r.columns, r.header_row = len(s.headers), s.header_row
                r.seconds = time.perf_counter() - started
                r.outcome, r.message = "would load", "; ".join(s.notes)
                report.results.append(r)
                if on_result:
                    on_result(r)
        return report

    assert connect is not None
    with connect() as conn:
        ensure_bookkeeping(conn)
        load_id = report.load_id = _start_load(conn, arguments)
        try:
            for f in files:
                for s in f.sources:
                    table = table_name(f.path.name, s.sheet, s.file_kind)
                    r = SourceResult(f.path, s.sheet, table)
                    report.results.append(r)
                    if not force and _unchanged(conn, f, s, table):
                        r.outcome, r.message = "unchanged", "same SHA-256 as the last load"
                        r.header_row, r.columns = s.header_row, len(s.headers)
                        with conn.transaction():
                            _record(conn, load_id, f, s, r)
                    else:
                        try:
                            _load_source(conn, load_id, f, s, r, progress)
                        except SourceError as exc:
                            r.outcome, r.message = "failed", str(exc)
                            with conn.transaction():
                                _record(conn, load_id, f, s, r)
                            raise
                    if on_result:
                        on_result(r)
        except SourceError as exc:
            _finish_load(conn, load_id, "failed", str(exc))
            raise
        except BaseException as exc:
            if not conn.closed and not conn.broken:
                conn.rollback()
                _finish_load(conn, load_id, "interrupted", repr(exc))
            raise
        _finish_load(conn, load_id, "loaded", "")
    return report
