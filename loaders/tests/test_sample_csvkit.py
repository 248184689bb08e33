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


def test_history_facts_through_in2csv_and_duckdb(sample, tmp_path):
    """The history is the real export's shape (docs/raw-formats.md section 2), read by in2csv."""
    folder, expected = sample
    con = duckdb.connect()
    [src] = [s for s in expected["sources"] if s["file"] == HISTORY]
    assert src["sheet"] == "Sheet1"
    csv = _run(
        [str(BIN / "in2csv"), "--no-inference", "--sheet", "Sheet1", str(folder / HISTORY)],
        tmp_path / "sheet1.csv",
    )
    _view(con, csv)
    columns = [d[0] for d in con.execute("select * from rel limit 0").description]
    assert columns == ["客戶", "電子發票抬頭", "客戶簡稱", "地址", "最後十次日期"]
    (rows,) = con.execute("select count(*) from rel").fetchone()
    assert rows == src["data_rows"] == round(349_920 * 0.01)
    # the real file's empty cells, scaled (at least 2)
    empty = con.execute(
        'select count(*) filter (where "電子發票抬頭" is null), count(*) filter (where'
        ' "客戶簡稱" is null), count(*) filter (where "地址" is null) from rel'
    ).fetchone()
    assert empty == (2, 12, 24)
    # no fully duplicated row; codes: the master's but one, and the clients outside it
    (dups,) = con.execute("select count(*) - count(distinct rel) from rel").fetchone()
    assert dups == 0
    (codes,) = con.execute(
        'select count(distinct c) from (select regexp_replace(trim(translate("客戶",'
        " '０１２３４５６７８９\u3000', '0123456789 ')), '\\.0$', '') as c from rel)"
        " where regexp_full_match(c, '[0-9]{7}')"
    ).fetchone()
    by_source = expected["outcomes"]["customers"]["by_source"]
    assert codes == by_source["client_master"] - 1 + by_source["delivery_history"]
    # compact ROC dates from 2021-01-01 to 2025-05-28
    first, last = con.execute(
        "select min(d), max(d) from (select regexp_replace(\"最後十次日期\", '\\.0$', '') as d"
        " from rel) where regexp_full_match(d, '11[0-4][0-9]{4}')"
    ).fetchone()
    assert (first, last) == ("1100101", "1140528")


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
    (cancelled,) = con.execute("select count(*) from rel where status = 'CANCELLED'").fetchone()
    (imported,) = con.execute(
        "select count(*) from rel where notes = 'Imported from historical data'"
    ).fetchone()
    assert imported == recon["merged"]  # every imported delivery is a history row's twin
    deliveries = expected["outcomes"]["deliveries"]
    edited = deliveries["app_status_conflicts"]
    cancelled_twins = sum(
        1
        for g in expected["defects"]
        if g["kind"] == "app_status_edited"
        for i in g["instances"]
        if i["value"] == "CANCELLED"
    )
    assert cancelled == deliveries["quarantine"]["cancelled"] + cancelled_twins
    assert recon["quarantined"] >= cancelled - cancelled_twins and edited >= cancelled_twins
