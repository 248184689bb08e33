"""Excel 97-2003 workbooks (.xls): one Source per sheet, every cell as text, by xlrd.

calamine reads .xls too, but drops error cells, and an .xls has no sheet XML to recover them
from; xlrd reports them with their codes. Cells are typed as calamine types an .xlsx cell
(numbers as float; date cells as `time`, `date` or `datetime`), then converted by
`cells.spreadsheet_text`; the header row is found by `header.find_header`, the rule every
worksheet follows. Positions are those of the .xlsx reader: spreadsheet rows, cells from
column A, each row as wide as the sheet's rightmost used column.

Bounds (`bounds.py`): xlrd reads the whole file and then one sheet into Python objects, so
the file is refused over MAX_XLS_BYTES (32 MiB; a full 65,536-row export of a few columns is
a few MiB) and a sheet over MAX_SHEET_CELLS; a sheet in memory takes ~70 bytes a cell, so
about 400 MiB (an estimate, not measured) for the densest file the limit admits (6 bytes a
cell in MULRK records).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from loaders.readers.base import Source, SourceError
from loaders.readers.bounds import MAX_SHEET_CELLS, MAX_XLS_BYTES, too_big
from loaders.readers.cells import CellError, spreadsheet_text
from loaders.readers.header import HEADER_WINDOW, find_header
from loaders.readers.workbook import (
    OLE2_MAGIC,
    RECOPY,
    RESAVE,
    ZIP_MAGIC,
    Stamp,
    check_unchanged,
    empty_source,
    sniff,
    stamp,
)


def open_xls(path: Path) -> list[Source]:
    """One Source per sheet of an .xls workbook, read with xlrd (error cells keep their code)."""
    book = _XlsBook(path)
    sources = []
    for index in range(book.nsheets):
        name, rows = book.sheet_rows(index)
        opened = stamp(path)
        if not rows:
            sources.append(empty_source(path, "xls", name, ["empty sheet"]))
            continue
        sources.append(_xls_source(path, index, name, rows, opened))
    book.release()
    return sources


class _XlsBook:
    """An .xls file through xlrd: one sheet in memory at a time (at most 65,536 rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        magic = sniff(path)
        if magic.startswith(ZIP_MAGIC):
            raise SourceError(
                path,
                "an .xlsx workbook with an .xls name",
                "rename it to .xlsx and load again",
            )
        if not magic.startswith(OLE2_MAGIC[:4]):
            raise SourceError(path, "not an Excel 97-2003 workbook (.xls)", RESAVE)
        size = stamp(path)[0]
        if size > MAX_XLS_BYTES:  # xlrd reads the whole file, then a sheet at a time
            raise too_big(path, "the file", size, MAX_XLS_BYTES, " bytes")
        try:
            import xlrd
        except ImportError as exc:  # declared by the project; a broken install lacks it
            raise SourceError(
                path, "reading .xls needs the xlrd package", "pip install xlrd"
            ) from exc
        self.xlrd = xlrd
        try:
            self.book = xlrd.open_workbook(
                str(path), on_demand=True, ragged_rows=True, logfile=io.StringIO()
            )
        except xlrd.biffh.XLRDError as exc:
            message = str(exc)
            if "encrypt" in message.lower() or "password" in message.lower():
                raise SourceError(
                    path,
                    "encrypted or password-protected workbook",
                    "save it without a password and load again",
                ) from exc
            raise SourceError(path, f"cannot read the workbook ({message})", RESAVE) from exc
        except (EOFError, OSError, ValueError, IndexError, KeyError, AssertionError) as exc:
            raise SourceError(path, f"truncated or damaged workbook ({exc!r})", RECOPY) from exc
        self.nsheets = self.book.nsheets

    def release(self) -> None:
        self.book.release_resources()

    def sheet_rows(self, index: int) -> tuple[str, list[list[object]]]:
        """Sheet `index` as typed rows from row 1 (trailing blank rows dropped)."""
        xlrd = self.xlrd
        try:
            sheet = self.book.sheet_by_index(index)
        except Exception as exc:  # xlrd raises assorted errors on damaged BIFF records
            raise SourceError(
                self.path, f"truncated or damaged workbook, sheet {index + 1} ({exc!r})", RECOPY
            ) from exc
        cells = sheet.nrows * sheet.ncols
        if cells > MAX_SHEET_CELLS:
            shape = f"{sheet.nrows:,} rows x {sheet.ncols:,} columns"
            what = f"sheet {sheet.name!r}, used range of {shape}"
            raise too_big(self.path, what, cells, MAX_SHEET_CELLS, " cells")
        mode = self.book.datemode
        rows: list[list[object]] = []
        for r in range(sheet.nrows):
            out: list[object] = []
            for cell in sheet.row(r):
                t, v = cell.ctype, cell.value
                if t == xlrd.XL_CELL_TEXT:
                    out.append(v)
                elif t == xlrd.XL_CELL_NUMBER:
                    out.append(float(v))
                elif t == xlrd.XL_CELL_DATE:
                    out.append(_xls_date(xlrd, v, mode))
                elif t == xlrd.XL_CELL_BOOLEAN:
                    out.append(bool(v))
                elif t == xlrd.XL_CELL_ERROR:
                    out.append(CellError(xlrd.error_text_from_code.get(v, f"#ERR{v}")))
                else:  # XL_CELL_EMPTY, XL_CELL_BLANK
                    out.append(None)
            rows.append(out)
        self.book.unload_sheet(index)
        while rows and all(v is None or v == "" for v in rows[-1]):
            rows.pop()
        return sheet.name, rows


def _xls_date(xlrd, value: float, datemode: int) -> object:
    """An .xls date cell as calamine gives an .xlsx one: time, date or datetime."""
    try:
        if value < 1.0:
            return xlrd.xldate.xldate_as_datetime(value, datemode).time()
        moment = xlrd.xldate.xldate_as_datetime(value, datemode)
    except (xlrd.xldate.XLDateError, OverflowError, ValueError):
        return float(value)
    return moment.date() if value == int(value) else moment


def _xls_source(
    path: Path, index: int, name: str, rows: list[list[object]], opened: Stamp
) -> Source:
    blank = (None, "")
    first_row = next(i for i, r in enumerate(rows) if any(v not in blank for v in r))
    filled_cols = [i for r in rows for i, v in enumerate(r) if v not in blank]
    first_col, width = min(filled_cols), max(filled_cols) + 1
    header = find_header(rows[first_row : first_row + HEADER_WINDOW], first_row, first_col, width)
    first_data, last = header.first_data, len(rows)
    del rows

    def iterate() -> Iterator[tuple[int, list[str | None]]]:
        check_unchanged(path, opened)
        book = _XlsBook(path)
        sheet_name, again = book.sheet_rows(index)
        book.release()
        if sheet_name != name or len(again) != last:
            raise SourceError(path, f"sheet {name!r} changed since it was opened", "load again")
        for r in range(first_data, last):
            yield r + 1, [spreadsheet_text(v) for v in (list(again[r]) + [None] * width)[:width]]

    return Source(
        file=path,
        file_kind="xls",
        sheet=name,
        headers=header.cells,
        header_row=header.row,
        row_count_hint=last - first_data,
        notes=header.notes,
        _rows=iterate,
        above_header=header.above,
    )
