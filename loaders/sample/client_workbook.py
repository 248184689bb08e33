"""The client workbook: the master sheet 客戶資料 and the 27 operational sheets beside it.

Sheet order, names (one with a trailing space), sizes and layouts follow the real file
(docs/raw-formats.md section 1): dispatch sheets with a title row above the header, a sheet
with no header row, a staffing form, numeric and date-phrase header cells, repeated and
blank headers, Excel error cells.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from loaders import taiwan_date as td
from loaders.sample import profile as P
from loaders.sample.model import NAME_ERR, REF_ERR, Client, XlError, rng_for
from loaders.sample.xlsx import Workbook

DISPATCH_DAYS = [20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1]
SHEET_ORDER = (
    ["客戶資料", "人員安排範本", "派遣單範本", "延後名單", "待配送名單 ", "待配送整理", "派遣單",
     "上傳清單", "派遣單測試"]
    + [f"派遣單5.{d}" for d in DISPATCH_DAYS]
)  # fmt: skip
assert len(SHEET_ORDER) == 28

DISPATCH_EXTRA = ["預計交易日期", "最後交易日", 20, 16, 10, 4, "備註"]
UPLOAD_HEADERS = ["編號", "業務員", "交易日期", "交易時間"] + [p.history_column for p in P.PRODUCTS]


@dataclass
class SheetFacts:
    """What expected.json records of a sheet (see truth.py)."""

    name: str
    header_row: int | None
    last_row: int
    last_column: int
    headers: list | None
    layout: str


def _title_row(rng: random.Random, width: int, route: str) -> list:
    row: list = [None] * width
    row[0] = "台東幸福氣配送計畫"
    row[5] = "區域:"
    row[7] = route
    row[9] = f"{rng.choice([7, 8, 13])}{rng.choice([0, 2, 3])}{rng.choice([0, 5])}".rjust(4, "0")
    row[11] = "駕駛車輛:"
    row[13] = rng.choice(P.PLATES)
    return row


def _dispatch(
    rng: random.Random, clients: list[Client], headers: list, n_rows: int, planned: int
) -> list[list]:
    """Title row, header row, then numbered rows; the first `planned` rows name a client."""
    width = len(headers)
    route = rng.choice(["計畫配送-南早", "計畫配送-北早", "計畫配送-午", "計畫配送-海線"])
    rows = [_title_row(rng, width, route), list(headers)]
    pos = {h: i for i, h in reversed(list(enumerate(headers)))}
    chosen = rng.sample(clients, min(planned, len(clients)))
    for k in range(1, n_rows + 1):
        row: list = [None] * width
        row[0] = k
        if k <= len(chosen):
            c = chosen[k - 1]
            has_code = headers[1] == "編號"
            if has_code:
                row[1] = c.code
                row[2] = c.invoice_title
            for h in ("電子發票抬頭", "客戶簡稱", "地址", "區域", "20KG", "16KG", "50KG"):
                if h in pos:
                    row[pos[h]] = c.cells.get(h)
            if "預計交易日期" in pos:
                row[pos["預計交易日期"]] = td.roc_compact(date(2025, 5, rng.randint(1, 20)))
            if "最後交易日" in pos:
                row[pos["最後交易日"]] = (
                    REF_ERR
                    if rng.random() < 0.05
                    else td.roc_compact(date(2025, 4, rng.randint(1, 30)))
                )
        rows.append(row)
    return rows


def _staffing(rng: random.Random) -> list[list]:
    """人員安排範本: a form, not a table: titles, labels and a few numbers."""
    rows: list[list] = [[None] * 17 for _ in range(52)]
    rows[0][0], rows[0][6], rows[0][7] = "台東幸福氣計畫配送人", "日期：", date(2025, 5, 21)
    labels = ["預估來電數量：", "預估配送數量：", "司機人數：", "機車人數：", "備註："]
    for i, label in enumerate(labels):
        rows[2 + i * 3][0] = label
        rows[2 + i * 3][2] = rng.randint(5, 80) if i < 4 else None
    for r in range(20, 50, 2):
        rows[r][1] = rng.choice(P.DRIVERS)
        rows[r][3] = rng.choice(["南早", "北早", "午", "海線"])
        rows[r][16] = rng.choice(P.PLATES)
    rows[51][0] = "核准："
    return rows


def _postponed(rng: random.Random, clients: list[Client]) -> list[list]:
    """延後名單: codes and ROC dates as numbers, 延後日期 as date cells, marker symbols."""
    headers = ["編號", "客戶名稱", "客戶編號", "簡稱", "地址", "預計交易日期", "區域名稱", "最後交易日",
               "延後日期", "延後天數", "原因", "業務員", "電話", "備註"]  # fmt: skip
    rows: list[list] = [headers]
    for k in range(1, 110):
        c = rng.choice(clients)
        planned = date(2025, 5, rng.randint(1, 28))
        delay = rng.randint(1, 10)
        marker = rng.choice(["", "", "", "€", "※", "￡", "●"])
        phone: object = rng.choice(
            [89000000 + rng.randint(0, 999999), f"去前電09{rng.randint(10000000, 99999999)}"]
        )
        rows.append([
            k, c.invoice_title, c.code, marker + c.short_name.strip(), c.address,
            td.roc_compact(planned), c.area, td.roc_compact(planned - timedelta(days=rng.randint(5, 40))),
            planned + timedelta(days=delay), delay, rng.choice(["客戶休假", "尚有存量", "公休", "聯絡不上", None]),
            c.salesperson, phone, None,
        ])  # fmt: skip
    return rows


def _pending(rng: random.Random, clients: list[Client]) -> list[list]:
    """待配送名單 (trailing space): blank first header, a date-phrase and a numeric header."""
    headers = [None, "客戶編號", "簡稱", "地址", "預計交易日期", "區域名稱", "最後交易日", "營業週期",
               "明天2025/07/20", 7, "備註", "電話"]  # fmt: skip
    rows: list[list] = [headers]
    for k in range(1, 219):
        c = rng.choice(clients)
        rows.append([
            k, c.code, c.short_name, c.address, f"{td.roc_compact(date(2025, 7, rng.randint(18, 31)))}",
            c.area, td.roc_compact(date(2025, rng.randint(5, 7), rng.randint(1, 17))),
            rng.randint(3, 40), rng.choice([None, "V"]), rng.choice([None, 1, 2]), None,
            rng.choice([None, 89000000 + rng.randint(0, 999999)]),
        ])  # fmt: skip
    return rows


def _sorting(rng: random.Random) -> list[list]:
    """待配送整理: no header row at all: row 1 empty, #NAME? in row 2, numbers below."""
    rows: list[list] = [[], [NAME_ERR, None, NAME_ERR]]
    for _ in range(3, 301):
        row: list = [None] * 221
        for c in range(0, 12):
            row[c] = rng.randint(0, 40) if rng.random() < 0.6 else None
        row[220] = rng.choice([None, None, 0, 1])
        rows.append(row)
    rows[-1][220] = 0
    return rows


