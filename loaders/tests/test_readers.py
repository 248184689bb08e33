"""The readers: every cell as the text the source meant, at the row a user sees.

Tiny workbooks, databases and CSV files are built in tmp_path; the key test reads the whole
small sample and compares every source and every defect value with expected.json.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from loaders.readers import discover, open_file, xlsx
from loaders.readers.base import Source, SourceError
from loaders.readers.cells import CellError, duration_text, spreadsheet_text
from loaders.readers.header import detect_header
from loaders.readers.sheet_xml import sheet_members, xml_slices
from loaders.tests.readers_fixtures import (
    XLS_FILE,
    Duration,
    EmptyText,
    Err,
    sqlite_text,
    write_xlsx,
)

ERROR_CODES = ["#NAME?", "#REF!", "#VALUE!", "#DIV/0!", "#N/A", "#NUM!", "#NULL!"]


def rows_of(source: Source) -> list[tuple[int, list[str | None]]]:
    rows = list(source.rows())
    assert all(len(cells) == len(source.headers) for _, cells in rows)
    return rows


def by_sheet(path: Path) -> dict[str, Source]:
    return {s.sheet: s for s in open_file(path)}


# ---------------------------------------------------------------------------------------------
# Cells: what is written with xlsxwriter, and the text that comes back

CELLS = [
    ("whole float", 1400103.0, "1400103"),
    ("whole float, small", 20.0, "20"),
    ("fraction 6.7", 6.7, "6.7"),
    ("fraction 0.1119", 0.1119, "0.1119"),
    ("ratio 0.242", 0.242, "0.242"),
    ("negative fraction", -0.1, "-0.1"),
    ("negative whole", -2, "-2"),
    ("zero", 0, "0"),
    ("big int", 12345678901234, "12345678901234"),
    ("2**53", 2**53, "9007199254740992"),
    ("tiny", 1e-07, "1e-07"),
    ("text with spaces", "  a b  ", "  a b  "),
    ("text with tab", "\t1140315 ", "\t1140315 "),
    ("full-width text", "１５４０３４２　臺東", "１５４０３４２　臺東"),
    ("numeric text", "0990902", "0990902"),
    ("float text", "1101103.0", "1101103.0"),
    ("date cell", date(2014, 8, 26), "2014-08-26"),
    ("datetime cell", datetime(2014, 8, 26, 13, 5, 7), "2014-08-26 13:05:07"),
    ("datetime at midnight", datetime(2014, 8, 26), "2014-08-26"),
    ("datetime with fraction", datetime(2014, 8, 26, 13, 5, 7, 500000), "2014-08-26 13:05:07.500000"),
    ("time cell", time(13, 5, 7), "13:05:07"),
    ("duration cell", Duration(timedelta(hours=30, minutes=5)), "30:05:00"),
    ("true", True, "TRUE"),
    ("false", False, "FALSE"),
    *[(f"error {code}", Err(code), code) for code in ERROR_CODES],
    ("blank", None, None),
    ("empty string", "", None),
    ("formula giving empty text", EmptyText(), None),
]  # fmt: skip


@pytest.fixture(scope="module")
def cell_sheet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """One workbook, one case per row: column A names the case, column B holds the cell."""
    path = tmp_path_factory.mktemp("cells") / "cells.xlsx"
    write_xlsx(path, {"cells": [["case", "value"], *[[name, v] for name, v, _ in CELLS]]})
    (source,) = open_file(path)
    assert source.header_row == 1 and source.headers == ["case", "value"]
    return {cells[0]: cells[1] for _, cells in rows_of(source)}


@pytest.mark.parametrize(("case", "written", "expected"), CELLS, ids=[c[0] for c in CELLS])
def test_cell_text(cell_sheet: dict, case: str, written: object, expected: str | None) -> None:
    assert cell_sheet[case] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (7, "7"),
        (True, "TRUE"),
        (1.0, "1"),
        (-0.0, "0"),
        (0.30000000000000004, "0.30000000000000004"),
        (CellError("#SPILL!"), "#SPILL!"),
        (timedelta(seconds=-90), "-0:01:30"),
        (timedelta(days=36, hours=12), "876:00:00"),
        (timedelta(seconds=1, microseconds=5), "0:00:01.000005"),
        (time(0, 0, 0, 250), "00:00:00.000250"),
    ],
)
def test_spreadsheet_text_rules(value: object, expected: str | None) -> None:
    assert spreadsheet_text(value) == expected


def test_duration_text_reads_as_postgres_interval_text() -> None:
    assert duration_text(timedelta(hours=1, minutes=2, seconds=3)) == "1:02:03"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (7, "7"), (-1, "-1"), (1.0, "1.0"), (0.1, "0.1"), ("", ""), (" x ", " x "),
     (b"\x00\xffA", "\\x00ff41")],
)  # fmt: skip
def test_sqlite_text_rules(value: object, expected: str | None) -> None:
    assert sqlite_text(value) == expected


# ---------------------------------------------------------------------------------------------
# Header rule and sheet layouts


@pytest.mark.parametrize(
    ("rows", "width", "expected"),
    [
        ([["a", "b", "c"]], 3, 0),
        ([["title", None, None, None], ["a", "b", "c", "d"]], 4, 1),  # title row above
        ([[1, 2, 3], [4, 5, 6]], 3, None),  # numbers only: no header
        ([["a", 20, 16, 10]], 4, None),  # 1 text of 4 < 60 %
        ([["a", "b", 20, 16]], 4, None),  # 50 % text < 60 %
        ([["a", "b", "c", 16, 10]], 5, 0),  # 60 % text
        ([["only"]], 1, None),  # at least 2 non-empty cells
        ([["a", "b", None, None, None]], 5, None),  # fewer than half the width
        ([["a", "b", "c", None, None]], 5, 0),  # half rounded up
        ([[CellError("#NAME?"), None, CellError("#NAME?")]], 3, None),
        ([[None, None]] * 10 + [["a", "b"]], 2, None),  # only the first 10 rows count
        ([["", ""], ["a", "b"]], 2, 1),  # "" is blank
    ],
)
def test_detect_header(rows: list, width: int, expected: int | None) -> None:
    assert detect_header(rows, width) == expected


def test_title_row_above_header(tmp_path: Path) -> None:
    title = ["台東幸福氣配送計畫", None, "區域:", None, "計畫配送-午", None, None, None]
    header = ["項次", "編號", "客戶", "客戶", 20, 16, "明天2025/07/20", None]
    data = [[1, 1400103.0, "好運", "好運", 2, None, None, "x"], [2, None, None, None, None, None, None, None],
            [3, 1400104.0, "幸福", None, None, 1, None, None]]  # fmt: skip
    src = by_sheet(write_xlsx(tmp_path / "d.xlsx", {"派遣單5.1": [title, header, *data]}))[
        "派遣單5.1"
    ]
    assert src.header_row == 2
    assert src.headers == ["項次", "編號", "客戶", "客戶", "20", "16", "明天2025/07/20", None]
    assert src.above_header == [(1, [spreadsheet_text(v) for v in title])]
    assert src.row_count_hint == 3
    rows = rows_of(src)
    assert [n for n, _ in rows] == [3, 4, 5]
    assert rows[0][1] == ["1", "1400103", "好運", "好運", "2", None, None, "x"]
    assert rows[1][1] == ["2"] + [None] * 7


def test_sheet_without_header_row(tmp_path: Path) -> None:
    rows = [[], [Err("#NAME?"), None, Err("#NAME?")], [1, 2, None, 4], [None, 5, 6, 7]]
    src = by_sheet(write_xlsx(tmp_path / "n.xlsx", {"待配送整理": rows}))["待配送整理"]
    assert src.header_row is None
    assert src.headers == [None] * 4
    assert "no header row" in src.notes
    assert rows_of(src) == [
        (1, [None] * 4),
        (2, ["#NAME?", None, "#NAME?", None]),
        (3, ["1", "2", None, "4"]),
        (4, [None, "5", "6", "7"]),
    ]


def test_form_sheet_has_no_header(tmp_path: Path) -> None:
    form = [["台東幸福氣計畫配送人"] + [None] * 5 + ["日期：", date(2025, 5, 21)] + [None] * 9]
    form += [[None] * 17, ["預估來電數量：", None, 40] + [None] * 14]
    form += [[None, "王小明", None, "南早"] + [None] * 12 + ["BGH-0456"]]
    src = by_sheet(write_xlsx(tmp_path / "f.xlsx", {"人員安排範本": form}))["人員安排範本"]
    assert src.header_row is None and len(src.headers) == 17
    assert [n for n, _ in rows_of(src)] == [1, 2, 3, 4]


def test_empty_sheet(tmp_path: Path) -> None:
    sources = by_sheet(write_xlsx(tmp_path / "e.xlsx", {"data": [["a", "b"], [1, 2]], "空": []}))
    empty = sources["空"]
    assert empty.headers == [] and empty.header_row is None and "empty sheet" in empty.notes
    assert list(empty.rows()) == []
    assert rows_of(sources["data"]) == [(2, ["1", "2"])]


def test_used_range_not_at_a1(tmp_path: Path) -> None:
    """Row 1 and column A empty: rows and columns are still the ones a user sees."""
    path = write_xlsx(
        tmp_path / "o.xlsx",
        {"offset": [["客戶", "地址", "區域"], [1400103.0, "臺東", Err("#REF!")], [None, None, None],
                    [1400104.0, None, "A-瑞光"]]},
        first_row=2,
        first_col=2,
    )  # fmt: skip
    src = by_sheet(path)["offset"]
    assert src.header_row == 2
    assert src.headers == [None, "客戶", "地址", "區域"]
    assert rows_of(src) == [
        (3, [None, "1400103", "臺東", "#REF!"]),
        (4, [None, None, None, None]),
        (5, [None, "1400104", None, "A-瑞光"]),
    ]


def test_no_header_sheet_starting_low_yields_rows_from_row_1(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "l.xlsx", {"s": [[1, 2], [3, 4]]}, first_row=3, first_col=3)
    src = by_sheet(path)["s"]
    assert src.header_row is None and src.headers == [None] * 4
    assert rows_of(src) == [
        (1, [None] * 4),
        (2, [None] * 4),
        (3, [None, None, "1", "2"]),
        (4, [None, None, "3", "4"]),
    ]


HOSTILE = ['"; drop table x; --', "it's", "客戶資料", "待配送名單 ", 'a"b;c d']


def test_hostile_sheet_and_header_names(tmp_path: Path) -> None:
    sheets = {name: [[name, 'x"y', "; --", " 客戶 "], [1, 2, 3, 4]] for name in HOSTILE}
    sources = by_sheet(write_xlsx(tmp_path / "h.xlsx", sheets))
    assert list(sources) == HOSTILE
    for name, src in sources.items():
        assert src.headers == [name, 'x"y', "; --", " 客戶 "]
        assert rows_of(src) == [(2, ["1", "2", "3", "4"])]


def test_hostile_names_in_a_file_name_and_path(tmp_path: Path) -> None:
    folder = tmp_path / "資料 'x' \"y\""
    folder.mkdir()
    path = write_xlsx(folder / "2025-05 客戶; drop.xlsx", {"s": [["a", "b"], [1, 2]]})
    (src,) = open_file(path)
    assert src.file == path and rows_of(src) == [(2, ["1", "2"])]


def test_hidden_sheet_and_chart_sheet(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "hidden.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("shown").write_row(0, 0, ["a", "b"])
    hidden = wb.add_worksheet("hidden")
    hidden.write_row(0, 0, ["c", "d"])
    hidden.write_row(1, 0, [1, 2])
    hidden.hide()
    chart = wb.add_chart({"type": "line"})
    chart.add_series({"values": "=hidden!$A$2:$B$2"})
    wb.add_chartsheet("圖").set_chart(chart)
    wb.close()
    sources = by_sheet(path)
    assert list(sources) == ["shown", "hidden", "圖"]
    assert "hidden sheet" in sources["hidden"].notes
    assert rows_of(sources["hidden"]) == [(2, ["1", "2"])]
    assert sources["圖"].notes == ["chart sheet: no cells"] and sources["圖"].headers == []


def test_rows_without_row_numbers_are_parsed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows without r="..." cannot be sliced (calamine numbers them by position)."""
    import re
    import zipfile

    plain = write_xlsx(tmp_path / "p.xlsx", {"s": [["a", "b"], [1, Err("#N/A")], [], [4, 5]]})
    path = tmp_path / "norow.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'(<row) r="\d+"', rb"\1", data)
            out.writestr(info, data)
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 50)
    (src,) = open_file(path)
    assert rows_of(src) == [(2, ["1", "#N/A"]), (3, [None, None]), (4, ["4", "5"])]


