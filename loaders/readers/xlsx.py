"""Workbooks (.xlsx, .xlsm): one Source per sheet, every cell as text, by python-calamine.

**Positions are what a user sees in Excel.** Row numbers are spreadsheet rows and cell *i*
of a row is spreadsheet column *i + 1* (A = 1), even when the used range starts lower or
further right: a sheet whose row 1 and column A are empty still yields row 2 as row 2, with
None for column A. The width of every row is the sheet's rightmost used column. The header
row is found by the rule in `header.py`.

**How calamine reports cells** (python-calamine 0.9): text as str; numbers as float
(1400103.0); booleans as bool; date cells (a number with a date format) as `date` when whole,
`datetime` otherwise, `time` below 1.0, and `timedelta` for `[h]:mm` durations; blank cells
*and error cells* as "". The error cells are read from the sheet XML (`sheet_xml.py`) and
their codes put back at their positions, checking that calamine saw nothing there.
`iter_rows()` pads the top (one "" row per row above the used range) but not the left (its
rows start at the used range's first column); both offsets are taken from
`CalamineSheet.start` and checked while iterating.

**Memory.** calamine parses a whole sheet into its own memory, so a sheet whose XML is larger
than SLICE_BYTES is parsed in slices, one at a time (`sheet_xml.xml_slices`). Rows are
converted to text one at a time. `open_workbook` parses every sheet once to find its used
range and header row, and `rows()` parses it again: a damaged sheet fails before anything is
written. Before calamine sees the file, and before it parses each sheet or slice, `bounds.py`
checks what it would allocate (package sizes, shared strings, declared dimension, the range a
parse spans and the text it clones): a crafted file is refused with one line at open, and
peak memory stays under about 900 MiB for any file (see `bounds.py`). Those checks run at
open only: `rows()` reads the same file (size and mtime checked) again.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

from loaders.readers import bounds
from loaders.readers.base import Source, SourceError
from loaders.readers.cells import CellError, spreadsheet_text
from loaders.readers.header import HEADER_WINDOW, find_header
from loaders.readers.sheet_xml import (
    ErrorCells,
    Package,
    RowsWithoutNumbers,
    errors_in,
    scan_error_cells,
    xml_slices,
)
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
from loaders.readers.xls import open_xls

SLICE_BYTES = 16 << 20  # sheet XML parsed by calamine at a time (see "Memory" above)
SHEET_KINDS = {"ChartSheet": "chart sheet", "DialogSheet": "dialog sheet",
               "MacroSheet": "macro sheet", "Vba": "VBA module"}  # fmt: skip

REPORT = "the reader and calamine disagree about this sheet: please report it with the file"


# --------------------------------------------------------------------------------------------
# Opening


def _ole2_problem(path: Path) -> SourceError:
    """An OLE2 compound file with an .xlsx name: an encrypted workbook, or a renamed .xls."""
    encrypted = "EncryptedPackage".encode("utf-16-le")
    legacy = ("Workbook".encode("utf-16-le"), "Book\x00".encode("utf-16-le"))
    saw_legacy = False
    with path.open("rb") as f:
        prev = b""
        for block in iter(lambda: f.read(1 << 20), b""):
            window = prev + block
            if encrypted in window:
                break
            saw_legacy = saw_legacy or any(name in window for name in legacy)
            prev = block[-64:]
        else:
            if saw_legacy:
                return SourceError(
                    path,
                    "an Excel 97-2003 workbook (.xls) with an .xlsx name",
                    "rename it to .xls, or save it as .xlsx in Excel, and load again",
                )
    return SourceError(
        path,
        "encrypted or password-protected workbook",
        "save it without a password and load again",
    )


def _check_zip(path: Path) -> zipfile.ZipFile:
    magic = sniff(path)
    if magic.startswith(OLE2_MAGIC[:4]):
        raise _ole2_problem(path)
    if not magic.startswith(ZIP_MAGIC):
        raise SourceError(path, "not an Excel workbook (not a zip archive)", RESAVE)
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SourceError(path, f"truncated or damaged workbook ({exc})", RECOPY) from exc


def _open_calamine(path: Path, data: io.BytesIO | None = None) -> python_calamine.CalamineWorkbook:
    try:
        if data is not None:
            return python_calamine.CalamineWorkbook.from_filelike(data)
        return python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError as exc:
        raise SourceError(
            path,
            "encrypted or password-protected workbook",
            "save it without a password and load again",
        ) from exc
    except python_calamine.ZipError as exc:
        raise SourceError(path, f"truncated or damaged workbook ({exc})", RECOPY) from exc
    except (python_calamine.CalamineError, OSError, ValueError) as exc:
        raise SourceError(path, f"cannot read the workbook ({exc})", RESAVE) from exc


def _load_sheet(
    wb: python_calamine.CalamineWorkbook, path: Path, name: str
) -> python_calamine.CalamineSheet:
    try:
        return wb.get_sheet_by_name(name)
    except (python_calamine.CalamineError, OSError, ValueError) as exc:
        raise SourceError(path, f"cannot read sheet {name!r} ({exc})", RESAVE) from exc


# --------------------------------------------------------------------------------------------
# A worksheet, in one or more calamine parses


class _Extent:
    """The used range: 0-based first and last row and column of the cells with a value."""

    def __init__(self) -> None:
        self.first_row = self.first_col = self.last_row = self.last_col = -1

    @property
    def empty(self) -> bool:
        return self.last_row < 0

    def add(self, start: tuple[int, int] | None, end: tuple[int, int] | None) -> None:
        if start is None or end is None:
            return
        if self.empty:
            (self.first_row, self.first_col), (self.last_row, self.last_col) = start, end
            return
        self.first_row = min(self.first_row, start[0])
        self.first_col = min(self.first_col, start[1])
        self.last_row = max(self.last_row, end[0])
        self.last_col = max(self.last_col, end[1])

    @property
    def width(self) -> int:  # columns A .. the last used column
        return self.last_col + 1

    def key(self) -> tuple[int, int, int, int]:
        return (self.first_row, self.first_col, self.last_row, self.last_col)


def _with_errors(
    raw: list, row0: int, first_col: int, errors: ErrorCells, path: Path, sheet: str
) -> list:
    """Put the error codes of row `row0` back where calamine left ""."""
    raw = list(raw)
    for col, code in errors[row0]:
        i = col - first_col
        if not 0 <= i < len(raw) or raw[i] != "":
            seen = repr(raw[i]) if 0 <= i < len(raw) else "outside the used range"
            raise SourceError(
                path,
                f"sheet {sheet!r}: the error cell at row {row0 + 1}, column {col + 1} is not "
                f"where calamine has it ({seen})",
                REPORT,
            )
        raw[i] = CellError(code)
    return raw


class _Parse:
    """One calamine parse of (part of) a sheet: its used range and its error cells. The
    generator that made it drops the range before it parses the next part."""

    def __init__(self, sheet: python_calamine.CalamineSheet, errors: ErrorCells) -> None:
        self.sheet: python_calamine.CalamineSheet | None = sheet
        self.start, self.end, self.errors = sheet.start, sheet.end, errors


class _Sheet:
    """One worksheet of an open .xlsx, read in one or more calamine parses (slices)."""

    def __init__(
        self, path: Path, package: Package, wb, name: str, strings: bounds.SharedStrings | None
    ) -> None:
        self.path, self.package, self.wb, self.name = path, package, wb, name
        # What each parse is checked against (`bounds.check_parse`) at open; None in rows():
        # the same file (size and mtime checked), already checked, so not scanned again.
        self.strings = strings
        self.member = package.members.get(name)
        if self.member is None:
            raise SourceError(path, f"sheet {name!r} has no worksheet part", RESAVE)
        self.seen = _Extent()  # the used range of the parses made so far

    def _sheets(self) -> Iterator[tuple[python_calamine.CalamineSheet, ErrorCells]]:
        path, name, member, strings = self.path, self.name, self.member, self.strings
        if self.package.size(member) <= SLICE_BYTES:
            xml = self.package.zf.read(member)  # zipfile stops at the declared size
            if strings is not None:
                bounds.check_parse(path, name, xml, strings)
            errors: ErrorCells = {}
            errors_in(xml, errors, path, name)
            del xml
            yield _load_sheet(self.wb, path, name), errors
            return
        parsed = 0
        try:
            for xml in xml_slices(self.package.zf, member, SLICE_BYTES):
                if strings is not None:
                    bounds.check_parse(path, name, xml, strings)
                errors = {}
                errors_in(xml, errors, path, name)
                book = _open_calamine(path, self.package.wrap(member, xml))
                del xml
                try:
                    sheet = _load_sheet(book, path, name)
                finally:
                    book.close()  # the sheet keeps its range; the workbook's buffer goes
                parsed += 1
                yield sheet, errors
                del sheet
        except RowsWithoutNumbers:
            if parsed:
                raise SourceError(
                    path, f"sheet {name!r}: some rows have no row number", RESAVE
                ) from None
            # Rows numbered by their position only: calamine parses the sheet whole, from the
            # file, so its true size and its whole range are checked first.
            zf = self.package.zf
            if strings is None:
                errors = scan_error_cells(zf, member, path, name)
                yield _load_sheet(self.wb, path, name), errors
                return
            bounds.check_true_size(path, zf, zf.getinfo(member))
            scan, text = bounds.RangeScan(), [0]

            def each(rows: bytes) -> None:
                scan.feed(rows)
                text[0] += bounds.string_bytes(rows, 0, len(rows), strings)

            errors = scan_error_cells(zf, member, path, name, each)
            bounds.check_scanned(path, name, scan, text[0])
            yield _load_sheet(self.wb, path, name), errors

    def parses(self) -> Iterator[_Parse]:
        """The sheet as calamine ranges, top to bottom, one in memory at a time."""
        try:
            for sheet, errors in self._sheets():
                parse = _Parse(sheet, errors)
                del sheet
                self.seen.add(parse.start, parse.end)
                if parse.start is None and errors:
                    raise SourceError(
                        self.path, f"sheet {self.name!r}: error cells outside the range", REPORT
                    )
                try:
                    yield parse
                finally:
                    parse.sheet = None
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise SourceError(
                self.path, f"truncated or damaged workbook, sheet {self.name!r} ({exc})", RECOPY
            ) from exc

    def typed_rows(self, parse: _Parse, stop: int | None = None) -> Iterator[tuple[int, list]]:
        """(0-based row, typed cells from column A) for the rows of one parse's used range,
        up to row `stop` (exclusive) when given. Blank cells are "", errors CellError."""
        if parse.start is None or parse.end is None or parse.sheet is None:
            return
        (first_row, first_col), last_row = parse.start, parse.end[0]
        errors, path, name = parse.errors, self.path, self.name
        pad = [""] * first_col
        # iter_rows() yields one padding row per row above the range: skip them in C.
        rows = islice(parse.sheet.iter_rows(), first_row, None)
        row0 = first_row - 1
        for row0, raw in enumerate(rows, start=first_row):
            if stop is not None and row0 >= stop:
                return
            if row0 in errors:
                raw = _with_errors(raw, row0, first_col, errors, path, name)
            yield row0, (pad + raw if first_col else raw)
        if row0 != last_row:
            raise SourceError(
                path,
                f"sheet {name!r}: calamine gave rows up to {row0 + 1}, expected {last_row + 1}",
                REPORT,
            )


# --------------------------------------------------------------------------------------------
# Sources


def open_workbook(path: Path) -> list[Source]:
    """One Source per sheet of an .xlsx/.xlsm workbook, in workbook order."""
    if path.suffix.lower() == ".xls":
        return open_xls(path)
    with _check_zip(path) as zf:
        bounds.check_directory(path, zf)
        package = _package(path, zf)
        strings = _check_bounds(path, zf, package)
        wb = _open_calamine(path)
        opened = stamp(path)
        sources = []
        try:
            for meta in wb.sheets_metadata:
                notes = []
                if meta.visible != python_calamine.SheetVisibleEnum.Visible:
                    notes.append("hidden sheet")
                if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
                    kind = str(meta.typ).rsplit(".", 1)[-1]
                    notes.append(f"{SHEET_KINDS.get(kind, kind)}: no cells")
                    sources.append(empty_source(path, "xlsx", meta.name, notes))
                    continue
                sheet = _Sheet(path, package, wb, meta.name, strings)
                sources.append(_sheet_source(sheet, notes, opened))
        finally:
            wb.close()
    return sources


def _check_bounds(path: Path, zf: zipfile.ZipFile, package: Package) -> bounds.SharedStrings:
    """What `bounds` checks before calamine opens the workbook (after the zip directory):
    the parts' true sizes, the shared strings, every sheet's declared dimension. The large
    sheets calamine never reads from the file itself (they are sliced) are not inflated
    twice."""
    try:
        sliced = {m for m in package.members.values() if _size(zf, m) > SLICE_BYTES}
        bounds.check_inflated(path, zf, sliced)
        for member in package.support:
            size = _size(zf, member)
            if member != package.shared_strings and size > bounds.MAX_SUPPORT_BYTES:
                raise bounds.too_big(path, f"part {member}", size, bounds.MAX_SUPPORT_BYTES,
                                     " bytes uncompressed")  # fmt: skip
        strings = bounds.check_shared_strings(path, zf, package.shared_strings)
        for name, member in package.members.items():
            if member in zf.NameToInfo:
                bounds.check_dimension(path, zf, member, name)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise SourceError(path, f"truncated or damaged workbook ({exc})", RECOPY) from exc
    return strings


def _size(zf: zipfile.ZipFile, member: str) -> int:
    info = zf.NameToInfo.get(member)
    return info.file_size if info is not None else 0


def _package(path: Path, zf: zipfile.ZipFile) -> Package:
    try:
        return Package(zf)
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise SourceError(path, f"not a readable Excel workbook ({exc})", RESAVE) from exc


def _sheet_source(sheet: _Sheet, notes: list[str], opened: Stamp) -> Source:
    """Find the sheet's used range and header row (one pass of calamine over the sheet)."""
    path, name = sheet.path, sheet.name
    window: dict[int, list] = {}  # the first rows of the used range, typed, from column A
    for parse in sheet.parses():
        if parse.start is not None and parse.start[0] < sheet.seen.first_row + HEADER_WINDOW:
            stop = sheet.seen.first_row + HEADER_WINDOW
            window.update(sheet.typed_rows(parse, stop))
    ext = sheet.seen
    if ext.empty:
        return empty_source(path, "xlsx", name, [*notes, "empty sheet"])
    bounds.check_extent(path, name, ext.last_row + 1, ext.width)
    top = range(ext.first_row, min(ext.last_row + 1, ext.first_row + HEADER_WINDOW))
    header = find_header([window.get(r, []) for r in top], ext.first_row, ext.first_col, ext.width)
    first_data = header.first_data

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        return _iter_sheet(sheet.path, name, ext, first_data, opened)

    return Source(
        file=path,
        file_kind="xlsx",
        sheet=name,
        headers=header.cells,
        header_row=header.row,
        row_count_hint=ext.last_row + 1 - first_data,
        notes=[*notes, *header.notes],
        _rows=rows,
        above_header=header.above,
    )


