"""Workbooks (.xlsx, .xlsm, .xls): one Source per sheet, every cell as text, by python-calamine.

**Positions are what a user sees in Excel.** Row numbers are spreadsheet rows and cell *i*
of a row is spreadsheet column *i + 1* (A = 1), even when the used range starts lower or
further right: a sheet whose row 1 and column A are empty still yields row 2 as row 2, with
None for column A. The width of every row is the sheet's rightmost used column.

**Header row** (deterministic, the same rule for every sheet): look at the first 10 rows of
the used range (from its first non-blank row); the header row is the first of them whose
non-empty cells number at least max(2, half the used range's width, rounded up) and of which
at least 60 % are text cells (numbers, dates, booleans and errors are not text). If no row
qualifies the sheet has no header row: `header_row` is None, `headers` are all None, every row
from row 1 to the last used row is data, and the notes say "no header row". With a header
row, data is every row below it down to the last used row, blank rows included; the non-blank
rows above it (a title row such as area, driver and plate above a dispatch sheet's header)
are kept in `Source.above_header`.

**How calamine reports cells** (python-calamine 0.9): text as str; numbers as float (1400103.0),
in .xls sometimes int; booleans as bool; date cells (a number with a date format) as `date`
when whole, `datetime` otherwise, `time` below 1.0, and `timedelta` for `[h]:mm` durations;
blank cells *and error cells* as "" (issue dimastbk/python-calamine#105: the error code is
dropped). Error cells are therefore read from the sheet XML directly: a streaming scan of each
worksheet part finds the `t="e"` cells and their cached code (`#NAME?`, `#REF!`, ...), and the
reader puts the code back at that position, checking that calamine saw nothing there.
`iter_rows()` pads the top (it yields one "" row per row above the used range) but not the
left (its rows start at the used range's first column); both offsets are taken from
`CalamineSheet.start` and checked while iterating.

**Memory.** calamine parses a whole sheet into its own memory: about 1.3 KiB a row for the
history layout (a single sheet of 349,920 rows peaks at 461 MiB RSS). So a sheet whose XML
is larger than SLICE_BYTES (16 MiB, about 35,000 history rows) is cut, at row boundaries, into
slices that calamine parses one at a time: each slice is wrapped into a small workbook in
memory with the original styles, shared strings and workbook parts, and its cells keep their
`r="B7"` positions, so calamine places them exactly as in the whole sheet (a test compares
the two). Peak RSS then stays near 150 MiB whatever the sheet's size, for 5-15 % more time.
Rows are converted to text one at a time. `open_file` parses every sheet once to find its
used range and header row, and `rows()` parses it again: a damaged sheet fails before
anything is written, at the cost of parsing twice.

.xls (Excel 97-2003) files are read by calamine as well, but calamine drops their error cells
just the same and there is no XML to recover them from: an .xls sheet is read with xlrd
instead, which reports error cells with their codes (see `_XlsBook`).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

import python_calamine

from loaders.readers.base import Source, SourceError
from loaders.readers.cells import CellError, spreadsheet_text

HEADER_WINDOW = 10  # rows of the used range examined for a header row
HEADER_TEXT_SHARE = 0.6  # share of a header row's non-empty cells that must be text
SLICE_BYTES = 16 << 20  # sheet XML parsed by calamine at a time (see "Memory" above)
SUPPORT_PARTS = ("styles", "sharedStrings", "theme")  # what calamine reads besides the sheet
SHEET_KINDS = {"ChartSheet": "chart sheet", "DialogSheet": "dialog sheet",
               "MacroSheet": "macro sheet", "Vba": "VBA module"}  # fmt: skip

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"

RESAVE = "open it in Excel, save it as .xlsx and load again"
RECOPY = "copy or export the file again (it may have been cut short) and load again"
REPORT = "the reader and calamine disagree about this sheet: please report it with the file"


# --------------------------------------------------------------------------------------------
# Header rule


def detect_header(rows: list[list[object]], width: int) -> int | None:
    """Index (0-based, in `rows`) of the header row among the first rows of the used range.

    `rows` are typed cell values (None or "" for blank, CellError for errors); `width` is the
    used range's width. See the module docstring for the rule.
    """
    need = max(2, -(-width // 2))
    for i, row in enumerate(rows[:HEADER_WINDOW]):
        filled = [v for v in row if v is not None and v != ""]
        if len(filled) < need:
            continue
        text = sum(1 for v in filled if isinstance(v, str))
        if text >= HEADER_TEXT_SHARE * len(filled):
            return i
    return None


# --------------------------------------------------------------------------------------------
# Error cells, from the sheet XML


_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*?\bt\s*=\s*([\"'])e\1[^>]*>")
_CELL_REF = re.compile(rb"\br\s*=\s*[\"']([A-Z]{1,3})([0-9]+)[\"']")
_VALUE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?v(?:\s[^>]*)?>([^<]*)<|</(?:[A-Za-z_][\w.-]*:)?c>")
_ROW_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?row>")

ErrorCells = dict[int, list[tuple[int, str]]]  # 0-based row -> [(0-based column, code)]


def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def _errors_in(buf: bytes, found: ErrorCells, path: Path, sheet: str) -> None:
    """Add the error cells of `buf` (a run of whole rows of sheet XML) to `found`."""
    for quote in (b'"e"', b"'e'"):
        pos = buf.find(quote)
        while pos >= 0:
            start = buf.rfind(b"<", 0, pos)
            end = buf.find(b">", pos)
            tag = _CELL_TAG.fullmatch(buf, start, end + 1) if start >= 0 and end >= 0 else None
            if tag:
                ref = _CELL_REF.search(tag.group(0))
                if not ref:
                    raise SourceError(
                        path,
                        f"sheet {sheet!r} has an error cell without a cell reference",
                        RESAVE,
                    )
                code = None
                if not tag.group(0).endswith(b"/>"):
                    value = _VALUE.search(buf, end + 1)
                    if value and value.group(1) is not None:
                        code = unescape(value.group(1).decode("utf-8")).strip()
                if code:
                    row = int(ref.group(2)) - 1
                    found.setdefault(row, []).append((_column_index(ref.group(1)), code))
            pos = buf.find(quote, pos + 3)


def _last_row_end(buf: bytes, end: int | None = None) -> int:
    """The offset just after the last `</row>` (or `</x:row>`) in `buf[:end]`, or -1."""
    pos = len(buf) if end is None else end
    while True:
        pos = buf.rfind(b"row>", 0, pos)
        if pos < 0:
            return -1
        if _ROW_END.match(buf, buf.rfind(b"<", 0, pos)):
            return pos + 4


def scan_error_cells(zf: zipfile.ZipFile, member: str, path: Path, sheet: str) -> ErrorCells:
    """Every error cell of one worksheet part, streaming (1 MiB at a time, whole rows)."""
    found: ErrorCells = {}
    with zf.open(member) as f:
        tail = b""
        while True:
            chunk = f.read(1 << 20)
            buf = tail + chunk
            if chunk:
                cut = _last_row_end(buf)
                if cut < 0:
                    tail = buf
                    continue
                buf, tail = buf[:cut], buf[cut:]
            if b"'e'" in buf or b'"e"' in buf:
                _errors_in(buf, found, path, sheet)
            if not chunk:
                return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rel_targets(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, zip member) for the part `part` ("" for the package)."""
    folder, name = posixpath.split(part)
    out = {}
    for rel in ElementTree.fromstring(zf.read(posixpath.join(folder, "_rels", name + ".rels"))):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        if target.startswith("/"):
            member = target.lstrip("/")
        else:
            member = posixpath.normpath(posixpath.join(folder, target))
        out[rel.get("Id", "")] = (rel.get("Type", ""), member)
    return out


