"""`luckygas sample --increment`: the daily-load increment and expected-increment.json.

The increment is read back with readers the generator does not use (openpyxl for the
workbooks, sqlite3 for the app) and compared with the base sample of the same scale and seed,
written by the ordinary command. The combined counts are derived from the base expected.json
and the increment's own cells and defect groups, not from the generator's structures. Product
columns map to product codes through the dbt seed `seeds/products.csv`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import unicodedata
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from jsonschema import Draft202012Validator

from loaders import taiwan_date
from loaders.cli import main
from loaders.sample.generate import generate

HISTORY = "2025-05 commercial deliver history.xlsx"
INCREMENT = "2025-06 commercial deliver history.xlsx"
APP = "luckygas.db"
SHEET = "110-114年"
SEED = 9
FIRST_DAY, LAST_DAY = date(2025, 5, 21), date(2025, 6, 20)
RESENT_SINCE = date(2025, 5, 14)  # the base history's last seven days: 05-14 .. 05-20
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "loaders" / "sample" / "expected.schema.json"
PRODUCTS = ROOT / "seeds" / "products.csv"
REGULAR_KG = {"50公斤": 50, "20公斤": 20, "16公斤": 16, "10公斤": 10, "4公斤": 4}


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
    return _rows(base / HISTORY, SHEET)


@pytest.fixture(scope="module")
def app(base):
    con = sqlite3.connect(f"file:{base / APP}?mode=ro", uri=True)
    yield con
    con.close()


def _groups(doc: dict, kind: str, file: str | None = None) -> list[dict]:
    return [g for g in doc["defects"] if g["kind"] == kind and file in (None, g["file"])]


def _instances(doc: dict, kind: str, file: str | None = None) -> list[dict]:
    return [i for g in _groups(doc, kind, file) for i in g["instances"]]


def _rows_with(doc: dict, file: str, sheet: str, outcome: str) -> set[int]:
    return {
        i["row"]
        for g in doc["defects"]
        if (g["file"], g["sheet"], g["outcome"]) == (file, sheet, outcome)
        for i in g["instances"]
    }


def _cell(header: list, cells: list, name: str) -> object:
    return cells[header.index(name)][1]


def _day(value: object) -> date | None:
    """A history 交易日期 cell as a date (any accepted form), through the project's parser."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return taiwan_date.parse(None if value is None else str(value)).value


