"""A delivery history workbook: its sheets of planned rows, under their header row."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from loaders.sample.delivery_rows import HistoryRow, history_headers
from loaders.sample.xlsx import CREATED, Workbook


def write_history_workbook(
    path: Path,
    sheets: dict[str, list[HistoryRow]],
    created: datetime = CREATED,
    headers: list | None = None,
) -> None:
    """Write each sheet's rows under `headers` (default: the history export's five)."""
    wb = Workbook(path, created)
    for name, rows in sheets.items():
        wb.sheet(name, [headers or history_headers(name)] + [r.cells for r in rows])
    wb.close()
