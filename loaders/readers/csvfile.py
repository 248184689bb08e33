"""Delimited text files (.csv, .tsv): one Source per file, named after the file.

- **Encoding**: a byte-order mark decides (UTF-8 -> `utf-8-sig`, UTF-16 -> `utf-16`);
  otherwise strict UTF-8 if the whole file decodes, else CP950 (Big5 as Windows in Taiwan
  writes it) if the whole file decodes, else SourceError naming the encodings tried.
- **Delimiter**: tab for .tsv; otherwise `csv.Sniffer` on the first 64 KiB chooses among
  comma, tab, semicolon and bar, and comma when it cannot tell. Quoting is standard
  (`"`, doubled inside a quoted field) and strict: a malformed quote is a SourceError, not a
  silent repair.
- **Header**: the first record (`header_row` 1). Data rows are numbered by record, the header
  being record 1 (a quoted field with line breaks makes a record longer than a line; a blank
  line is a record of blanks, as a blank spreadsheet row is a row).
- **Ragged rows**: the width is the widest record (found by a first pass over the file); short
  records and the header are padded with None.
- **Empty fields are None**, as blank cells are: CSV cannot tell an empty text from a missing
  value, and `""` and nothing read the same.

It streams: the file is read twice at open (encoding check, then widths and record count) and
once per `rows()`, never held in memory. One record is held whole (the csv module builds
it), so a record is refused over MAX_CSV_RECORD_CHARS characters (4 Mi; a line without an end
is never read whole) or MAX_CSV_FIELDS fields, and a field over csv.field_size_limit()
(131,072 characters by default, four times Excel's cell limit) is a csv.Error: memory stays
a few tens of MiB (`bounds.py`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path

from loaders.readers.base import Source, SourceError
from loaders.readers.bounds import MAX_CSV_FIELDS, MAX_CSV_RECORD_CHARS, too_big

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",\t;|"
ENCODINGS = ("utf-8", "cp950")
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decodes(path: Path, encoding: str) -> bool:
    """The whole file decodes strictly as `encoding` (streaming, 1 MiB at a time)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as f:
        try:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def detect_encoding(path: Path) -> str:
    """The file's encoding, by the rule in the module docstring."""
    with path.open("rb") as f:
        start = f.read(4)
    for bom, encoding in BOMS:
        if start.startswith(bom):
            return encoding
    for encoding in ENCODINGS:
        if _decodes(path, encoding):
            return encoding
    raise SourceError(
        path,
        "cannot decode the text: it is neither UTF-8 nor CP950 (Big5)",
        "save it as CSV UTF-8 and load again",
    )


def detect_delimiter(path: Path, encoding: str) -> str:
    """Tab for .tsv; else what csv.Sniffer finds among , TAB ; | in the first 64 KiB; else comma."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
        whole = not f.read(1)
    sample = codecs.getincrementaldecoder(encoding)("replace").decode(head, final=whole)
    if not whole:  # sniff whole lines only
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        sample = sample[:cut] if cut > 0 else sample
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _lines(f: io.TextIOWrapper, path: Path, fed: list[int]) -> Iterator[str]:
    """The file's lines for csv.reader, never more than MAX_CSV_RECORD_CHARS characters of
    them for one record (`fed[0]`, reset by the caller after each record): the csv module
    builds a record whole, and a line without end would be read whole."""
    while line := f.readline(MAX_CSV_RECORD_CHARS + 1):
        fed[0] += len(line)
        if fed[0] > MAX_CSV_RECORD_CHARS:
            raise too_big(path, f"record {fed[1] + 1}", fed[0], MAX_CSV_RECORD_CHARS,
                          " characters or more")  # fmt: skip
        yield line


def _records(path: Path, encoding: str, delimiter: str) -> Iterator[list[str]]:
    """Every record of the file; SourceError for bad quoting or undecodable bytes, and for a
    record over MAX_CSV_RECORD_CHARS characters or MAX_CSV_FIELDS fields (one field over
    csv.field_size_limit(), 131,072 characters by default, is a csv.Error)."""
    n = 0
    fed = [0, 0]  # characters read for the record being read; records read
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as f:
            reader = csv.reader(
                _lines(f, path, fed),
                delimiter=delimiter,
                quotechar='"',
                doublequote=True,
                strict=True,
            )
            for record in reader:
                n += 1
                fed[0], fed[1] = 0, n
                if len(record) > MAX_CSV_FIELDS:
                    raise too_big(path, f"record {n}", len(record), MAX_CSV_FIELDS, " fields")
                yield record
    except csv.Error as exc:
        raise SourceError(path, f"record {n + 1}: {exc}", "fix the quoting and load again") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"record {n + 1}: not {encoding} ({exc.reason})") from exc
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc


def open_csv(path: Path) -> list[Source]:
    """The one Source of a delimited text file."""
    try:
        encoding = detect_encoding(path)
        delimiter = detect_delimiter(path, encoding)
        stat = path.stat()
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc
    stamp = (stat.st_size, stat.st_mtime_ns)
    width, count, header = 0, 0, []
    for record in _records(path, encoding, delimiter):
        if count == 0:
            header = record
        count += 1
        width = max(width, len(record))
    notes = [f"encoding {encoding}, delimiter {delimiter!r}"]
    if count == 0:
        notes.append("empty file")
    headers = [h or None for h in header] + [None] * (width - len(header))

    def rows() -> Iterator[tuple[int, list[str | None]]]:
        try:
            now = path.stat()
        except OSError as exc:
            raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc
        if (now.st_size, now.st_mtime_ns) != stamp:
            raise SourceError(path, "the file changed since it was opened", "load it again")
        padding = [None] * width
        for number, record in enumerate(_records(path, encoding, delimiter), start=1):
            if number == 1:
                continue
            cells: list[str | None] = [v or None for v in record]
            if len(cells) < width:
                cells += padding[len(cells) :]
            yield number, cells

    return [
        Source(
            file=path,
            file_kind="csv",
            sheet=path.name,
            headers=headers,
            header_row=1 if count else None,
            row_count_hint=max(0, count - 1),
            notes=notes,
            _rows=rows,
        )
    ]
