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
malformed", text that is not UTF-8) becomes a SourceError naming the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from loaders.readers.base import Source, SourceError

MAGIC = b"SQLite format 3\x00"
BATCH = 5000  # rows fetched at a time
RECOPY = "copy the database again (it may have been cut short) and load again"


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


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection; SourceError if SQLite cannot open the file."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
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
                Source(
                    file=path,
                    file_kind="sqlite",
                    sheet=table,
                    headers=list(columns),
                    header_row=None,
                    row_count_hint=count,
                    notes=notes,
                    _rows=_rows_of(path, table, columns, rowid),
                )
            )
    except sqlite3.Error as exc:
        raise SourceError(path, f"cannot read the SQLite database ({exc})", RECOPY) from exc
    finally:
        conn.close()
    return sources


def text_of(column: str) -> str:
    """SQL giving the text of one column's value (see the module docstring for the rule)."""
    c = quote(column)
    real = " ".join(
        f"when cast(printf('%!.{d}g', {c}) as real) = {c} then printf('%!.{d}g', {c})"
        for d in (15, 16)
    )
    return (
        f"case typeof({c}) when 'real' then case {real} else printf('%!.17g', {c}) end"
        f" when 'blob' then '\\x' || lower(hex({c})) else cast({c} as text) end"
    )


def _rows_of(path: Path, table: str, columns: list[str], rowid: str | None):
    selected = ", ".join(text_of(c) for c in columns) or "null"

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        check_header(path)
        conn = connect(path)
        try:
            if rowid:
                query = f"select {rowid}, {selected} from {quote(table)} order by {rowid}"
            else:
                query = f"select 0, {selected} from {quote(table)}"
            cursor = conn.execute(query)
            ordinal = 0
            while batch := cursor.fetchmany(BATCH):
                for row in batch:
                    ordinal += 1
                    cells = list(row[1:]) if columns else []
                    yield (row[0] if rowid else ordinal), cells
        except sqlite3.Error as exc:
            raise SourceError(path, f"cannot read table {table!r} ({exc})", RECOPY) from exc
        finally:
            conn.close()

    return rows