def test_xls_workbook(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(XLS_FILE)
    sources = by_sheet(path)
    assert list(sources) == ["派遣單5.1", "empty", "nohead"]
    dispatch = sources["派遣單5.1"]
    assert dispatch.file_kind == "xls" and dispatch.header_row == 2
    assert dispatch.headers == ["項次", "客戶", "金額", "比例", "日期", "時間戳", "時刻", "是否", "錯誤",
                                "20", "備註 "]  # fmt: skip
    assert (
        dispatch.above_header[0][0] == 1 and dispatch.above_header[0][1][0] == "台東幸福氣配送計畫"
    )
    assert rows_of(dispatch) == [
        (3, ["1", "1400103", "6.7", "0.1119", "2014-08-26", "2014-08-26 13:05:07", "13:05:07",
             "TRUE", "#REF!", None, "  a b  "]),
        (4, ["2", None, "-0.1", None, None, None, None, None, "#N/A", None, None]),
        (5, ["3", None, None, None, None, None, None, None, "#VALUE!", None, None]),
    ]  # fmt: skip
    assert sources["empty"].notes == ["empty sheet"] and list(sources["empty"].rows()) == []
    nohead = sources["nohead"]
    assert nohead.header_row is None
    assert rows_of(nohead) == [(1, [None] * 3), (2, [None, "5", None]), (3, [None, None, "x"])]


# ---------------------------------------------------------------------------------------------
# SQLite


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        '''
        create table clients (id integer primary key, code text, ratio real, photo blob,
                              n integer, note);
        insert into clients values (1, '1400103', 1.0, x'00ff41', 7, null);
        insert into clients values (5, ' 17 ', 0.1, null, -2, '');
        insert into clients values (9, '台東', 2.5, x'', null, 3.0);
        create table "we""ird; drop table clients; --" ("col ""q""" text, "客戶; x" integer);
        insert into "we""ird; drop table clients; --" values ('a', 1);
        create table kv (k text primary key, v text) without rowid;
        insert into kv values ('b', '2'), ('a', '1');
        create table shadowed (rowid text, _rowid_ text, oid text);
        insert into shadowed values ('x', 'y', 'z');
        create table empty (id integer primary key);
        create view v as select * from clients;
        '''
    )
    conn.commit()
    conn.close()
    return path


