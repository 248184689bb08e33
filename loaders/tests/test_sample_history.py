"""The small sample's history workbook and app deliveries have the real exports' shape.

docs/raw-formats.md sections 2 and 3, scaled: one sheet Sheet1 with 5 columns, one row per client
per delivery day, numeric 7-digit codes, compact ROC dates covering every day from 2021-01-01
to 2025-05-28, the real empty cells, the master's clients but one and about 120 clients outside
it; the app's deliveries imported from the history rows of master clients. Every check reads
the files with openpyxl and sqlite3 (never the generator's structures) and parses codes and
dates here, so that it checks expected.json rather than repeating it; the only cells allowed
to deviate are the defect instances expected.json lists.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from loaders.sample.generate import generate

CLIENT = "2025-05 commercial client list.xlsx"
HISTORY = "2025-05 commercial deliver history.xlsx"
APP = "luckygas.db"
HEADERS = ["客戶", "電子發票抬頭", "客戶簡稱", "地址", "最後十次日期"]
FIRST, LAST = date(2021, 1, 1), date(2025, 5, 28)
SEED = 23
FACTOR = 0.01  # SCALES["small"]
CODE_KINDS = {
    "code_as_text", "code_whitespace", "code_fullwidth", "client_code_error",
    "client_code_malformed",
}  # fmt: skip
QUARANTINED_CODE_KINDS = {"client_code_error", "client_code_malformed"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample-history")
    generate(out, scale="small", seed=SEED)
    return out, json.loads((out / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sheet(sample) -> tuple[list[str], list[list]]:
    """The sheet names and Sheet1's rows (row 2 first), as openpyxl reads them."""
    folder, _ = sample
    book = openpyxl.load_workbook(folder / HISTORY, read_only=True, data_only=True)
    names = book.sheetnames
    rows = [list(r) for r in book["Sheet1"].iter_rows(values_only=True)]
    book.close()
    return names, rows


@pytest.fixture(scope="module")
def master(sample) -> dict[str, tuple]:
    """Master code -> (電子發票抬頭, 客戶簡稱, 地址) as the master writes them."""
    folder, _ = sample
    book = openpyxl.load_workbook(folder / CLIENT, read_only=True, data_only=True)
    rows = book["客戶資料"].iter_rows(min_row=2, max_col=4, values_only=True)
    out = {str(int(r[0])): tuple(r[1:4]) for r in rows}
    book.close()
    return out


@pytest.fixture(scope="module")
def app(sample):
    folder, _ = sample
    con = sqlite3.connect(f"file:{folder / APP}?mode=ro", uri=True)
    yield con
    con.close()


def _groups(expected: dict, file: str = HISTORY) -> dict[str, dict[int, dict]]:
    """kind -> row -> instance, with the group's keys in `_group`."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for g in expected["defects"]:
        if g["file"] == file:
            for i in g["instances"]:
                out[g["kind"]][i["row"]] = dict(i, _group=g)
    return out


def _plain_code(v: object) -> str | None:
    """A code as the real file writes it: a numeric cell with 7 digits."""
    if type(v) is int and 1_000_000 <= v <= 9_999_999:
        return str(v)
    return None


def _roc(v: object) -> date | None:
    """A date as the real file writes it: a numeric compact ROC cell (YYYMMDD) of the span's
    years (ROC 110-114), so that a Gregorian 20240405 or a bare serial is no such date."""
    if type(v) is not int:
        return None
    year, rest = divmod(v, 10_000)
    if not FIRST.year - 1911 <= year <= LAST.year - 1911:
        return None
    try:
        return date(year + 1911, rest // 100, rest % 100)
    except ValueError:
        return None


def _clean(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    return unicodedata.normalize("NFKC", v).strip() or None


@pytest.fixture(scope="module")
def history(sheet, sample) -> list[dict]:
    """Each data row with the client code and date it names (None: none valid), read from the
    cells; a defect instance's own expect gives the value only where the cell is an odd form."""
    _, expected = sample
    groups = _groups(expected)
    odd_code = {r: i for k in CODE_KINDS for r, i in groups.get(k, {}).items()}
    odd_date = {
        r: i
        for k, rows in groups.items()
        for r, i in rows.items()
        if i["_group"]["column"] == "最後十次日期"
    }
    out = []
    for n, cells in enumerate(sheet[1][1:], start=2):
        code = _plain_code(cells[0])
        if n in odd_code:
            code = (odd_code[n].get("expect") or {}).get("client_code")
        day = _roc(cells[4])
        if n in odd_date:
            iso = (odd_date[n].get("expect") or {}).get("date")
            day = date.fromisoformat(iso) if iso else None
        out.append({"row": n, "cells": cells, "code": code, "day": day})
    return out


