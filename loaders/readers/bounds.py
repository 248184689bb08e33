"""Bounded reading: what a file may hold before a reader parses it, so that no input, however
crafted, can take unbounded memory or abort the process (issue 15, point 5).

calamine is fast because it trusts the file: it reserves `uniqueCount` shared strings
(24 bytes each) before reading one, builds every sheet as a dense `Range` of 32 bytes a cell
from the first to the last row and column its cells name, and clones a shared string into
every cell that refers to it. A 5 KB workbook with cells at A1 and XFD1048576 asks for
512 GiB and the process aborts (a Rust allocation failure cannot be caught). So before
calamine parses anything, the package and every XML calamine will parse are checked here,
and a file over a limit is refused with one SourceError line (the file, what was found, the
limit, a hint), at open time: before anything is written.

**The real files** (as `luckygas sample --scale full` writes them): the delivery history
workbook is 7.8 MB; its sheet part is 72.6 MB uncompressed (ratio 9.6), dimension A1:E349921
(1.75 M cells), its sharedStrings 1.5 MB, 33,674 strings (uniqueCount), the longest 70 bytes
of XML; 74.1 MB uncompressed in all. The client list is 0.3 MB: 28 sheets, the largest
A1:BX1268 (96 K cells, 1.2 MB of XML), 4,036 strings, 2.2 MB uncompressed in all. No member
of either is compressed more than 11.7 times. Every limit below is at least 10 times these.

**The memory bound.** calamine parses one sheet, or one slice of a large sheet (at most
`xlsx.SLICE_BYTES` = 16 MiB of XML, plus one row of at most MAX_ROW_XML), at a time. Its
range is at most MAX_PARSE_CELLS x 32 B = 256 MiB, the strings cloned into it at most
MAX_PARSE_STRING_BYTES = 128 MiB, the shared strings it holds (twice while a slice is parsed:
the workbook's and the slice's) at most 2 x (64 MiB + 2 M strings x ~56 B) = 2 x 170 MiB;
add the slice XML and its wrapper and Python: one parse stays under about 900 MiB, whatever
the file holds. Measured (`/usr/bin/time -v luckygas load --dry-run`, before the reader kept
rows): 802 MiB max RSS for a workbook built to the limits (61 MiB of shared strings,
2,000,000 of them, one of 32 KB; a sliced sheet whose first slice spans 7.9 M cells, 99 % of
MAX_PARSE_CELLS, and clones 101 MB of that string). The .xlsx reader adds what it keeps
beside that parse (`xlsx.py`): the rows it has turned into text, or a streamed sheet's slice
XML, at most `xlsx.KEEP_BYTES` = 256 MiB (estimated) for every open workbook together; the
parse being read, and beside it the parses made ahead, only while the one being read is at
most `xlsx.OVERLAP_BYTES` = 96 MiB and those waiting at most `xlsx.WAITING_BYTES` = 160 MiB
together (their ranges and the text bounds of their XML); at open of a streamed sheet, its
last slice parsed beside another parse when that is at most OVERLAP_BYTES too; and the next
slice's XML, checked and wrapped: **peak memory of reading workbooks stays under about
1.6 GiB** (an estimate from these parts, not measured at the limits). Measured on the full
history (streamed): about 260 MiB max RSS reading it (`open_file` and `rows()`), about
270 MiB for `luckygas load` of it. The checks cost about 0.25 s on the history: one pass over
the shared strings, and a few C-speed searches of each 16 MiB slice (`_fast_bound`), the one
over all its cells a single negative lookahead for a cell not of the expected form, which
also proves where the cells are (`Shape`, what lets the reader stream a sheet); a full
Python scan (`RangeScan`) only where those cannot clear a slice.
Time is bounded too: at most MAX_TOTAL_BYTES inflated, MAX_SHEET_CELLS cells of text a sheet.

The .xls and CSV bounds are here too (see `xls.py`, `csvfile.py`). A SQLite database is read
in batches of rows by SQLite itself; one value is bounded only by SQLite's own limit (1e9
bytes, SQLITE_MAX_LENGTH).
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from array import array
from pathlib import Path
from typing import NamedTuple

from loaders.readers.base import SourceError

MiB = 1 << 20

# The package (zip central directory), checked before calamine opens it.
MAX_MEMBER_BYTES = 1 << 30  # one part, uncompressed (history sheet: 72.6 MB)
MAX_TOTAL_BYTES = 2 << 30  # all parts, uncompressed (history: 74.1 MB)
MAX_RATIO = 150  # uncompressed / compressed size of one part (real files: at most 11.7)
RATIO_FLOOR = 1 * MiB  # parts smaller than this are not held to MAX_RATIO
# The shared strings, which calamine reads whole at open.
MAX_SHARED_STRINGS_BYTES = 64 * MiB  # history: 1.5 MB
MAX_SHARED_STRINGS = 2_000_000  # declared uniqueCount and <si> elements (history: 33,674)
MAX_SUPPORT_BYTES = 64 * MiB  # styles, theme: what calamine and Package.wrap read whole
MAX_PACKAGE_XML_BYTES = 4 * MiB  # workbook.xml and .rels, parsed by ElementTree (real: 3 KB)
# A sheet: its declared <dimension> and the used range found, rows x columns.
MAX_SHEET_CELLS = 20_000_000  # history: 1.75 M; a full-height Excel sheet of 19 columns
# One calamine parse (a sheet, or a slice of one): its dense range and the strings in it.
MAX_PARSE_CELLS = 8_000_000  # x 32 bytes a cell = 256 MiB (a history slice: ~0.4 M)
MAX_PARSE_STRING_BYTES = 128 * MiB  # shared-string bytes its cells clone (history: ~20 MB)
CALAMINE_CELL_BYTES = 32  # size of calamine's Data, measured: 512 GiB for 1048576 x 16384
MAX_ROW_XML = 32 * MiB  # the XML of one row, or of a sheet before its rows (16,384 cells x 2 KB)
# .xls (xlrd reads the whole file, then a sheet at a time into Python objects).
MAX_XLS_BYTES = 32 * MiB  # BIFF caps a sheet at 65,536 x 256 cells anyway
# CSV: one record is built whole by the csv module before it is returned.
MAX_CSV_RECORD_CHARS = 4 * MiB  # characters read for one record (one field: 131,072)
MAX_CSV_FIELDS = 16_384  # fields in one record (Excel's column limit)

EXCEL_ROWS, EXCEL_COLS = 1_048_576, 16_384
HINT = "this is far beyond any real export; check the file, or split it, and load again"


def too_big(
    path: Path, what: str, found: int, limit: int, unit: str = "", hint: str = HINT
) -> SourceError:
    """The one-line refusal: the file, what was found, the limit, a hint. Raised at open
    (plan time), so nothing is written; the CLI prints it as one line and exits 2."""
    problem = f"refused: {what}: {found:,}{unit}, over the limit of {limit:,}{unit}"
    return SourceError(path, problem, hint)


# --------------------------------------------------------------------------------------------
# The package


def check_directory(path: Path, zf: zipfile.ZipFile) -> None:
    """Sizes and compression ratios from the central directory, before any part is read."""
    total = 0
    for info in zf.infolist():
        size, packed = info.file_size, max(info.compress_size, 1)
        total += size
        if size > MAX_MEMBER_BYTES:
            raise too_big(
                path, f"part {info.filename}", size, MAX_MEMBER_BYTES, " bytes uncompressed"
            )
        if size > RATIO_FLOOR and size > MAX_RATIO * packed:
            raise too_big(
                path,
                f"part {info.filename} ({size:,} bytes in {packed:,}), compressed",
                size // packed,
                MAX_RATIO,
                " times",
                "a zip bomb, not an Excel export: check where the file came from",
            )
    if total > MAX_TOTAL_BYTES:
        raise too_big(path, "all parts", total, MAX_TOTAL_BYTES, " bytes uncompressed")


def check_inflated(path: Path, zf: zipfile.ZipFile, trust_python: set[str]) -> None:
    """Every part calamine may read itself (all but `trust_python`, the large sheets only
    Python reads, where zipfile stops at the declared size) inflates to no more than its
    declared size: calamine's zip reader would inflate a lying part to its real end."""
    for info in zf.infolist():
        if info.filename not in trust_python and not info.is_dir():
            check_true_size(path, zf, info)