def test_sqlite_values_and_rowids(app_db: Path) -> None:
    sources = by_sheet(app_db)
    assert list(sources) == sorted(sources)
    assert "v" not in sources and not any(n.startswith("sqlite_") for n in sources)
    clients = sources["clients"]
    assert clients.file_kind == "sqlite" and clients.header_row is None
    assert clients.headers == ["id", "code", "ratio", "photo", "n", "note"]
    assert clients.row_count_hint == 3
    assert rows_of(clients) == [
        (1, ["1", "1400103", "1.0", "\\x00ff41", "7", None]),
        (5, ["5", " 17 ", "0.1", None, "-2", ""]),
        (9, ["9", "台東", "2.5", "\\x", None, "3.0"]),
    ]


def test_sqlite_quoted_names(app_db: Path) -> None:
    src = by_sheet(app_db)['we"ird; drop table clients; --']
    assert src.headers == ['col "q"', "客戶; x"]
    assert rows_of(src) == [(1, ["a", "1"])]
    assert "clients" in by_sheet(app_db)  # nothing was dropped


def test_sqlite_without_rowid_and_shadowed_rowid(app_db: Path) -> None:
    sources = by_sheet(app_db)
    kv = sources["kv"]
    assert rows_of(kv) == [(1, ["a", "1"]), (2, ["b", "2"])]
    assert any("WITHOUT ROWID" in n for n in kv.notes)
    shadowed = sources["shadowed"]
    assert rows_of(shadowed) == [(1, ["x", "y", "z"])] and shadowed.notes
    assert sources["empty"].row_count_hint == 0 and list(sources["empty"].rows()) == []


