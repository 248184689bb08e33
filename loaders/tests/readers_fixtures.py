"""Tiny files for test_readers.py, built in tmp_path.

`write_xlsx` writes a workbook with real cell types through xlsxwriter (the writer the sample
uses); `XLS_FILE` is a small Excel 97-2003 workbook made once with xlwt 1.3.0 (not a project
dependency), stored zlib-compressed: sheet 派遣單5.1 (a title row, the header in row 2, a
number, a date, a datetime, a time, a boolean and the errors #REF!, #N/A, #VALUE!), an empty
sheet, and sheet nohead (no header, row 1 and column A empty). `sqlite_text` is the SQLite
reader's conversion (`sqlite.text_of`) applied to one value.
"""

from __future__ import annotations

import base64
import sqlite3
import zlib
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import xlsxwriter

from loaders.readers.sqlite import text_of


def sqlite_text(value: object) -> str | None:
    """The text the SQLite reader's query gives `value` (bound as SQLite stores it)."""
    with closing(sqlite3.connect(":memory:")) as conn:
        (text,) = conn.execute(f"select {text_of('v')} from (select ? as v)", (value,)).fetchone()
    return text


@dataclass(frozen=True)
class Err:
    """An error cell: a formula whose cached result is the error `code`."""

    code: str


@dataclass(frozen=True)
class Duration:
    """A duration cell: a number with the format [h]:mm:ss."""

    value: timedelta


@dataclass(frozen=True)
class EmptyText:
    """A formula cell whose cached result is the empty text."""


def write_xlsx(path: Path, sheets: dict[str, list[list]], first_row: int = 1, first_col: int = 1):
    """A workbook with one sheet per entry; rows start at spreadsheet row `first_row` and
    column `first_col` (1-based). None cells are left out; "" is written as a string."""
    wb = xlsxwriter.Workbook(
        str(path),
        {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
    fmt = {
        date: wb.add_format({"num_format": "yyyy/m/d"}),
        datetime: wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        time: wb.add_format({"num_format": "hh:mm:ss"}),
        Duration: wb.add_format({"num_format": "[h]:mm:ss"}),
    }
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, cells in enumerate(rows, start=first_row - 1):
            for c, v in enumerate(cells, start=first_col - 1):
                if v is None:
                    continue
                if isinstance(v, Err):
                    ws.write_formula(r, c, "=#REF!+1", None, v.code)
                elif isinstance(v, EmptyText):
                    ws.write_formula(r, c, '=""', None, "")
                elif isinstance(v, Duration):
                    ws.write_datetime(r, c, v.value, fmt[Duration])
                elif isinstance(v, bool):
                    ws.write_boolean(r, c, v)
                elif isinstance(v, (int, float)):
                    ws.write_number(r, c, v)
                elif isinstance(v, str):
                    ws.write_string(r, c, v)
                elif isinstance(v, (datetime, date, time)):
                    ws.write_datetime(r, c, v, fmt[type(v)])
                else:
                    raise TypeError(v)
    wb.close()
    return path


XLS_FILE = zlib.decompress(
    base64.b64decode(
        "eNrtWF1oVFcQnnN/9idmk900/hbSa8Ro02gQ8YeI2TSgPsWm8Rct1sTdGNlsomuERMH/fYlUI6GgRQRLbOlLWl/8QQV9"
        "80GwVaGgiInap0JpoYIPmvWbufduknUVAypEdpYz58ycmXPmzpmZc/f+fis0cObctEHKgGrSaSjlJ88InkLzu0SQMJ9K"
        "8dDtfWipHIwr8PtwkB6TLgduevkM+bwHSaPfjOvARI/QvqHttLK9LWp9QKgVGxoV27BUeRB7GiLyFHABTRXLigRvEfyJ"
        "4F9F+orgGuF8J3gpZAfUBroVXlm+2Ink9VqpzBUAK7ogOveEM48m0g2O5H09ypY16cvEtsbWj36ixMinPkIYrIi2RRNM"
        "B+gsZ3UXoDJeGSkxptBPcLYw5sTjcyIRq6WlKh6v2rmThX9mYZcxQMWIpj56mrKI/nfLxjUrx/+wfEXgPxvN976G78N5"
        "Z+P7cezZ+Hk48kx+r2YQ7afUZsWZlYTUdFMqi6qOb+npX7OA5iLHkhSgRXxhIPii8e0dXUmkYsxvl6C29pZoY+Q57QWP"
        "pPlJ/btqx9bOTce6ZrTWHVc9vu7YLp1UzaqH66o4hc0T02Pofty4sAndH8frTqC7GzvyFbq/op9thWxtc+/383m2tnlJ"
        "A7rK5rLV3PX2dWP2ZP2SbouD37IarSbLQmp05vHOUiCDowpkQIpGPnCECmUcktIRhAOf//Lf7bqm+vC3wtkvl6J9dc5k"
        "x1CKDrAGlAvIfnyGCWjlovGF4IOy6qcynia4GJLoy+onOoPlh0TmsMyWYZ/5AnfCs0aMZ2Oc/PvriyXJx+HPMe5fMbi7"
        "uP/P8BkqhU8j0OffIapQFeqHkwyXwm6vnBL7QPDUV8qtTwuS7ZGU835QSC8oT4YhwTZlglKOvJJnHS2vRF5z5JV4U09T"
        "GigjTemgzDRlgPKkKd7Hm6Y8oHxpygvKn6Z8oNiyvRpTflAN6bk8UBMca7UMa6/SFOHZu4bodMca4D1YCpeTViBXVIha"
        "Sls7d5+9EubVNdhYRGuPuvMmfPePsSNxLvGkxuZ4cLLXK5g3GDY1Hzhe8Zc9ZksnK7ZME8vyHct0yYlhy3gvXWxyn0sX"
        "z93HFc8r6bJSuWJdI4uuIbockSxtiHShqtaK6Dw/MK7TYXh3WUGvzYphGG9ZIT6j9+ez7JWEubrM6uO0kvATaBlRadeC"
        "SSOyUc+oHZpEeeCNfs9BDnKQgxxkAbvs2peH4byO8sXkdb7rvEAbyn0m+Wihgdrx68B/uGXUhj5BXWOKn0lkKnct9ZY6"
        "7vdChnXYPUExahI7YmOOX7xYqJHP89aKwXeXQmPdf2gsdr7n/V8CtRyGjw=="
    )
)