def _iter_sheet(
    path: Path,
    name: str,
    ext: _Extent,
    first_data: int,
    opened: Stamp,
) -> Iterator[tuple[int, list[str | None]]]:
    """Rows `first_data` + 1 .. the last used row of one sheet, as text; blank rows included."""
    check_unchanged(path, opened)
    width = ext.width
    blank = [None] * width
    text = spreadsheet_text
    with _check_zip(path) as zf:
        package = _package(path, zf)
        wb = _open_calamine(path)
        try:
            sheet = _Sheet(path, package, wb, name, None)  # checked at open
            next_row = first_data  # 0-based: the next row to yield
            for parse in sheet.parses():
                for row0, typed in sheet.typed_rows(parse):
                    if row0 < next_row:
                        continue
                    while next_row < row0:  # blank rows: above the used range, between parses
                        yield next_row + 1, list(blank)
                        next_row += 1
                    cells = [text(v) for v in typed]
                    if len(cells) < width:
                        cells += blank[len(cells) :]
                    elif len(cells) > width:
                        raise SourceError(
                            path, f"sheet {name!r} changed since it was opened", "load it again"
                        )
                    yield row0 + 1, cells
                    next_row = row0 + 1
        except python_calamine.CalamineError as exc:
            raise SourceError(path, f"cannot read sheet {name!r} ({exc})", RESAVE) from exc
        finally:
            wb.close()
    seen = sheet.seen
    if seen.key() != ext.key():
        raise SourceError(path, f"sheet {name!r} changed since it was opened", "load it again")
