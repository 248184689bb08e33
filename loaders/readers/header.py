"""The header rule, one for every worksheet (.xlsx and .xls alike).

Look at the first 10 rows of the used range (from its first non-blank row); the header row is
the first of them whose non-empty cells number at least max(2, half the used range's width,
rounded up) and of which at least 60 % are text cells (numbers, dates, booleans and errors are
not text). If no row qualifies the sheet has no header row: `header_row` is None, `headers`
are all None, every row from row 1 to the last used row is data, and the notes say "no header
row". With a header row, data is every row below it down to the last used row, blank rows
included; the non-blank rows above it (a title row such as area, driver and plate above a
dispatch sheet's header) are kept in `Source.above_header`.
"""

from __future__ import annotations

from dataclasses import dataclass

from loaders.readers.cells import spreadsheet_text

HEADER_WINDOW = 10  # rows of the used range examined for a header row
HEADER_TEXT_SHARE = 0.6  # share of a header row's non-empty cells that must be text


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


@dataclass(frozen=True)
class Header:
    """A sheet's header row, its cells and the rows above it, as the Source gives them."""

    row: int | None  # 1-based spreadsheet row; None: the sheet has no header row
    cells: list[str | None]  # one per column from A; all None without a header row
    above: list[tuple[int, list[str | None]]]  # the non-blank rows above the header

    @property
    def first_data(self) -> int:
        """0-based index of the first data row: the row below the header, else row 1."""
        return self.row or 0

    @property
    def notes(self) -> list[str]:
        return [] if self.row is not None else ["no header row"]


def find_header(window: list[list[object]], first_row: int, first_col: int, width: int) -> Header:
    """The header of a sheet whose used range starts at 0-based row `first_row` and column
    `first_col` and ends at column `width` (counted from A). `window` holds the used range's
    first HEADER_WINDOW rows (fewer in a shorter sheet): typed cells from column A."""
    used = [(list(row) + [None] * width)[first_col:width] for row in window]
    found = detect_header(used, width - first_col)
    if found is None:
        return Header(None, [None] * width, [])
    pad: list[str | None] = [None] * first_col
    above = []
    for i, typed in enumerate(used[:found]):
        cells = pad + [spreadsheet_text(v) for v in typed]
        if any(c is not None for c in cells):
            above.append((first_row + i + 1, cells))
    return Header(first_row + found + 1, pad + [spreadsheet_text(v) for v in used[found]], above)
