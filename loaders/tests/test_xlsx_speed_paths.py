"""The .xlsx reader's fast paths read exactly what the plain ones read (behaviour only, never
timings): `RowText` against `spreadsheet_text`; the rows kept at open against a new parse of
the file (a second `rows()`, a KEEP_BYTES too small to keep anything, parses made one after
the other); `copy_text` against the COPY text of `rows()`.
"""

from __future__ import annotations

import gc
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from loaders.readers import open_file, xlsx
from loaders.readers.base import SourceError
from loaders.readers.cells import CellError, RowText, spreadsheet_text
from loaders.tests.readers_fixtures import Err, write_xlsx


class Text(str):
    pass


VALUES = [
    "客戶", "", " a ", "\\N", Text("sub"), Text(""), 1.0, True, False, 1, 0, 0.0, -0.0, 1400103.0,
    6.7, -0.1, 1e-07, 1e20, 2**70, CellError("#N/A"), None, date(2014, 8, 26),
    datetime(2014, 8, 26, 13, 5, 7, 500000), datetime(2014, 8, 26), time(13, 5, 7),
    timedelta(hours=30, minutes=5), timedelta(seconds=-1),
]  # fmt: skip


def test_row_text_is_spreadsheet_text() -> None:
    """Whatever the memo holds first (1.0 before True, True before 1.0), a row's texts are
    the cells' `spreadsheet_text`, and a row of tuples the same."""
    for order in (VALUES, VALUES[::-1]):
        text = RowText(1 << 20)
        for _ in range(2):  # the second time from the memo
            assert text(order) == [spreadsheet_text(v) for v in order]
            assert text.tuples([order, order[:3]]) == [
                tuple(spreadsheet_text(v) for v in order),
                tuple(spreadsheet_text(v) for v in order[:3]),
            ]
    full = RowText(0)  # a memo that may not grow still converts
    assert full([2.5, 2.5, "x"]) == ["2.5", "2.5", "x"] and full.memo == {}


def _workbook(path: Path) -> tuple[Path, Path]:
    """Sheets with what the reader must place: a title row, error cells, blank rows, a used
    range not at A1, a sheet long enough to be sliced, texts COPY must escape."""
    history = [["客戶", "名稱", "日期", "數量"]] + [
        [1400103.0 + i % 7, f"客戶{i}", 1100101.0 + i, (i % 5) * 0.5 if i % 11 else Err("#N/A")]
        for i in range(1500)
    ]
    history[700] = [None, None, None, None]
    escapes = [["a", "b"], ["tab\there", "line\nbreak"], ["cr\rhere", "back\\slash"],
               ["\\N", None], [None, "nul"], ["plain", "text"]]  # fmt: skip
    path = write_xlsx(
        path,
        {
            "history": history,
            "dispatch": [["區域", "A-瑞光", None], [None, None, None],
                         ["客戶", "地址", "數量"], [1400103.0, "臺東", 2.0]],
            "escapes": escapes,
        },
    )  # fmt: skip
    offset = write_xlsx(
        path.with_name("offset.xlsx"),
        {"offset": [["客戶", "地址"], [1.0, Err("#REF!")], [None, None], [2.0, "x"]]},
        first_row=3,
        first_col=2,
    )
    return path, offset


def _read(path: Path) -> dict[str, tuple]:
    return {
        s.sheet: (s.headers, s.header_row, s.row_count_hint, s.above_header, list(s.rows()))
        for s in open_file(path)
    }


@pytest.mark.parametrize("slice_bytes", [xlsx.SLICE_BYTES, 3000])
def test_kept_rows_are_the_parsed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_bytes: int
) -> None:
    monkeypatch.setattr(xlsx, "SLICE_BYTES", slice_bytes)
    for path in _workbook(tmp_path / "book.xlsx"):
        kept = _read(path)
        if "history" in kept:
            assert kept["history"][-1][699] == (701, [None] * 4)  # a blank row, kept
        sources = open_file(path)
        first = [list(s.rows()) for s in sources]
        again = [list(s.rows()) for s in sources]  # what open kept is gone: parsed again
        assert first == again == [kept[s.sheet][-1] for s in sources]
        monkeypatch.setattr(xlsx, "KEEP_BYTES", 0)  # nothing kept: rows() parses the file
        assert _read(path) == kept
        monkeypatch.setattr(xlsx, "KEEP_BYTES", 600_000)  # some sheets or slices only
        assert _read(path) == kept
        monkeypatch.setattr(xlsx, "OVERLAP_BYTES", 0)  # every parse after the last one went
        assert _read(path) == kept
        monkeypatch.undo()
        monkeypatch.setattr(xlsx, "SLICE_BYTES", slice_bytes)


