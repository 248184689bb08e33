"""A second, independent path over the sample: csvkit extracts, duckdb counts and sums.

csvkit's `in2csv` (agate-excel, with type inference off) turns each history sheet into CSV
and `sql2csv` (SQLAlchemy) does the same for the app's deliveries; duckdb then reads every
column as text and computes the row counts and quantity sums that expected.json claims.
Neither tool shares code with the generator or with openpyxl.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from loaders.sample.generate import generate

HISTORY = "2025-05 commercial deliver history.xlsx"
APP = "luckygas.db"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample-csvkit")
    generate(out, scale="small", seed=11)
    return out, json.loads((out / "expected.json").read_text(encoding="utf-8"))


def _run(args: list[str], out: Path) -> Path:
    with out.open("wb") as f:
        subprocess.run(args, check=True, stdout=f, stderr=subprocess.PIPE)
    return out


def _sums(expected: dict, file: str, sheet: str) -> dict:
    return next(
        s["sums"] for s in expected["column_sums"] if (s["file"], s["sheet"]) == (file, sheet)
    )


def _view(con, csv: Path) -> None:
    """View `rel` over a CSV file, every column read as text (no type guessing).

    The dialect is spelled out: left to its sniffer, duckdb took `#` for a comment marker
    and silently dropped a row whose first cell was the Excel error `#REF!`.
    """
    path = str(csv).replace("'", "''")
    con.execute(
        "create or replace view rel as select * from read_csv("
        f"'{path}', all_varchar = true, header = true, delim = ',', quote = '\"', "
        "escape = '\"', comment = '', strict_mode = true)"
    )


def test_history_counts_and_sums_through_in2csv_and_duckdb(sample, tmp_path):
    folder, expected = sample
    con = duckdb.connect()
    sheets = [s for s in expected["sources"] if s["file"] == HISTORY]
    assert len(sheets) >= 2
    for src in sheets:
        csv = _run(
            [str(BIN / "in2csv"), "--no-inference", "--sheet", src["sheet"], str(folder / HISTORY)],
            tmp_path / f"{src['header_row']}-{len(src['sheet'])}.csv",
        )
        _view(con, csv)
        columns = [d[0] for d in con.execute("select * from rel limit 0").description]
        assert columns == src["headers"]
        (rows,) = con.execute("select count(*) from rel").fetchone()
        assert rows == src["data_rows"], src["sheet"]
        want = _sums(expected, HISTORY, src["sheet"])
        sums = ", ".join(f'coalesce(sum(try_cast("{c}" as double)), 0)' for c in want)
        got = con.execute(f"select {sums} from rel").fetchone()
        assert list(got) == pytest.approx(list(want.values())), src["sheet"]


def test_app_deliveries_through_sql2csv_and_duckdb(sample, tmp_path):
    folder, expected = sample
    csv = _run(
        [
            str(BIN / "sql2csv"),
            "--db",
            f"sqlite:///{folder / APP}",
            "--query",
            "select * from deliveries",
        ],
        tmp_path / "deliveries.csv",
    )
    con = duckdb.connect()
    _view(con, csv)
    (rows,) = con.execute("select count(*) from rel").fetchone()
    src = next(s for s in expected["sources"] if s["file"] == APP and s["sheet"] == "deliveries")
    assert rows == src["data_rows"]
    want = _sums(expected, APP, "deliveries")
    got = con.execute(
        "select " + ", ".join(f"sum(cast({c} as bigint))" for c in want) + " from rel"
    ).fetchone()
    assert list(got) == list(want.values())
    recon = next(r for r in expected["outcomes"]["reconciliation"] if r["sheet"] == "deliveries")
    (cancelled,) = con.execute("select count(*) from rel where status = 'cancelled'").fetchone()
    assert cancelled == expected["outcomes"]["deliveries"]["quarantine"]["cancelled"]
    assert recon["quarantined"] >= cancelled
