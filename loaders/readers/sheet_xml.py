"""What the .xlsx reader takes from the package itself, without calamine.

- Where each sheet is: its worksheet part, from the package relationships and workbook.xml
  (`Package`, `sheet_members`).
- Its error cells: calamine reports an error cell as blank (dimastbk/python-calamine#105), so
  the sheet XML is scanned for the `t="e"` cells and their cached code (`#NAME?`, `#REF!`,
  ...), streaming and whole rows at a time (`scan_error_cells`, `errors_in`).
- Slices: a large worksheet part cut at row boundaries into complete worksheet documents
  (`xml_slices`), each wrapped with the workbook's support parts into a small workbook in
  memory (`Package.wrap`) that calamine parses on its own. Cells keep their `r="B7"`
  positions, so calamine places them exactly as in the whole sheet. The last rows may be cut
  into a small slice of their own (`tail`), for the reader to parse first.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

from loaders.readers.base import SourceError
from loaders.readers.bounds import MAX_PACKAGE_XML_BYTES, MAX_ROW_XML, too_big
from loaders.readers.workbook import RESAVE

SUPPORT_PARTS = ("styles", "sharedStrings", "theme")  # what calamine reads besides the sheet

# --------------------------------------------------------------------------------------------
# Error cells, from the sheet XML


_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*?\bt\s*=\s*([\"'])e\1[^>]*>")
_CELL_REF = re.compile(rb"\br\s*=\s*[\"']([A-Z]{1,3})([0-9]+)[\"']")
_VALUE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?v(?:\s[^>]*)?>([^<]*)<|</(?:[A-Za-z_][\w.-]*:)?c>")
_ROW_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?row>")

ErrorCells = dict[int, list[tuple[int, str]]]  # 0-based row -> [(0-based column, code)]


def unescape(text: str) -> str:
    """What `xml.sax.saxutils.unescape` does (without importing it: it imports urllib and
    http.client, 45 ms at every start): the &lt; &gt; &amp; of a cached error code."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


def errors_in(buf: bytes, found: ErrorCells, path: Path, sheet: str) -> None:
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


def scan_error_cells(
    zf: zipfile.ZipFile,
    member: str,
    path: Path,
    sheet: str,
    each: Callable[[bytes], None] | None = None,
) -> ErrorCells:
    """Every error cell of one worksheet part, streaming (1 MiB at a time, whole rows);
    `each`, when given, is called with every run of whole rows too (`bounds.RangeScan`)."""
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
                errors_in(buf, found, path, sheet)
            if each is not None:
                each(buf)
            if not chunk:
                return found


# --------------------------------------------------------------------------------------------
# Where the sheets are


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _part_xml(zf: zipfile.ZipFile, name: str) -> ElementTree.Element:
    """A small package part (workbook.xml, a .rels) as a tree, refused over
    MAX_PACKAGE_XML_BYTES before it is read (ElementTree holds it all)."""
    size = zf.getinfo(name).file_size
    if size > MAX_PACKAGE_XML_BYTES:
        raise too_big(Path(zf.filename or name), f"part {name}", size, MAX_PACKAGE_XML_BYTES,
                      " bytes uncompressed")  # fmt: skip
    return ElementTree.fromstring(zf.read(name))


def _rel_targets(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, zip member) for the part `part` ("" for the package)."""
    folder, name = posixpath.split(part)
    out = {}
    for rel in _part_xml(zf, posixpath.join(folder, "_rels", name + ".rels")):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        if target.startswith("/"):
            member = target.lstrip("/")
        else:
            member = posixpath.normpath(posixpath.join(folder, target))
        out[rel.get("Id", "")] = (rel.get("Type", ""), member)
    return out


class Package:
    """Where each sheet of an .xlsx is, and the parts calamine needs to read a sheet."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        workbook = "xl/workbook.xml"
        for kind, member in _rel_targets(zf, "").values():
            if kind.endswith("/officeDocument"):
                workbook = member
        targets = _rel_targets(zf, workbook)
        self.members: dict[str, str] = {}  # sheet name -> worksheet part
        self.shared_strings = next(
            (m for kind, m in targets.values() if kind.endswith("/sharedStrings")), None
        )
        for el in _part_xml(zf, workbook).iter():
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
    return Package(zf).members


# --------------------------------------------------------------------------------------------
# Slices


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


class RowsWithoutNumbers(Exception):
    """Rows without an r attribute: calamine numbers them by position, so no slicing."""


def xml_slices(zf: zipfile.ZipFile, member: str, limit: int, tail: int = 0) -> Iterator[bytes]:
    """A worksheet part cut into complete worksheet documents of about `limit` bytes: the
    part's head (up to `<sheetData>`), a run of whole rows, and the closing tags. Cells keep
    their own row and column numbers (`r="B7"`), so calamine places them where they were.
    What follows `</sheetData>` (merged cells, hyperlinks, page setup) holds no cell value.
    With `tail`, the last rows are cut into a slice of their own of about `tail` bytes
    (when the rest of the last run holds a whole row)."""
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
            if len(buf) > MAX_ROW_XML:
                raise too_big(
                    Path(zf.filename or member), f"part {member}, XML before its cells",
                    len(buf), MAX_ROW_XML, " bytes",
                )  # fmt: skip
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
                if cut > limit + MAX_ROW_XML:  # a single row holds that much
                    raise too_big(
                        Path(zf.filename or member), f"part {member}, XML of one row",
                        cut - limit, MAX_ROW_XML, " bytes or more",
                    )  # fmt: skip
                rows = buf[:cut]
                del buf[:cut]
                searched = max(0, searched - cut)
            elif stop >= 0:
                rows, last = buf[:stop], True
                del buf
                while f.read(1 << 20):  # read to the end: the zip checks the part's CRC
                    pass
                if tail and len(rows) > tail and (cut := _last_row_end(rows, len(rows) - tail)) > 0:
                    yield _slice(member, head, rows[:cut], close)
                    del rows[:cut]
            else:
                if len(buf) > limit + MAX_ROW_XML:  # a single row holds that much
                    raise too_big(
                        Path(zf.filename or member), f"part {member}, XML of one row",
                        len(buf) - limit, MAX_ROW_XML, " bytes or more",
                    )  # fmt: skip
                chunk = f.read(step)
                if not chunk:
                    raise zipfile.BadZipFile(f"{member}: sheetData is not closed")
                buf += chunk
                continue
            yield _slice(member, head, rows, close)


def _slice(member: str, head: bytes, rows: bytes | bytearray, close: bytes) -> bytes:
    first = _ROW_TAG.search(rows)
    if first and not _HAS_R.search(first.group(1)):
        raise RowsWithoutNumbers(member)
    return b"".join((head, rows, close))
