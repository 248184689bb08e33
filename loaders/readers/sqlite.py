"""SQLite databases (.db, .sqlite, .sqlite3): one Source per table, every value as text.

The file is opened read-only (`mode=ro`), after checking its 100-byte header: the magic
"SQLite format 3\\0" and, when the header records it, that the file is as long as its page
count says (a copy cut short is caught before anything is read). Tables are taken in name
order, skipping SQLite's own `sqlite_*` tables. Views and virtual tables are skipped: the data
of FTS and R-tree tables lives in ordinary shadow tables, which are loaded, and a virtual table
may need a module this Python's SQLite lacks.

- `headers`: the table's columns (`pragma table_xinfo`: generated columns kept), selected by
  name so headers and cells always line up.
- `header_row` None: a table has no header row.
- Row numbers are the rowid (for the sample's tables the `id INTEGER PRIMARY KEY`), rows in
  rowid order. A WITHOUT ROWID table has no rowid: its rows come in primary-key order,
  numbered 1, 2, 3 ..., and the notes say so. So does a table whose columns named rowid,
  _rowid_ and oid hide the rowid.
- Values as SQLite shows them, converted by SQLite itself in the query (`text_of`): INTEGER
  and TEXT as they are (an empty TEXT stays "", not NULL), REAL as `printf('%!.15g')` ("1.0",
  "6.7", "1.0e+16": a REAL says it is a real) unless that would lose precision, then with 16
  or 17 digits ("0.30000000000000004"), BLOB as `\\x` + lowercase hex, NULL as None.

Every identifier is quoted (double quotes doubled), so table and column names may hold
quotes, semicolons, spaces or Chinese. Any SQLite error while reading ("database disk image is
malformed") becomes a SourceError naming the table; a text that is not UTF-8, one naming its
row and column too.

For the raw loader, a table with a rowid also gives `copy_text(prefix)`: the same rows as
`rows()`, in the same order, as lines of PostgreSQL's COPY text format that SQLite builds
itself (`copy_field_of`: the values of `text_of`, backslash, tab, newline and CR escaped, NULL
as `\\N`; each value's storage class found by comparisons that neither the column's affinity
nor its collation sways), each line led by `prefix` (fields a caller wants first; the raw
loader gives none) and the row number. One query per rowid range of about `BATCH` rows gives
the range's lines joined (two threads run them at once: SQLite runs without the GIL). A range
whose texts hold a tab, newline or CR (found by counting the chunk's) is built again with every
text checked; a text holding a NUL character (which SQLite's printf would cut short) or that is
not UTF-8 makes its line be rebuilt from `rows()`'s values, so the chunks hold exactly what
`rows()` yields: the loader names the NUL, and a text that is not UTF-8 is a SourceError here,
as in `rows()`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from loaders.readers.base import Source, SourceError

MAGIC = b"SQLite format 3\x00"
BATCH = 5000  # rows fetched at a time
WORKERS = 2  # threads building copy_text's chunks at once
WINDOW = 4  # copy_text's chunks built ahead of the one being written, at most
CHUNK_BYTES = 16 << 20  # copy_text's chunks hold about this much at most (see _ranges)
RECOPY = "copy the database again (it may have been cut short) and load again"


@dataclass
class SQLiteSource(Source):
    """A table: `rows()` as every reader gives, and `copy_text` (None for a table without a
    usable rowid): `copy_text(prefix)` yields `(rows, chunk)`, `chunk` the bytes of `rows`
    COPY text lines (see the module docstring)."""

    copy_text: Callable[[bytes], Iterator[tuple[int, bytes]]] | None = None


def quote(identifier: str) -> str:
    """An SQL identifier in double quotes, any double quote inside doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def check_header(path: Path) -> None:
    """Raise SourceError unless `path` starts like a complete SQLite database."""
    try:
        with path.open("rb") as f:
            header = f.read(100)
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc
    if not header.startswith(MAGIC):
        if len(header) < len(MAGIC) and header and MAGIC.startswith(header):
            raise SourceError(path, "truncated or damaged SQLite database", RECOPY)
        raise SourceError(
            path, "not a SQLite database", "check that this is the app's database file"
        )
    if len(header) < 100:
        raise SourceError(path, "truncated or damaged SQLite database", RECOPY)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96] and pages > 0  # the page count is kept current
    if page_size < 512 or page_size & (page_size - 1):
        raise SourceError(path, "truncated or damaged SQLite database (bad page size)", RECOPY)
    if size % page_size:
        raise SourceError(
            path,
            f"truncated or damaged SQLite database ({size:,} bytes is not a whole number of "
            f"{page_size:,}-byte pages)",
            RECOPY,
        )
    if valid and size < pages * page_size:
        raise SourceError(
            path,
            f"truncated or damaged SQLite database ({size:,} bytes of {pages * page_size:,})",
            RECOPY,
        )


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection; SourceError if SQLite cannot open the file."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread)
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise SourceError(path, f"cannot open the SQLite database ({exc})", RECOPY) from exc
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    rows = conn.execute("select name, hidden from pragma_table_xinfo(?) order by cid", (table,))
    return [name for name, hidden in rows if hidden != 1]