class _Package:
    """Where each sheet of an .xlsx is, and the parts calamine needs to read a sheet."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        workbook = "xl/workbook.xml"
        for kind, member in _rel_targets(zf, "").values():
            if kind.endswith("/officeDocument"):
                workbook = member
        targets = _rel_targets(zf, workbook)
        self.members: dict[str, str] = {}  # sheet name -> worksheet part
        for el in ElementTree.fromstring(zf.read(workbook)).iter():
            if _local(el.tag) == "sheet":
                rid = next(
                    (v for k, v in el.attrib.items() if k.startswith("{") and _local(k) == "id"),
                    "",
                )
                if rid in targets:
                    self.members[el.get("name", "")] = targets[rid][1]
        folder, name = posixpath.split(workbook)
        self.support = [
            "[Content_Types].xml",
            "_rels/.rels",
            workbook,
            posixpath.join(folder, "_rels", name + ".rels"),
            *(m for kind, m in targets.values() if kind.rsplit("/", 1)[-1] in SUPPORT_PARTS),
        ]
        self._support: dict[str, bytes] | None = None

    def size(self, member: str) -> int:
        return self.zf.getinfo(member).file_size

    def wrap(self, member: str, sheet_xml: bytes) -> io.BytesIO:
        """A workbook in memory: the support parts, and `sheet_xml` as the sheet `member`."""
        if self._support is None:
            names = set(self.zf.namelist())
            self._support = {m: self.zf.read(m) for m in self.support if m in names}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            for name, data in self._support.items():
                z.writestr(name, data)
            z.writestr(member, sheet_xml)
        out.seek(0)
        return out


def sheet_members(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> worksheet zip member, from the package relationships and workbook.xml."""
    return _Package(zf).members


