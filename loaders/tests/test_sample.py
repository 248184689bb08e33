"""The sample generator: deterministic, and expected.json true of the files it describes.

Every check reads the generated files back with readers the generator does not use
(openpyxl and sqlite3 here; csvkit's in2csv and duckdb in test_sample_csvkit.py) and never
with the generator's own data structures, so a bug shared by generator and ground truth
cannot hide.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from loaders.cli import main
from loaders.sample.generate import generate

CLIENT = "2025-05 commercial client list.xlsx"
HISTORY = "2025-05 commercial deliver history.xlsx"
APP = "luckygas.db"
SEED = 7

# Every defect kind the foundation issue asks for, by the name expected.json gives it.
REQUIRED_KINDS = {
    # bad and odd date forms of docs/taiwan-dates.md
    "roc_date_text", "roc_date_float_text", "roc_date_separated", "roc_date_chinese", "date_fullwidth", "date_whitespace",
    "western_date_text", "western_date_cell", "western_date_compact", "date_empty",
    "date_excel_error", "date_impossible", "date_roc_year_zero", "date_garbage",
    "date_excel_serial", "date_out_of_range",
    # codes and clients
    "code_fullwidth", "code_whitespace", "code_as_text", "history_only_client",
    "app_orphan_client_id", "client_code_error", "client_code_malformed", "app_test_client",
    "app_test_client_delivery", "app_code_whitespace", "client_detail_mismatch",
    "tai_variant", "app_tai_variant",
    # rows and quantities
    "app_history_same_event", "app_status_edited", "app_quantity_edited", "app_driver_edited",
    "app_only_delivery", "app_negative_quantity", "app_cancelled", "app_not_home",
    # the master's mess
    "flag_stray_word", "closed_day_mixed", "business_rule_outlier", "excel_error",
}  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    assert main(["sample", "--out", str(out), "--scale", "small", "--seed", str(SEED)]) == 0
    return out


@pytest.fixture(scope="module")
def expected(sample) -> dict:
    return json.loads((sample / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def books(sample) -> dict:
    return {
        name: openpyxl.load_workbook(sample / name, data_only=True) for name in (CLIENT, HISTORY)
    }


@pytest.fixture(scope="module")
def app(sample):
    con = sqlite3.connect(f"file:{sample / APP}?mode=ro", uri=True)
    yield con
    con.close()


def cell_text(cell) -> tuple[str, str | None]:
    """(cell type, the text a lossless loader stages), read independently of the generator."""
    v = cell.value
    if v is None:
        return "b", None
    if cell.data_type == "e":
        return "e", v
    if isinstance(v, datetime):
        return "d", v.date().isoformat() if v.time() == datetime.min.time() else str(v)
    if isinstance(v, bool):
        return "n", "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return "n", str(v)
    if isinstance(v, float):
        return "n", str(int(v)) if v == int(v) else repr(v)
    return "s", v


def column_index(ws, header_row: int | None, column: str, letter: bool) -> int:
    """1-based column of a header, or of an Excel column letter (raw-only cells)."""
    if letter:
        n = 0
        for ch in column:
            n = n * 26 + ord(ch) - 64
        return n
    headers = [c.value for c in ws[header_row]]
    assert headers.count(column) == 1, (ws.title, column, headers)
    return headers.index(column) + 1


def sources(expected: dict) -> dict[tuple[str, str], dict]:
    return {(s["file"], s["sheet"]): s for s in expected["sources"]}


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_same_bytes(sample, tmp_path):
    again = tmp_path / "again"
    generate(again, scale="small", seed=SEED)
    names = sorted(p.name for p in sample.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert len(names) == 6
    for name in names:
        assert (sample / name).read_bytes() == (again / name).read_bytes(), name


def test_other_seed_other_data(sample, tmp_path):
    other = tmp_path / "other"
    generate(other, scale="small", seed=SEED + 1)
    assert (sample / HISTORY).read_bytes() != (other / HISTORY).read_bytes()
    assert (sample / APP).read_bytes() != (other / APP).read_bytes()


def test_files_and_hashes(sample, expected):
    import hashlib

    for f in expected["files"]:
        data = (sample / f["file"]).read_bytes()
        assert len(data) == f["bytes"]
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
    lock = (sample / ("~$" + CLIENT)).read_bytes()
    assert len(lock) == 165 and lock[1:9] == b"luckygas"


# --- shape of the files --------------------------------------------------------------------


def test_client_workbook_sheets(books, expected):
    wb = books[CLIENT]
    assert len(wb.sheetnames) == 28
    assert wb.sheetnames[0] == "客戶資料"
    assert "待配送名單 " in wb.sheetnames  # the trailing space is part of the real name
    assert [f"派遣單5.{d}" for d in (20, 8, 6, 1)] == [
        s for s in wb.sheetnames if s in {"派遣單5.20", "派遣單5.8", "派遣單5.6", "派遣單5.1"}
    ]
    assert "派遣單5.7" not in wb.sheetnames
    expected_sheets = [s["sheet"] for s in expected["sources"] if s["file"] == CLIENT]
    assert wb.sheetnames == expected_sheets


@pytest.mark.parametrize("file", [CLIENT, HISTORY])
def test_sheet_dimensions_and_headers(books, expected, file):
    for (f, sheet), src in sources(expected).items():
        if f != file:
            continue
        ws = books[file][sheet]
        assert ws.max_row == src["last_row"], sheet
        assert ws.max_column == src["columns"], sheet
        header_row = src["header_row"]
        expect_rows = src["last_row"] - (header_row or 0)
        assert src["data_rows"] == expect_rows, sheet
        if header_row:
            got = [c.value for c in ws[header_row]]
            got += [None] * (len(src["headers"]) - len(got))
            assert got == src["headers"], sheet


def test_master_sheet_is_the_real_shape(books, expected):
    ws = books[CLIENT]["客戶資料"]
    headers = [c.value for c in ws[1]]
    assert len(headers) == 76
    assert headers[69] is None  # the blank header cell, column 70
    assert headers[:4] == ["客戶", "電子發票抬頭", "客戶簡稱", "地址"]
    codes = [ws.cell(r, 1).value for r in range(2, ws.max_row + 1)]
    assert all(isinstance(c, (int, float)) for c in codes), "client codes are numeric cells"
    by_source = expected["outcomes"]["customers"]["by_source"]
    assert len(set(codes)) == len(codes) == by_source["client_master"]
    assert all(1_400_000 <= c <= 1_999_999 for c in codes)
    areas = {ws.cell(r, 57).value for r in range(2, ws.max_row + 1)} - {None}
    assert len(areas) == 16 and all(re.fullmatch(r"[A-Z]-\S+", a) for a in areas)
    pricing = [ws.cell(r, 22).value for r in range(2, ws.max_row + 1)]
    assert set(pricing) == {"桶裝", "流量", "桶裝現金"}
    assert pricing.count("桶裝") > pricing.count("流量") > pricing.count("桶裝現金")


def test_dispatch_sheets_have_a_title_row_above_the_header(books):
    for name in books[CLIENT].sheetnames:
        if not name.startswith("派遣單"):
            continue
        ws = books[CLIENT][name]
        assert ws.cell(1, 1).value == "台東幸福氣配送計畫"
        assert ws.cell(2, 1).value == "項次"
        assert isinstance(ws.cell(3, 1).value, int)


def test_sqlite_tables(app, expected):
    for (f, table), src in sources(expected).items():
        if f != APP:
            continue
        assert app.execute(f'select count(*) from "{table}"').fetchone()[0] == src["data_rows"]
        cols = [r[1] for r in app.execute(f'pragma table_info("{table}")')]
        assert cols == src["headers"] and len(cols) == src["columns"]
    n_clients = app.execute("select count(*) from clients").fetchone()[0]
    real = app.execute(
        "select count(*) from clients where trim(client_code) glob '[0-9][0-9][0-9][0-9][0-9][0-9][0-9]'"
    ).fetchone()[0]
    assert n_clients - real == 6, "six test clients"
    assert app.execute("select count(*) from delivery_predictions").fetchone()[0] == 0
    dates = app.execute("select scheduled_date from deliveries").fetchall()
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for (d,) in dates), "app dates are ISO"


# --- counts and reconciliation ---------------------------------------------------------------


def test_row_counts_are_the_scaled_real_ones(expected):
    src = sources(expected)
    history = sum(s["data_rows"] for (f, _), s in src.items() if f == HISTORY)
    assert history == round(349_920 * 0.01)
    assert src[(APP, "deliveries")]["data_rows"] == round(179_555 * 0.01)
    assert src[(APP, "clients")]["data_rows"] == src[(CLIENT, "客戶資料")]["data_rows"] + 6


def test_reconciliation_adds_up(expected):
    src = sources(expected)
    for r in expected["outcomes"]["reconciliation"]:
        assert r["rows"] == r["final"] + r["merged"] + r["quarantined"], r
        assert r["rows"] == src[(r["file"], r["sheet"])]["data_rows"], r
    d = expected["outcomes"]["deliveries"]
    by_system = d["by_source_system"]
    assert d["count"] == sum(by_system.values())
    recon = {r["sheet"]: r for r in expected["outcomes"]["reconciliation"]}
    history_final = recon["Sheet1"]["final"]
    assert history_final == by_system["history"] + by_system["history+app"]
    assert recon["deliveries"]["final"] == by_system["app"]
    assert recon["deliveries"]["merged"] == by_system["history+app"]
    quarantined = sum(r["quarantined"] for s, r in recon.items() if s in ("Sheet1", "deliveries"))
    assert quarantined == sum(d["quarantine"].values())


def test_every_defect_kind_at_least_twice(expected):
    kinds = expected["defect_kinds"]
    missing = REQUIRED_KINDS - set(kinds)
    assert not missing
    rare = {k: n for k, n in kinds.items() if n < 2}
    assert not rare
    for g in expected["defects"]:
        assert g["count"] == len(g["instances"])


def test_column_sums_match_the_cells(books, app, expected):
    sums = {(s["file"], s["sheet"]): s["sums"] for s in expected["column_sums"]}
    assert set(sums) == {(APP, "deliveries")}  # the 5-column history has no quantity column
    for (f, sheet), src in sources(expected).items():
        if (f, sheet) not in sums or f != HISTORY:
            continue
        ws = books[HISTORY][sheet]
        want = sums[(HISTORY, sheet)]
        for col, total in want.items():
            c = src["headers"].index(col) + 1
            got = 0.0
            for r in range(2, ws.max_row + 1):
                cell = ws.cell(r, c)
                if cell.data_type == "n" and cell.value is not None:
                    got += cell.value
            assert got == pytest.approx(total, abs=1e-6), (sheet, col)
    for col, total in sums[(APP, "deliveries")].items():
        assert app.execute(f"select total({col}) from deliveries").fetchone()[0] == total


# --- every defect is really in the files ---------------------------------------------------


def test_every_defect_cell_is_as_described(books, app, expected):
    src = sources(expected)
    checked = 0
    for g in expected["defects"]:
        for inst in g["instances"]:
            if "value" not in inst:
                continue
            if g["file"] == APP:
                (value,) = app.execute(
                    f'select "{g["column"]}" from "{g["sheet"]}" where rowid = ?', (inst["row"],)
                ).fetchone()
                assert (None if value is None else str(value)) == inst["value"], (g["kind"], inst)
            else:
                ws = books[g["file"]][g["sheet"]]
                header_row = src[(g["file"], g["sheet"])]["header_row"]
                col = column_index(ws, header_row, g["column"], g["outcome"] == "raw_only")
                got = cell_text(ws.cell(inst["row"], col))
                assert got == (inst["cell_type"], inst["value"]), (g["kind"], g["sheet"], inst)
            checked += 1
    assert checked > 200


def test_defects_mean_what_they_say(books, app, expected):
    """Checks of meaning, made from the files alone (never from the generator's structures)."""
    master = books[CLIENT]["客戶資料"]
    codes = {str(int(master.cell(r, 1).value)) for r in range(2, master.max_row + 1)}
    app_ids = {r[0] for r in app.execute("select id from clients")}
    hist = books[HISTORY]
    seen = set()

    def history_row(sheet: str, row: int) -> list:
        return [c.value for c in hist[sheet][row]]

    for g in expected["defects"]:
        kind = g["kind"]
        seen.add(kind)
        for inst in g["instances"]:
            v = inst.get("value")
            if kind == "history_only_client":
                assert v not in codes and re.fullmatch(r"\d{7}", v)
                row = history_row(g["sheet"], inst["row"])
                # the latest row's code cell can be an odd form (text, full-width)
                code = unicodedata.normalize("NFKC", str(row[0])).strip()
                assert code == inst["expect"]["client_code"]
            elif kind == "app_orphan_client_id":
                assert int(v) not in app_ids
            elif kind == "app_test_client":
                assert not re.fullmatch(r"\d{7}", v.strip())
            elif kind == "app_code_whitespace":
                assert v != v.strip() and v.strip() in codes
            elif kind == "code_whitespace":
                assert v != v.strip() and re.fullmatch(r"\d{7}", v.strip())
            elif kind == "code_fullwidth":
                assert re.fullmatch(r"[０-９]{7}", v)
            elif kind == "roc_date_chinese":
                assert "年" in v and "月" in v and v.endswith("日")
            elif kind == "date_fullwidth":
                assert re.search(r"[０-９]", v)
            elif kind == "western_date_cell":
                assert inst["cell_type"] == "d" and v == inst["expect"]["date"]
            elif kind == "western_date_compact":
                assert re.fullmatch(r"20\d{6}", v) and inst["cell_type"] == "n"
            elif kind == "date_whitespace":
                assert v != v.strip()
            elif kind in {"date_excel_error", "client_code_error", "quantity_error", "excel_error"}:
                assert inst["cell_type"] == "e" and v in {"#NAME?", "#REF!", "#VALUE!"}
            elif kind == "date_empty":
                assert inst["cell_type"] == "b"
            elif kind == "tai_variant" or kind == "app_tai_variant":
                assert "台" in v and "臺" in inst["expect"]["normalised"]
            elif kind == "exact_duplicate":
                into = inst["merged_into"]
                assert into["row"] < inst["row"]
                assert history_row(g["sheet"], inst["row"]) == history_row(
                    into["sheet"], into["row"]
                )
            elif kind == "app_history_same_event":
                _check_same_event(app, hist, inst)
            elif kind in {"all_zero_quantity", "negative_quantity"}:
                row = history_row(g["sheet"], inst["row"])
                quantities = [q for q in row[7:23] if q is not None]
                if kind == "all_zero_quantity":
                    assert all(q == 0 for q in quantities)
                else:
                    assert any(q < 0 for q in quantities)
            elif kind == "flag_stray_word":
                assert v not in {"V", "X", "1"} and inst["expect"]["kept"] == v
            elif kind == "business_rule_outlier":
                x = float(v)
                assert x < 0 or x > 1_000_000 or (g["column"] == "退氣比例" and x > 1)
            elif kind == "app_cancelled":
                assert v == "CANCELLED"
            elif kind == "app_not_home":
                assert v == "NOT_HOME"
            elif kind == "app_status_edited":
                assert v in {"CANCELLED", "NOT_HOME"} and inst["expect"]["app_status"] == v.lower()
                _check_same_event(app, hist, inst)
    assert seen >= REQUIRED_KINDS


def _check_same_event(app, hist, inst) -> None:
    """An app delivery and the history row it merges into: the same client and day."""
    row = app.execute(
        "select c.client_code, d.scheduled_date, d.notes"
        " from deliveries d join clients c on c.id = d.client_id where d.rowid = ?",
        (inst["row"],),
    ).fetchone()
    into = inst["merged_into"]
    h = [c.value for c in hist[into["sheet"]][into["row"]]]
    assert str(row[0]).strip() == unicodedata.normalize("NFKC", str(h[0])).strip()
    if isinstance(h[4], (int, float)) and h[4] < 2_000_000:  # a compact ROC date cell
        roc = int(h[4])
        assert row[1] == date(roc // 10000 + 1911, roc // 100 % 100, roc % 100).isoformat()
    assert row[2] == "Imported from historical data"