def _code(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _new_rows(doc: dict, inc_sheet) -> dict[int, list]:
    """Increment rows that are neither re-sent nor quarantined: the new deliveries' rows."""
    _, rows = inc_sheet
    skip = _rows_with(doc, INCREMENT, SHEET, "merged") | _rows_with(
        doc, INCREMENT, SHEET, "quarantined"
    )
    return {r: cells for r, cells in rows.items() if r not in skip}


def _caught_up_rows(doc: dict) -> set[int]:
    return {i["merged_into"]["row"] for i in _instances(doc, "app_history_same_event")}


# --- the files ------------------------------------------------------------------------------


def test_writes_only_the_increment(inc):
    assert sorted(p.name for p in inc.iterdir()) == sorted([INCREMENT, "expected-increment.json"])


def test_same_seed_same_bytes(inc, tmp_path):
    again = tmp_path / "again"
    generate(again, scale="small", seed=SEED, increment=True)
    for name in (INCREMENT, "expected-increment.json"):
        assert (inc / name).read_bytes() == (again / name).read_bytes(), name


def test_files_sources_and_header(inc, doc, inc_sheet, base_sheet):
    [f] = doc["files"]
    data = (inc / f["file"]).read_bytes()
    assert f["file"] == INCREMENT and len(data) == f["bytes"]
    assert hashlib.sha256(data).hexdigest() == f["sha256"]
    header, rows = inc_sheet
    assert header == base_sheet[0]  # the base sheet's header, column for column
    [src] = doc["sources"]
    assert (src["file"], src["sheet"], src["header_row"]) == (INCREMENT, SHEET, 1)
    assert src["data_rows"] == len(rows) == src["last_row"] - 1
    assert src["headers"] == header and src["columns"] == len(header)
    assert doc["generator"] == {"version": "1", "scale": "small", "seed": SEED, "increment": True}


def test_expected_increment_validates_against_the_schema(doc, base_doc):
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert [e.message for e in validator.iter_errors(doc)] == []
    assert [e.message for e in validator.iter_errors(base_doc)] == []
    broken = dict(doc)
    del broken["increment"]  # required once generator.increment is there
    assert not validator.is_valid(broken)


def test_rows_sorted_like_the_base_sheet(inc_sheet):
    header, rows = inc_sheet
    keys = []
    for r in sorted(rows):
        day = _day(_cell(header, rows[r], "交易日期"))
        if day is not None:  # garbage dates are quarantined rows; they sort by their own day
            keys.append((day, _cell(header, rows[r], "交易時間")))
    assert keys == sorted(keys)


def test_kinds_and_minimum_counts(doc):
    kinds = doc["defect_kinds"]
    assert kinds["resent_row"] >= 3
    assert kinds["app_history_same_event"] >= 2
    assert kinds["orphan_client_code"] >= 2 and kinds["date_garbage"] >= 2
    assert set(kinds) == {
        "resent_row",
        "app_history_same_event",
        "orphan_client_code",
        "date_garbage",
    }
    counted = Counter()
    for g in doc["defects"]:
        assert g["count"] == len(g["instances"])
        counted[g["kind"]] += g["count"]
    assert dict(counted) == kinds


# --- re-sent rows -------------------------------------------------------------------------


def test_resent_rows_are_exact_copies_of_final_base_rows(doc, base_doc, inc_sheet, base_sheet):
    [group] = _groups(doc, "resent_row")
    assert (group["file"], group["sheet"], group["outcome"]) == (INCREMENT, SHEET, "merged")
    assert group["merged_into_file"] == HISTORY and group["column"] is None
    header, rows = inc_sheet
    base_header, base_rows = base_sheet
    not_final = _rows_with(base_doc, HISTORY, SHEET, "merged") | _rows_with(
        base_doc, HISTORY, SHEET, "quarantined"
    )
    for i in group["instances"]:
        into = i["merged_into"]
        assert into["sheet"] == SHEET
        assert rows[i["row"]] == base_rows[into["row"]], i  # every cell: type and value
        assert into["row"] not in not_final, i
        day = _day(_cell(base_header, base_rows[into["row"]], "交易日期"))
        assert RESENT_SINCE <= day < FIRST_DAY, (i, day)


def test_some_resent_rows_have_an_app_twin(doc, base_doc, base_sheet):
    base_header, base_rows = base_sheet
    twins = {
        i["merged_into"]["row"]
        for i in _instances(base_doc, "app_history_same_event")
        if i["merged_into"]["sheet"] == SHEET
    }
    in_window = {
        r
        for r in twins
        if RESENT_SINCE <= _day(_cell(base_header, base_rows[r], "交易日期")) < FIRST_DAY
    }
    resent_into = {i["merged_into"]["row"] for i in _instances(doc, "resent_row")}
    if in_window:
        assert resent_into & in_window


# --- app deliveries caught up by the increment ---------------------------------------------


def test_caught_up_app_rows_agree_with_their_increment_row(doc, base_doc, inc_sheet, app):
    [group] = _groups(doc, "app_history_same_event")
    assert (group["file"], group["sheet"], group["outcome"]) == (APP, "deliveries", "merged")
    assert group["merged_into_file"] == INCREMENT
    header, rows = inc_sheet
    base_app_defects = {
        i["row"] for g in base_doc["defects"] if g["file"] == APP and g["sheet"] == "deliveries"
        for i in g["instances"]
    }  # fmt: skip
    product_columns = header[header.index("交易時間") + 1 : header.index("最後十次日期")]
    targets = []
    for i in group["instances"]:
        assert i["row"] not in base_app_defects, i  # app-only in the base sample
        into = i["merged_into"]
        assert into["sheet"] == SHEET
        targets.append(into["row"])
        cells = rows[into["row"]]
        code, day, time, status, *sizes = app.execute(
            "select c.client_code, d.scheduled_date, d.actual_delivery_time, d.status,"
            " d.delivered_50kg, d.delivered_20kg, d.delivered_16kg, d.delivered_10kg,"
            " d.delivered_4kg from deliveries d join clients c on c.id = d.client_id"
            " where d.id = ?",
            (i["row"],),
        ).fetchone()
        assert status == "completed"
        assert code.strip() == _code(_cell(header, cells, "客戶"))
        assert date.fromisoformat(day) == _day(_cell(header, cells, "交易日期"))
        assert FIRST_DAY <= date.fromisoformat(day) <= date(2025, 5, 31)
        assert time[11:16] == _cell(header, cells, "交易時間")
        by_kg = dict(zip((50, 20, 16, 10, 4), sizes, strict=True))
        for column in product_columns:
            value = _cell(header, cells, column)
            if column in REGULAR_KG:
                assert (value or 0) == by_kg[REGULAR_KG[column]], (i, column)
            else:
                assert value is None, (i, column)
    assert len(set(targets)) == len(targets)
    assert not set(targets) & (
        _rows_with(doc, INCREMENT, SHEET, "merged")
        | _rows_with(doc, INCREMENT, SHEET, "quarantined")
    )


# --- new rows -------------------------------------------------------------------------------


def test_new_rows_fall_in_the_increment_days(doc, inc_sheet):
    header, rows = inc_sheet
    new = _new_rows(doc, inc_sheet)
    assert new
    for r, cells in new.items():
        value = _cell(header, cells, "交易日期")
        assert isinstance(value, int), (r, value)  # clean compact ROC dates
        assert FIRST_DAY <= _day(value) <= LAST_DAY, (r, value)
    for i in _instances(doc, "orphan_client_code"):
        assert FIRST_DAY <= _day(_cell(header, rows[i["row"]], "交易日期")) <= LAST_DAY


def test_at_most_one_event_per_client_and_day(doc, inc_sheet, base, app):
    """New rows name (client, day) pairs no base source names, except their own app row."""
    header, _ = inc_sheet
    new = _new_rows(doc, inc_sheet)
    pairs = [
        (_code(_cell(header, c, "客戶")), _day(_cell(header, c, "交易日期"))) for c in new.values()
    ]
    assert len(set(pairs)) == len(pairs)
    taken: Counter = Counter()
    for sheet in ("99-104年", "105-109年", SHEET):
        h, rows = _rows(base / HISTORY, sheet)
        for cells in rows.values():
            taken[(_code(cells[0][1]), _day(_cell(h, cells, "交易日期")))] += 1
    for code, day in app.execute(
        "select c.client_code, d.scheduled_date from deliveries d join clients c"
        " on c.id = d.client_id"
    ):
        taken[(_code(code), date.fromisoformat(day))] += 1
    caught = _caught_up_rows(doc)
    for r, pair in zip(new, pairs, strict=True):
        assert taken[pair] == (1 if r in caught else 0), (r, pair)


# --- outcomes --------------------------------------------------------------------------------


def test_reconciliation(doc, base_doc, inc_sheet):
    recon = {(r["file"], r["sheet"]): r for r in doc["outcomes"]["reconciliation"]}
    base = {(r["file"], r["sheet"]): r for r in base_doc["outcomes"]["reconciliation"]}
    for r in recon.values():
        assert r["rows"] == r["final"] + r["merged"] + r["quarantined"], r
    assert set(recon) == set(base) | {(INCREMENT, SHEET)}
    for key, r in base.items():
        if key != (APP, "deliveries"):
            assert recon[key] == r, key  # base history sheets and customers unchanged
    caught = len(_instances(doc, "app_history_same_event"))
    b, c = base[(APP, "deliveries")], recon[(APP, "deliveries")]
    assert (c["rows"], c["quarantined"]) == (b["rows"], b["quarantined"])
    assert (c["final"], c["merged"]) == (b["final"] - caught, b["merged"] + caught)
    _, rows = inc_sheet
    r = recon[(INCREMENT, SHEET)]
    assert r["rows"] == len(rows)
    assert r["merged"] == len(_instances(doc, "resent_row"))
    assert r["quarantined"] == len(_rows_with(doc, INCREMENT, SHEET, "quarantined"))
    assert r["final"] == len(_new_rows(doc, inc_sheet))


def test_combined_deliveries(doc, base_doc, inc_sheet):
    """Base figures plus the new events, derived from the increment's cells and groups."""
    header, _ = inc_sheet
    new = _new_rows(doc, inc_sheet)
    caught = _caught_up_rows(doc)
    assert caught <= set(new)
    fresh = {r: cells for r, cells in new.items() if r not in caught}
    want, have = base_doc["outcomes"]["deliveries"], doc["outcomes"]["deliveries"]
    assert have["count"] == want["count"] + len(fresh)
    assert have["by_source_system"] == {
        "history": want["by_source_system"]["history"] + len(fresh),
        "app": want["by_source_system"]["app"] - len(caught),
        "history+app": want["by_source_system"]["history+app"] + len(caught),
    }
    with PRODUCTS.open(encoding="utf-8") as f:
        code_of = {p["history_column"]: p["product_code"] for p in csv.DictReader(f)}
    totals: dict[str, float] = defaultdict(float, want["product_totals"])
    items = want["items"]
    for cells in fresh.values():
        for column, code in code_of.items():
            value = _cell(header, cells, column)
            if value is not None:
                assert value > 0
                totals[code] += value
                items += 1
    assert have["items"] == items
    assert have["product_totals"].keys() == totals.keys()
    for code, total in totals.items():
        assert have["product_totals"][code] == pytest.approx(total, abs=1e-6), code
    quarantine = Counter(want["quarantine"])
    for g in doc["defects"]:
        if g["outcome"] == "quarantined":
            quarantine[g["reason"]] += g["count"]
    assert have["quarantine"] == dict(quarantine)
    assert doc["outcomes"]["customers"] == base_doc["outcomes"]["customers"]


def test_quarantined_cells_and_column_sums(doc, inc_sheet):
    header, rows = inc_sheet
    for g in doc["defects"]:
        if g["file"] != INCREMENT or g["column"] is None:
            continue
        assert header[g["column_index"] - 1] == g["column"]
        for i in g["instances"]:
            _, value = rows[i["row"]][g["column_index"] - 1]
            text = str(int(value)) if isinstance(value, (int, float)) else value
            assert text == i["value"], i
    [sums] = doc["column_sums"]
    assert (sums["file"], sums["sheet"]) == (INCREMENT, SHEET)
    for column, total in sums["sums"].items():
        cells = [_cell(header, c, column) for c in rows.values()]
        got = sum(v for v in cells if isinstance(v, (int, float)))
        assert got == pytest.approx(total, abs=1e-6), column