def test_sqlite_opened_read_only(app_db: Path) -> None:
    before = app_db.read_bytes()
    for src in open_file(app_db):
        list(src.rows())
    assert app_db.read_bytes() == before
    assert not Path(str(app_db) + "-journal").exists()


def test_sqlite_malformed_while_iterating(tmp_path: Path) -> None:
    """count(*) at open reads the table's root page only; the broken overflow chain of a long
    text shows when rows() reads it: a SourceError naming the file and the table."""
    path = tmp_path / "bad.db"
    conn = sqlite3.connect(path)
    conn.execute("create table t (id integer primary key, s text)")
    conn.execute("insert into t values (1, ?)", ("x" * 100_000,))
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(2 * page, len(data), page):  # pages 3 ...: the overflow chain
        data[offset : offset + 4] = b"\xff" * 4
    path.write_bytes(bytes(data))
    (src,) = open_file(path)
    assert src.row_count_hint == 1
    with pytest.raises(SourceError) as err:
        list(src.rows())
    message = str(err.value)
    assert str(path) in message and "'t'" in message and "malformed" in message


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_utf8(tmp_path: Path) -> None:
    path = tmp_path / "upload.csv"
    path.write_text('編號,業務員,交易日期\n1400103,王,1140720\n" 1882836","a,b",\n', "utf-8")
    (src,) = open_file(path)
    assert src.sheet == "upload.csv" and src.file_kind == "csv" and src.header_row == 1
    assert src.headers == ["編號", "業務員", "交易日期"] and src.row_count_hint == 2
    assert rows_of(src) == [(2, ["1400103", "王", "1140720"]), (3, [" 1882836", "a,b", None])]


