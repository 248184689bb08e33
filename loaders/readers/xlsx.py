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

**One parse a sheet.** calamine parses a whole sheet into its own memory, so a sheet whose
XML is larger than SLICE_BYTES is parsed in slices, one after the other
(`sheet_xml.xml_slices`). calamine parses in a thread of its own (it releases the GIL while it
parses). Before calamine sees the file, and before it parses each sheet or slice, `bounds.py`
checks what it would allocate (package sizes, shared strings, declared dimension, the range a
parse spans and the text it clones): a crafted file is refused with one line at open, and
peak memory stays bounded for any file (see `bounds.py`).

*A large sheet is streamed* (`_streamed_source`): open reads, checks and scans (error cells)
all its slices and keeps their XML (reserved against KEEP_BYTES), has calamine parse the
first slice (and the second behind it) in the parser thread and the last one, cut small
(TAIL_BYTES), in the opening thread, and takes the used range and header from those two
parses, when the checks prove the other slices cannot change them (`bounds.Shape`: no column
beyond theirs, no row after the last one's, none of the header rows). The first read
(`rows()`, or `copy_text`, the loader's COPY text) then turns each parse into text while
calamine parses the next slices (`_Stream`: one at a time, ahead of the one being read as
long as what waits to be read is small, OVERLAP_BYTES and WAITING_BYTES), a column of a batch
of rows at a time (`cells.ColumnText`), and builds the COPY text of a batch in one join. So
the loader's COPY, the server and calamine run side by side. A slice calamine cannot parse,
or an error cell calamine does not have where the XML has it, is then a SourceError during
the read (the loader rolls back). A sheet whose slices cannot prove it is read as below.

*Any other sheet is parsed at open*: as each parse (sheet or slice) comes, open finds the
used range and header row and turns every row into text (`cells.RowText`): a damaged sheet
fails at open, before anything is written. The rows are kept, as tuples, for the first
`rows()` (or `copy_text`) to stream, as long as what is kept, every open workbook together,
stays within KEEP_BYTES (an estimate, given back when the rows are read or the Source goes);
a sheet that does not fit is dropped, and its `rows()` has calamine parse the file again. While
Python reads one parse, the next slice is checked and scanned, and calamine parses it when the
one being read is small (OVERLAP_BYTES); else only once that one is dropped.

Every `rows()` checks that the file is the one opened (size and mtime); a `rows()` after the
first has calamine parse the file again, checked against what open found (the used range, no
row wider than the sheet), without the bounds checks of open.
"""

from __future__ import annotations

import io
import sys
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from itertools import islice, repeat
from operator import add, itemgetter
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

from loaders.readers import bounds
from loaders.readers.base import Source, SourceError
from loaders.readers.cells import CellError, ColumnText, RowText
from loaders.readers.header import HEADER_WINDOW, Header, find_header
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
KEEP_BYTES = 256 << 20  # text rows or XML kept from open for rows(), every workbook together
KEEP_STEP = 4096  # rows converted between two reservations against KEEP_BYTES
MEMO_BYTES = 16 << 20  # what the text of repeated values (`RowText`) may hold, a sheet
OVERLAP_BYTES = 96 << 20  # a parse at most this large lets calamine make the next beside it
TAIL_BYTES = 256 << 10  # the last slice of a streamed sheet, parsed at open for the last row
WAITING_BYTES = 160 << 20  # parses of a streamed sheet made ahead of the one being read
TO_PYTHON_CELLS = 1 << 20  # a parse of at most this many cells is read by one to_python()
SHEET_KINDS = {"ChartSheet": "chart sheet", "DialogSheet": "dialog sheet",
               "MacroSheet": "macro sheet", "Vba": "VBA module"}  # fmt: skip

REPORT = "the reader and calamine disagree about this sheet: please report it with the file"
COPY_BATCH = 4096  # rows in one chunk of copy_text
NULL = "\\N"  # COPY text's NULL


@dataclass
class XlsxSource(Source):
    """A worksheet: `rows()` as every reader gives, and `copy_text(prefix)`, the loader's
    fast path (`raw._load_source`): `rows()` as lines of PostgreSQL's COPY text format,
    `(rows, chunk)` per COPY_BATCH rows, each line `prefix` (the lineage fields, escaped),
    the row number and the cells (backslash, tab, newline and CR escaped, None as `\\N`),
    in UTF-8. It reads the rows as tuples (`_text_rows`), without the lists rows() makes;
    the first read of a streamed sheet builds its chunks from calamine's rows directly
    (`_copy_chunks`); when `rows` was replaced on the source (a test injecting a fault), it
    reads that."""

    _text_rows: Callable[[], Iterator[tuple[int, Sequence[str | None]]]] | None = None
    _copy_chunks: Callable[[bytes], Iterator[tuple[int, bytes]] | None] | None = None

    def copy_text(self, prefix: bytes) -> Iterator[tuple[int, bytes]]:
        replaced = "rows" in self.__dict__ or self._text_rows is None
        if not replaced and self._copy_chunks is not None:
            chunks = self._copy_chunks(prefix)
            if chunks is not None:  # the first read of a streamed sheet
                return chunks
        rows = self.rows() if replaced else self._text_rows()  # type: ignore[misc]
        return _copy_text(rows, len(self.headers), prefix)


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

    def bytes(self, text: int) -> int:
        """What calamine holds for this parse (about): its dense range, and `text`, the bound
        on the shared-string bytes its cells clone."""
        if self.start is None or self.end is None:
            return 0
        rows, cols = self.end[0] - self.start[0] + 1, self.end[1] - self.start[1] + 1
        return rows * cols * bounds.CALAMINE_CELL_BYTES + text


_Job = tuple[Callable[[], python_calamine.CalamineSheet], ErrorCells, int]
_parser: ThreadPoolExecutor | None = None


def _parser_thread() -> ThreadPoolExecutor:
    """The one thread calamine parses in (it releases the GIL while it parses), so that a
    sheet's next slice is parsed while Python turns the previous one into text."""
    global _parser
    if _parser is None:
        _parser = ThreadPoolExecutor(1, thread_name_prefix="luckygas-calamine")
    return _parser


def _parse_slice(path: Path, name: str, data: io.BytesIO) -> python_calamine.CalamineSheet:
    book = _open_calamine(path, data)
    try:
        return _load_sheet(book, path, name)
    finally:
        book.close()  # the sheet keeps its range; the workbook's buffer goes


def _text_bound(xml: bytes, longest: int) -> int:
    """The shared-string bytes a parse of `xml` may clone, without a scan: a string cell takes
    20 bytes of XML or more (`bounds.string_bytes`)."""
    return len(xml) // 20 * longest


class _Sheet:
    """One worksheet of an open .xlsx, read in one or more calamine parses (slices)."""

    def __init__(
        self,
        path: Path,
        package: Package,
        wb,
        name: str,
        strings: bounds.SharedStrings,
        check: bool = True,
    ) -> None:
        self.path, self.package, self.wb, self.name = path, package, wb, name
        # What each parse is checked against (`bounds.check_parse`), at open (check=True);
        # in rows() the same file (size and mtime checked), already checked, is not scanned
        # again. `strings` also bounds the text a parse holds (`_Parse.bytes`).
        self.strings, self.check = strings, check
        self.member = package.members.get(name)
        if self.member is None:
            raise SourceError(path, f"sheet {name!r} has no worksheet part", RESAVE)
        self.seen = _Extent()  # the used range of the parses made so far

    def _jobs(self) -> Iterator[_Job]:
        """Each parse to make, in order: its XML checked (`bounds.check_parse`) and its error
        cells scanned here, as a job that has calamine parse it, and its text bound."""
        path, name, member, strings = self.path, self.name, self.member, self.strings
        check, longest = self.check, strings.longest
        if self.package.size(member) <= SLICE_BYTES:
            xml = self.package.zf.read(member)  # zipfile stops at the declared size
            if check:
                bounds.check_parse(path, name, xml, strings)
            errors: ErrorCells = {}
            errors_in(xml, errors, path, name)
            text = _text_bound(xml, longest)
            del xml
            yield partial(_load_sheet, self.wb, path, name), errors, text
            return
        made = 0
        try:
            for xml in xml_slices(self.package.zf, member, SLICE_BYTES):
                if check:
                    bounds.check_parse(path, name, xml, strings)
                errors = {}
                errors_in(xml, errors, path, name)
                text = _text_bound(xml, longest)
                data = self.package.wrap(member, xml)
                del xml
                made += 1
                yield partial(_parse_slice, path, name, data), errors, text
                del data
        except RowsWithoutNumbers:
            if made:
                raise SourceError(
                    path, f"sheet {name!r}: some rows have no row number", RESAVE
                ) from None
            # Rows numbered by their position only: calamine parses the sheet whole, from the
            # file, so its true size and its whole range are checked first.
            zf = self.package.zf
            whole = partial(_load_sheet, self.wb, path, name)
            if not check:
                errors = scan_error_cells(zf, member, path, name)
                yield whole, errors, bounds.MAX_PARSE_STRING_BYTES
                return
            bounds.check_true_size(path, zf, zf.getinfo(member))
            scan, cloned = bounds.RangeScan(), [0]

            def each(rows: bytes) -> None:
                scan.feed(rows)
                cloned[0] += bounds.string_bytes(rows, 0, len(rows), strings)

            errors = scan_error_cells(zf, member, path, name, each)
            bounds.check_scanned(path, name, scan, cloned[0])
            yield whole, errors, cloned[0]

    def parses(self) -> Iterator[_Parse]:
        """The sheet as calamine ranges, top to bottom. calamine parses in the parser thread:
        the next part is checked and scanned here while it parses this one, and, when this
        one is small (OVERLAP_BYTES), parsed while this one is read; else only once this one
        is dropped. So at most two ranges are in memory, and the first of them small."""
        pending: tuple[Future, ErrorCells, int] | None = None
        try:
            jobs = self._jobs()
            job = next(jobs, None)
            while job is not None or pending is not None:
                if pending is None:
                    assert job is not None
                    pending, job = (_parser_thread().submit(job[0]), job[1], job[2]), None
                if job is None:
                    job = next(jobs, None)  # checked and scanned while calamine parses
                future, errors, text = pending
                parse = _Parse(future.result(), errors)
                pending = None
                self.seen.add(parse.start, parse.end)
                if parse.start is None and errors:
                    raise SourceError(
                        self.path, f"sheet {self.name!r}: error cells outside the range", REPORT
                    )
                if job is not None and parse.bytes(text) <= OVERLAP_BYTES:
                    pending, job = (_parser_thread().submit(job[0]), job[1], job[2]), None
                try:
                    yield parse
                finally:
                    parse.sheet = None
                del parse
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise SourceError(
                self.path, f"truncated or damaged workbook, sheet {self.name!r} ({exc})", RECOPY
            ) from exc
        finally:
            if pending is not None:  # no parse outlives the generator (nor its workbook)
                wait([pending[0]])

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


class _Kept:
    """The text rows of a sheet, converted at open for its first rows() to stream:
    (0-based row of the first, the rows) per parse. What they take is reserved against
    KEEP_BYTES, all open workbooks together, and given back when they go."""

    def __init__(self) -> None:
        self.parses: list[tuple[int, list[tuple[str | None, ...]]]] = []
        self._reserved = [0]
        weakref.finalize(self, _give_back, self._reserved)

    def reserve(self, n: int) -> bool:
        global _kept_bytes
        if _kept_bytes + n > KEEP_BYTES:
            return False
        _kept_bytes += n
        self._reserved[0] += n
        return True

    def give(self, n: int) -> None:
        """Give back `n` of what was reserved."""
        global _kept_bytes
        n = min(n, self._reserved[0])
        _kept_bytes -= n
        self._reserved[0] -= n

    def drop(self) -> None:
        self.parses = []
        _give_back(self._reserved)


_kept_bytes = 0  # reserved by every _Kept alive


def _give_back(reserved: list[int]) -> None:
    global _kept_bytes
    _kept_bytes -= reserved[0]
    reserved[0] = 0


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
    """The sheet's used range and header row, by the one pass of calamine over the sheet that
    also turns its rows into text for rows() (`_Kept`), as long as they fit in KEEP_BYTES;
    past that they are dropped and rows() has calamine parse the sheet again."""
    if sheet.check and sheet.package.size(sheet.member) > SLICE_BYTES:
        streamed = _streamed_source(sheet, notes, opened)
        if streamed is not None:
            return streamed
    path, name = sheet.path, sheet.name
    window: dict[int, list] = {}  # the first rows of the used range, typed, from column A
    kept: _Kept | None = _Kept()
    text = RowText(MEMO_BYTES)
    try:
        for parse in sheet.parses():
            stop = sheet.seen.first_row + HEADER_WINDOW
            if kept is not None and parse.start is not None:
                if _keep(sheet, parse, kept, text, window, stop):
                    continue
                kept.drop()
                kept = None
            if parse.start is not None and parse.start[0] < stop:
                window.update(sheet.typed_rows(parse, stop))
    except python_calamine.CalamineError as exc:
        raise SourceError(path, f"cannot read sheet {name!r} ({exc})", RESAVE) from exc
    ext = sheet.seen
    if ext.empty:
        return empty_source(path, "xlsx", name, [*notes, "empty sheet"])
    bounds.check_extent(path, name, ext.last_row + 1, ext.width)
    top = range(ext.first_row, min(ext.last_row + 1, ext.first_row + HEADER_WINDOW))
    header = find_header([window.get(r, []) for r in top], ext.first_row, ext.first_col, ext.width)
    first_data = header.first_data
    state = [kept]  # taken by the first rows()

    def text_rows() -> Iterator[tuple[int, Sequence[str | None]]]:
        return _rows(sheet, ext, first_data, opened, state)

    return _xlsx_source(path, name, header, notes, ext.last_row + 1 - first_data, text_rows)


def _xlsx_source(
    path: Path,
    name: str,
    header: Header,
    notes: list[str],
    data_rows: int,
    text_rows: Callable[[], Iterator[tuple[int, Sequence[str | None]]]],
    copy_chunks: Callable[[bytes], Iterator[tuple[int, bytes]] | None] | None = None,
) -> XlsxSource:
    """The Source of a sheet whose header was found: rows() as lists of `text_rows`."""

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        return ((number, list(cells)) for number, cells in text_rows())

    return XlsxSource(
        file=path,
        file_kind="xlsx",
        sheet=name,
        headers=header.cells,
        header_row=header.row,
        row_count_hint=data_rows,
        notes=[*notes, *header.notes],
        _rows=rows,
        above_header=header.above,
        _text_rows=text_rows,
        _copy_chunks=copy_chunks,
    )


def _keep(
    sheet: _Sheet, parse: _Parse, kept: _Kept, text: RowText, window: dict[int, list], stop: int
) -> bool:
    """Turn the rows of one parse into text, into `kept`, KEEP_STEP rows at a time, reserving
    what they take (estimated from the largest of their first, middle and last row); False,
    part of them converted, when they do not fit. The rows above `stop` go into `window` as
    they are (typed, from column A), for the header. The same rows, errors and checks as
    `typed_rows`, in bulk. Kept rows are tuples: the garbage collector stops tracking a tuple
    of texts (not a list), so it does not walk them all again and again while they pile up."""
    assert parse.start is not None and parse.end is not None and parse.sheet is not None
    (first_row, first_col), last_row = parse.start, parse.end[0]
    errors, path, name = parse.errors, sheet.path, sheet.name
    error_rows = sorted(errors)
    e = 0  # the next of error_rows to put back
    pad = [""] * first_col
    # iter_rows() yields one padding row per row above the range: skip them in C.
    it = islice(parse.sheet.iter_rows(), first_row, None)
    rows: list[tuple[str | None, ...]] = []
    memo = text.size  # what the memo held at the last reservation
    row0 = first_row  # 0-based: the row of chunk[0]
    while chunk := list(islice(it, KEEP_STEP)):
        end = row0 + len(chunk)
        while e < len(error_rows) and error_rows[e] < end:
            if error_rows[e] >= row0:
                i = error_rows[e] - row0
                chunk[i] = _with_errors(chunk[i], error_rows[e], first_col, errors, path, name)
            e += 1
        if first_col:
            chunk = [pad + raw for raw in chunk]
        for r in range(row0, min(stop, end)):
            window[r] = chunk[r - row0]
        done = text.tuples(chunk)
        rows += done
        each = max(_row_bytes(done[0]), _row_bytes(done[len(done) // 2]), _row_bytes(done[-1]))
        if not kept.reserve(len(done) * each + text.size - memo):
            return False
        memo = text.size
        row0 = end
    if row0 - 1 != last_row:
        raise SourceError(
            path,
            f"sheet {name!r}: calamine gave rows up to {row0}, expected {last_row + 1}",
            REPORT,
        )
    kept.parses.append((first_row, rows))
    return True


def _row_bytes(cells: tuple[str | None, ...]) -> int:
    """What a kept row takes: the tuple, its place in the list and its texts."""
    return sys.getsizeof(cells) + 8 + sum(sys.getsizeof(c) for c in cells if c is not None)


def _rows(
    sheet: _Sheet, ext: _Extent, first_data: int, opened: Stamp, state: list[_Kept | None]
) -> Iterator[tuple[int, Sequence[str | None]]]:
    """Rows `first_data` + 1 .. the last used row of one sheet, as text (a tuple or a list of
    exactly the sheet's width); blank rows included: the first time, the rows kept at open
    (the file checked unchanged since, by its size and mtime); else, or when they were not
    kept, from a new parse of the file (`_iter_sheet`)."""
    path = sheet.path
    check_unchanged(path, opened)
    kept, state[0] = state[0], None
    if kept is None:
        yield from _iter_sheet(path, sheet.name, ext, first_data, sheet.strings)
        return
    width = ext.width
    blank = (None,) * width
    next_row = first_data  # 0-based: the next row to yield
    while kept.parses:
        first, rows = kept.parses.pop(0)
        for i in range(max(0, next_row - first), len(rows)):
            row0 = first + i
            cells = rows[i]
            rows[i] = blank  # what open kept goes as it is read
            while next_row < row0:  # blank rows: above the used range, between parses
                yield next_row + 1, blank
                next_row += 1
            if len(cells) < width:
                cells += blank[len(cells) :]
            yield row0 + 1, cells
            next_row = row0 + 1
        del rows


def _copy_field(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_text(
    rows: Iterator[tuple[int, Sequence[str | None]]], width: int, prefix: bytes
) -> Iterator[tuple[int, bytes]]:
    """`rows` as COPY text chunks (see `XlsxSource`). A chunk is first joined as it is; only
    when its cells hold a backslash, tab, newline or CR (its counts of them are not what the
    lines' NULLs and separators make) is it joined again with every cell escaped."""
    lead = prefix.decode()
    sep = "\n" + lead
    tabs = lead.count("\t") + width  # in each line
    slashes = lead.count("\\")
    while batch := list(islice(rows, COPY_BATCH)):
        text = (
            lead
            + sep.join(
                [
                    f"{n}\t"
                    + (
                        "\t".join(cells)  # type: ignore[arg-type]
                        if None not in cells
                        else "\t".join([c or NULL for c in cells])
                    )
                    for n, cells in batch
                ]
            )
            + "\n"
        )
        nulls = sum([cells.count(None) for _, cells in batch if None in cells])
        chunk = text.encode()
        if (
            chunk.count(b"\t") != tabs * len(batch)
            or chunk.count(b"\n") != len(batch)
            or chunk.count(b"\\") != nulls + slashes * len(batch)
            or b"\r" in chunk
        ):
            text = (
                lead
                + sep.join(
                    [
                        f"{n}\t" + "\t".join([NULL if c is None else _copy_field(c) for c in cells])
                        for n, cells in batch
                    ]
                )
                + "\n"
            )
            chunk = text.encode()
        yield len(batch), chunk


# --------------------------------------------------------------------------------------------
# Streamed sheets: a large sheet parsed by calamine while its rows are read


@dataclass
class _Slice:
    """One slice of a streamed sheet: its XML (until it is given to calamine), its error
    cells, the bound on the text its parse clones, what `bounds.check_parse` proved."""

    xml: bytes | None
    errors: ErrorCells
    text: int
    shape: bounds.Shape | None


class _Stream:
    """The slices of a large sheet, checked at open, for its first read. calamine parses
    them in order in the parser thread, one at a time, ahead of the rows being read as long
    as what waits to be read stays small (`top_up`); the first and the last were parsed at
    open. Their XML is reserved against KEEP_BYTES until calamine is given it."""

    def __init__(self, sheet: _Sheet, kept: _Kept) -> None:
        self.sheet, self.kept = sheet, kept
        self.slices: list[_Slice] = []
        self.futures: dict[int, Future] = {}  # being parsed, or queued behind a small one
        self.parsed: dict[int, _Parse] = {}  # parsed, not read yet

    def submit(self, k: int) -> None:
        sl, sheet = self.slices[k], self.sheet
        assert sl.xml is not None
        data = sheet.package.wrap(sheet.member, sl.xml)
        self.kept.give(len(sl.xml))
        sl.xml = None
        self.futures[k] = _parser_thread().submit(_parse_slice, sheet.path, sheet.name, data)

    def small(self, k: int) -> bool:
        """Slice k's parse will be at most OVERLAP_BYTES (by its range bound and text bound):
        the next may be queued behind it."""
        shape, text = self.slices[k].shape, self.slices[k].text
        return (
            shape is not None and shape.cells * bounds.CALAMINE_CELL_BYTES + text <= OVERLAP_BYTES
        )

    def small_tail(self, k: int) -> bool:
        """Slice k's parse, by the exact range of its cells (`bounds.RangeScan`, in Python:
        for the last slice, small), is at most OVERLAP_BYTES."""
        sl = self.slices[k]
        assert sl.xml is not None
        if len(sl.xml) > 4 * TAIL_BYTES:
            return False
        scan = bounds.RangeScan()
        scan.feed(sl.xml)
        return scan.cells * bounds.CALAMINE_CELL_BYTES + sl.text <= OVERLAP_BYTES

    def parse_here(self, k: int) -> None:
        """Have calamine parse slice `k` in this thread (it releases the GIL while it parses),
        beside the parser thread's parse: the last slice, small, whose range open needs."""
        sl, sheet = self.slices[k], self.sheet
        assert sl.xml is not None
        data = sheet.package.wrap(sheet.member, sl.xml)
        self.kept.give(len(sl.xml))
        sl.xml = None
        parse = _Parse(_parse_slice(sheet.path, sheet.name, data), sl.errors)
        self.sheet.seen.add(parse.start, parse.end)
        self.parsed[k] = parse

    def _done(self, k: int) -> _Parse:
        parse = _Parse(self.futures.pop(k).result(), self.slices[k].errors)
        self.sheet.seen.add(parse.start, parse.end)
        return parse

    def top_up(self, reading: int, upto: int | None = None) -> None:
        """Give calamine the next slice while nothing is being parsed, the parse being read
        (`reading`, its bytes) is at most OVERLAP_BYTES and the parses waiting to be read at
        most WAITING_BYTES together; only slices before `upto`, when given."""
        while True:
            for k in [k for k, f in self.futures.items() if f.done()]:
                self.parsed[k] = self._done(k)
            nxt = next((k for k, sl in enumerate(self.slices) if sl.xml is not None), None)
            waiting = sum(p.bytes(self.slices[k].text) for k, p in self.parsed.items())
            if nxt is None or self.futures or reading > OVERLAP_BYTES or waiting > WAITING_BYTES:
                return
            if upto is not None and nxt >= upto:
                return
            self.submit(nxt)

    def take(self, k: int) -> _Parse:
        if k in self.parsed:
            return self.parsed.pop(k)
        if k not in self.futures:
            self.submit(k)
        return self._done(k)

    def close(self) -> None:
        """No parse outlives the stream (nor its workbook); nothing stays reserved."""
        wait(list(self.futures.values()))
        self.futures.clear()
        self.parsed.clear()
        for sl in self.slices:
            sl.xml = None
        self.kept.drop()

    def parses(self) -> Iterator[_Parse]:
        try:
            for k in range(len(self.slices)):
                parse = self.take(k)
                self.top_up(parse.bytes(self.slices[k].text))
                try:
                    yield parse
                finally:
                    parse.sheet = None
                del parse
        finally:
            self.close()


def _stream_slices(sheet: _Sheet) -> _Stream | None:
    """A large sheet's slices checked (`bounds.check_parse`) and scanned for error cells as
    `_Sheet._jobs` does, kept, and the first and the last parsed; None when the XML does
    not fit in KEEP_BYTES or its rows have no numbers (the sheet is read as any other)."""
    path, name, strings = sheet.path, sheet.name, sheet.strings
    stream = _Stream(sheet, _Kept())
    try:
        slices = xml_slices(sheet.package.zf, sheet.member, SLICE_BYTES, TAIL_BYTES)
        for k, xml in enumerate(slices):
            # The rows the header is looked for in only in the first slice, and its parse.
            shape = bounds.check_parse(path, name, xml, strings, HEADER_WINDOW if k else 0)
            errors: ErrorCells = {}
            errors_in(xml, errors, path, name)
            if not stream.kept.reserve(len(xml)):
                stream.close()
                return None
            stream.slices.append(_Slice(xml, errors, _text_bound(xml, strings.longest), shape))
            del xml
            if k == 0:
                stream.submit(0)
            elif k == 1 and stream.small(0):  # the second waits behind it
                stream.submit(1)
            else:
                stream.top_up(0, 2)
        if len(stream.slices) < 2:
            stream.close()
            return None
        last = len(stream.slices) - 1
        if stream.slices[last].xml is not None:
            if stream.small_tail(last):  # here, beside the parser thread's parse
                stream.parse_here(last)
            else:  # after it
                wait(list(stream.futures.values()))
                stream.submit(last)
        stream.parsed[0] = stream.take(0)
        stream.parsed[last] = stream.take(last)
        stream.top_up(0)
    except RowsWithoutNumbers:
        made = len(stream.slices)
        stream.close()
        if made:
            raise SourceError(
                path, f"sheet {name!r}: some rows have no row number", RESAVE
            ) from None
        return None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        stream.close()
        raise SourceError(
            path, f"truncated or damaged workbook, sheet {name!r} ({exc})", RECOPY
        ) from exc
    except BaseException:
        stream.close()
        raise
    return stream


def _streamed_source(sheet: _Sheet, notes: list[str], opened: Stamp) -> Source | None:
    """A large sheet whose used range and header its first and last parses tell for sure,
    read by streaming its parses (`_Stream`); else None, and it is read as any other.
    Sure means: the first parse has a cell in row 1 and one in column A (the used range
    starts at A1), no slice names a column beyond the last of those two parses nor a row
    below the last one's, no slice but the first a row among the first HEADER_WINDOW (the
    header rows are the first parse's), all as `bounds.check_parse` proves it
    (`bounds.Shape`). The rows are still read as `_rows` reads them: a parse whose rows
    start above rows already read has those skipped."""
    stream = _stream_slices(sheet)
    if stream is None:
        return None
    path, name = sheet.path, sheet.name
    last = len(stream.slices) - 1
    first, tail = stream.parsed[0], stream.parsed[last]
    shapes = [sl.shape for sl in stream.slices]
    if (
        first.start != (0, 0)
        or first.end is None
        or tail.start is None
        or tail.end is None
        or any(shape is None for shape in shapes)
        or max(shape.last_col for shape in shapes if shape) > max(first.end[1], tail.end[1])
        or max(shape.last_row for shape in shapes if shape) > tail.end[0]
    ):
        stream.close()
        return None
    ext = _Extent()
    ext.add(first.start, first.end)
    ext.add(tail.start, tail.end)
    try:
        bounds.check_extent(path, name, ext.last_row + 1, ext.width)
        window = dict(sheet.typed_rows(first, HEADER_WINDOW))
    except BaseException:
        stream.close()
        raise
    header = find_header([window.get(r, []) for r in range(HEADER_WINDOW)], 0, 0, ext.width)
    first_data = header.first_data
    state: list[_Stream | None] = [stream]  # taken by the first read

    def first_read() -> _Stream | None:
        check_unchanged(path, opened)
        stream, state[0] = state[0], None
        return stream

    def text_rows() -> Iterator[tuple[int, Sequence[str | None]]]:
        stream = first_read()
        if stream is None:
            return _iter_sheet(path, name, ext, first_data, sheet.strings)
        return _streamed_rows(stream, ext, first_data)

    def copy_chunks(prefix: bytes) -> Iterator[tuple[int, bytes]] | None:
        stream = first_read()
        if stream is None:
            return None
        return _streamed_copy(stream, ext, first_data, prefix)

    return _xlsx_source(
        path, name, header, notes, ext.last_row + 1 - first_data, text_rows, copy_chunks
    )


def _stream_batches(
    stream: _Stream, ext: _Extent, first_data: int
) -> Iterator[tuple[int, list[list]]]:
    """Rows `first_data` .. the last used row of a streamed sheet, typed (blank cells "",
    errors CellError), every row exactly the sheet's width from column A: (0-based row of
    the first, rows) per at most COPY_BATCH rows in a row. Blank rows between parses are
    rows of ""; a parse's rows above one already read are skipped (as `_rows` does). A
    parse that grows the used range has it checked again (`bounds.check_extent`)."""
    sheet = stream.sheet
    path, name, width = sheet.path, sheet.name, ext.width
    blank = [""] * width
    next_row = first_data  # 0-based: the next row to yield
    for parse in stream.parses():
        if parse.start is None or parse.end is None or parse.sheet is None:
            if parse.errors:
                raise SourceError(path, f"sheet {name!r}: error cells outside the range", REPORT)
            continue
        (first_row, first_col), (last_row, last_col) = parse.start, parse.end
        if last_col >= width:
            raise SourceError(path, f"sheet {name!r}: calamine found column {last_col + 1} "
                              f"beyond the sheet's {width}", REPORT)  # fmt: skip
        if last_row > ext.last_row:
            ext.add(parse.start, parse.end)
            bounds.check_extent(path, name, ext.last_row + 1, width)
        errors = parse.errors
        error_rows = sorted(errors)
        e = 0  # the next of error_rows to put back
        left, right = [""] * first_col, [""] * (width - 1 - last_col)
        row0 = first_row  # 0-based: the row of chunk[0]
        for chunk in _parse_rows(parse):
            end = row0 + len(chunk)
            while e < len(error_rows) and error_rows[e] < end:
                if error_rows[e] >= row0:
                    i = error_rows[e] - row0
                    chunk[i] = _with_errors(chunk[i], error_rows[e], first_col, errors, path, name)
                e += 1
            if left or right:
                chunk = [left + raw + right for raw in chunk]
            if row0 < next_row:
                chunk = chunk[next_row - row0 :]
                row0 = max(row0, next_row)
            while next_row < row0:  # blank rows: above the used range, between parses
                n = min(COPY_BATCH, row0 - next_row)
                yield next_row, [blank] * n
                next_row += n
            if chunk:
                yield row0, chunk
                next_row = end
            row0 = end
        if row0 - 1 != last_row:
            raise SourceError(
                path,
                f"sheet {name!r}: calamine gave rows up to {row0}, expected {last_row + 1}",
                REPORT,
            )


def _parse_rows(parse: _Parse) -> Iterator[list[list]]:
    """The rows of one parse's used range, from its first column, COPY_BATCH at a time: by
    one to_python() when it has at most TO_PYTHON_CELLS cells (iter_rows() makes a row of ""
    for every row above the range), else from iter_rows()."""
    assert parse.sheet is not None and parse.start is not None and parse.end is not None
    (first_row, first_col), (last_row, last_col) = parse.start, parse.end
    if (last_row - first_row + 1) * (last_col - first_col + 1) <= TO_PYTHON_CELLS:
        rows = parse.sheet.to_python()
        for i in range(0, len(rows), COPY_BATCH):
            yield rows[i : i + COPY_BATCH]
        return
    it = islice(parse.sheet.iter_rows(), first_row, None)
    while chunk := list(islice(it, COPY_BATCH)):
        yield chunk


def _streamed_rows(
    stream: _Stream, ext: _Extent, first_data: int
) -> Iterator[tuple[int, Sequence[str | None]]]:
    """The rows of a streamed sheet as text tuples, a column of a batch at a time."""
    text = ColumnText(MEMO_BYTES)
    columns = [itemgetter(j) for j in range(ext.width)]
    for row0, rows in _stream_batches(stream, ext, first_data):
        texts = [text.texts(list(map(column, rows))) for column in columns]
        yield from zip(range(row0 + 1, row0 + 1 + len(rows)), zip(*texts, strict=True), strict=True)


def _streamed_copy(
    stream: _Stream, ext: _Extent, first_data: int, prefix: bytes
) -> Iterator[tuple[int, bytes]]:
    """The COPY text of a streamed sheet (see `XlsxSource`), a batch at a time: each column
    converted whole (`ColumnText.fields`) and the chunk made by one join of every cell, the
    last cell of each line carrying the line's end and the next line's prefix and number.
    The chunk's tabs, newlines, backslashes and CRs are counted: only when there are more
    than the lines' own (a cell holds one) is it made again, the columns holding one
    escaped."""
    lead = prefix.decode()
    text = ColumnText(MEMO_BYTES)
    width = ext.width
    columns = [itemgetter(j) for j in range(width)]
    joint = "\n" + lead  # a line's end and the next line's prefix
    own = lead.count("\t") + width + 1 + lead.count("\\")  # a line's separators and escapes
    specials = bytes.maketrans(b"", b"")
    for row0, rows in _stream_batches(stream, ext, first_data):
        k = len(rows)
        numbers = list(map(str, range(row0 + 1, row0 + 1 + k)))
        fields: list[str] = [""] * (k * width)
        nulls = 0
        for j, column in enumerate(columns):
            cells, n = text.fields(list(map(column, rows)))
            nulls += n
            fields[j::width] = _line_ends(cells, joint, numbers) if j == width - 1 else cells
        chunk = (lead + numbers[0] + "\t" + "\t".join(fields)).encode()
        if len(chunk) - len(chunk.translate(specials, b"\t\n\\\r")) != own * k + nulls:
            for j, column in enumerate(columns):  # escape the columns with a cell needing it
                texts = text.texts(list(map(column, rows)))
                if any(ch in "".join(filter(None, texts)) for ch in "\\\t\n\r"):  # type: ignore[arg-type]
                    cells = [NULL if t is None else _copy_field(t) for t in texts]
                    fields[j::width] = (
                        _line_ends(cells, joint, numbers) if j == width - 1 else cells
                    )
            chunk = (lead + numbers[0] + "\t" + "\t".join(fields)).encode()
        yield k, chunk


def _line_ends(cells: list[str], joint: str, numbers: list[str]) -> list[str]:
    """The last cells of a batch's lines, each followed by the line's end, and but for the
    last by the next line's prefix and number (`joint` + number)."""
    ends = list(map(add, map(add, cells, repeat(joint)), islice(numbers, 1, None)))
    ends.append(cells[-1] + "\n")
    return ends


def _iter_sheet(
    path: Path,
    name: str,
    ext: _Extent,
    first_data: int,
    strings: bounds.SharedStrings,
) -> Iterator[tuple[int, list[str | None]]]:
    """The same rows, from a new calamine parse of the sheet (checked at open: not again)."""
    width = ext.width
    blank = [None] * width
    text = RowText(MEMO_BYTES)
    with _check_zip(path) as zf:
        package = _package(path, zf)
        wb = _open_calamine(path)
        try:
            sheet = _Sheet(path, package, wb, name, strings, check=False)
            next_row = first_data  # 0-based: the next row to yield
            for parse in sheet.parses():
                for row0, typed in sheet.typed_rows(parse):
                    if row0 < next_row:
                        continue
                    while next_row < row0:  # blank rows: above the used range, between parses
                        yield next_row + 1, list(blank)
                        next_row += 1
                    cells = text(typed)
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