def test_what_is_kept_is_given_back(tmp_path: Path) -> None:
    path, _ = _workbook(tmp_path / "book.xlsx")
    gc.collect()
    before = xlsx._kept_bytes
    sources = open_file(path)
    assert xlsx._kept_bytes > before
    for s in sources[:1]:
        list(s.rows())
    del sources, s
    gc.collect()
    assert xlsx._kept_bytes == before


def test_kept_rows_check_the_file_unchanged(tmp_path: Path) -> None:
    path, _ = _workbook(tmp_path / "book.xlsx")
    sources = open_file(path)
    os.utime(path, ns=(1, 1))
    with pytest.raises(SourceError, match="changed since it was opened"):
        list(sources[0].rows())


def _copy_line(number: int, cells: list[str | None]) -> str:
    def field(c: str | None) -> str:
        if c is None:
            return "\\N"
        for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            c = c.replace(raw, escaped)
        return c

    return "\t".join([str(number), *map(field, cells)]) + "\n"


@pytest.mark.parametrize("batch", [xlsx.COPY_BATCH, 2])
def test_copy_text_is_the_copy_text_of_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(xlsx, "COPY_BATCH", batch)
    prefix = "7\tbook.xlsx\tab\\\\c\tsheet\t"  # lineage fields, escaped by the loader
    for path in _workbook(tmp_path / "book.xlsx"):
        for s in open_file(path):
            assert isinstance(s, xlsx.XlsxSource)
            chunks = list(s.copy_text(prefix.encode()))
            rows = list(s.rows())  # parsed again: copy_text read what open kept
            assert sum(n for n, _ in chunks) == len(rows)
            assert all(0 < n <= batch for n, _ in chunks)
            text = b"".join(chunk for _, chunk in chunks).decode()
            assert text == "".join(prefix + _copy_line(n, cells) for n, cells in rows)


def test_copy_text_reads_a_replaced_rows(tmp_path: Path) -> None:
    path, _ = _workbook(tmp_path / "book.xlsx")
    (s, *_) = open_file(path)
    s.rows = lambda: iter([(5, ["x"] + [None] * (len(s.headers) - 1))])
    chunks = list(s.copy_text(b"p\t"))
    assert chunks == [(1, ("p\t" + _copy_line(5, ["x"] + [None] * (len(s.headers) - 1))).encode())]


