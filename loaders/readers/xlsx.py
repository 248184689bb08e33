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

**One parse a sheet, at open.** calamine parses a whole sheet into its own memory, so a sheet
whose XML is larger than SLICE_BYTES is parsed in slices, one after the other
(`sheet_xml.xml_slices`). `open_workbook` has calamine parse every sheet once, in a thread of
its own (calamine releases the GIL while it parses), and, as each parse (sheet or slice) comes,
finds the used range and header row and turns every row into text (`cells.RowText`): a
damaged sheet fails at open, before anything is written. The rows are kept, as tuples, for
the first `rows()` (or `XlsxSource.copy_text`, the loader's COPY text of them) to stream, as
long as what is kept, every open workbook together, stays within KEEP_BYTES (an estimate,
given back when the rows are read or the Source goes); a sheet that does not fit is dropped,
and its `rows()` has calamine parse the file again, as does every later `rows()`. While
Python reads one parse, the next slice is checked and scanned, and calamine parses it when the
one being read is small (OVERLAP_BYTES); else only once that one is dropped. Before calamine
sees the file, and before it parses each sheet or slice, `bounds.py` checks what it would
allocate (package sizes, shared strings, declared dimension, the range a parse spans and the
text it clones): a crafted file is refused with one line at open, and peak memory stays
bounded for any file (see `bounds.py`). Those checks run at open only. `rows()` checks that
the file is the one opened (size and mtime); a `rows()` that parses again reads it again,
checked against what open found (the used range, no row wider than the sheet).
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
from itertools import islice
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

from loaders.readers import bounds
from loaders.readers.base import Source, SourceError
from loaders.readers.cells import CellError, RowText
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
KEEP_BYTES = 256 << 20  # text rows kept from open for rows(), every open workbook together
KEEP_STEP = 4096  # rows converted between two reservations against KEEP_BYTES
MEMO_BYTES = 16 << 20  # what the text of repeated values (`RowText`) may hold, a sheet
OVERLAP_BYTES = 96 << 20  # a parse at most this large lets calamine make the next beside it
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
    when `rows` was replaced on the source (a test injecting a fault), it reads that."""

    _text_rows: Callable[[], Iterator[tuple[int, Sequence[str | None]]]] | None = None

    def copy_text(self, prefix: bytes) -> Iterator[tuple[int, bytes]]:
        replaced = "rows" in self.__dict__ or self._text_rows is None
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

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        return ((number, list(cells)) for number, cells in text_rows())

    return XlsxSource(
        file=path,
        file_kind="xlsx",
        sheet=name,
        headers=header.cells,
        header_row=header.row,
        row_count_hint=ext.last_row + 1 - first_data,
        notes=[*notes, *header.notes],
        _rows=rows,
        above_header=header.above,
        _text_rows=text_rows,
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