def test_one_sheet_with_the_five_headers(sheet, sample):
    names, rows = sheet
    _, expected = sample
    assert names == ["Sheet1"]
    assert rows[0] == HEADERS
    assert len(rows) - 1 == round(349_920 * FACTOR)
    [src] = [s for s in expected["sources"] if s["file"] == HISTORY]
    assert (src["sheet"], src["headers"], src["data_rows"]) == ("Sheet1", HEADERS, len(rows) - 1)
    assert (src["catalogue_layout"], src["role"]) == ("history_daily", "migrated")


def test_codes_are_numeric_seven_digit_cells_but_the_defects(sheet, sample):
    _, rows = sheet
    _, expected = sample
    groups = _groups(expected)
    listed = {r for k in CODE_KINDS for r in groups.get(k, {})}
    odd = {n for n, cells in enumerate(rows[1:], start=2) if _plain_code(cells[0]) is None}
    assert odd == listed
    assert all(cells[0] is not None for cells in rows[1:]), "no empty code cell"
    for kind in CODE_KINDS:
        assert len(groups[kind]) >= 2, kind


def test_dates_are_compact_roc_numbers_but_the_defects(sheet, sample):
    _, rows = sheet
    _, expected = sample
    listed = {
        i["row"]
        for g in expected["defects"]
        if g["file"] == HISTORY and g["column"] == "最後十次日期"
        for i in g["instances"]
    }
    odd = {n for n, cells in enumerate(rows[1:], start=2) if _roc(cells[4]) is None}
    assert odd == listed


def test_no_duplicated_row_and_one_row_per_client_and_day(sheet, history):
    _, rows = sheet
    data = [tuple(r) for r in rows[1:]]
    assert len(set(data)) == len(data)
    days = defaultdict(int)
    for h in history:
        if h["code"] and h["day"]:
            days[(h["code"], h["day"])] += 1
    assert max(days.values()) == 1


def test_sorted_by_client_code_then_date(history):
    keys = [(h["code"], h["day"]) for h in history if h["code"] and h["day"]]
    assert keys == sorted(keys)


def test_codes_in_and_outside_the_master(history, master, sample):
    _, expected = sample
    codes = {h["code"] for h in history if h["code"]}
    inside, outside = codes & set(master), codes - set(master)
    by_source = expected["outcomes"]["customers"]["by_source"]
    assert len(master) == by_source["client_master"] == 127
    assert len(inside) == len(master) - 1  # one master client has no history row
    assert len(outside) == by_source["delivery_history"] == round(12_028 * FACTOR)
    assert all(c[:2] in {"14", "15", "16", "17", "18", "19"} for c in outside)
    listed = {
        i["expect"]["client_code"]
        for g in expected["defects"]
        if g["kind"] == "history_only_client"
        for i in g["instances"]
    }
    assert listed == outside
    assert expected["outcomes"]["customers"]["count"] == len(master) + len(outside)


def test_every_day_of_the_span_has_a_valid_row(history):
    days = {h["day"] for h in history if h["code"] and h["day"]}
    assert min(days) == FIRST and max(days) == LAST
    span = {FIRST + timedelta(days=k) for k in range((LAST - FIRST).days + 1)}
    assert len(span) == 1_609
    valid = sum(1 for h in history if h["code"] and h["day"])
    assert len(days) == min(len(span), valid)  # every day the rows allow: here all of them
    assert days <= span


def test_empty_cells_are_the_real_ones_scaled(sheet, history, master):
    _, rows = sheet
    empty = [sum(1 for r in rows[1:] if r[k] is None) for k in (1, 2, 3)]
    real = (9, 1_155, 2_415)
    assert empty == [max(2, round(n * FACTOR)) for n in real]
    for h in history:
        if None in h["cells"][1:4]:
            assert h["code"] not in master  # the master's clients keep their details


