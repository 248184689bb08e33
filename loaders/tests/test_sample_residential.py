"""The sample residential delivery plan has the real file's shape (docs/raw-formats.md section 4).

The workbook is read back with openpyxl, a reader the generator does not use, and with the
project's own reader, whose header rule must find row 2 below the sparse title row.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from loaders.readers import open_file
from loaders.sample import profile as P
from loaders.sample.residential_plan import PLAN_FILE, write_residential_plan

SEED = 7
TABLE = 15  # columns of the delivery table; 7月 has its summary beyond one blank column
HEADERS = {
    "0628": [None, "序號", "客戶編號", "地址", "電話", 20, 16, 10, 4, "好運16", "平安10",
             "幸福丸", "配送員", "區域", "備註"],
    "7月": [None, "序號", "客戶編號", "地址", "電話", 20, 16, 10, 4, "好運16", "瓶安10",
            "幸福丸", "配送員", "區域", "備註"],
}  # fmt: skip
WINDOWS = ("08:30-11:30", "13:30-16:30")
TOWNSHIPS = tuple(set(P.AREA_TOWNSHIP.values()))
SUMMARY = ["服務人次", "來電預約", "去前電", "取消", "改期"]


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> tuple[Path, list[dict], dict[str, list[tuple]]]:
    path = tmp_path_factory.mktemp("residential") / PLAN_FILE
    facts = write_residential_plan(path, SEED)
    wb = openpyxl.load_workbook(path)
    sheets = {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb}
    wb.close()
    return path, facts, sheets


def _lines(rows: list[tuple]) -> list[tuple]:
    """Delivery lines: the rows below the header with a code cell."""
    return [r for r in rows[2:] if r[2] is not None]


def _code(cell: object) -> str:
    if isinstance(cell, str):
        assert cell.startswith("預約"), cell
        return cell.removeprefix("預約")
    assert isinstance(cell, int), cell  # a numeric cell, never text or float noise
    return str(cell)


def test_sheets_and_headers(plan):
    _, _, sheets = plan
    assert list(sheets) == ["0628", "7月"]
    for name, rows in sheets.items():
        title = [v for v in rows[0] if v is not None]
        assert 1 <= len(title) <= 3  # sparse, so the header rule passes over it
        assert list(rows[1][:TABLE]) == HEADERS[name]
        numeric = [v for v in rows[1] if isinstance(v, int)]
        assert numeric == [20, 16, 10, 4]


def test_blocks_per_day_and_window(plan):
    _, _, sheets = plan
    expected = {
        "0628": [f"0628 {w}" for w in WINDOWS],
        "7月": [f"07{d:02d} {w}" for d in range(1, 22) for w in WINDOWS],
    }
    for name, rows in sheets.items():
        labels = [r[0] for r in rows[2:] if r[0] is not None]
        assert labels == expected[name]
        # Every label opens a block on a delivery line; 序號 restarts each day.
        for r in rows[2:]:
            if r[0] is not None:
                assert r[2] is not None
                assert r[1] == 1 or r[0].endswith(WINDOWS[1])


def test_codes(plan):
    _, _, sheets = plan
    lines = [r for rows in sheets.values() for r in _lines(rows)]
    assert len(lines) == 225
    codes = [_code(r[2]) for r in lines]
    assert all(len(c) == 7 and c.isdigit() for c in codes)
    assert len(set(codes)) == 218
    assert all(c[0] in "23" for c in codes)  # the commercial generator's codes start 14-19
    counts = Counter(codes)
    assert set(counts.values()) == {1, 2}
    booked = [r[2] for r in lines if isinstance(r[2], str)]
    assert len(booked) == 1 and booked[0].startswith("預約")


def test_cells(plan):
    _, _, sheets = plan
    lines = [r for rows in sheets.values() for r in _lines(rows)]
    phones = [r[4] for r in lines if r[4] is not None]
    assert any(isinstance(p, int) and len(str(p)) == 8 and str(p).startswith("89") for p in phones)
    call_first = [p for p in phones if isinstance(p, str)]
    assert call_first and all(p.startswith("去前電0") for p in call_first)
    assert all(isinstance(p, (int, str)) for p in phones)
    for r in lines:
        quantities = [v for v in r[5:12] if v is not None]
        assert quantities and all(isinstance(v, int) and 1 <= v <= 5 for v in quantities)
        address = r[3].removeprefix("臺東縣").removeprefix("台東縣").replace("台東", "臺東")
        assert address.startswith(TOWNSHIPS) and r[3].endswith(("號", "樓")), r[3]
        assert r[12] in P.DRIVERS
        assert r[13] in P.AREAS
    assert any("台東" in r[3] for r in lines) and any("臺東" in r[3] for r in lines)


def test_summary_in_july(plan):
    _, _, sheets = plan
    rows = sheets["7月"]
    assert all(r[TABLE] is None for r in rows)  # the blank column between table and summary
    summary = {r[TABLE + 1]: r[TABLE + 2] for r in rows if r[TABLE + 1] is not None}
    assert list(summary)[: len(SUMMARY)] == SUMMARY
    lines = _lines(rows)
    assert summary["服務人次"] == len(lines)
    assert summary["去前電"] == sum(1 for r in lines if isinstance(r[4], str))
    assert summary["取消"] == sum(1 for r in lines if (r[14] or "").startswith("取消"))
    assert summary["改期"] == sum(1 for r in lines if (r[14] or "").startswith("改期"))
    assert summary["20kg"] == 20 * sum(r[5] or 0 for r in lines)
    assert summary["瓶安10"] == 10 * sum(r[10] or 0 for r in lines)
    assert all(v is None for r in sheets["0628"] for v in r[TABLE:])  # 0628 has none


def test_facts_agree_with_openpyxl(plan):
    path, facts, sheets = plan
    wb = openpyxl.load_workbook(path, read_only=False)
    assert [f["sheet"] for f in facts] == wb.sheetnames
    for fact in facts:
        ws = wb[fact["sheet"]]
        assert fact["kind"] == "sheet" and fact["layout"] == "title_above_header"
        assert fact["header_row"] == 2
        assert fact["last_row"] == ws.max_row
        assert fact["columns"] == ws.max_column
        assert fact["data_rows"] == ws.max_row - 2
        assert fact["headers"] == [c.value for c in ws[2]]
    wb.close()
    assert sum(len(_lines(rows)) for rows in sheets.values()) == 225


def test_same_seed_same_bytes(plan, tmp_path):
    path, facts, _ = plan
    again = tmp_path / PLAN_FILE
    assert write_residential_plan(again, SEED) == facts
    assert again.read_bytes() == path.read_bytes()
    other = tmp_path / "other.xlsx"
    write_residential_plan(other, SEED + 1)
    assert other.read_bytes() != path.read_bytes()


def test_project_reader_finds_header_row_2(plan):
    path, facts, _ = plan
    sources = open_file(path)
    assert [s.sheet for s in sources] == ["0628", "7月"]
    lines = 0
    for source, fact in zip(sources, facts, strict=True):
        assert source.header_row == 2
        assert source.headers == [None if h is None else str(h) for h in fact["headers"]]
        assert source.headers[5:9] == ["20", "16", "10", "4"]
        assert [n for n, _ in source.above_header] == [1]  # the title row, kept aside
        rows = list(source.rows())
        assert rows[0][0] == 3 and rows[-1][0] == fact["last_row"]
        assert len(rows) == fact["data_rows"]
        lines += sum(1 for _, cells in rows if cells[2] is not None)
    assert lines == 225
