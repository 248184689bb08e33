"""The raw loader: every source row into schema `raw`, as text, with lineage, by COPY.

`plan(paths)` finds, hashes and opens every file first, and refuses what cannot be loaded
before anything is written (an unreadable file or folder, nothing to load, two sources that
would share a table, more columns than PostgreSQL allows, a NUL character in a header);
`load(plan, connect)` writes them.

**One load is all-or-nothing.** `load` takes the database's lock (`loaders.lock`, shared with
migrate and rollback), marks the `raw._loads` rows still `running` as `interrupted` (under the
lock they belong to processes that are gone), and inserts and commits its own row (outcome
`running`, so a load in progress is visible). Then every source of the run is written in ONE
transaction: each table is created or given the columns it lacks, emptied (TRUNCATE, so views
built on it survive) and refilled by streaming the reader's rows into COPY (or, from a reader
that builds them itself, SQLite's `copy_text`, chunks of COPY text lines), with its
`raw._sources`, `raw._columns` and `raw._above_header` rows; the load's row is set `loaded`
in that same transaction, and it is committed once, at the end. Any failure (a truncated
file, a NUL character in a cell, a full disk, a lost server, Ctrl-C, SIGTERM, kill -9) rolls
that transaction back, so `raw` is exactly as it was before the load; then, when the server
can still be reached, the load's row is set `failed` (or `interrupted`) with the one-line
message and the failing source's `raw._sources` row is recorded as `failed`. After a kill -9
(or a lost server) the row stays `running` until the next load marks it `interrupted`.
Sources that are *unchanged* (the table still holds this file's rows: the same file, sheet,
kind and SHA-256 as the table's last load, and as many rows of that hash) are skipped unless
`force`, and recorded in the same transaction.

**COPY carries only what varies.** The lineage every row of a source shares (load id, file,
SHA-256, sheet) is set as those columns' defaults just before the COPY and dropped right
after it, in the load's transaction, so no other session ever sees them; each COPY line holds
the row number and the cells. The COPY is FREEZE (allowed because the table was emptied by
TRUNCATE in the same transaction): its rows are written already frozen, and the first reader
(dbt) does not rewrite every page to set hint bits.

**Table names do not carry the file kind** (`loaders.naming`; dbt reads the tables by name),
so a sheet `clients` of `k.xlsx` and a table `clients` of `k.db` would share `raw.k__clients`:
such a collision is refused, within one run (by `plan`) and against the source a table last
held (by `load`), never resolved by replacing one with the other.

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

import contextlib
import getpass
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg import sql

from loaders import __version__
from loaders import lock as db_lock
from loaders.errors import UserError
from loaders.hashing import sha256_of
from loaders.naming import LINEAGE_COLUMNS, RESERVED_COLUMNS, column_names, table_name
from loaders.readers import SUPPORTED, discover, open_file
from loaders.readers.base import Source, SourceError

SCHEMA = "raw"
# PostgreSQL's limit on a table's columns (MaxHeapAttributeNumber), less the lineage columns.
MAX_COLUMNS = 1600 - len(RESERVED_COLUMNS)
NOTHING_KEPT = "nothing of this load was kept (raw is as it was before it)"
INTERRUPTED_MESSAGE = "the process ended before the load finished; nothing of it was kept"

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


class NothingToLoad(SourceError):
    """The paths hold no file to load: refused, so an empty or mistyped folder is never
    recorded as a successful load."""

    def __init__(self, paths: list[Path], notes: list[str]) -> None:
        super().__init__(paths[0] if paths else Path("."), "nothing to load")
        skipped = ""
        if notes:
            skipped = f"; {notes[0]}" + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else "")
        self.args = (
            f"nothing to load in {', '.join(map(str, paths))}: no sheet, table or CSV file"
            f" found (looked for {SUPPORTED}){skipped}",
        )


def describe(s: Source) -> str:
    """How a user names a source: a workbook's sheet, a database's table, a CSV file."""
    if s.file_kind == "csv":
        return "the CSV file"
    return f"{'table' if s.file_kind == 'sqlite' else 'sheet'} {s.sheet!r}"


def _check_source(path: Path, s: Source) -> None:
    """What PostgreSQL would refuse mid-load, refused before anything is written: more
    columns than a table can have, a NUL character in a name or a text kept beside the rows
    (the cells are checked by COPY itself, see `_copy_error`)."""
    if len(s.headers) > MAX_COLUMNS:
        raise SourceError(
            path,
            f"{describe(s)} has {len(s.headers):,} columns; a PostgreSQL table holds at most"
            f" 1,600 and the raw table needs {len(RESERVED_COLUMNS)} for lineage, so"
            f" {MAX_COLUMNS:,} at most",
            "delete its empty columns (a stray cell far to the right widens the sheet),"
            " or split it",
        )
    if "\x00" in s.sheet:
        raise SourceError(
            path, f"{describe(s)}: its name holds a NUL character (\\x00)", "rename it"
        )
    for position, header in enumerate(s.headers, start=1):
        if header and "\x00" in header:
            column = _spreadsheet_column(position) if s.file_kind in ("xlsx", "xls") else position
            raise SourceError(
                path,
                f"{describe(s)} column {column}: its header {header!r} holds a NUL character"
                " (\\x00)",
                "remove the NUL character from that header cell; PostgreSQL names cannot hold it",
            )
    for row_number, cells in s.above_header:
        for position, cell in enumerate(cells, start=1):
            if cell and "\x00" in cell:
                raise SourceError(
                    path,
                    f"{describe(s)} row {row_number} column {position} (above the header)"
                    " holds a NUL character (\\x00)",
                    "remove the NUL character (\\x00) from that cell; PostgreSQL text cannot"
                    " hold it",
                )


def plan(paths: Iterable[Path]) -> Plan:
    """Find, hash and open every file before anything is written: a file that cannot be read
    stops the load here, with nothing half-written."""
    paths = [Path(p) for p in paths]
    files, notes = discover(paths)
    opened = []
    for path in files:
        sources = open_file(path)
        try:
            digest, size = sha256_of(path), path.stat().st_size
        except OSError as exc:
            raise SourceError(path, f"cannot be read ({exc.strerror or exc})") from exc
        for s in sources:
            _check_source(path, s)
        opened.append(PlannedFile(path, digest, size, sources))
    if not any(f.sources for f in opened):
        raise NothingToLoad(paths, notes)
    names: dict[str, tuple[Path, Source]] = {}
    for f in opened:
        for s in f.sources:
            table = table_name(f.path.name, s.sheet, s.file_kind)
            other_path, other = names.setdefault(table, (f.path, s))
            if other is not s:
                raise SourceError(
                    f.path,
                    f"{describe(s)} would load into raw table {table}, as would"
                    f" {other_path} {describe(other)}"
                    + (" (two files with one name)" if other_path.name == f.path.name else ""),
                    "rename one of the files",
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


def _mark_interrupted(conn: psycopg.Connection) -> list[str]:
    """Close the `raw._loads` rows still `running`: under the lock they belong to processes
    that ended (kill -9, a lost server) before they could say how the load ended. Their data
    never committed (one transaction); a row with sources kept is from a loader before
    all-or-nothing loads. Returns a note per row."""
    rows = conn.execute(
        "update raw._loads l set outcome = 'interrupted', finished_at = clock_timestamp(),"
        " message = case when exists (select from raw._sources s where s.load_id = l.load_id"
        " and s.outcome in ('loaded', 'unchanged')) then %s else %s end"
        " where outcome = 'running'"
        " returning load_id, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ')",
        (
            "the process ended before the load finished; the sources recorded as loaded for"
            " it were kept",
            INTERRUPTED_MESSAGE,
        ),
    ).fetchall()
    return [
        f"load {load_id} (started {started}) is marked interrupted: {INTERRUPTED_MESSAGE}"
        for load_id, started in sorted(rows)
    ]


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    return bool(
        conn.execute(
            "select to_regclass(%s) is not null", (sql.Identifier(SCHEMA, table).as_string(conn),)
        ).fetchone()[0]
    )


def _last_source(conn: psycopg.Connection, table: str, outcomes: tuple[str, ...]) -> tuple | None:
    """The table's latest raw._sources row of those outcomes: (file, sheet, kind, sha256,
    rows written, load id)."""
    return conn.execute(
        "select source_file, sheet, file_kind, file_sha256, rows_written, load_id"
        " from raw._sources where table_name = %s and outcome = any(%s)"
        " order by load_id desc limit 1",
        (table, list(outcomes)),
    ).fetchone()


def _refuse_collision(conn: psycopg.Connection, f: PlannedFile, s: Source, table: str) -> None:
    """SourceError when the table still holds another source (other file name, sheet or file
    kind): replacing it would lose that source silently (names do not carry the kind)."""
    last = _last_source(conn, table, ("loaded", "unchanged"))
    if last is None or tuple(last[:3]) == (f.path.name, s.sheet, s.file_kind):
        return
    if not _table_exists(conn, table):
        return  # the earlier source's rows are gone: nothing to lose
    other = Source(Path(last[0]), last[2], last[1], [], None, None)
    raise SourceError(
        f.path,
        f"{describe(s)} would load into raw table {table}, which holds {last[0]}"
        f" {describe(other)} (load {last[5]})",
        f"rename one of the files, or drop table raw.{table} if {last[0]} is gone for good",
    )


def _unchanged(conn: psycopg.Connection, f: PlannedFile, s: Source, table: str) -> bool:
    """The table still holds this source's rows: its latest source is this file name, sheet
    and kind with the same SHA-256, and it holds as many rows of that hash as its latest load
    wrote (a table emptied or edited by hand, or replaced by another source, is reloaded)."""
    last = _last_source(conn, table, ("loaded", "unchanged"))
    if last is None or tuple(last[:4]) != (f.path.name, s.sheet, s.file_kind, f.sha256):
        return False
    loaded = _last_source(conn, table, ("loaded",))
    if loaded is None or not _table_exists(conn, table):
        return False
    total, same = conn.execute(
        sql.SQL("select count(*), count(*) filter (where {} = %s) from {}").format(
            sql.Identifier("_source_sha256"), sql.Identifier(SCHEMA, table)
        ),
        (f.sha256,),
    ).fetchone()
    return total == same == loaded[4]


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


def _spreadsheet_column(position: int) -> str:
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _copy_error(
    exc: psycopg.Error, f: PlannedFile, s: Source, last: tuple[int, list] | None
) -> SourceError:
    """The cell COPY refused, named: almost always a NUL character, which PostgreSQL text
    cannot hold and the readers pass through as they find it. psycopg refuses it while
    writing the row (`last`, the row being written); when the server refuses a row instead,
    the error's context names the COPY line, and line n is the n-th row written, so the
    source is read again up to it (only on this failure path)."""
    server = exc.diag.message_primary or " ".join(str(exc).split())
    match = re.search(r"\bline (\d+)", exc.diag.context or "")
    found = None if match else last
    if match:
        line = int(match.group(1))
        try:
            for k, (row_number, cells) in enumerate(s.rows(), start=1):
                if k == line:
                    found = row_number, cells
                    break
        except SourceError:
            pass
    if found is None:
        return SourceError(f.path, f"{describe(s)}: the server refused a cell ({server})")
    row_number, cells = found
    position = next((i for i, c in enumerate(cells, start=1) if c and "\x00" in c), None)
    if position is None:
        return SourceError(
            f.path, f"{describe(s)} row {row_number}: the server refused a cell ({server})"
        )
    return _nul_error(f, s, row_number, position)


def _nul_error(f: PlannedFile, s: Source, row_number: int, position: int) -> SourceError:
    """A NUL character in the cell of `row_number` at `position` (1-based), named."""
    header = s.headers[position - 1]
    named = f", column {header!r}" if header else ""
    if s.file_kind in ("xlsx", "xls"):
        where = f"cell {_spreadsheet_column(position)}{row_number}{named}"
    else:
        where = f"row {row_number} column {position}{named}"
    return SourceError(
        f.path,
        f"{describe(s)} {where}: the cell holds a NUL character (\\x00)",
        "remove the NUL character (\\x00) from that cell; PostgreSQL text cannot hold it",
    )


def _nul_in_chunk(f: PlannedFile, s: Source, chunk: bytes, at: int) -> SourceError:
    """The NUL character at `at` of a COPY text chunk, named by its line's row number (the
    line's first field) and cell position (tabs only separate fields)."""
    start = chunk.rfind(b"\n", 0, at) + 1
    fields = chunk[start:at].split(b"\t")
    return _nul_error(f, s, int(fields[0]), len(fields) - 1)