def test_master_rows_repeat_the_master(history, master, sample):
    _, expected = sample
    groups = _groups(expected)
    changed = set(groups["client_detail_mismatch"]) | set(groups["tai_variant"])
    assert len(groups["client_detail_mismatch"]) >= 2 and len(groups["tai_variant"]) >= 2
    differ = set()
    for h in history:
        if h["code"] in master and tuple(h["cells"][1:4]) != master[h["code"]]:
            differ.add(h["row"])
    assert differ == changed
    for row, i in groups["tai_variant"].items():
        cells = history[row - 2]["cells"]
        assert "台" in cells[3] and cells[3].replace("台", "臺") == i["expect"]["normalised"]


def test_clients_outside_the_master_are_described_by_their_latest_rows(history, master, sample):
    """Each history-only customer: details from the latest row that has them (newest date,
    rows without a valid date last, then the later row), as read here from the cells."""
    _, expected = sample
    rows_of: dict[str, list[dict]] = defaultdict(list)
    for h in history:
        if h["code"] and h["code"] not in master:
            rows_of[h["code"]].append(h)
    varying = 0
    for g in expected["defects"]:
        if g["kind"] != "history_only_client":
            continue
        assert (g["file"], g["sheet"], g["column"], g["outcome"], g["flag"]) == (
            HISTORY, "Sheet1", "客戶", "flagged", "history_only_client",
        )  # fmt: skip
        for i in g["instances"]:
            mine = sorted(
                rows_of[i["expect"]["client_code"]],
                key=lambda h: (h["day"] is not None, h["day"] or date.min, h["row"]),
                reverse=True,
            )

            def latest(k: int, mine=mine) -> str | None:
                return next((v for h in mine if (v := _clean(h["cells"][k]))), None)

            address = latest(3)
            assert i["row"] == mine[0]["row"]
            assert i["expect"] == {
                "client_code": i["expect"]["client_code"],
                "invoice_title": latest(1),
                "short_name": latest(2),
                "address": address.replace("台", "臺") if address else None,
                "history_rows": len(mine),
            }
            addresses = {_clean(h["cells"][3]) for h in mine} - {None}
            names = {_clean(h["cells"][2]) for h in mine} - {None}
            varying += len(addresses) > 1 or len(names) > 1
    assert varying >= 2  # some clients change a detail over time


def test_imported_app_deliveries_are_history_rows_of_master_clients(history, master, app):
    code_of = {
        cid: code.strip() for cid, code in app.execute("select id, client_code from clients")
    }
    valid = {(h["code"], h["day"].isoformat()) for h in history if h["code"] and h["day"]}
    of_master = {(c, d) for c, d in valid if c in master}
    imported = app.execute(
        "select client_id, scheduled_date, actual_delivery_time, status, driver_id, vehicle_id,"
        " delivered_50kg + delivered_20kg + delivered_16kg + delivered_10kg + delivered_4kg"
        " from deliveries where notes = 'Imported from historical data'"
    ).fetchall()
    # the importer: one per valid history row of a master client, no other
    assert {(code_of[r[0]], r[1]) for r in imported} == of_master
    assert len(imported) == len(of_master)
    completed = [r for r in imported if r[3] == "COMPLETED"]
    assert all((code_of[r[0]], r[1]) in valid for r in completed)
    assert all(r[2] == r[1] for r in imported), "actual_delivery_time is the date, no time"
    assert {r[3] for r in imported} <= {"COMPLETED", "CANCELLED", "NOT_HOME"}
    assert sum(r[3] != "COMPLETED" for r in imported) >= 2  # status edits
    assert sum(r[4] is not None for r in imported) >= 2  # driver assignments
    assert sum(r[6] > 0 for r in imported) >= 2  # quantity edits
    assert sum(r[4] is None and r[5] is None and r[6] == 0 for r in imported) > 0.95 * len(imported)


def test_app_tables_are_the_real_ones(app, master, sample):
    _, expected = sample
    one = lambda q: app.execute(q).fetchone()[0]  # noqa: E731
    assert one("select count(*) from drivers") == 3
    assert one("select count(*) from vehicles") == 3
    assert one("select count(*) from routes") == 1
    assert one("select count(*) from delivery_predictions") == 0
    assert one("select count(*) from deliveries") == round(179_555 * FACTOR)
    codes = [c for (c,) in app.execute("select client_code from clients")]
    test = [c for c in codes if not (c.strip().isdigit() and len(c.strip()) == 7)]
    assert len(codes) == len(master) + 6 and len(test) == 6
    assert {c.strip() for c in codes} - set(test) == set(master)
    assert one("select count(*) from deliveries where status <> upper(status)") == 0