def _read_whole(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """What the reader gives with every sheet parsed at open (no streaming)."""
    with monkeypatch.context() as m:
        m.setattr(xlsx, "_streamed_source", lambda *args: None)
        return _read(path)


def _streamed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the sheets open streams from here on."""
    names: list[str] = []
    real = xlsx._streamed_source

    def spy(sheet, notes, opened):
        source = real(sheet, notes, opened)
        if source is not None:
            names.append(sheet.name)
        return source

    monkeypatch.setattr(xlsx, "_streamed_source", spy)
    return names


@pytest.mark.parametrize(
    ("tail", "prefix"),
    [(xlsx.TAIL_BYTES, ""), (1500, "7\tbook.xlsx\tab\\\\c\tsheet\t"), (1, "")],
)
def test_streamed_sheets_read_what_whole_parses_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: int, prefix: str
) -> None:
    """A sheet over SLICE_BYTES is parsed while it is read: its header, hint, rows and COPY
    text are those of the sheet parsed whole at open, the last slice cut small or not, and
    what it reserved is given back once read."""
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 3000)
    monkeypatch.setattr(xlsx, "TAIL_BYTES", tail)
    path, _ = _workbook(tmp_path / "book.xlsx")
    whole = _read_whole(path, monkeypatch)
    streamed = _streamed(monkeypatch)
    gc.collect()
    before = xlsx._kept_bytes
    assert _read(path) == whole
    assert streamed == ["history"]
    for s in open_file(path):
        chunks = list(s.copy_text(prefix.encode()))
        rows = whole[s.sheet][-1]
        assert sum(n for n, _ in chunks) == len(rows)
        text = b"".join(chunk for _, chunk in chunks).decode()
        assert text == "".join(prefix + _copy_line(n, cells) for n, cells in rows)
        assert list(s.rows()) == rows  # read again: a new parse of the file
    del s
    gc.collect()
    assert xlsx._kept_bytes == before


def _history_xml(rows: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns='
        '"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + "".join(rows)
        + "</sheetData></worksheet>"
    )


def _row(r: int, *cells: tuple[str, str]) -> str:
    return f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{v}</v></c>' for c, v in cells) + "</row>"


@pytest.mark.parametrize(
    ("late", "streamed"),
    [
        ([_row(5, ("A", "9"), ("B", "9"))], False),  # a header-window row in a later slice
        ([_row(3000, ("A", "1"), ("G", "2"))], False),  # a column beyond the first and last
        ([_row(2, ("A", "1")), _row(3000, ("B", "1"))], False),  # a row beyond the last
        ([_row(30, ("A", "1"), ("B", "x"))], True),  # out of order, but no further: streamed
        ([], True),
    ],
)
def test_sheets_the_slices_cannot_tell_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: list[str], streamed: bool
) -> None:
    """Where the first and last slices cannot tell the used range and the header for sure,
    the sheet is read as before: parsed whole at open; where they can, what streaming it
    reads is the same (a row out of order included)."""
    from loaders.tests.test_reader_bounds import write_workbook

    rows = [_row(1, ("A", "1"), ("B", "2"))] + [
        _row(r, ("A", str(r)), ("B", "1.5")) for r in range(20, 400)
    ]
    rows[200:200] = late
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 3000)
    monkeypatch.setattr(xlsx, "TAIL_BYTES", 500)
    path = write_workbook(tmp_path / "late.xlsx", _history_xml(rows))
    whole = _read_whole(path, monkeypatch)
    names = _streamed(monkeypatch)
    assert _read(path) == whole
    assert names == (["Sheet1"] if streamed else [])


def test_a_slice_failing_mid_read_is_one_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice calamine cannot parse is found while the rows are read (the loader's COPY
    then rolls back): one SourceError, and nothing stays reserved."""
    monkeypatch.setattr(xlsx, "SLICE_BYTES", 3000)
    path, _ = _workbook(tmp_path / "book.xlsx")
    real, calls = xlsx._parse_slice, []

    def failing(path, name, data):
        calls.append(name)
        if len(calls) == 4:
            raise SourceError(path, f"cannot read sheet {name!r} (broken)", "resave it")
        return real(path, name, data)

    monkeypatch.setattr(xlsx, "_parse_slice", failing)
    gc.collect()
    before = xlsx._kept_bytes
    sources = open_file(path)
    history = sources[0]
    assert isinstance(history, xlsx.XlsxSource)
    with pytest.raises(SourceError, match="broken"):
        list(history.copy_text(b"p\t"))
    del sources, history
    gc.collect()
    assert xlsx._kept_bytes == before


@pytest.mark.parametrize("overlap", [xlsx.OVERLAP_BYTES, 0])
def test_a_sheet_of_two_slices_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overlap: int
) -> None:
    """Two slices, the last parsed by the parser thread (queued behind the first, small) or
    at open in the opening thread (the first may be large)."""
    import zipfile

    path, _ = _workbook(tmp_path / "book.xlsx")
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo(xlsx.Package(zf).members["history"]).file_size
    monkeypatch.setattr(xlsx, "SLICE_BYTES", size * 2 // 3)
    monkeypatch.setattr(xlsx, "OVERLAP_BYTES", overlap)
    whole = _read_whole(path, monkeypatch)
    names = _streamed(monkeypatch)
    assert _read(path) == whole and names == ["history"]
