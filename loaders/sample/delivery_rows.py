"""A delivery row of the sample, and what every part of the delivery plan shares.

`HistoryRow` is a row of a history workbook, `AppDelivery` a row of the app's deliveries
table; each carries the defect injected into it and the outcome the pipeline must reach.
Beside them: the history sheet's layout, the dates the exports span, and a client's
plausible delivery (its time of day, its products, the app's cylinders by size).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from loaders.sample import profile as P
from loaders.sample.model import Client

HISTORY_SHEET = "Sheet1"
HISTORY_HEADERS = ["客戶", "電子發票抬頭", "客戶簡稱", "地址", "最後十次日期"]
COL = {name: i for i, name in enumerate(HISTORY_HEADERS)}
DATE_COLUMN = "最後十次日期"
HISTORY_START = date(2021, 1, 1)
HISTORY_END = date(2025, 5, 28)
APP_END = date(2025, 5, 31)  # the app ran a few days past the history export
# The plausible range of a delivery date; dates outside it are quarantined as out of range.
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2025, 12, 31)


def history_headers(sheet: str = HISTORY_SHEET) -> list[str]:
    return list(HISTORY_HEADERS)


@dataclass
class HistoryRow:
    """One row of Sheet1 (or of a later history file); `row` is set once the order is fixed."""

    sheet: str
    sort_key: tuple
    cells: list
    code: int | None = None  # the client the row names (None: no valid code)
    day: date | None = None  # the date the pipeline must read (None: no valid date)
    master: Client | None = None  # the master client, when the code is one
    kind: str | None = None
    column: str | None = None  # the header of the cell the defect sits in
    reason: str | None = None
    expect: dict | None = None
    dup_of: HistoryRow | None = None  # the row it repeats (merged into), in `dup_of.file`
    row: int = 0
    file: str = P.HISTORY_FILE  # the workbook that holds the row
    items: dict[str, float] | None = None  # product quantities (transaction layout only)
    layout: str = "history_daily"


@dataclass
class AppDelivery:
    """One row of the app's deliveries table."""

    day: date
    time: str | None  # HH:MM, None for an imported row (the importer had no time)
    client_id: int
    sizes: dict[int, int]  # kg -> cylinders
    kind: str | None = None
    reason: str | None = None
    status: str = "COMPLETED"
    imported: bool = False
    driver_id: int | None = None
    vehicle_id: int | None = None
    expect: dict | None = None
    merged_into: HistoryRow | None = None
    id: int = 0


def all_days(start: date = HISTORY_START, end: date = HISTORY_END) -> list[date]:
    return [start + timedelta(days=k) for k in range((end - start).days + 1)]


def clean(text: str | None) -> str | None:
    """The pipeline's clean_text: NFKC, trimmed (space, tab, CR, LF), empty -> None."""
    if text is None:
        return None
    out = unicodedata.normalize("NFKC", str(text)).strip(" \t\r\n")
    return out or None


def clean_address(text: str | None) -> str | None:
    out = clean(text)
    return out.replace("台", "臺") if out else out


def random_time(rng: random.Random, client: Client) -> str:
    """HH:MM in one of the client's delivery hours (any hour 8-19 if it names none)."""
    hour = rng.choice(client.hours) if client.hours else rng.randint(8, 19)
    return f"{hour:02d}:{rng.randrange(0, 60, 5):02d}"


def random_items(
    rng: random.Random, client: Client, regular_only: bool = False
) -> dict[str, float]:
    """A plausible delivery of the client's products (cylinders; kg for metered supply)."""
    if client.metered and not regular_only:
        code, count = rng.choice(client.products) if client.products else ("GAS-F50-R", 1)
        if not code.startswith("GAS-F"):
            code = "GAS-F50-R"
        kg = P.PRODUCT_BY_CODE[code].kg * max(1, count)
        return {code: round(rng.uniform(0.15, 0.95) * kg + rng.choice([0.0, 0.5]), 1)}
    products = [(c, n) for c, n in client.products if not c.startswith("GAS-F")]
    if not products:
        products = [("GAS-C20-R", 2)]
    picks = (
        rng.sample(products, 2)
        if len(products) >= 2 and rng.random() < 0.2
        else [rng.choice(products)]
    )
    items: dict[str, float] = {}
    for code, count in picks:
        if regular_only:
            code = P.APP_REGULAR_PRODUCT[P.PRODUCT_BY_CODE[code].kg]
        items[code] = items.get(code, 0) + rng.randint(1, max(1, min(count, 4)))
    return items


def items_of_sizes(sizes: dict[int, int]) -> dict[str, int]:
    """The app's cylinders by size as products: each size is its regular product."""
    return {P.APP_REGULAR_PRODUCT[kg]: q for kg, q in sorted(sizes.items()) if q}