class _CopyEndIgnored(logging.Filter):
    """psycopg logs a warning when a COPY it ends after an error cannot be ended either (the
    connection is lost): the error itself is what the load reports, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


_COPY_END_IGNORED = _CopyEndIgnored()


def _lineage_defaults(
    conn: psycopg.Connection, ident: sql.Identifier, lineage: tuple | None
) -> None:
    """Set the shared lineage columns' defaults (load id, file, SHA-256, sheet: all of
    LINEAGE_COLUMNS but the last, _source_row) to `lineage`, or with None drop them."""
    constant = LINEAGE_COLUMNS[:-1]
    if lineage is None:
        changes = (
            sql.SQL("alter column {} drop default").format(sql.Identifier(c)) for c in constant
        )
    else:
        changes = (
            sql.SQL("alter column {} set default {}").format(sql.Identifier(c), sql.Literal(v))
            for c, v in zip(constant, lineage, strict=True)
        )
    conn.execute(sql.SQL("alter table {} {}").format(ident, sql.SQL(", ").join(changes)))


def _load_source(
    conn: psycopg.Connection,
    load_id: int,
    f: PlannedFile,
    s: Source,
    result: SourceResult,
    progress: Progress | None,
) -> None:
    """Replace one source's rows, inside the load's transaction (the caller's)."""
    columns = column_names(s.headers)
    result.columns, result.header_row = len(columns), s.header_row
    started = time.perf_counter()
    _prepare_table(conn, result.table, columns)
    # The lineage every row shares is the columns' default during the COPY (see the module
    # docstring, "COPY carries only what varies"); FREEZE, as TRUNCATE emptied the table.
    ident = sql.Identifier(SCHEMA, result.table)
    _lineage_defaults(conn, ident, (load_id, f.path.name, f.sha256, s.sheet))
    copy_sql = sql.SQL("copy {} ({}) from stdin (freeze)").format(
        ident,
        sql.SQL(", ").join(sql.Identifier(c) for c in (LINEAGE_COLUMNS[-1], *columns)),
    )
    # A reader that builds COPY text itself (SQLite) is streamed as it is, when the
    # connection's encoding is the UTF-8 its chunks are in; any other row by write_row.
    copy_text = getattr(s, "copy_text", None)
    if conn.info.encoding != "utf-8":
        copy_text = None
    n = 0
    row: tuple[int, list] | None = None
    psycopg_log = logging.getLogger("psycopg")
    psycopg_log.addFilter(_COPY_END_IGNORED)
    try:
        with conn.cursor() as cur:
            with cur.copy(copy_sql) as copy:
                if copy_text is not None:
                    for rows, chunk in copy_text(b""):
                        if (at := chunk.find(b"\x00")) >= 0:
                            raise _nul_in_chunk(f, s, chunk, at)
                        copy.write(chunk)
                        n += rows
                        if progress:
                            progress(s, n)
                else:
                    write = copy.write_row
                    for row in s.rows():
                        write((*row[:1], *row[1]))
                        n += 1
                        if progress and n % 5000 == 0:
                            progress(s, n)
            written = cur.rowcount  # the server's count of the rows COPY stored
    except psycopg.DataError as exc:  # a NUL; CharacterNotInRepertoire, UntranslatableCharacter
        raise _copy_error(exc, f, s, row) from exc
    finally:
        psycopg_log.removeFilter(_COPY_END_IGNORED)
    if progress:
        progress(s, n)
    result.rows_read = result.rows_written = n
    if written != n:  # cannot happen: the table was emptied in this transaction
        raise RuntimeError(f"{result.table}: read {n} rows but the table holds {written}")
    _lineage_defaults(conn, ident, None)
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


def _usable(conn: psycopg.Connection) -> bool:
    """The connection can still run a statement (rolled back to idle if it needs to)."""
    if conn.closed or conn.broken:
        return False
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    except psycopg.Error:
        return False
    return not conn.broken


def _record_failure(
    conn: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    load_id: int,
    outcome: str,
    message: str,
    failing: tuple[PlannedFile, Source, SourceResult] | None,
) -> None:
    """After the rollback: the load's row `failed`/`interrupted` and the failing source's
    row `failed`, in their own transaction; on a new connection if this one is lost. Best
    effort: a server that cannot be reached leaves the row `running`, and the next load marks
    it interrupted. Only a row still `running` is changed, so a load whose COMMIT went
    through before the connection was lost keeps `loaded`."""

    def write(c: psycopg.Connection) -> None:
        with c.transaction():
            done = c.execute(
                "update raw._loads set finished_at = clock_timestamp(), outcome = %s,"
                " message = %s where load_id = %s and outcome = 'running' returning load_id",
                (outcome, message, load_id),
            ).fetchone()
            if done and failing:
                f, s, r = failing
                r.outcome, r.message = "failed", message
                _record(c, load_id, f, s, r)

    try:
        if _usable(conn):
            write(conn)
            return
    except psycopg.Error:
        pass
    try:
        with connect() as fresh:
            fresh.execute("set lock_timeout = '5s'")
            write(fresh)
    except psycopg.Error:
        pass


def _one_line(exc: BaseException) -> str:
    """The error's first line: the server's primary message, or libpq's first sentence
    (without its "This probably means ..." explanation)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _write(
    conn: psycopg.Connection,
    connect: Callable[[], psycopg.Connection],
    load_id: int,
    files: list[PlannedFile],
    report: LoadReport,
    force: bool,
    progress: Progress | None,
    on_result: Callable[[SourceResult], None] | None,
) -> None:
    """Every source in one transaction, committed with the load's `loaded`; on a failure
    roll back, record it, and raise one line (UserError) or re-raise an interruption."""
    current: tuple[PlannedFile, Source, SourceResult] | None = None
    try:
        with conn.transaction():
            # Every collision first: refused before any table of this run is touched.
            for f in files:
                for s in f.sources:
                    table = table_name(f.path.name, s.sheet, s.file_kind)
                    current = (f, s, SourceResult(f.path, s.sheet, table))
                    _refuse_collision(conn, f, s, table)
            for f in files:
                for s in f.sources:
                    r = SourceResult(f.path, s.sheet, table_name(f.path.name, s.sheet, s.file_kind))
                    current = (f, s, r)
                    report.results.append(r)
                    if not force and _unchanged(conn, f, s, r.table):
                        r.outcome, r.message = "unchanged", "same SHA-256 as the last load"
                        r.header_row, r.columns = s.header_row, len(s.headers)
                        _record(conn, load_id, f, s, r)
                    else:
                        _load_source(conn, load_id, f, s, r, progress)
                    if on_result:
                        on_result(r)
            current = None
            _finish_load(conn, load_id, "loaded", "")  # committed with the rows, or not at all
    except BaseException as exc:
        if current is None:
            where = f"load {load_id}, while committing"
        elif current[1].file_kind == "csv":
            where = str(current[0].path)
        else:
            where = f"{current[0].path} {describe(current[1])}"
        interrupted = not isinstance(exc, Exception)  # KeyboardInterrupt (Ctrl-C, SIGTERM)
        if interrupted:
            message = f"interrupted (Ctrl-C or SIGTERM) while loading {where}; {NOTHING_KEPT}"
        elif isinstance(exc, SourceError):
            message = f"{exc}; {NOTHING_KEPT}"
        elif isinstance(exc, psycopg.errors.DiskFull):
            message = (
                f"{where}: the database server's disk is full ({_one_line(exc)}); {NOTHING_KEPT};"
                " free space on the server, then load again"
            )
        elif isinstance(exc, psycopg.OperationalError) and (conn.broken or conn.closed):
            message = (
                f"{where}: the connection to the database server was lost ({_one_line(exc)});"
                + (
                    " load again when the server is back (if the COMMIT went through,"
                    " raw._loads says loaded and the files load as unchanged)"
                    if current is None
                    else f" {NOTHING_KEPT}; load again when the server is back"
                )
            )
        else:  # another database error, an OSError, a bug
            message = f"{where}: {type(exc).__name__}: {_one_line(exc)}; {NOTHING_KEPT}"
        _record_failure(
            conn, connect, load_id, "interrupted" if interrupted else "failed", message, current
        )
        if interrupted or not isinstance(exc, (UserError, psycopg.Error, OSError)):
            raise  # an interruption, or a bug: its traceback is wanted
        if isinstance(exc, SourceError):
            raise SourceError(exc.path, exc.problem, _joined(exc.advice, NOTHING_KEPT)) from exc
        raise UserError(message) from exc


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def load(
    planned: Plan,
    connect: Callable[[], psycopg.Connection] | None,
    *,
    arguments: list[str],
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    on_result: Callable[[SourceResult], None] | None = None,
    lock: bool = True,
) -> LoadReport:
    """Load every source of `planned` (from `plan`), all or nothing (see the module
    docstring). A failure is raised as one line (UserError; SourceError for a source that
    cannot be read or stored) after `raw` was rolled back and the failure recorded.
    `connect` (an autocommit connection) may be None for a dry run. `lock=False` is for a
    caller that holds the lock (`loaders.lock`) on another session: the migrate."""
    files, notes = planned
    report = LoadReport(load_id=None, notes=list(notes))
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
        if lock:
            db_lock.acquire(conn, "load")  # before anything, the bookkeeping DDL included
        try:
            ensure_bookkeeping(conn)
            report.notes.extend(_mark_interrupted(conn))
            load_id = report.load_id = _start_load(conn, arguments)
            _write(conn, connect, load_id, files, report, force, progress, on_result)
        finally:
            if lock:
                with contextlib.suppress(psycopg.Error):  # the server releases it at the end
                    db_lock.release(conn)
    return report