_SHEET_DATA = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)sheetData\b[^>]*?(/?)>")
_ROOT = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)worksheet\b")
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row\b([^>]*)>")
_HAS_R = re.compile(rb"\br\s*=")


def _slice_end(buf: bytes, limit: int, body: int) -> int:
    """Where to cut `buf[:body]` (rows of sheet XML): after the last row ending within
    `limit` bytes, else after the first row ending beyond it; -1 when no row ends there."""
    cut = _last_row_end(buf, limit)
    if cut > 0:
        return cut
    found = _ROW_END.search(buf, limit, body)
    return found.end() if found else -1


class _RowsWithoutNumbers(Exception):
    """Rows without an r attribute: calamine numbers them by position, so no slicing."""


def xml_slices(zf: zipfile.ZipFile, member: str, limit: int) -> Iterator[bytes]:
    """A worksheet part cut into complete worksheet documents of about `limit` bytes: the
    part's head (up to `<sheetData>`), a run of whole rows, and the closing tags. Cells keep
    their own row and column numbers (`r="B7"`), so calamine places them where they were.
    What follows `</sheetData>` (merged cells, hyperlinks, page setup) holds no cell value."""
    with zf.open(member) as f:
        buf = bytearray()
        while True:
            chunk = f.read(1 << 20)
            buf += chunk
            found = _SHEET_DATA.search(buf)
            if found:
                break
            if not chunk:
                raise zipfile.BadZipFile(f"{member}: no sheetData element")
        root = _ROOT.search(buf, 0, found.start())
        close_root = b"</" + (root.group(1) if root else b"") + b"worksheet>"
        head = bytes(buf[: found.end()])
        if found.group(2):  # <sheetData/>: no rows
            yield head + close_root
            return
        end_tag = b"</" + found.group(1) + b"sheetData>"
        close = end_tag + close_root
        del buf[: found.end()]
        step = min(1 << 20, max(limit, 4096))
        searched = 0  # no end tag starts before buf[searched]
        last = False
        while not last:
            stop = buf.find(end_tag, searched)
            searched = stop if stop >= 0 else max(0, len(buf) - len(end_tag) + 1)
            body = stop if stop >= 0 else len(buf)  # the rows end before this
            if body >= limit and (cut := _slice_end(buf, limit, body)) >= 0:
                rows = buf[:cut]
                del buf[:cut]
                searched = max(0, searched - cut)
            elif stop >= 0:
                rows, last = buf[:stop], True
                del buf
                while f.read(1 << 20):  # read to the end: the zip checks the part's CRC
                    pass
            else:
                chunk = f.read(step)
                if not chunk:
                    raise zipfile.BadZipFile(f"{member}: sheetData is not closed")
                buf += chunk
                continue
            first = _ROW_TAG.search(rows)
            if first and not _HAS_R.search(first.group(1)):
                raise _RowsWithoutNumbers(member)
            yield b"".join((head, rows, close))
            del rows


# --------------------------------------------------------------------------------------------
# Opening


