"""Writing workbooks with real cell types, byte for byte reproducible.

XlsxWriter stores zip entries with a fixed timestamp; the document properties get a fixed
creation time here, so the same rows give the same bytes on every run and machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import xlsxwriter

from loaders.sample.model import XlError

CREATED = datetime(2025, 5, 21, 8, 30, 0)


class Workbook:
    """A thin wrapper: sheets are written row by row from lists of Python cell values."""

    def __init__(self, path: Path, created: datetime = CREATED):
        self.path = path
        self._tmp = path.with_name(path.name + ".partial")
        self.wb = xlsxwriter.Workbook(
            str(self._tmp),
            {
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "use_zip64": True,
            },
        )
        self.wb.set_properties({"created": created, "author": "", "company": "幸福氣"})
        self.date_fmt = self.wb.add_format({"num_format": "yyyy/m/d"})

    def sheet(self, name: str, rows: Iterable[list], first_row: int = 1) -> None:
        """Write `rows` starting at spreadsheet row `first_row` (1-based); None cells stay blank."""
        ws = self.wb.add_worksheet(name)
        write_number, write_string = ws.write_number, ws.write_string
        for r, cells in enumerate(rows, start=first_row - 1):
            for c, v in enumerate(cells):
                if v is None or v == "":
                    continue  # Excel has no empty-text cells: blank is blank
                t = type(v)
                if t is int or t is float:
                    write_number(r, c, v)
                elif t is str:
                    write_string(r, c, v)
                elif isinstance(v, XlError):
                    ws.write_formula(r, c, v.formula, None, v.code)
                elif isinstance(v, (datetime, date)):
                    ws.write_datetime(r, c, v, self.date_fmt)
                else:
                    raise TypeError(f"cannot write {v!r} ({t.__name__})")

    def close(self) -> None:
        self.wb.close()
        os.replace(self._tmp, self.path)
