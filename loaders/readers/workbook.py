"""What the .xlsx and .xls readers share: file signatures, advice, the check that a file has
not changed since it was opened, and the Source of a sheet without cells."""

from __future__ import annotations

from pathlib import Path

from loaders.readers.base import Source, SourceError

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"

RESAVE = "open it in Excel, save it as .xlsx and load again"
RECOPY = "copy or export the file again (it may have been cut short) and load again"

Stamp = tuple[int, int]  # a file's size and modification time


def sniff(path: Path) -> bytes:
    """The file's first 8 bytes (its signature)."""
    try:
        with path.open("rb") as f:
            return f.read(8)
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc


def stamp(path: Path) -> Stamp:
    """Size and modification time: `rows()` checks the file is the one `open_file` read."""
    try:
        st = path.stat()
    except OSError as exc:
        raise SourceError(path, f"cannot read the file: {exc.strerror}") from exc
    return st.st_size, st.st_mtime_ns


def check_unchanged(path: Path, opened: Stamp) -> None:
    if stamp(path) != opened:
        raise SourceError(path, "the file changed since it was opened", "load it again")


def empty_source(path: Path, kind: str, name: str, notes: list[str]) -> Source:
    """A sheet without cells (empty, or a chart sheet): no headers, no rows."""
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