def _sniff(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(8)
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc


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
    magic = _sniff(path)
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

    @property
    def range_width(self) -> int:
        return self.last_col - self.first_col + 1

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

    def __init__(self, path: Path, package: _Package, wb, name: str) -> None:
        self.path, self.package, self.wb, self.name = path, package, wb, name
        self.member = package.members.get(name)
        if self.member is None:
            raise SourceError(path, f"sheet {name!r} has no worksheet part", RESAVE)
        self.seen = _Extent()  # the used range of the parses made so far

    def _sheets(self) -> Iterator[tuple[python_calamine.CalamineSheet, ErrorCells]]:
        path, name, member = self.path, self.name, self.member
        if self.package.size(member) <= SLICE_BYTES:
            errors = scan_error_cells(self.package.zf, member, path, name)
            yield _load_sheet(self.wb, path, name), errors
            return
        parsed = 0
        try:
            for xml in xml_slices(self.package.zf, member, SLICE_BYTES):
                errors: ErrorCells = {}
                _errors_in(xml, errors, path, name)
                book = _open_calamine(path, self.package.wrap(member, xml))
                del xml
                try:
                    sheet = _load_sheet(book, path, name)
                finally:
                    book.close()  # the sheet keeps its range; the workbook's buffer goes
                parsed += 1
                yield sheet, errors
                del sheet
        except _RowsWithoutNumbers:
            if parsed:
                raise SourceError(
                    path, f"sheet {name!r}: some rows have no row number", RESAVE
                ) from None
            # Rows numbered by their position only: parse the sheet whole.
            errors = scan_error_cells(self.package.zf, member, path, name)
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


def open_workbook(path: Path) -> list[Source]:
    """One Source per sheet of an .xlsx/.xlsm workbook, in workbook order."""
    if path.suffix.lower() == ".xls":
        return open_xls(path)
    with _check_zip(path) as zf:
        package = _package(path, zf)
        wb = _open_calamine(path)
        stamp = _stamp(path)
        sources = []
        try:
            for meta in wb.sheets_metadata:
                notes = []
                if meta.visible != python_calamine.SheetVisibleEnum.Visible:
                    notes.append("hidden sheet")
                if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
                    kind = str(meta.typ).rsplit(".", 1)[-1]
                    notes.append(f"{SHEET_KINDS.get(kind, kind)}: no cells")
                    sources.append(_empty_source(path, "xlsx", meta.name, notes))
                    continue
                sheet = _Sheet(path, package, wb, meta.name)
                sources.append(_sheet_source(sheet, notes, stamp))
        finally:
            wb.close()
    return sources


def _package(path: Path, zf: zipfile.ZipFile) -> _Package:
    try:
        return _Package(zf)
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise SourceError(path, f"not a readable Excel workbook ({exc})", RESAVE) from exc


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: `rows()` checks the file is the one `open_file` read."""
    try:
        st = path.stat()
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc
    return st.st_size, st.st_mtime_ns


def check_unchanged(path: Path, stamp: tuple[int, int]) -> None:
    if _stamp(path) != stamp:
        raise SourceError(path, "the file changed since it was opened", "load it again")


def _empty_source(path: Path, kind: str, name: str, notes: list[str]) -> Source:
    return Source(
        file=path,
        file_kind=kind,
        sheet=name,
        headers=[],
        header_row=None,
        row_count_hint=0,
        notes=notes,
        _rows=lambda: iter(()),
    )


def _sheet_source(sheet: _Sheet, notes: list[str], stamp: tuple[int, int]) -> Source:
    """Find the sheet's used range and header row (one pass of calamine over the sheet)."""
    path, name = sheet.path, sheet.name
    window: dict[int, list] = {}  # the first rows of the used range, typed, from column A
    for parse in sheet.parses():
        if parse.start is not None and parse.start[0] < sheet.seen.first_row + HEADER_WINDOW:
            stop = sheet.seen.first_row + HEADER_WINDOW
            window.update(sheet.typed_rows(parse, stop))
    ext = sheet.seen
    if ext.empty:
        return _empty_source(path, "xlsx", name, [*notes, "empty sheet"])
    width = ext.width
    first = [
        (window.get(r, []) + [""] * width)[ext.first_col : width]
        for r in range(ext.first_row, min(ext.last_row + 1, ext.first_row + HEADER_WINDOW))
    ]
    found = detect_header(first, ext.range_width)
    above: list[tuple[int, list[str | None]]] = []
    if found is None:
        header_row, first_data = None, 0
        headers: list[str | None] = [None] * width
        notes = [*notes, "no header row"]
    else:
        header_row = first_data = ext.first_row + found + 1
        pad = [None] * ext.first_col
        headers = pad + [spreadsheet_text(v) for v in first[found]]
        for i, typed in enumerate(first[:found]):
            cells = pad + [spreadsheet_text(v) for v in typed]
            if any(c is not None for c in cells):
                above.append((ext.first_row + i + 1, cells))

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        return _iter_sheet(sheet.path, name, ext, first_data, stamp)

    return Source(
        file=path,
        file_kind="xlsx",
        sheet=name,
        headers=headers,
        header_row=header_row,
        row_count_hint=ext.last_row + 1 - first_data,
        notes=notes,
        _rows=rows,
        above_header=above,
    )


def _iter_sheet(
    path: Path, name: str, ext: _Extent, first_data: int, stamp: tuple[int, int]
) -> Iterator[tuple[int, list[str | None]]]:
    """Rows `first_data` + 1 .. the last used row of one sheet, as text; blank rows included."""
    check_unchanged(path, stamp)
    width = ext.width
    blank = [None] * width
    text = spreadsheet_text
    with _check_zip(path) as zf:
        package = _package(path, zf)
        wb = _open_calamine(path)
        try:
            sheet = _Sheet(path, package, wb, name)
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


# --------------------------------------------------------------------------------------------
# .xls (Excel 97-2003)


def open_xls(path: Path) -> list[Source]:
    """One Source per sheet of an .xls workbook, read with xlrd (error cells keep their code)."""
    book = _XlsBook(path)
    sources = []
    for index in range(book.nsheets):
        name, rows = book.sheet_rows(index)
        stamp = _stamp(path)
        if not rows:
            sources.append(_empty_source(path, "xls", name, ["empty sheet"]))
            continue
        sources.append(_xls_source(path, index, name, rows, stamp))
    book.release()
    return sources


class _XlsBook:
    """An .xls file through xlrd: one sheet in memory at a time (at most 65,536 rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        magic = _sniff(path)
        if magic.startswith(ZIP_MAGIC):
            raise SourceError(
                path,
                "an .xlsx workbook with an .xls name",
                "rename it to .xlsx and load again",
            )
        if not magic.startswith(OLE2_MAGIC[:4]):
            raise SourceError(path, "not an Excel 97-2003 workbook (.xls)", RESAVE)
        try:
            import xlrd
        except ImportError as exc:  # a dependency of csvkit, installed with the project
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
    path: Path, index: int, name: str, rows: list[list[object]], stamp: tuple[int, int]
) -> Source:
    blank = (None, "")
    first_row = next(i for i, r in enumerate(rows) if any(v not in blank for v in r))
    filled_cols = [i for r in rows for i, v in enumerate(r) if v not in blank]
    first_col, last_col = min(filled_cols), max(filled_cols)
    width = last_col + 1

    def fit(raw: list[object]) -> list[object]:
        return (list(raw) + [None] * width)[:width]

    window = [fit(r)[first_col:] for r in rows[first_row : first_row + HEADER_WINDOW]]
    found = detect_header(window, last_col - first_col + 1)
    notes: list[str] = []
    above: list[tuple[int, list[str | None]]] = []
    if found is None:
        header_row, headers, first_data = None, [None] * width, 0
        notes.append("no header row")
    else:
        header_row = first_row + found + 1
        headers = [spreadsheet_text(v) for v in fit(rows[header_row - 1])]
        first_data = header_row
        for r in range(first_row, header_row - 1):
            cells = [spreadsheet_text(v) for v in fit(rows[r])]
            if any(c is not None for c in cells):
                above.append((r + 1, cells))
    last = len(rows)
    del rows

    def iterate() -> Iterator[tuple[int, list[str | None]]]:
        check_unchanged(path, stamp)
        book = _XlsBook(path)
        sheet_name, again = book.sheet_rows(index)
        book.release()
        if sheet_name != name or len(again) != last:
            raise SourceError(path, f"sheet {name!r} changed since it was opened", "load again")
        for r in range(first_data, last):
            yield r + 1, [spreadsheet_text(v) for v in fit(again[r])]

    return Source(
        file=path,
        file_kind="xls",
        sheet=name,
        headers=headers,
        header_row=header_row,
        row_count_hint=last - first_data,
        notes=notes,
        _rows=iterate,
        above_header=above,
    )
