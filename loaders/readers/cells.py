"""The one conversion from a spreadsheet cell's value to the text the loader stages.

A reader never guesses a type; it only writes down what the cell held, as text a person
would recognise:

Spreadsheet cells (`spreadsheet_text`, for .xlsx/.xls):

| cell | text |
|---|---|
| blank, empty text | None (Excel has no empty-text cell: blank is blank) |
| text | unchanged: no trimming, no Unicode normalisation |
| boolean | `TRUE` / `FALSE`, as Excel shows them |
| whole number (int, or float such as 1400103.0) | `1400103` |
| other number | shortest round-trip form: `6.7`, `0.1119`, `-0.1`, `1e-07` |
| date | `2014-08-26` |
| date and time | `2014-08-26 13:05:07` (`.500000` only when the fraction is not zero); midnight gives the date alone |
| time of day | `13:05:07` (fraction as above) |
| duration (a `[h]:mm:ss` cell) | total hours, as Excel's `[h]:mm:ss` shows it and PostgreSQL's `interval` reads it: `30:05:00`, `-1:30:00`, `876:00:00` |
| error | its code: `#NAME?`, `#REF!`, `#VALUE!`, `#DIV/0!`, `#N/A`, `#NUM!`, `#NULL!`, ... |

SQLite values are not converted here: SQLite converts them itself, in the SQLite reader's
query (`sqlite.text_of`, whose rule is in `sqlite.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta


@dataclass(frozen=True, slots=True)
class CellError:
    """An Excel error value such as #N/A: a cell type of its own, never a blank or a text."""

    code: str


def duration_text(value: timedelta) -> str:
    """A duration as total hours, minutes and seconds: `30:05:00`, `-0:00:01.500000`."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{sign}{hours}:{minute:02d}:{second:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def _float_text(value: float) -> str:
    if value.is_integer():
        return str(int(value))
    return repr(value)  # shortest round-trip form; 'inf'/'nan' cannot occur in a workbook


def _datetime_text(value: datetime) -> str:
    if value.hour == value.minute == value.second == value.microsecond == 0:
        return value.date().isoformat()
    return value.isoformat(sep=" ")


def spreadsheet_text(value: object) -> str | None:
    """The text of one spreadsheet cell (see the module docstring for the table)."""
    t = type(value)
    if t is str:
        return value or None  # type: ignore[return-value]
    if t is float:
        return _float_text(value)  # type: ignore[arg-type]
    if value is None:
        return None
    if t is bool:
        return "TRUE" if value else "FALSE"
    if t is int:
        return str(value)
    if t is CellError:
        return value.code  # type: ignore[union-attr]
    if t is date:
        return value.isoformat()  # type: ignore[union-attr]
    if t is datetime:
        return _datetime_text(value)  # type: ignore[arg-type]
    if t is time:
        return value.isoformat()  # type: ignore[union-attr]
    if t is timedelta:
        return duration_text(value)  # type: ignore[arg-type]
    # Subclasses (numpy-free here, but be exact rather than clever): same rules by isinstance.
    if isinstance(value, str):
        return str(value) or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float_text(float(value))
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"no text rule for a spreadsheet cell of type {t.__name__}: {value!r}")


MEMO_ENTRY_BYTES = 100  # a memo entry's share of its dict, and its float key


class RowText:
    """`spreadsheet_text` over a whole row at a time: `text(row)` is exactly
    `[spreadsheet_text(v) for v in row]`, faster. The type test of the two types nearly every
    cell has (str, float) is inlined, and the text of each distinct float is kept in `memo`
    (a client code, a date number: converted once). `size` is the bytes the memo holds
    (about); past `limit` it stops growing: numbers still convert, they are not remembered.
    (Remembering the strings too, to share one object per distinct text, costs more than
    their whole conversion: hashing every fresh string calamine makes.)"""

    def __init__(self, limit: int) -> None:
        self.memo: dict[float, str] = {}
        self.size = 0
        self.limit = limit

    def _float(self, value: float) -> str:
        text = _float_text(value)
        if self.size < self.limit:
            self.memo[value] = text
            self.size += sys.getsizeof(text) + MEMO_ENTRY_BYTES
        return text

    def __call__(self, row: list) -> list[str | None]:
        # Only exact floats reach the memo (bool, whose True == 1.0, and every other type go
        # to spreadsheet_text); a float's text is never empty, so `or` only sees a miss.
        get, new_float, text = self.memo.get, self._float, spreadsheet_text
        return [
            (v or None)
            if type(v) is str
            else (get(v) or new_float(v))
            if type(v) is float
            else text(v)
            for v in row
        ]

    def tuples(self, rows: list[list]) -> list[tuple[str | None, ...]]:
        """`tuple(self(row))` for each row of `rows`, in one comprehension."""
        get, new_float, text = self.memo.get, self._float, spreadsheet_text
        return [
            tuple(
                [
                    (v or None)
                    if type(v) is str
                    else (get(v) or new_float(v))
                    if type(v) is float
                    else text(v)
                    for v in row
                ]
            )
            for row in rows
        ]


NULL = "\\N"  # PostgreSQL COPY text's NULL
# The types a column may hold to be converted through the memo: not bool nor int, whose
# values equal floats (True == 1 == 1.0) and would find a float's text there.
_MEMO_TYPES = {float, str, CellError, date, datetime, time, timedelta}


class ColumnText(dict):
    """`spreadsheet_text` over a whole column of cells at a time (the cells of one column in
    a batch of rows): `texts(column)` is exactly `[spreadsheet_text(v) for v in column]`,
    `fields(column)` the same with None as COPY's NULL (`\\N`) and the number of NULLs.

    The dict is the memo, from a cell value to its text: a column of floats (client codes,
    date numbers) is converted by `map` over the memo's lookup, in C, and only a value not
    seen yet computes its text (`__missing__`), kept while the memo is within `limit` bytes
    (`size`, about). A column of texts only is its own text (a blank "" is None). Values of
    other types go through the memo too, except strings (never remembered: hashing every
    fresh string calamine makes costs more than it saves). A column holding a boolean or an
    int (equal to a float: True == 1 == 1.0, so never in the memo), or a type calamine does
    not give, is converted cell by cell."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.size = 0
        self.limit = limit

    def __missing__(self, value: object) -> str | None:
        text = spreadsheet_text(value)
        if type(value) is not str and self.size < self.limit:
            self[value] = text
            self.size += sys.getsizeof(text) + MEMO_ENTRY_BYTES
        return text

    def texts(self, column: Sequence) -> list[str | None]:
        types = set(map(type, column))
        if types == _STR:
            return [v or None for v in column] if "" in column else list(column)
        if types <= _MEMO_TYPES:
            return list(map(self.__getitem__, column))
        return [spreadsheet_text(v) for v in column]

    def fields(self, column: Sequence) -> tuple[list[str], int]:
        types = set(map(type, column))
        if types == _STR:
            if "" in column:
                return [v or NULL for v in column], column.count("")
            return list(column), 0
        if types == _FLOAT:
            return list(map(self.__getitem__, column)), 0
        texts = self.texts(column)
        nulls = texts.count(None)
        if nulls:
            return [NULL if t is None else t for t in texts], nulls  # type: ignore[misc]
        return texts, 0  # type: ignore[return-value]


_STR, _FLOAT = {str}, {float}