def check_true_size(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """The part's compressed data inflates to no more than its declared size (streaming,
    never more than declared + 1 MiB in memory)."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise SourceError(
            path,
            f"part {info.filename} uses a compression Excel does not (method {info.compress_type})",
            "open it in Excel, save it as .xlsx and load again",
        )
    fp = zf.fp
    assert fp is not None
    fp.seek(info.header_offset)
    header = fp.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise SourceError(path, f"truncated or damaged workbook (part {info.filename})")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    left, out = info.compress_size, 0
    inflate = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    try:
        while left > 0:
            data = fp.read(min(left, MiB))
            if not data:
                break
            left -= len(data)
            if inflate is None:
                out += len(data)
                continue
            while data:
                out += len(inflate.decompress(data, MiB))
                if out > info.file_size:
                    break
                data = inflate.unconsumed_tail
            if out > info.file_size or inflate.eof:
                break
    except zlib.error as exc:
        raise SourceError(path, f"truncated or damaged workbook ({info.filename}: {exc})") from exc
    if out > info.file_size:
        raise too_big(
            path,
            f"part {info.filename} inflates to more than it declares",
            out,
            info.file_size,
            " bytes",
            "a zip bomb, not an Excel export: check where the file came from",
        )


# --------------------------------------------------------------------------------------------
# Shared strings


_SI = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si(?=[\s/>])")
_UNIQUE = re.compile(rb"\buniqueCount\s*=\s*[\"']\s*([0-9]+)")


class SharedStrings:
    """The number of shared strings and an upper bound on the bytes of each (the length of
    its <si> element): what the cells of one parse may clone."""

    def __init__(self, lengths: array | None = None) -> None:
        self.lengths = lengths if lengths is not None else array("I")
        self.longest = max(self.lengths, default=0)


def check_shared_strings(path: Path, zf: zipfile.ZipFile, member: str | None) -> SharedStrings:
    """The declared uniqueCount (calamine reserves that many strings at once), the part's
    size and its number of <si> elements, by one streaming pass."""
    if member is None or member not in zf.NameToInfo:
        return SharedStrings()
    size = zf.getinfo(member).file_size
    if size > MAX_SHARED_STRINGS_BYTES:
        raise too_big(path, f"part {member}", size, MAX_SHARED_STRINGS_BYTES, " bytes uncompressed")
    lengths = array("I")
    with zf.open(member) as f:
        buf = f.read(64 * 1024)
        first = _SI.search(buf)
        declared = _UNIQUE.search(buf, 0, first.start() if first else len(buf))
        if declared and int(declared.group(1)) > MAX_SHARED_STRINGS:
            raise too_big(
                path, "shared strings declared (uniqueCount)", int(declared.group(1)),
                MAX_SHARED_STRINGS, " strings",
            )  # fmt: skip
        base, last = 0, -1  # offset of buf in the part; start of the last <si> seen
        while True:
            chunk = f.read(MiB)
            buf += chunk
            keep = max(0, len(buf) - 256) if chunk else len(buf)  # a tag cut short waits
            for m in _SI.finditer(buf):
                if m.start() >= keep:
                    break
                if last >= 0:
                    lengths.append(base + m.start() - last)
                last = base + m.start()
            if len(lengths) > MAX_SHARED_STRINGS:
                raise too_big(path, "shared strings", len(lengths), MAX_SHARED_STRINGS, " strings")
            if not chunk:
                break
            buf, base = buf[keep:], base + keep
        if last >= 0:
            lengths.append(base + len(buf) - last)
    if len(lengths) > MAX_SHARED_STRINGS:
        raise too_big(path, "shared strings", len(lengths), MAX_SHARED_STRINGS, " strings")
    return SharedStrings(lengths)


# --------------------------------------------------------------------------------------------
# Sheets: the declared dimension, and the range one calamine parse will build


_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\b[^>]*?\bref\s*=\s*[\"']([^\"']*)")
_A1 = re.compile(r"\$?([A-Za-z]{1,4})\$?([0-9]{1,8})")


def _col(letters: bytes | str) -> int:
    n = 0
    for ch in letters.upper() if isinstance(letters, str) else letters:
        n = n * 26 + (ch if isinstance(ch, int) else ord(ch)) - 64
    return n - 1


def check_dimension(path: Path, zf: zipfile.ZipFile, member: str, sheet: str) -> None:
    """The sheet's declared used range (`<dimension ref="A1:E349921"/>`, in the part's
    first 64 KiB), rows x columns, against MAX_SHEET_CELLS."""
    with zf.open(member) as f:
        head = f.read(64 * 1024)
    found = _DIMENSION.search(head)
    if not found:
        return
    ref = found.group(1).decode("ascii", "replace")
    corners = [_A1.fullmatch(part.strip()) for part in ref.split(":")]
    if not corners or len(corners) > 2 or not all(corners):
        return  # calamine ignores a dimension it cannot read; so does this check
    rows = [int(c.group(2)) for c in corners if c]
    cols = [_col(c.group(1)) + 1 for c in corners if c]
    cells = (max(rows) - min(rows) + 1) * (max(cols) - min(cols) + 1)
    if cells > MAX_SHEET_CELLS:
        raise too_big(path, f"sheet {sheet!r}, declared used range {ref}", cells,
                      MAX_SHEET_CELLS, " cells")  # fmt: skip


def check_extent(path: Path, sheet: str, rows: int, width: int) -> None:
    """The used range calamine found (rows from row 1, columns from A): what `rows()` will
    yield, cell by cell, so what bounds the time to read the sheet."""
    if rows * width > MAX_SHEET_CELLS:
        raise too_big(path, f"sheet {sheet!r}, used range of {rows:,} rows x {width:,} "
                      "columns", rows * width, MAX_SHEET_CELLS, " cells")  # fmt: skip


_BAD_CELL = re.compile(rb'<c(?! r="[A-Z]{1,3}[0-9]{1,7}")')  # not what _fast_cells reads
_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_STRING_CELL = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?c\b[^>]*?\bt\s*=\s*[\"']s[\"'][^>]*>\s*"
    rb"<(?:[A-Za-z_][\w.-]*:)?v(?:\s[^>]*)?>\s*([0-9]+)"
)
_TOKEN = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)(?=[\s/>])([^>]*)>")
_R_ATTR = re.compile(rb"(?:^|\s)r\s*=\s*[\"']\s*([A-Za-z]*)([0-9]*)")
_probes: dict[bytes, re.Pattern[bytes]] = {}


def _exists(pattern: bytes, xml: bytes, start: int, end: int) -> bool:
    probe = _probes.get(pattern)
    if probe is None:
        probe = _probes[pattern] = re.compile(pattern)
    return probe.search(xml, start, end) is not None


def _above(letters: bytes) -> bytes:
    """A regex for the column names of len(letters) letters that sort after `letters`."""
    n, ways = len(letters), []
    for i, ch in enumerate(letters):
        if ch < ord("Z"):
            rest = b"[A-Z]{%d}" % (n - i - 1) if n - i - 1 else b""
            ways.append(re.escape(letters[:i]) + b"[%c-Z]" % (ch + 1) + rest)
    return b"(?:" + b"|".join(ways) + b")" if ways else b"(?!)"


def _outside(number: bytes, side: int) -> bytes:
    """A lookahead refusing the row numbers of len(number) digits below `number` (side -1)
    or above it (side 1)."""
    n, ways = len(number), []
    for i, ch in enumerate(number):
        rest = b"[0-9]{%d}" % (n - i - 1) if n - i - 1 else b""
        if side < 0 and ch > ord("1" if i == 0 else "0"):
            ways.append(number[:i] + b"[%c-%c]" % (ord("1" if i == 0 else "0"), ch - 1) + rest)
        if side > 0 and ch < ord("9"):
            ways.append(number[:i] + b"[%c-9]" % (ch + 1) + rest)
    return b"(?!(?:" + b"|".join(ways) + b')")' if ways else b""


def _up_to(letters: bytes) -> bytes:
    """A regex for the column names that do not sort after `letters` (fewer letters, or as
    many and not after it)."""
    n = len(letters)
    ways = [b"[A-Z]{1,%d}" % (n - 1)] if n > 1 else []
    for i, ch in enumerate(letters):
        rest = b"[A-Z]{%d}" % (n - i - 1) if n - i - 1 else b""
        if ch > ord("A"):
            ways.append(re.escape(letters[:i]) + b"[A-%c]" % (ch - 1) + rest)
    ways.append(re.escape(letters))
    return b"(?:" + b"|".join(ways) + b")"


def _highest_column(xml: bytes, start: int, end: int, guess: bytes) -> int:
    """The highest column named in the cell references of `xml[start:end]`: `guess` (the
    highest in the first rows) confirmed by one failed search, else found letter by letter."""
    n = len(guess)
    longer = n < 3 and _exists(b'<c r="[A-Z]{%d}' % (n + 1), xml, start, end)
    if not longer and not _exists(b'<c r="' + _above(guess) + b"[0-9]", xml, start, end):
        return _col(guess)
    n = next(k for k in (3, 2, 1) if _exists(b'<c r="[A-Z]{%d}[0-9]' % k, xml, start, end))
    prefix = b""
    for pos in range(n):
        rest = b"[A-Z]{%d}" % (n - pos - 1) if n - pos - 1 else b""
        lo, hi = 0, 25  # the highest letter present at this position is in lo..hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            pattern = b'<c r="' + prefix + b"[%c-Z]" % (65 + mid) + rest + b"[0-9]"
            lo, hi = (mid, hi) if _exists(pattern, xml, start, end) else (lo, mid - 1)
        prefix += bytes([65 + lo])
    return _col(prefix)


class Shape(NamedTuple):
    """What the fast searches proved of the cells of a run of sheet XML, by their references
    (`r="B7"`), 0-based: no cell's column is beyond `last_col`, none is in a row above the
    one asked for (`check_parse`) nor below `last_row`; `cells`, the bound on calamine's
    range (`_fast_bound`)."""

    last_col: int
    last_row: int
    cells: int


def _fast_cells(xml: bytes, start: int, end: int) -> int | None:
    """An upper bound on the cells of calamine's range for the rows `xml[start:end]` (see
    `_fast_bound`); None when the fast searches cannot give one."""
    return _fast_bound(xml, start, end)[0]


def _fast_bound(
    xml: bytes, start: int, end: int, first_row: int = 0
) -> tuple[int | None, Shape | None]:
    """An upper bound on the cells of calamine's range for the rows `xml[start:end]`, by a
    few C-speed searches, when every cell starts `<c r="A1"` (what Excel and xlsxwriter
    write); None otherwise. Columns: the highest column named (A .. it); rows: 10 ** (the
    most digits of a row number) - 1. Both are guessed from the first and last rows and
    confirmed by one search for a cell not of that form (another form, a higher column, a
    row number longer or higher than the highest seen, or with a leading zero, or above
    `first_row`, 0-based) that fails, scanning the rows once: about 35 ms for 16 MiB of XML. When it fails, the `Shape`
    is proven too (else None; also None without cells). When it does not, the bound is
    found by slower searches (or None: `RangeScan`)."""
    if xml.count(b":c", start, end):  # a namespace prefix on cells: not what is searched
        return None, None
    first = xml.find(b'<c r="', start, end)
    if first < 0:
        return (None if _BAD_CELL.search(xml, start, end) else 0), None
    last = xml.rfind(b'<c r="', start, end)
    seen = _REF.findall(xml, first, min(end, first + 64 * 1024)) + _REF.findall(xml, last, end)
    if not seen:
        return None, None
    letters = max((ref[0] for ref in seen), key=lambda v: (len(v), v))
    digits = max(len(ref[1]) for ref in seen)
    # Every cell as expected: a column up to `letters`, a row number from `least` of up to
    # `digits` digits, not starting with 0. One search for a cell that is not.
    least = str(first_row + 1).encode() if len(str(first_row + 1)) <= digits else b"1"
    high = max((ref[1] for ref in seen), key=lambda v: (len(v), v))
    rows = b"%s%s[1-9][0-9]{%d,%d}" % (
        _outside(least, -1),
        _outside(high, 1),
        len(least) - 1,
        digits - 1,
    )
    if not _exists(b'<c(?! r="' + _up_to(letters) + rows + b'")', xml, start, end):
        cells = (_col(letters) + 1) * (10**digits - 1)
        shape = Shape(_col(letters), int(high) - 1, cells) if int(least) == first_row + 1 else None
        return cells, shape
    if _BAD_CELL.search(xml, start, end):
        return None, None
    width = _highest_column(xml, start, end, letters) + 1
    while digits < 7 and _exists(b'<c r="[A-Z]{1,3}[0-9]{%d}' % (digits + 1), xml, start, end):
        digits += 1
    return width * (10**digits - 1), None


class RangeScan:
    """The exact range calamine builds, cell by cell in Python (slow: for the files the fast
    bound cannot clear, and for rows without numbers, numbered by position as calamine
    does). Fed runs of whole rows in document order."""

    def __init__(self) -> None:
        self.row = -1  # 0-based: the current row
        self.col = -1
        self.first_row = self.first_col = 1 << 62
        self.last_row = self.last_col = -1

    def feed(self, xml: bytes, start: int = 0, end: int | None = None) -> None:
        end = len(xml) if end is None else end
        row, col = self.row, self.col
        first_row, first_col, last_row, last_col = (
            self.first_row, self.first_col, self.last_row, self.last_col
        )  # fmt: skip
        for m in _TOKEN.finditer(xml, start, end):
            ref = _R_ATTR.search(m.group(2))
            if m.group(1) == b"row":
                row = int(ref.group(2)) - 1 if ref and ref.group(2) else row + 1
                col = -1
                continue
            if ref and ref.group(2):
                r = int(ref.group(2)) - 1
                col = _col(ref.group(1)) if ref.group(1) else col + 1
            else:
                r, col = row, col + 1
            first_row, last_row = min(first_row, r), max(last_row, r)
            first_col, last_col = min(first_col, col), max(last_col, col)
        self.row, self.col = row, col
        self.first_row, self.first_col, self.last_row, self.last_col = (
            first_row, first_col, last_row, last_col
        )  # fmt: skip

    @property
    def cells(self) -> int:
        if self.last_row < 0:
            return 0
        return (self.last_row - self.first_row + 1) * (self.last_col - self.first_col + 1)


def string_bytes(xml: bytes, start: int, end: int, strings: SharedStrings) -> int:
    """An upper bound on the shared-string bytes the cells of `xml[start:end]` clone: every
    string cell at the longest string, or, when that is too much, the exact sum."""
    if not strings.longest:
        return 0
    if (end - start) // 20 * strings.longest <= MAX_PARSE_STRING_BYTES:
        return (end - start) // 20 * strings.longest  # a string cell takes 20 bytes or more
    cells = xml.count(b'"s"', start, end) + xml.count(b"'s'", start, end)
    if cells * strings.longest <= MAX_PARSE_STRING_BYTES:
        return cells * strings.longest
    lengths, n = strings.lengths, len(strings.lengths)
    return sum(lengths[i] for m in _STRING_CELL.finditer(xml, start, end) if (i := int(m[1])) < n)


def _parse_limits(path: Path, sheet: str, cells: int, text: int) -> None:
    if cells > MAX_PARSE_CELLS:
        raise too_big(path, f"sheet {sheet!r}, range its cells span (per 16 MiB of XML)",
                      cells, MAX_PARSE_CELLS, " cells")  # fmt: skip
    if text > MAX_PARSE_STRING_BYTES:
        raise too_big(path, f"sheet {sheet!r}, shared text its cells repeat (per 16 MiB of "
                      "XML)", text, MAX_PARSE_STRING_BYTES, " bytes")  # fmt: skip


def check_parse(
    path: Path, sheet: str, xml: bytes, strings: SharedStrings, first_row: int = 0
) -> Shape | None:
    """Before calamine parses the worksheet document `xml` (a whole sheet, or a slice): the
    dense range its cells span and the shared-string bytes they clone are within limits.
    Returns what the fast searches proved of its cells (`Shape`: the last column and row,
    and no row above `first_row`, 0-based), else None."""
    start = xml.find(b"sheetData")
    start = 0 if start < 0 else start
    end = xml.rfind(b"sheetData")
    end = len(xml) if end <= start else end
    cells, shape = _fast_bound(xml, start, end, first_row)
    if cells is None or cells > MAX_PARSE_CELLS:
        scan = RangeScan()
        scan.feed(xml, start, end)
        cells = scan.cells
    _parse_limits(path, sheet, cells, string_bytes(xml, start, end, strings))
    return shape


def check_scanned(path: Path, sheet: str, scan: RangeScan, text: int) -> None:
    """The same limits, for a sheet parsed whole after a streaming RangeScan of it."""
    _parse_limits(path, sheet, scan.cells, text)
