"""`luckygas sample --increment`: the daily-load increment and expected-increment.json.

The increment is read back with readers the generator does not use (openpyxl for the
workbooks, sqlite3 for the app) and compared with the base sample of the same scale and seed,
written by the ordinary command. The combined counts are derived from the base expected.json
and the increment's own cells and defect groups, not from the generator's structures. Product
columns map to product codes through the dbt seed `seeds/products.csv`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import unicodedata
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from jsonschema import Draft202012Validator

from loaders.cli import main

HISTORY = "2025-05 commercial deliver history.xlsx"
INCREMENT = "2025-06 commercial deliver history.xlsx"
APP = "luckygas.db"
SHEET = "110-114年"
SEED = 9
FIRST_DAY, LAST_DAY = date(2025, 5, 29), date(2025, 6, 20)
GAINED_SINCE = date(2025, 5, 22)  # the base history's last seven days: 05-22 .. 05-28
UPLOAD = ["編號", "業務員", "交易日期", "交易時間", "50公斤", "丙烷20", "丙烷16", "20公斤", "16公斤",
          "10公斤", "4公斤", "好運桶16", "瓶安桶10", "幸福丸4", "好運桶20", "流量50公斤", "流量20公斤",
          "流量16公斤", "流量好運20公斤", "流量好運16公斤"]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "loaders" / "sample" / "expected.schema.json"


def _run(out: Path, *extra: str) -> Path:
    args = ["sample", "--out", str(out), "--scale", "small", "--seed", str(SEED)]
    assert main([*args, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def inc(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("increment"), "--increment")


@pytest.fixture(scope="module")
def base_doc(base) -> dict:
    return json.loads((base / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def doc(inc) -> dict:
    return json.loads((inc / "expected-increment.json").read_text(encoding="utf-8"))


def _rows(path: Path, sheet: str) -> tuple[list, dict[int, list]]:
    """Header values and {spreadsheet row: [cells]} of one sheet, read with openpyxl."""
    wb = openpyxl.load_workbook(path, data_only=True, read_only=True)
    ws = wb[sheet]
    rows = {}
    header: list = []
    for i, cells in enumerate(ws.iter_rows(), start=1):
        if i == 1:
            header = [c.value for c in cells]
        else:
            rows[i] = [(c.data_type, c.value) for c in cells]
    wb.close()
    return header, rows


@pytest.fixture(scope="module")
def inc_sheet(inc) -> tuple[list, dict[int, list]]:
    wb = openpyxl.load_workbook(inc / INCREMENT, read_only=True)
    assert wb.sheetnames == [SHEET]
    wb.close()
    return _rows(inc / INCREMENT, SHEET)


@pytest.fixture(scope="module")
def base_sheet(base) -> tuple[list, dict[int, list]]:
    return _rows(base / HISTORY, "Sheet1")


@pytest.fixture(scope="module")
def app(base):
    con = sqlite3.connect(f"file:{base / APP}?mode=ro", uri=True)
    yield con
    con.close()


def _instances(doc: dict, kind: str) -> list[tuple[dict, dict]]:
    return [(g, i) for g in doc["defects"] if g["kind"] == kind for i in g["instances"]]


def _code(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip().removesuffix(".0")


def _day(value: object) -> date | None:
    """A compact ROC date cell (the only form the generator writes into the increment)."""
    text = _code(value)
    if not text.isdigit() or len(text) != 7:
        return None
    y, m, d = int(text[:3]) + 1911, int(text[3:5]), int(text[5:])
    try:
        return date(y, m, d)
    except ValueError:
        return None


def test_writes_only_the_increment(inc):
    assert sorted(p.name for p in inc.iterdir()) == sorted(["expected-increment.json", INCREMENT])


def test_same_seed_same_bytes(inc, tmp_path):
    again = _run(tmp_path / "again", "--increment")
    for name in ("expected-increment.json", INCREMENT):
        assert (
            hashlib.sha256((inc / name).read_bytes()).hexdigest()
            == hashlib.sha256((again / name).read_bytes()).hexdigest()
        ), name


def test_the_upload_layout(doc, inc_sheet):
    header, rows = inc_sheet
    assert header == UPLOAD
    [src] = doc["sources"]
    assert (src["file"], src["sheet"], src["headers"]) == (INCREMENT, SHEET, UPLOAD)
    assert (src["catalogue_layout"], src["role"]) == ("history_transaction", "migrated")
    assert src["data_rows"] == len(rows)


def test_expected_increment_validates_against_the_schema(doc):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(doc)) == []
    assert doc["generator"]["increment"] is True


def test_kinds_and_minimum_counts(doc):
    kinds = doc["defect_kinds"]
    for kind in (
        "exact_duplicate", "date_garbage", "all_zero_quantity", "negative_quantity",
        "history_day_gained_items", "app_history_same_event",
    ):  # fmt: skip
        assert kinds.get(kind, 0) >= 2, kind


def test_new_rows_fall_in_the_increment_days(inc_sheet, doc):
    _, rows = inc_sheet
    garbage = {i["row"] for _, i in _instances(doc, "date_garbage")}
    gained = {i["merged_into"]["row"] for _, i in _instances(doc, "history_day_gained_items")}
    for n, cells in rows.items():
        if n in garbage:
            assert _day(cells[2][1]) is None
            continue
        day = _day(cells[2][1])
        assert day is not None, n
        if n in gained:
            assert GAINED_SINCE <= day < FIRST_DAY, n
        else:
            assert FIRST_DAY <= day <= LAST_DAY, n


def test_exact_duplicates_repeat_their_row(inc_sheet, doc):
    _, rows = inc_sheet
    for g, i in _instances(doc, "exact_duplicate"):
        assert g["merged_into_file"] == INCREMENT
        assert rows[i["row"]] == rows[i["merged_into"]["row"]]


def test_base_days_that_gain_their_items(inc_sheet, base_sheet, doc):
    """Each merged base row names the client and day of the increment row it merges into."""
    _, rows = inc_sheet
    _, base_rows = base_sheet
    found = _instances(doc, "history_day_gained_items")
    assert found
    for g, i in found:
        assert (g["file"], g["sheet"], g["merged_into_file"]) == (HISTORY, "Sheet1", INCREMENT)
        old, new = base_rows[i["row"]], rows[i["merged_into"]["row"]]
        assert _code(old[0][1]) == _code(new[0][1])
        assert _day(old[4][1]) == _day(new[2][1])
        assert any(isinstance(v, (int, float)) and v > 0 for _, v in new[4:])


def test_app_rows_merge_into_the_increment(inc_sheet, app, doc):
    _, rows = inc_sheet
    moved = [(g, i) for g, i in _instances(doc, "app_history_same_event") if g["file"] == APP]
    assert moved
    for g, i in moved:
        assert g["merged_into_file"] == INCREMENT
        code, day = app.execute(
            "select c.client_code, d.scheduled_date from deliveries d"
            " join clients c on c.id = d.client_id where d.id = ?",
            (i["row"],),
        ).fetchone()
        new = rows[i["merged_into"]["row"]]
        assert (_code(code), day) == (_code(new[0][1]), _day(new[2][1]).isoformat())


def test_reconciliation_and_column_sums(inc_sheet, doc, base_doc):
    _, rows = inc_sheet
    for r in doc["outcomes"]["reconciliation"]:
        assert r["rows"] == r["final"] + r["merged"] + r["quarantined"], r
    [sums] = doc["column_sums"]
    for k, header in enumerate(UPLOAD[4:], start=4):
        total = sum(v for t, v in (cells[k] for cells in rows.values()) if t == "n" and v)
        assert total == pytest.approx(sums["sums"][header]), header
    base = base_doc["outcomes"]
    now = doc["outcomes"]
    assert now["customers"]["count"] > base["customers"]["count"]  # codes no source had
    assert now["deliveries"]["count"] > base["deliveries"]["count"]