def _upload(rng: random.Random, clients: list[Client]) -> list[list]:
    """上傳清單: the history layout, 交易日期 as TEXT, #NAME? in 50公斤 on most rows."""
    rows: list[list] = [list(UPLOAD_HEADERS)]
    n_data = 121
    name_rows = set(rng.sample(range(n_data), 103))
    for k in range(n_data):
        c = rng.choice(clients)
        row: list = [
            c.code,
            c.salesperson,
            "1140720",
            f"{rng.randint(8, 18):02d}:{rng.randrange(0, 60, 5):02d}",
        ]
        row += [None] * len(P.PRODUCTS)
        if k in name_rows:
            row[4] = NAME_ERR
        code = rng.choice(c.products)[0]
        idx = 4 + [p.code for p in P.PRODUCTS].index(code)
        if row[idx] is None:
            row[idx] = rng.randint(1, 3)
        rows.append(row)
    return rows


def write_client_workbook(path, seed: int, clients: list[Client]) -> tuple[list[SheetFacts], dict]:
    """Write the workbook; returns each sheet's facts and its error cells (row, column, error)."""
    rng = rng_for(seed, "client-workbook")
    wb = Workbook(path)
    facts: list[SheetFacts] = []
    errors: dict[str, list[tuple[int, int, XlError]]] = {}

    # The empty header cell is a blank cell, as in the real file, not an empty string.
    headers = [h or None for h in P.CLIENT_HEADERS]
    master_rows = [headers] + [[c.cells.get(h) for h in P.CLIENT_HEADERS] for c in clients]
    dispatch_headers = ["項次", "編號", "客戶"] + headers + DISPATCH_EXTRA
    template_headers = ["項次"] + headers
    test_headers = ["項次", "編號", "客戶"] + headers + ["預計交易日期", "備註"]

    for name in SHEET_ORDER:
        if name == "客戶資料":
            rows, header_row, layout = master_rows, 1, "table"
        elif name == "人員安排範本":
            rows, header_row, layout = _staffing(rng), None, "form"
        elif name == "派遣單範本":
            rows, header_row, layout = (
                _dispatch(rng, clients, template_headers, 250, 0),
                2,
                "title_above_header",
            )
        elif name == "延後名單":
            rows, header_row, layout = _postponed(rng, clients), 1, "table"
        elif name == "待配送名單 ":
            rows, header_row, layout = _pending(rng, clients), 1, "table"
        elif name == "待配送整理":
            rows, header_row, layout = _sorting(rng), None, "no_header"
        elif name == "上傳清單":
            rows, header_row, layout = _upload(rng, clients), 1, "table"
        elif name == "派遣單測試":
            rows, header_row, layout = (
                _dispatch(rng, clients, test_headers, 278, rng.randint(5, 15)),
                2,
                "title_above_header",
            )
        else:  # 派遣單 and the daily 派遣單5.x
            rows, header_row, layout = (
                _dispatch(rng, clients, dispatch_headers, 278, rng.randint(20, 60)),
                2,
                "title_above_header",
            )
        errors[name] = [
            (r + 1, c + 1, v)
            for r, row in enumerate(rows)
            for c, v in enumerate(row)
            if isinstance(v, XlError)
        ]
        wb.sheet(name, rows)
        last_column = max(
            (i + 1 for row in rows for i, v in enumerate(row) if v is not None), default=0
        )
        facts.append(
            SheetFacts(
                name=name,
                header_row=header_row,
                last_row=len(rows),
                last_column=last_column,
                headers=list(rows[header_row - 1]) if header_row else None,
                layout=layout,
            )
        )
    wb.close()
    return facts, errors