def test_csv_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("客戶,地址\r\n1400103,臺東\r\n".encode("utf-8-sig"))
    (src,) = open_file(path)
    assert src.headers == ["客戶", "地址"] and rows_of(src) == [(2, ["1400103", "臺東"])]
    assert "utf-8-sig" in src.notes[0]


def test_csv_cp950(tmp_path: Path) -> None:
    text = "客戶,地址,備註\r\n1400103,臺東縣臺東市,許功蓋\r\n"
    path = tmp_path / "big5.csv"
    path.write_bytes(text.encode("cp950"))
    (src,) = open_file(path)
    assert "cp950" in src.notes[0]
    assert src.headers == ["客戶", "地址", "備註"]
    assert rows_of(src) == [(2, ["1400103", "臺東縣臺東市", "許功蓋"])]


def test_csv_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(b"a,b\n\xff\xfe\xfd\x80,\x81\n")
    with pytest.raises(SourceError) as err:
        open_file(path)
    assert str(path) in str(err.value) and "UTF-8" in str(err.value) and "CP950" in str(err.value)


@pytest.mark.parametrize(
    ("name", "delimiter"), [("t.tsv", "\t"), ("tab.csv", "\t"), ("semi.csv", ";"), ("bar.csv", "|")]
)
def test_csv_delimiters(tmp_path: Path, name: str, delimiter: str) -> None:
    path = tmp_path / name
    lines = [["客戶", "地址", "金額"], ["1400103", "臺東, 台東", "6,7"], ["1400104", "", "0.1"]]
    path.write_text("\n".join(delimiter.join(line) for line in lines) + "\n", "utf-8")
    (src,) = open_file(path)
    assert src.headers == ["客戶", "地址", "金額"]
    assert rows_of(src) == [(2, ["1400103", "臺東, 台東", "6,7"]), (3, ["1400104", None, "0.1"])]


def test_csv_ragged_rows_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text('a,b\n1\n1,2,3,4\n\n"multi\nline",x\n', "utf-8")
    (src,) = open_file(path)
    assert src.headers == ["a", "b", None, None]
    assert rows_of(src) == [
        (2, ["1", None, None, None]),
        (3, ["1", "2", "3", "4"]),
        (4, [None, None, None, None]),
        (5, ["multi\nline", "x", None, None]),
    ]


def test_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    (src,) = open_file(path)
    assert src.headers == [] and src.header_row is None and list(src.rows()) == []


