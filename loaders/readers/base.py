"""What every reader gives the raw loader: sources, their headers, and rows of text.

A *file* holds one or more *sources*: the sheets of a workbook, the tables of a SQLite
database, or the one table of a CSV file. A reader never guesses types: every cell comes out
as the text the source meant (see `loaders.readers.cells`), or None for a blank/NULL cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from loaders.errors import UserError


class SourceError(UserError):
    """A file that cannot be read: names the file, says what is wrong and what to do."""

    def __init__(self, path: Path | str, problem: str, advice: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.advice = advice
        message = f"{self.path}: {problem}"
        if advice:
            message += f"; {advice}"
        super().__init__(message)


@dataclass
class Source:
    """One sheet or table, ready to stream.

    `headers` are the header cells as text (None for a blank cell), one per column, or, when
    the source has no header row, all None. `rows()` yields `(row_number, cells)`: the
    1-based row number a user sees (spreadsheet row, SQLite rowid, CSV record number counting
    the header as 1) and exactly `len(headers)` cells, each text or None. It streams: it never
    holds the whole source in memory, and it may raise SourceError part-way through (a
    truncated file), which the loader turns into a rolled-back source.
    """

    file: Path
    file_kind: str  # "xlsx", "xls", "sqlite" or "csv"
    sheet: str  # sheet name, SQLite table name, or the CSV file's name
    headers: list[str | None]
    header_row: int | None  # 1-based row of the header; None: no header row (SQLite, forms)
    row_count_hint: int | None  # rows expected, for progress bars; None when unknown
    notes: list[str] = field(default_factory=list)  # e.g. "empty sheet", "no header row"
    _rows: object = None  # a zero-argument callable returning the row iterator
    # Non-blank rows above the header row (a title row: area, driver, plate), as
    # (row_number, cells) like rows(); not data, but part of the sheet: stage them somewhere.
    above_header: list[tuple[int, list[str | None]]] = field(default_factory=list)

    def rows(self) -> Iterator[tuple[int, list[str | None]]]:
        assert callable(self._rows), "reader did not set _rows"
        return self._rows()