def _rowid_name(conn: sqlite3.Connection, table: str, columns: list[str]) -> str | None:
    """A name for the table's rowid that no column hides, or None (WITHOUT ROWID, or hidden)."""
    taken = {c.lower() for c in columns}
    for name in ("rowid", "_rowid_", "oid"):
        if name in taken:
            continue
        try:
            conn.execute(f"select {name} from {quote(table)} limit 0")
        except sqlite3.OperationalError:
            return None  # WITHOUT ROWID
        return name
    return None


def open_database(path: Path) -> list[Source]:
    """One Source per table of a SQLite database, in table-name order."""
    check_header(path)
    conn = connect(path)
    sources = []
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "select name from sqlite_master where type = 'table'"
                " and name not like 'sqlite\\_%' escape '\\'"
                " and coalesce(sql, '') not like 'create virtual table%'"
                " order by name"
            )
        ]
        for table in tables:
            columns = _columns(conn, table)
            rowid = _rowid_name(conn, table, columns)
            notes = []
            if rowid is None:
                notes.append(
                    "no usable rowid (WITHOUT ROWID table, or columns named rowid, _rowid_ "
                    "and oid): row numbers are 1-based positions in the table's scan order"
                )
            (count,) = conn.execute(f"select count(*) from {quote(table)}").fetchone()
            sources.append(
                SQLiteSource(
                    file=path,
                    file_kind="sqlite",
                    sheet=table,
                    headers=list(columns),
                    header_row=None,
                    row_count_hint=count,
                    notes=notes,
                    _rows=_rows_of(path, table, columns, rowid),
                    copy_text=_copy_text_of(path, table, columns, rowid) if rowid else None,
                )
            )
    except sqlite3.Error as exc:
        raise SourceError(path, f"cannot read the SQLite database ({exc})", RECOPY) from exc
    finally:
        conn.close()
    return sources


def _real_text(c: str) -> str:
    """SQL giving the text of a REAL `c` (a quoted column): see the module docstring."""
    real = " ".join(
        f"when cast(printf('%!.{d}g', {c}) as real) = {c} then printf('%!.{d}g', {c})"
        for d in (15, 16)
    )
    return f"case {real} else printf('%!.17g', {c}) end"


def text_of(column: str) -> str:
    """SQL giving the text of one column's value (see the module docstring for the rule)."""
    c = quote(column)
    return (
        f"case typeof({c}) when 'real' then {_real_text(c)}"
        f" when 'blob' then '\\x' || lower(hex({c})) else cast({c} as text) end"
    )


# COPY text escapes, in the order they are applied (the backslash first).
COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
# What copy_field_of gives for a text holding a NUL character, which SQLite's printf would cut
# short: a byte that is never UTF-8, so the chunk's check finds the row and rebuilds it.
REBUILD = b"\xff"


