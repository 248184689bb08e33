"""`luckygas load` against a real (throwaway) PostgreSQL: counts, lineage, idempotence, faults.
(Interruptions, the lock, NUL characters, collisions and the other faults: test_load_faults.py.)

Each test gets its own database on the session's server, so tests cannot see each other's
raw schema. Row counts and header rows are compared with the sample's expected.json.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
import xlsxwriter

from loaders import connection, raw
from loaders.cli import main
from loaders.naming import table_name
from loaders.readers.base import SourceError
from loaders.sample.generate import generate


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("raw-sample")
    generate(out, scale="small", seed=5)
    return out, json.loads((out / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def db(pg, monkeypatch) -> str:
    """A fresh database on the session server; PG* point at it for the code under test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    for key, value in {**pg.env, "PGDATABASE": name}.items():
        monkeypatch.setenv(key, value)
    yield name
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        connection.drop_database(admin, name)


def q(sql: str, params=()) -> list[tuple]:
    with psycopg.connect("", autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_small_sample_loads_every_row_with_lineage(sample, db, capsys):
    folder, expected = sample
    assert main(["load", str(folder)]) == 0
    out = capsys.readouterr()
    assert "~$" in out.err and "skipped" in out.err  # the lock file, with a note
    assert "expected.json" in out.err  # not a source: skipped with a note
    for src in expected["sources"]:
        table = table_name(
            src["file"], src["sheet"], "sqlite" if src["kind"] == "table" else "xlsx"
        )
        (count, nulls, lo, hi, distinct) = q(
            f"select count(*), count(*) filter (where _load_id is null or _source_file is null"
            f" or _source_sha256 is null or _source_sheet is null or _source_row is null),"
            f' min(_source_row), max(_source_row), count(distinct _source_row) from raw."{table}"'
        )[0]
        assert count == src["data_rows"], src["sheet"]
        assert nulls == 0
        if count:
            first = 1 if src["kind"] == "table" else (src["header_row"] or 0) + 1
            assert (lo, hi, distinct) == (first, src["last_row"], count), src["sheet"]
        (header_row, rows, outcome, sha) = q(
            "select header_row, rows_written, outcome, file_sha256 from raw._sources"
            " where source_file = %s and sheet = %s",
            (src["file"], src["sheet"]),
        )[0]
        assert (header_row, rows, outcome) == (src["header_row"], src["data_rows"], "loaded")
        assert sha == next(f["sha256"] for f in expected["files"] if f["file"] == src["file"])
    assert q("select outcome from raw._loads") == [("loaded",)]
    # The dispatch sheets' title row (above the header) is kept, not dropped.
    titled = [s for s in expected["sources"] if s["layout"] == "title_above_header"]
    rows = q("select sheet, row_number, cells[1] from raw._above_header order by sheet")
    assert sorted(r[0] for r in rows) == sorted(s["sheet"] for s in titled)
    # the client workbook's dispatch sheets, and the residential plan's title
    assert {(r[1], r[2]) for r in rows} <= {
        (1, "台東幸福氣配送計畫"),
        (1, "幸福氣 住宅客戶配送計畫"),
    }
    assert {r[2] for r in rows} >= {"台東幸福氣配送計畫"}


def test_defect_cells_are_staged_as_their_text(sample, db):
    folder, expected = sample
    assert main(["load", str(folder)]) == 0
    checked = 0
    for g in expected["defects"]:
        if "column_index" not in g:
            continue
        kind = "sqlite" if g["file"].endswith(".db") else "xlsx"
        table = table_name(g["file"], g["sheet"], kind)
        (column,) = q(
            "select column_name from raw._columns where table_name = %s and position = %s",
            (table, g["column_index"]),
        )[0]
        for inst in g["instances"]:
            if "value" not in inst:
                continue
            rows = q(f'select "{column}" from raw."{table}" where _source_row = %s', (inst["row"],))
            assert rows == [(inst["value"],)], (g["kind"], g["sheet"], inst)
            checked += 1
    assert checked > 300


def test_reload_skips_unchanged_and_force_replaces_without_duplicates(sample, db, capsys):
    folder, expected = sample
    assert main(["load", str(folder)]) == 0
    before = q("select table_name, rows_written from raw._sources order by 1")
    assert main(["load", str(folder)]) == 0
    assert "unchanged" in capsys.readouterr().out
    outcomes = q("select outcome, count(*) from raw._sources where load_id = 2 group by 1")
    assert outcomes == [("unchanged", len(expected["sources"]))]
    assert main(["load", "--force", str(folder)]) == 0
    after = q("select table_name, rows_written from raw._sources where load_id = 3 order by 1")
    assert after == before
    for table, rows in after:
        assert q(f'select count(*), count(distinct _load_id) from raw."{table}"') == [
            (rows, 1 if rows else 0)
        ]


def test_dry_run_writes_nothing(sample, db, capsys):
    folder, expected = sample
    assert main(["load", "--dry-run", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "nothing written" in out
    total = sum(s["data_rows"] for s in expected["sources"])
    assert f"{total:,} rows" in out
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is not None:
                    ws.write(r, c, v)
    wb.close()
    return path


def test_failure_mid_source_keeps_previous_rows(tmp_path, db, monkeypatch, capsys):
    book = _workbook(
        tmp_path / "clients.xlsx", {"a": [["code", "name"]] + [[i, f"n{i}"] for i in range(1, 101)]}
    )
    assert main(["load", str(book)]) == 0
    _workbook(book, {"a": [["code", "name"]] + [[i, f"new{i}"] for i in range(1, 201)]})

    real_open = raw.open_file

    def failing_open(path):
        sources = real_open(path)
        for s in sources:
            inner = s.rows

            def rows(inner=inner):
                for k, item in enumerate(inner()):
                    if k == 50:
                        raise SourceError(path, "truncated in the middle (injected)")
                    yield item

            s.rows = rows
        return sources

    monkeypatch.setattr(raw, "open_file", failing_open)
    assert main(["load", str(book)]) == 2
    err = capsys.readouterr().err
    assert "truncated in the middle (injected)" in err and "nothing of this load was kept" in err
    table = table_name("clients.xlsx", "a", "xlsx")
    assert q(f'select count(*), min(name), count(distinct _load_id) from raw."{table}"') == [
        (100, "n1", 1)
    ]
    assert q("select load_id, outcome, rows_written from raw._sources order by load_id") == [
        (1, "loaded", 100),
        (2, "failed", 0),
    ]
    assert q("select outcome from raw._loads order by load_id") == [("loaded",), ("failed",)]


def test_hostile_names_load_safely(tmp_path, db):
    evil_sheet = "x'; drop table raw._loads; --"
    book = _workbook(
        tmp_path / 'odd "name"; select 1.xlsx',
        {evil_sheet: [['a"b', "c'; drop schema raw cascade; --", "客戶", "客戶"], [1, 2, 3, 4]]},
    )
    assert main(["load", str(book)]) == 0
    table = table_name(book.name, evil_sheet, "xlsx")
    assert q(f'select "a""b", "客戶", "客戶_4" from raw."{table}"') == [("1", "3", "4")]
    assert q("select sheet from raw._sources") == [(evil_sheet,)]
    assert q("select count(*) from raw._loads") == [(1,)]


def test_missing_path_is_one_clear_line(tmp_path, db, capsys):
    assert main(["load", str(tmp_path / "nope.xlsx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.xlsx" in err and "\n" not in err and "Traceback" not in err
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]


def test_unreadable_file_stops_before_anything_is_written(tmp_path, db, capsys):
    good = _workbook(tmp_path / "a.xlsx", {"s": [["h"], [1]]})
    bad = tmp_path / "b.xlsx"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert main(["load", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "b.xlsx" in err
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]


def _truncated(path: Path) -> None:
    data = _workbook(
        path.with_name("whole.xlsx"), {"s": [["h"]] + [[i] for i in range(3000)]}
    ).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    path.with_name("whole.xlsx").unlink()


def _truncated_db(path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(path.with_name("whole.db"))
    con.execute("create table t (s text)")
    con.executemany("insert into t values (?)", [("x" * 100,)] * 500)
    con.commit()
    con.close()
    data = path.with_name("whole.db").read_bytes()
    path.with_name("whole.db").unlink()
    path.write_bytes(data[: len(data) // 2])


BAD_INPUTS = {
    "missing.xlsx": (None, "no such file or directory"),
    "notes.json": (lambda p: p.write_text("{}"), "not a supported file type"),
    "half.xlsx": (_truncated, "truncated or damaged"),
    "random.xlsx": (lambda p: p.write_bytes(b"\x00\x01not a zip" * 100), "not an Excel workbook"),
    "secret.xlsx": (
        lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048)),
        "encrypted or password-protected workbook",
    ),
    "half.db": (_truncated_db, "truncated or damaged SQLite database"),
    "notes.db": (lambda p: p.write_text("客戶,地址\n"), "not a SQLite database"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(name, tmp_path, db, capsys):
    make, problem = BAD_INPUTS[name]
    good = _workbook(tmp_path / "good.xlsx", {"s": [["h"], [1]]})
    path = tmp_path / name
    if make:
        make(path)
    assert main(["load", str(good), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("luckygas: ") and str(path) in err and problem in err, err
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]


def test_empty_sheet_and_sheet_without_header(tmp_path, db, capsys):
    book = _workbook(
        tmp_path / "odd.xlsx",
        {"empty": [], "numbers": [[None], [1, 2, 3], [4, 5, 6]], "ok": [["a"], ["x"]]},
    )
    assert main(["load", str(book)]) == 0
    out = capsys.readouterr().out
    assert "empty sheet" in out and "no header row" in out
    empty = table_name(book.name, "empty", "xlsx")
    assert q(f'select count(*) from raw."{empty}"') == [(0,)]
    numbers = table_name(book.name, "numbers", "xlsx")
    assert q(f'select _source_row, col_1, col_3 from raw."{numbers}" order by 1') == [
        (1, None, None),
        (2, "1", "3"),
        (3, "4", "6"),
    ]
