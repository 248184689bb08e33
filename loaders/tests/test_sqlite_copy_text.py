"""The SQLite reader's COPY text (`copy_text`, the loader's fast path) stages exactly what
`rows()` through psycopg's `write_row` stages: every value kind, lineage, row numbers, and the
same one-line faults (a NUL character, a text that is not UTF-8) naming the row and column.

Each staged table is compared, row by row and column by column, with the same file loaded
through the generic path (`copy_text` set to None), and a few values with what sqlite3 itself
and the reader's docstring say.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from loaders import connection, raw
from loaders.cli import main
from loaders.hashing import sha256_of
from loaders.naming import table_name
from loaders.readers import open_file
from loaders.readers.base import SourceError
from loaders.readers.sqlite import BATCH, SQLiteSource, copy_line

VALUES = [
    1, -9223372036854775808, 9223372036854775807, 0, 0.1 + 0.2, 1e16, -0.0, 0.1, 1.0, 6.7,
    1e308, 5e-324, float("inf"), float("-inf"), 123456789.123456789,
    "a\tb", "line\nbreak", "back\\slash", "cr\rhere", "\\N", "\\x00", "\\", "\t", "\n\n", "",
    None, b"\x00\xffA", b"", "台東縣臺東市", "😀", " 17 ", "1e5", "mix\t\\\n\r end", "x" * 70_000,
]  # fmt: skip


@pytest.fixture
def dbs(pg, monkeypatch) -> dict[str, str]:
    """Two fresh databases on the session server: `fast` (PG* point at it) and `generic`."""
    names = {k: f"t_{uuid.uuid4().hex[:12]}" for k in ("fast", "generic")}
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'create database "{name}"')
    for key, value in {**pg.env, "PGDATABASE": names["fast"]}.items():
        monkeypatch.setenv(key, value)
    yield names
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        for name in names.values():
            connection.drop_database(admin, name)


def q(dbname: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(dbname=dbname, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def app_database(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as con:
        con.executescript(
            """
            create table kinds (id integer primary key, a, b text, c real, "we""ird	col" blob);
            create table sparse (id integer primary key, v, w);
            create table many (id integer primary key, v, w);
            create table kv (k text primary key, v) without rowid;
            create table "表 客戶" (x, y);
            create table lonely (id integer primary key);
            create table cr (id integer primary key, v);
            insert into cr values (1, 'a' || char(13) || 'b'), (2, 'x');
            create table lf (id integer primary key, v);
            insert into lf values (1, 'a' || char(10) || 'b'), (2, 'x');
            create table tab (id integer primary key, v);
            insert into tab values (1, 'a' || char(9) || 'b'), (2, 'x');
            """
        )
        con.executemany(
            "insert into kinds values (?, ?, ?, ?, ?)",
            [(3 * i + 1, v, v, v, v) for i, v in enumerate(VALUES)],
        )
        con.executemany(
            "insert into sparse values (?, ?, ?)",
            [(i * i + 7, VALUES[i % len(VALUES)], str(i)) for i in range(300)],
        )
        # More than two chunks; the texts with a tab, newline or CR in the second one only.
        con.executemany(
            "insert into many values (?, ?, ?)",
            [
                (i, VALUES[i % len(VALUES)] if BATCH < i < BATCH + 40 else i % 7, f"r{i}")
                for i in range(1, 2 * BATCH + 123)
            ],
        )
        con.executemany("insert into kv values (?, ?)", [("b", "t\tab"), ("a", None), ("c", 2.5)])
        con.executemany('insert into "表 客戶" values (?, ?)', [(v, v) for v in VALUES[:20]])
        con.executemany("insert into lonely values (?)", [(1,), (5,)])
        con.commit()
    return path


def staged(dbname: str, path: Path) -> dict[str, list[tuple]]:
    """Every raw table of `path`: its rows as text, lineage but the load id and time included."""
    out = {}
    for (table,) in q(
        dbname, "select table_name from raw._sources where source_file = %s", (path.name,)
    ):
        columns = [
            r[0]
            for r in q(
                dbname,
                "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
                " and not attisdropped and attname not in ('_load_id', '_loaded_at')"
                " order by attnum",
                (f'raw."{table}"',),
            )
        ]
        selected = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        out[table] = q(dbname, f'select {selected} from raw."{table}" order by _source_row')
    return out


def load(dbname: str, path: Path, *, fast: bool) -> raw.LoadReport:
    planned = raw.plan([path])
    for f in planned.files:
        for s in f.sources:
            if not fast:
                s.copy_text = None
    return raw.load(
        planned,
        lambda: psycopg.connect(dbname=dbname, autocommit=True),
        arguments=["load", str(path)],
        force=True,
    )


def test_copy_text_stages_exactly_what_write_row_stages(tmp_path, dbs):
    path = app_database(tmp_path / "app.db")
    fast = load(dbs["fast"], path, fast=True)
    generic = load(dbs["generic"], path, fast=False)
    assert [(r.table, r.rows_written) for r in fast.results] == [
        (r.table, r.rows_written) for r in generic.results
    ]
    a, b = staged(dbs["fast"], path), staged(dbs["generic"], path)
    assert sorted(a) == sorted(b) and len(a) == 9
    for table in a:
        assert a[table] == b[table], table
    kinds = a[table_name(path.name, "kinds", "sqlite")]
    assert [row[3] for row in kinds] == [3 * i + 1 for i in range(len(VALUES))]  # the rowid
    assert {row[:3] for row in kinds} == {(path.name, sha256_of(path), "kinds")}


def test_every_value_kind_as_the_docstring_says(tmp_path, dbs):
    path = app_database(tmp_path / "app.db")
    load(dbs["fast"], path, fast=True)
    rows = staged(dbs["fast"], path)[table_name(path.name, "kinds", "sqlite")]
    by_value = {repr(v): row[5] for v, row in zip(VALUES, rows, strict=True)}  # column a
    assert by_value[repr(0.1 + 0.2)] == "0.30000000000000004"
    assert by_value[repr(1e16)] == "1.0e+16"
    assert by_value[repr(6.7)] == "6.7" and by_value[repr(1.0)] == "1.0"
    assert by_value[repr(-9223372036854775808)] == "-9223372036854775808"
    assert by_value[repr("")] == "" and by_value[repr(None)] is None
    assert by_value[repr(b"\x00\xffA")] == "\\x00ff41" and by_value[repr(b"")] == "\\x"
    for text in ("a\tb", "line\nbreak", "back\\slash", "cr\rhere", "\\N", "\\x00", "\\", "\t"):
        assert by_value[repr(text)] == text
    assert by_value[repr("mix\t\\\n\r end")] == "mix\t\\\n\r end"
    assert by_value[repr("台東縣臺東市")] == "台東縣臺東市" and by_value[repr("😀")] == "😀"
    assert by_value[repr("x" * 70_000)] == "x" * 70_000
    # Beside what sqlite3 itself reads from the file.
    with closing(sqlite3.connect(path)) as con:
        read = con.execute("select a, typeof(a) from kinds order by id").fetchall()
    for (value, kind), row in zip(read, rows, strict=True):
        text = row[5]
        if kind == "integer":
            assert text == str(value)
        elif kind == "real":
            assert float(text) == value and any(c in text for c in ".eI"), (value, text)
        elif kind == "text":
            assert text == value
        elif kind == "blob":
            assert text == "\\x" + value.hex()
        else:
            assert text is None


def test_chunks_hold_the_rows_of_rows(tmp_path):
    """Without a server: every chunk line is prefix, row number and the row's cells, and the
    row numbers are those of rows()."""
    path = app_database(tmp_path / "app.db")
    sources = {s.sheet: s for s in open_file(path)}
    assert all(isinstance(s, SQLiteSource) for s in sources.values())
    assert sources["kv"].copy_text is None  # WITHOUT ROWID: the generic path
    prefix = b"7\tapp.db\tabc\tmany\t"
    for name in ("kinds", "sparse", "many", "表 客戶", "lonely", "cr", "lf", "tab"):
        s = sources[name]
        chunks = list(s.copy_text(prefix))
        assert all(0 < n <= BATCH and chunk.count(b"\n") == n for n, chunk in chunks)
        lines = b"".join(chunk for _, chunk in chunks).split(b"\n")[:-1]
        assert sum(n for n, _ in chunks) == len(lines) == s.row_count_hint
        assert all(line.startswith(prefix) for line in lines)
        numbers = [int(line[len(prefix) :].split(b"\t", 1)[0]) for line in lines]
        assert numbers == [number for number, _ in s.rows()], name


def test_nul_in_a_sqlite_cell_names_the_row_and_column(tmp_path, dbs, capsys):
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as con:
        con.execute("create table t (id integer primary key, code text, name text)")
        con.executemany(
            "insert into t values (?, ?, ?)",
            [(i, str(i), "ok\tfine" if i % 3 else "ok") for i in range(1, 2 * BATCH)],
        )
        con.execute("update t set name = ? where id = ?", ("bad\x00cell", BATCH + 17))
        con.commit()
    assert main(["load", str(path)]) == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("luckygas: ")][-1]
    assert f"table 't' row {BATCH + 17} column 3, column 'name'" in line, line
    assert "the cell holds a NUL character (\\x00)" in line, line
    assert "nothing of this load was kept" in line, line
    assert q(dbs["fast"], "select to_regclass('raw.app__t')") == [(None,)]


@pytest.mark.parametrize("fast", [True, False])
def test_text_that_is_not_utf8_names_the_row_and_column(tmp_path, dbs, fast):
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as con:
        con.execute("create table t (id integer primary key, code text, name text)")
        con.executemany(
            "insert into t values (?, ?, ?)", [(i, str(i), "ok") for i in range(1, BATCH + 99)]
        )
        con.execute(f"update t set name = cast(x'61ff62' as text) where id = {BATCH + 5}")
        con.commit()
    with pytest.raises(SourceError) as err:
        load(dbs["fast"], path, fast=fast)
    message = str(err.value)
    assert str(path) in message, message
    assert f"cannot read table 't' row {BATCH + 5} column 3, column 'name'" in message, message
    assert "not UTF-8" in message and "nothing of this load was kept" in message, message


def test_progress_is_reported_per_chunk(tmp_path, dbs):
    path = app_database(tmp_path / "app.db")
    seen: dict[str, list[int]] = {}
    planned = raw.plan([path])
    raw.load(
        planned,
        lambda: psycopg.connect(dbname=dbs["fast"], autocommit=True),
        arguments=["load"],
        progress=lambda s, n: seen.setdefault(s.sheet, []).append(n),
    )
    total = 2 * BATCH + 122
    assert seen["many"][-1] == total
    assert [n for n in seen["many"] if n % BATCH == 0] == [BATCH, 2 * BATCH]


def test_storage_class_not_swayed_by_affinity_or_collation(tmp_path):
    """Without a server: copy_field_of finds each value's storage class by comparisons, which
    neither a column's affinity (a TEXT '17' in an INTEGER column, left there by a schema
    change) nor its declared collation (NOCASE, RTRIM) may sway; the chunks hold what rows()
    yields, line for line."""
    path = tmp_path / "app.db"
    texts = ["17", " 17 ", "1e5", "-0.5", "", " ", "A", "a\\b", "\\", "0x10", "9" * 30]
    others = [None, 1, -3, 2.5, 1e16, float("inf"), b"", b"\x00A", "台東"]
    with closing(sqlite3.connect(path)) as con:
        con.execute("create table t (id integer primary key, a, b, c, d)")
        con.executemany(
            "insert into t values (?, ?, ?, ?, ?)", [(None, v, v, v, v) for v in texts + others]
        )
        con.commit()
        con.execute("pragma writable_schema = on")
        con.execute(
            "update sqlite_master set sql = 'create table t (id integer primary key,"
            " a integer collate nocase, b real collate rtrim, c numeric collate nocase,"
            " d text collate rtrim)' where name = 't'"
        )
        con.commit()
    with closing(sqlite3.connect(path)) as con:
        kinds = con.execute("select typeof(a), a < '' from t where id = 1").fetchall()
    assert kinds == [("text", 1)]  # a TEXT in an INTEGER column, which `a < ''` takes for a number
    (s,) = open_file(path)
    chunk = b"".join(chunk for _, chunk in s.copy_text(b""))
    expected = "".join(f"{n}\t{copy_line(cells)}\n" for n, cells in s.rows()).encode()
    assert chunk == expected
    rows = [cells[1:] for _, cells in s.rows()]  # cells[0]: the id column
    assert rows[: len(texts)] == [[v] * 4 for v in texts]