def copy_field_of(column: str, *, checked: bool = True) -> str:
    """SQL giving one column's value as a field of PostgreSQL's COPY text format: `text_of`'s
    text, escaped, `\\N` for NULL; for a text holding a NUL character, `REBUILD`. Unless
    `checked`, only a text holding a backslash is escaped, and one holding a tab, newline or
    CR comes out as it is: the caller counts the chunk's tabs, newlines and CRs (each
    `instr` spared on every text costs about a tenth of the query).

    The storage class is found by comparisons, cheaper than typeof(): NULL first, then
    numbers (INTEGER and REAL sort before any TEXT), then TEXT (before any BLOB). The column
    is compared as `+c`, which has no affinity, so no operand is converted (a column of
    numeric affinity would turn a text such as '17' into a number for `c < ''`), and against
    `'' collate binary`, so a column's declared collation is not used (no text sorts before ''
    in binary order). A backslash is looked for with GLOB (`'*\\*'`: backslash is no
    wildcard in GLOB), which scans with strcspn, faster than instr's loop."""
    c = quote(column)
    escaped = c
    for char, escape in COPY_ESCAPES:
        escaped = f"replace({escaped}, char({ord(char)}), '{escape}')"
    if checked:
        special = " or ".join(f"instr({c}, char({ord(char)}))" for char, _ in COPY_ESCAPES)
    else:
        special = f"{c} glob '*\\*'"
    return (
        f"case when {c} is null then '\\N'"
        f" when +{c} < ('' collate binary) then"
        f" case typeof({c}) when 'integer' then {c} else {_real_text(c)} end"
        f" when +{c} < x'' then case when instr({c}, char(0)) then cast(x'{REBUILD.hex()}' as text)"
        f" when {special} then {escaped} else {c} end"
        f" else '\\\\x' || lower(hex({c})) end"
    )


def copy_line(cells: list[str | None]) -> str:
    """The COPY text fields of `cells` (as `rows()` gives them), tab-separated."""
    fields = []
    for cell in cells:
        if cell is None:
            fields.append("\\N")
            continue
        for char, escape in COPY_ESCAPES:
            if char in cell:
                cell = cell.replace(char, escape)
        fields.append(cell)
    return "\t".join(fields)


def _not_utf8(
    path: Path, table: str, columns: list[str], rowid: str | None, after: int
) -> SourceError | None:
    """The first text that is not UTF-8 after the first `after` rows, named by its row and
    column (only on that failure path): a SourceError, or None when none is found."""
    conn = connect(path)
    conn.text_factory = bytes
    try:
        kept = ", ".join(
            f"case typeof({quote(c)}) when 'text' then {quote(c)} end" for c in columns
        )
        if rowid:
            query = f"select {rowid}, {kept} from {quote(table)} order by {rowid}"
        else:
            query = f"select 0, {kept} from {quote(table)}"
        for ordinal, (number, *cells) in enumerate(conn.execute(query), start=1):
            if ordinal <= after:
                continue
            for position, cell in enumerate(cells, start=1):
                if cell is None:
                    continue
                try:
                    cell.decode("utf-8")
                except UnicodeDecodeError as exc:
                    shown = cell[max(exc.start - 20, 0) : exc.end + 20]
                    return SourceError(
                        path,
                        f"cannot read table {table!r} row {number if rowid else ordinal} column"
                        f" {position}, column {columns[position - 1]!r}: its text is not UTF-8"
                        f" (byte {exc.start + 1} in {shown!r})",
                        RECOPY,
                    )
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None


def _rows_of(path: Path, table: str, columns: list[str], rowid: str | None):
    selected = ", ".join(text_of(c) for c in columns) or "null"

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        check_header(path)
        conn = connect(path)
        ordinal = 0
        try:
            if rowid:
                query = f"select {rowid}, {selected} from {quote(table)} order by {rowid}"
            else:
                query = f"select 0, {selected} from {quote(table)}"
            cursor = conn.execute(query)
            while batch := cursor.fetchmany(BATCH):
                for row in batch:
                    ordinal += 1
                    cells = list(row[1:]) if columns else []
                    yield (row[0] if rowid else ordinal), cells
        except sqlite3.Error as exc:
            if "decode" in str(exc) and (named := _not_utf8(path, table, columns, rowid, ordinal)):
                raise named from exc
            raise SourceError(path, f"cannot read table {table!r} ({exc})", RECOPY) from exc
        finally:
            conn.close()

    return rows