def test_csv_bad_quoting(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('a,b\n"x"y,1\n', "utf-8")
    with pytest.raises(SourceError) as err:
        open_file(path)
    assert str(path) in str(err.value) and "record 2" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Finding files, and files that cannot be read


def test_discover(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ["b.xlsx", "a.db", "expected.json", "~$b.xlsx", ".hidden.csv", "sub/c.csv",
                 "sub/deeper/d.tsv", ".git/x.csv", "sub/~$lock.xlsx", "Z.XLSX"]:  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    files, notes = discover([tmp_path, tmp_path / "a.db"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "Z.XLSX", "a.db", "b.xlsx", "sub/c.csv", "sub/deeper/d.tsv"
    ]  # fmt: skip
    assert len(notes) == 3
    assert any("expected.json" in n and ".xlsx" in n for n in notes)
    assert sum("lock file" in n for n in notes) == 2
    assert not any(".hidden" in n or ".git" in n for n in notes)


def test_discover_explicit_files(tmp_path: Path) -> None:
    (tmp_path / "~$x.xlsx").write_bytes(b"")
    (tmp_path / "expected.json").write_text("{}")
    files, notes = discover([tmp_path / "~$x.xlsx"])
    assert files == [] and "lock file" in notes[0]
    with pytest.raises(SourceError) as err:
        discover([tmp_path / "expected.json"])
    message = str(err.value)
    assert "expected.json" in message and "not a supported file type" in message
    for ext in [".xlsx", ".xlsm", ".xls", ".db", ".sqlite", ".sqlite3", ".csv", ".tsv"]:
        assert ext in message
    with pytest.raises(SourceError) as err:
        discover([tmp_path / "missing.xlsx"])
    assert "missing.xlsx" in str(err.value) and "no such file or directory" in str(err.value)


def test_open_file_missing_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or directory"):
        open_file(tmp_path / "nope.db")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match=r"not a supported file type \(\.txt\)"):
        open_file(tmp_path / "notes.txt")


def _small_xlsx(path: Path) -> Path:
    rows = [["客戶", "地址"]] + [[1400103.0 + i, f"臺東縣臺東市{i}號"] for i in range(3000)]
    return write_xlsx(path, {"s": rows})


def _bad(path: Path) -> str:
    with pytest.raises(SourceError) as err:
        for source in open_file(path):
            list(source.rows())
    message = str(err.value)
    assert str(path) in message
    return message


def test_truncated_xlsx(tmp_path: Path) -> None:
    data = _small_xlsx(tmp_path / "whole.xlsx").read_bytes()
    path = tmp_path / "half.xlsx"
    path.write_bytes(data[: len(data) // 2])
    message = _bad(path)
    assert "truncated or damaged" in message and "again" in message


def test_damaged_sheet_inside_xlsx(tmp_path: Path) -> None:
    """A zip whose central directory is intact but whose sheet data is corrupt."""
    path = _small_xlsx(tmp_path / "crc.xlsx")
    data = bytearray(path.read_bytes())
    start = data.find(b"xl/worksheets/sheet1.xml") + 200
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    message = _bad(path)
    assert "truncated or damaged" in message or "cannot read" in message


def test_random_bytes_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "random.xlsx"
    path.write_bytes(os.urandom(4096).replace(b"\xd0\xcf", b"00").replace(b"PK", b"00"))
    assert "not an Excel workbook" in _bad(path)


def test_encrypted_xlsx(tmp_path: Path) -> None:
    """A password-protected .xlsx is an OLE2 compound file holding EncryptedPackage."""
    path = tmp_path / "secret.xlsx"
    body = (
        bytes(504) + "EncryptionInfo".encode("utf-16-le") + "EncryptedPackage".encode("utf-16-le")
    )
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + body + os.urandom(1024))
    message = _bad(path)
    assert "encrypted or password-protected workbook" in message
    assert "save it without a password and load again" in message
    bare = tmp_path / "bare.xlsx"  # an OLE2 header and nothing recognisable
    bare.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048))
    assert "encrypted or password-protected workbook" in _bad(bare)


def test_xls_named_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "old.xlsx"
    path.write_bytes(XLS_FILE)
    assert ".xls" in _bad(path) and "rename" in _bad(path)


def test_damaged_xls(tmp_path: Path) -> None:
    path = tmp_path / "cut.xls"
    path.write_bytes(XLS_FILE[:1500])
    assert "damaged" in _bad(path) or "cannot read" in _bad(path)
    text = tmp_path / "text.xls"
    text.write_text("not a workbook")
    assert "not an Excel 97-2003 workbook" in _bad(text)


def test_truncated_db(tmp_path: Path, app_db: Path) -> None:
    conn = sqlite3.connect(app_db)
    conn.execute("create table big (s text)")
    conn.executemany("insert into big values (?)", [("x" * 100,)] * 500)
    conn.commit()
    conn.close()
    data = app_db.read_bytes()
    path = tmp_path / "half.db"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged SQLite database" in _bad(path)
    odd = tmp_path / "odd.db"
    odd.write_bytes(data[: len(data) // 2 + 100])
    assert "truncated or damaged SQLite database" in _bad(odd)
    stub = tmp_path / "stub.db"
    stub.write_bytes(b"SQLite for")
    assert "truncated or damaged SQLite database" in _bad(stub)


def test_text_file_named_db(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("客戶,地址\n1400103,臺東\n", "utf-8")
    assert "not a SQLite database" in _bad(path)


def test_file_changed_after_open(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "c.xlsx")
    (src,) = open_file(path)
    _small_xlsx(tmp_path / "other.xlsx")
    os.replace(tmp_path / "other.xlsx", path)
    os.utime(path, ns=(1, 1))
    with pytest.raises(SourceError, match="changed since it was opened"):
        list(src.rows())


# ---------------------------------------------------------------------------------------------
# The small sample against expected.json


def _as_text(value: object) -> str | None:
    """A header as expected.json types it (a number, text or null), as the reader's text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None if value is None else str(value)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from loaders.sample.generate import generate

    out = tmp_path_factory.mktemp("sample")
    generate(out, scale="small", seed=3)
    return out, json.loads((out / "expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def sample_rows(sample: tuple[Path, dict]) -> dict[tuple[str, str], tuple[Source, dict]]:
    """(file, sheet) -> (source, {row number: cells}) for every source of the sample."""
    out, _ = sample
    files, notes = discover([out])
    assert sorted(f.name for f in files) == [
        "2025-05 commercial client list.xlsx",
        "2025-05 commercial deliver history.xlsx",
        "2025-07 residential client delivery plan.xlsx",
        "luckygas.db",
    ]
    assert any("~$" in n for n in notes) and any("expected.json" in n for n in notes)
    got = {}
    for path in files:
        for src in open_file(path):
            rows = rows_of(src)
            numbers = [n for n, _ in rows]
            assert len(set(numbers)) == len(numbers)
            got[(path.name, src.sheet)] = (src, dict(rows))
    return got


def test_sample_sources_match_expected(sample: tuple[Path, dict], sample_rows: dict) -> None:
    _, expected = sample
    assert len(sample_rows) == len(expected["sources"])
    for e in expected["sources"]:
        src, rows = sample_rows[(e["file"], e["sheet"])]
        where = f"{e['file']} / {e['sheet']!r}"
        assert src.header_row == e["header_row"], where
        assert len(src.headers) == e["columns"], where
        if e["header_row"] is None and e["kind"] == "sheet":
            assert all(h is None for h in src.headers), where
        else:
            assert src.headers == [_as_text(h) for h in e["headers"]], where
        assert len(rows) == e["data_rows"] == src.row_count_hint, where
        first = (e["header_row"] or 0) + 1 if e["kind"] == "sheet" else 1
        assert list(rows) == list(range(first, e["last_row"] + 1)), where


def test_sample_dispatch_title_rows_kept(sample_rows: dict) -> None:
    src, _ = sample_rows[("2025-05 commercial client list.xlsx", "派遣單5.1")]
    ((number, cells),) = src.above_header
    assert number == 1 and cells[0] == "台東幸福氣配送計畫" and "區域:" in cells


def test_big_sheets_read_in_slices_read_the_same(
    sample: tuple[Path, dict], sample_rows: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut into slices of 20 kB (about 70 rows), the history workbook reads exactly the same."""
    import zipfile
    from xml.etree import ElementTree

    out, _ = sample
    path = out / "2025-05 commercial deliver history.xlsx"
    with zipfile.ZipFile(path) as zf:
        member = sheet_members(zf)["Sheet1"]
        slices = list(xml_slices(zf, member, 20_000))
    assert len(slices) > 10
    for piece in slices:
        ElementTree.fromstring(piece)  # each slice is a whole worksheet document
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 20_000)
    for src in open_file(path):
        whole, rows = sample_rows[(path.name, src.sheet)]
        assert (src.headers, src.header_row, src.row_count_hint) == (
            whole.headers,
            whole.header_row,
            whole.row_count_hint,
        )
        assert dict(rows_of(src)) == rows


def test_sample_defect_values(sample: tuple[Path, dict], sample_rows: dict) -> None:
    _, expected = sample
    checked = 0
    kinds = set()
    for group in expected["defects"]:
        if "column_index" not in group:
            continue
        _, rows = sample_rows[(group["file"], group["sheet"])]
        for inst in group["instances"]:
            if "value" not in inst:
                continue
            cell = rows[inst["row"]][group["column_index"] - 1]
            assert cell == inst["value"], (group["kind"], group["sheet"], inst)
            checked += 1
            kinds.add(inst.get("cell_type"))
    assert checked > 250
    assert {"n", "s", "d", "e", "b"} <= kinds
