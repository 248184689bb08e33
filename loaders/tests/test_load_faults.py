"""`luckygas load` when something goes wrong: all-or-nothing, one line, exit 2, the lock.

Real files (xlsx through xlsxwriter, SQLite, CSV) and the session's embedded server; each
test gets its own database. "raw exactly as before" is checked by a snapshot of every raw
table's rows (lineage included) and of the bookkeeping, compared after the failed load.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
import pytest
import xlsxwriter

from loaders import connection, lock, raw
from loaders.cli import main
from loaders.naming import table_name
from loaders.raw import MAX_COLUMNS
from loaders.readers.base import SourceError

BIN = Path(sys.executable).parent


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


def q(query: str, params=()) -> list[tuple]:
    with psycopg.connect("", autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def snapshot() -> dict[str, tuple]:
    """Every raw table's row count and the md5 of its rows (sorted), and the bookkeeping
    tables but raw._loads and the failed rows of raw._sources (a failed load records them):
    what "raw exactly as before" compares."""
    tables = [
        r[0]
        for r in q(
            "select tablename from pg_tables where schemaname = 'raw' and tablename <> '_loads'"
        )
    ]
    return {
        t: q(
            f"select count(*), md5(coalesce(string_agg(x::text, '|' order by x::text), ''))"
            f' from raw."{t}" x' + (" where outcome <> 'failed'" if t == "_sources" else "")
        )[0]  # fmt: skip
        for t in sorted(tables)
    }


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith("loading into")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("luckygas: "), err
    return lines[0]


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is not None:
                    ws.write(r, c, v)
    wb.close()
    return path


def database(path: Path, tables: dict[str, list[tuple]]) -> Path:
    with closing(sqlite3.connect(path)) as con:
        for name, rows in tables.items():
            con.execute(f'create table "{name}" (code text, name text)')
            con.executemany(f'insert into "{name}" values (?, ?)', rows)
        con.commit()
    return path


def good_folder(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    workbook(folder / "a_clients.xlsx", {"list": [["code", "name"], ["1", "x"], ["2", "y"]]})
    (folder / "b_orders.csv").write_text("id,qty\n1,3\n2,4\n", encoding="utf-8")
    return folder


def loads() -> list[tuple]:
    return q("select load_id, outcome from raw._loads order by load_id")


def test_nul_in_a_cell_rolls_the_whole_load_back(tmp_path, db, capsys):
    folder = good_folder(tmp_path / "export")
    assert main(["load", str(folder)]) == 0
    before = snapshot()
    capsys.readouterr()
    # A new export: one file changed (so its table would be replaced), one with a NUL.
    (folder / "b_orders.csv").write_text("id,qty\n1,30\n2,40\n3,50\n", encoding="utf-8")
    workbook(
        folder / "c_bad.xlsx",
        {"s": [["code", "name"], ["1", "ok"], ["2", "ok"], ["3", "bad\x00cell"], ["4", "ok"]]},
    )
    assert main(["load", str(folder)]) == 2
    line = one_line_error(capsys)
    assert "c_bad.xlsx" in line and "sheet 's'" in line and "cell B4" in line, line
    assert "column 'name'" in line and "NUL character" in line, line
    assert "remove the NUL character (\\x00) from that cell" in line, line
    assert "nothing of this load was kept" in line, line
    assert snapshot() == before
    assert q("select to_regclass('raw.c_bad__s')") == [(None,)]
    assert loads() == [(1, "loaded"), (2, "failed")]
    (message,) = q("select message from raw._loads where load_id = 2")[0]
    assert "cell B4" in message
    # The failing source is recorded failed; the rolled-back ones are not recorded at all.
    assert q("select source_file, outcome from raw._sources where load_id = 2") == [
        ("c_bad.xlsx", "failed")
    ]
    assert q("select count(*) from raw.b_orders") == [(2,)]


def test_nul_in_a_header_is_refused_before_anything_is_written(tmp_path, db, capsys):
    folder = good_folder(tmp_path / "export")
    assert main(["load", str(folder)]) == 0
    before = snapshot()
    capsys.readouterr()
    workbook(folder / "c_bad.xlsx", {"s": [["code", "na\x00me"], ["1", "x"]]})
    assert main(["load", str(folder)]) == 2
    line = one_line_error(capsys)
    assert "c_bad.xlsx" in line and "sheet 's' column B" in line, line
    assert "NUL character" in line and "header" in line, line
    assert snapshot() == before
    assert loads() == [(1, "loaded")]  # refused at plan time: no load recorded


def test_too_many_columns_are_refused_at_plan_time(tmp_path, db, capsys):
    widest = tmp_path / "widest.csv"
    widest.write_text(
        ",".join(f"c{i}" for i in range(MAX_COLUMNS)) + "\n" + ",".join(["1"] * MAX_COLUMNS) + "\n",
        encoding="utf-8",
    )
    assert main(["load", str(widest)]) == 0  # 1,594 columns and 6 lineage: PostgreSQL's 1,600
    assert q("select columns, rows_written from raw._sources") == [(MAX_COLUMNS, 1)]
    before = snapshot()
    capsys.readouterr()
    wide = tmp_path / "wide.csv"
    n = MAX_COLUMNS + 1
    wide.write_text(
        ",".join(f"c{i}" for i in range(n)) + "\n" + ",".join(["1"] * n) + "\n", encoding="utf-8"
    )
    assert main(["load", str(widest), str(wide)]) == 2
    line = one_line_error(capsys)
    assert "wide.csv" in line and "1,595 columns" in line and "1,600" in line, line
    assert snapshot() == before and loads() == [(1, "loaded")]


def test_a_second_load_stops_naming_the_first(tmp_path, db, capsys):
    folder = good_folder(tmp_path / "export")
    with psycopg.connect("", autocommit=True) as holder:
        lock.acquire(holder, "migrate")
        assert main(["load", str(folder)]) == 2
        line = one_line_error(capsys)
        assert "luckygas migrate (pid" in line and "is writing to this database" in line, line
        # Nothing written, not even the bookkeeping tables.
        assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]
        lock.release(holder)
    assert main(["load", str(folder)]) == 0
    # The lock is given back when the load ends: a migrate could take it now.
    with psycopg.connect("", autocommit=True) as other:
        lock.acquire(other, "migrate")
        lock.release(other)


def test_two_loads_creating_tables_at_once_do_not_crash(tmp_path, db):
    """Both create the bookkeeping and new tables: the second stops with one line (the lock)
    or, if the first has already finished, loads its files as unchanged."""
    folder = good_folder(tmp_path / "export")
    procs = [
        subprocess.Popen(
            [str(BIN / "luckygas"), "load", str(folder)],
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for code, err in results:
        assert "Traceback" not in err and code in (0, 2), err
        if code == 2:
            assert "is writing to this database" in err, err
    assert 0 in [code for code, _ in results]
    assert q("select count(*) from raw.b_orders") == [(2,)]


def big_csv(path: Path, rows: int = 1_000_000) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write("code,qty,note\n")
        f.writelines(f"{i},2,row {i}\n" for i in range(1, rows + 1))
    return path


def start_copy(paths: list[Path]) -> tuple[subprocess.Popen, int]:
    """`luckygas load` in a subprocess, once its COPY runs: (process, server pid)."""
    proc = subprocess.Popen(
        [str(BIN / "luckygas"), "load", *map(str, paths)],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        active = q(
            "select pid from pg_stat_activity where application_name like 'luckygas load%%'"
            " and state = 'active' and query ilike 'copy %%'"
        )
        if active:
            return proc, active[0][0]
        if proc.poll() is not None:
            pytest.fail(f"the loader ended before COPY: {proc.stderr.read()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the loader never started COPY")


def wait_gone(server_pid: int) -> None:
    deadline = time.monotonic() + 30
    while q("select count(*) from pg_stat_activity where pid = %s", (server_pid,))[0][0]:
        assert time.monotonic() < deadline, "the server never noticed the dead client"
        time.sleep(0.05)


def test_kill_9_mid_copy_keeps_raw_and_the_next_load_marks_it_interrupted(tmp_path, db, capsys):
    folder = good_folder(tmp_path / "export")
    assert main(["load", str(folder)]) == 0
    before = snapshot()
    (folder / "b_orders.csv").write_text("id,qty\n9,9\n", encoding="utf-8")  # replaced first
    big = big_csv(tmp_path / "big.csv")
    proc, server_pid = start_copy([folder, big])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    wait_gone(server_pid)
    assert snapshot() == before
    assert loads() == [(1, "loaded"), (2, "running")]
    capsys.readouterr()
    (folder / "b_orders.csv").write_text("id,qty\n1,3\n2,4\n", encoding="utf-8")  # as loaded
    assert main(["load", str(folder)]) == 0
    assert "load 2 (started" in capsys.readouterr().err
    assert loads() == [(1, "loaded"), (2, "interrupted"), (3, "loaded")]
    assert q("select message from raw._loads where load_id = 2") == [
        ("the process ended before the load finished; nothing of it was kept",)
    ]
    assert q("select outcome, count(*) from raw._sources where load_id = 3 group by 1") == [
        ("unchanged", 2)
    ]
    assert snapshot()["b_orders"] == before["b_orders"]


def test_sigterm_mid_copy_rolls_back_and_records_interrupted(tmp_path, db):
    folder = good_folder(tmp_path / "export")
    assert main(["load", str(folder)]) == 0
    before = snapshot()
    proc, server_pid = start_copy([folder, big_csv(tmp_path / "big.csv")])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read().strip().splitlines()
    assert err[-1] == "luckygas: interrupted" and "Traceback" not in "\n".join(err), err
    wait_gone(server_pid)
    assert snapshot() == before
    assert loads() == [(1, "loaded"), (2, "interrupted")]
    (message,) = q("select message from raw._loads where load_id = 2")[0]
    assert "big.csv" in message and "nothing of this load was kept" in message, message


def test_lost_server_mid_copy_is_one_line_and_nothing_kept(tmp_path, db):
    folder = good_folder(tmp_path / "export")
    assert main(["load", str(folder)]) == 0
    before = snapshot()
    proc, server_pid = start_copy([folder, big_csv(tmp_path / "big.csv")])
    q("select pg_terminate_backend(%s)", (server_pid,))
    assert proc.wait(timeout=60) == 2
    err = proc.stderr.read().strip()
    lines = [line for line in err.splitlines() if not line.startswith("loading into")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "big.csv" in lines[0] and "connection to the database server was lost" in lines[0]
    assert "nothing of this load was kept" in lines[0], err
    wait_gone(server_pid)
    assert snapshot() == before
    # Recorded on a new connection: the load failed, the source being loaded too.
    assert loads() == [(1, "loaded"), (2, "failed")]
    assert q("select source_file, outcome from raw._sources where load_id = 2") == [
        ("big.csv", "failed")
    ]


def test_a_sheet_and_a_table_of_one_name_are_refused(tmp_path, db, capsys):
    book = workbook(tmp_path / "k.xlsx", {"clients": [["code", "name"], ["1", "x"]]})
    db_file = database(tmp_path / "k.db", {"clients": [("7", "z"), ("8", "w")]})
    assert table_name(book.name, "clients", "xlsx") == table_name(db_file.name, "clients", "sqlite")
    # In one run: refused by the plan.
    assert main(["load", str(book), str(db_file)]) == 2
    line = one_line_error(capsys)
    assert "k.db" in line and "k.xlsx" in line and "rename one of the files" in line, line
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]
    # In separate runs (what the message used to advise): refused against what the table holds.
    assert main(["load", str(book)]) == 0
    before = snapshot()
    capsys.readouterr()
    assert main(["load", str(db_file)]) == 2
    line = one_line_error(capsys)
    assert "k.db: table 'clients'" in line and "holds k.xlsx sheet 'clients'" in line, line
    assert "rename one of the files" in line, line
    assert snapshot() == before
    assert loads() == [(1, "loaded"), (2, "failed")]
    assert q("select source_file, outcome from raw._sources where load_id = 2") == [
        ("k.db", "failed")
    ]
    assert main(["load", str(book)]) == 0  # still the workbook's rows: unchanged, truly
    assert q("select outcome from raw._sources where load_id = 3") == [("unchanged",)]


def test_unchanged_means_the_table_still_holds_the_rows(tmp_path, db, capsys):
    book = workbook(tmp_path / "k.xlsx", {"clients": [["code", "name"], ["1", "x"], ["2", "y"]]})
    assert main(["load", str(book)]) == 0
    q("delete from raw.k__clients where code = '2' returning code")  # edited by hand
    assert main(["load", str(book)]) == 0
    assert q("select outcome, rows_written from raw._sources where load_id = 2") == [("loaded", 2)]
    assert q("select count(*) from raw.k__clients") == [(2,)]
    assert main(["load", str(book)]) == 0
    assert q("select outcome from raw._sources where load_id = 3") == [("unchanged",)]


@contextmanager
def as_nobody():
    """Act as user `nobody` (effective uid and gid) for a moment, when root: root reads every
    folder, so only another user sees a folder of mode 000 refuse a listing. In-process (the
    loader's modules, and the codecs a plan looks up, are imported first as root), so the
    venv and the interpreter need not be reachable by `nobody` (a CI clone in a 0700
    temporary folder, a pyenv Python under /root, are not)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_an_unreadable_subfolder_stops_the_load():
    """A folder of mode 000 really makes os.walk fail; the plan stops on it, naming it, before
    any connection, and the CLI turns that into one line and exit 2."""
    root = Path(tempfile.mkdtemp(prefix="luckygas-unreadable-"))
    locked = root / "export" / "2025-05"
    try:
        root.chmod(0o755)
        folder = good_folder(root / "export")
        locked.mkdir()
        (locked / "more.csv").write_text("a\n1\n", encoding="utf-8")
        for path in (folder, *folder.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert sum(len(f.sources) for f in raw.plan([folder]).files) == 3  # imports warmed
        locked.chmod(0o000)
        with as_nobody(), pytest.raises(SourceError) as caught:
            raw.plan([folder])
        message = str(caught.value)
        assert "\n" not in message, message
        assert str(locked) in message and "cannot be read" in message, message
        assert "Permission denied" in message, message
        # Readable again, the same folder plans: it was the folder that stopped it.
        locked.chmod(0o755)
        with as_nobody():
            planned = raw.plan([folder])
        assert sum(len(f.sources) for f in planned.files) == 3
    finally:
        locked.chmod(0o755)
        shutil.rmtree(root)


def test_a_folder_with_nothing_to_load_is_refused(tmp_path, db, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["load", str(empty)]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"luckygas: nothing to load in {empty}: "), line
    (empty / "readme.txt").write_text("not an export", encoding="utf-8")
    assert main(["load", str(empty)]) == 2
    line = one_line_error(capsys)
    assert "nothing to load" in line and "; skipped " in line and "readme.txt" in line, line
    assert q("select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]


def _printed_table(out: str) -> list[dict[str, str]]:
    """The rows of the rich table printed by `luckygas load`, as {header: value}."""
    lines = out.splitlines()
    header_line = next(line for line in lines if "┃" in line)
    headers = [h.strip() for h in header_line.strip().strip("┃").split("┃")]
    rows = []
    for line in lines:
        if line.startswith("│"):
            values = [v.strip() for v in line.strip().strip("│").split("│")]
            assert len(values) == len(headers), (headers, values)
            rows.append(dict(zip(headers, values, strict=True)))
    return rows


def test_the_summary_table_has_a_header_per_value(tmp_path, db, capsys):
    book = workbook(
        tmp_path / "clients.xlsx",
        {
            "north": [["code", "name"], ["1", "x"], ["2", "y"]],
            "south": [[None], [1, 2, 3], [4, 5, 6]],
        },
    )
    assert main(["load", str(book)]) == 0
    rows = _printed_table(capsys.readouterr().out)
    assert rows == [
        {
            "source": "clients.xlsx",
            "sheet": "north",
            "table": table_name(book.name, "north", "xlsx"),
            "rows": "2",
            "columns": "2",
            "header row": "1",
            "seconds": rows[0]["seconds"],
            "outcome": "loaded",
        },
        {
            "source": "clients.xlsx",
            "sheet": "south",
            "table": table_name(book.name, "south", "xlsx"),
            "rows": "3",
            "columns": "3",
            "header row": "-",
            "seconds": rows[1]["seconds"],
            "outcome": "loaded (no header row)",
        },
    ]
    assert main(["load", str(book)]) == 0
    again = _printed_table(capsys.readouterr().out)
    assert [(r["sheet"], r["rows"], r["outcome"]) for r in again] == [
        ("north", "-", "unchanged (same SHA-256 as the last load)"),
        ("south", "-", "unchanged (same SHA-256 as the last load)"),
    ]