def _ranges(
    conn: sqlite3.Connection, table: str, columns: list[str], rowid: str
) -> list[tuple[int, int]]:
    """Rowid ranges [low, high] in rowid order, of about BATCH rows each, fewer when the first
    rows are long (a chunk of about CHUNK_BYTES at most): by arithmetic when the rowids are
    dense (1 .. n, as an INTEGER PRIMARY KEY mostly is), else from every so-many-th rowid."""
    low, high, count = conn.execute(
        f"select min({rowid}), max({rowid}), count(*) from {quote(table)}"
    ).fetchone()
    if not count:
        return []
    sizes = " + ".join(
        f"length(cast({quote(c)} as blob)) * (1 + (typeof({quote(c)}) = 'blob'))" for c in columns
    )
    (longest,) = conn.execute(
        f"select max({sizes or 0}) from (select * from {quote(table)} order by {rowid} limit 100)"
    ).fetchone()
    step = max(1, min(BATCH, CHUNK_BYTES // max(int(longest or 0), 1)))
    if high - low + 1 == count:
        starts = list(range(low, high + 1, step))
    else:
        starts = [
            r
            for (r,) in conn.execute(
                f"select {rowid} from (select {rowid}, row_number() over (order by {rowid})"
                f" as k from {quote(table)}) where k % {step} = 1 order by {rowid}"
            )
        ]
    return [(a, b - 1) for a, b in zip(starts, starts[1:], strict=False)] + [(starts[-1], high)]


def _copy_text_of(
    path: Path, table: str, columns: list[str], rowid: str
) -> Callable[[bytes], Iterator[tuple[int, bytes]]]:
    """`copy_text` of a table with a rowid (see the module docstring): chunks of rowid ranges
    built by WORKERS threads at once (SQLite runs its query without the GIL), each on its own
    connection, and yielded in rowid order, at most WINDOW chunks ahead."""
    line = "%d" + "\t%s" * len(columns)

    def query_of(checked: bool) -> str:
        fields = "".join(f", {copy_field_of(c, checked=checked)}" for c in columns)
        return (
            f"select count(*), group_concat(line, char(10)) from (select printf('{line}',"
            f" {rowid}{fields}) as line from {quote(table)} where {rowid} between ? and ?"
            f" order by {rowid})"
        )

    fast, checked = query_of(False), query_of(True)
    cells_of = f"select {', '.join(text_of(c) for c in columns) or 'null'} from {quote(table)}"

    def rebuilt(conn: sqlite3.Connection, line: bytes, prefix: bytes) -> bytes:
        """A line that is not UTF-8, from rows()'s values: a NUL kept, or a SourceError."""
        number = int(line[len(prefix) :].split(b"\t", 1)[0])
        conn.text_factory = str
        try:
            cells = conn.execute(f"{cells_of} where {rowid} = ?", (number,)).fetchone()
        except sqlite3.Error as exc:
            if "decode" in str(exc) and (named := _not_utf8(path, table, columns, rowid, 0)):
                raise named from exc
            raise
        finally:
            conn.text_factory = bytes
        text = copy_line(list(cells) if columns else [])
        return prefix + (f"{number}\t{text}" if columns else f"{number}").encode()

    def copy_text(prefix: bytes) -> Iterator[tuple[int, bytes]]:
        check_header(path)
        local = threading.local()
        opened: list[sqlite3.Connection] = []
        joint = b"\n" + prefix

        def chunk_of(low: int, high: int) -> tuple[int, bytes]:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = connect(path, check_same_thread=False)
                conn.text_factory = bytes
                opened.append(conn)
            try:
                rows, body = conn.execute(fast, (low, high)).fetchone()
                if not rows:
                    return 0, b""
                if (
                    body.count(b"\t") != rows * len(columns)
                    or body.count(b"\n") != rows - 1
                    or b"\r" in body
                ):  # a text holds a tab, newline or CR: the chunk again, every text checked
                    rows, body = conn.execute(checked, (low, high)).fetchone()
                chunk = prefix + body.replace(b"\n", joint) + b"\n"
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    lines = chunk[:-1].split(b"\n")
                    for k, line in enumerate(lines):
                        try:
                            line.decode("utf-8")
                        except UnicodeDecodeError:
                            lines[k] = rebuilt(conn, line, prefix)
                    chunk = b"\n".join(lines) + b"\n"
            except sqlite3.Error as exc:
                raise SourceError(path, f"cannot read table {table!r} ({exc})", RECOPY) from exc
            return rows, chunk

        conn = connect(path)
        try:
            ranges = _ranges(conn, table, columns, rowid)
        except sqlite3.Error as exc:
            raise SourceError(path, f"cannot read table {table!r} ({exc})", RECOPY) from exc
        finally:
            conn.close()
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="sqlite-copy")
        pending: deque[Future[tuple[int, bytes]]] = deque()
        try:
            for low, high in ranges:
                pending.append(pool.submit(chunk_of, low, high))
                if len(pending) >= WINDOW:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for opened_conn in opened:
                opened_conn.close()

    return copy_text
