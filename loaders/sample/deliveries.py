"""Delivery events and the rows that describe them in the history workbook and the app.

The truth is a set of events (one per client and day at most). Each event is written to the
history, to the app, or to both (the same delivery, with other ids, another date format and
quantities by size instead of by product). Extra rows carry what cannot become a delivery
(orphan codes, bad dates, zero or negative quantities, ...), each with its expected reason.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from loaders import taiwan_date as td
from loaders.sample import profile as P
from loaders.sample.model import (
    NAME_ERR,
    REF_ERR,
    VALUE_ERR,
    Client,
    Event,
    apportion,
    rng_for,
    scale_count,
)

HISTORY_START = date(2010, 9, 1)
HISTORY_END = date(2025, 5, 20)
APP_START = date(2020, 1, 1)
APP_END = date(2025, 5, 31)
# The plausible range of a delivery date; dates outside it are quarantined as out of range.
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2025, 12, 31)

FULL_HISTORY_ROWS = 349_920
FULL_APP_DELIVERIES = 179_555
APP_SHARED_SHARE = 0.62  # of app deliveries, the same events as history rows

# History sheets: ROC-year bands. The oldest names the code column 編號 and has no 最後十次日期.
HISTORY_SHEETS = [("99-104年", 2010, 2015), ("105-109年", 2016, 2020), ("110-114年", 2021, 2025)]
HISTORY_PRODUCT_COLUMNS = [p.history_column for p in P.PRODUCTS]


def history_headers(sheet: str) -> list[str]:
    first = "編號" if sheet == HISTORY_SHEETS[0][0] else "客戶"
    cols = [first, "電子發票抬頭", "客戶簡稱", "地址", "業務員", "交易日期", "交易時間"]
    cols += HISTORY_PRODUCT_COLUMNS
    if sheet != HISTORY_SHEETS[0][0]:
        cols.append("最後十次日期")
    return cols


def sheet_for(day: date) -> str:
    for name, lo, hi in HISTORY_SHEETS:
        if lo <= day.year <= hi:
            return name
    raise ValueError(day)


# Full-scale row counts per defect kind. The small sample keeps at least two of each.
HISTORY_LOADED_KINDS = {
    "roc_date_text": 400,
    "roc_date_float_text": 120,
    "roc_date_zero_padded": 40,
    "roc_date_separated": 150,
    "roc_date_chinese": 60,
    "date_fullwidth": 40,
    "western_date_text": 80,
    "western_date_cell": 60,
    "western_date_compact": 40,
    "date_whitespace": 30,
    "code_as_text": 300,
    "code_whitespace": 120,
    "code_fullwidth": 30,
    "client_detail_mismatch": 400,
    "tai_variant": 300,
}
HISTORY_DUPLICATES = 1100
HISTORY_QUARANTINE_KINDS = {
    "orphan_client_code": ("unknown_client", 350),
    "client_code_error": ("invalid_client_code", 20),
    "client_code_malformed": ("invalid_client_code", 30),
    "date_empty": ("date_empty", 40),
    "date_excel_error": ("date_unparseable", 30),
    "date_impossible": ("date_not_calendar_date", 40),
    "date_roc_year_zero": ("date_not_calendar_date", 10),
    "date_garbage": ("date_unparseable", 20),
    "date_excel_serial": ("date_not_calendar_date", 20),
    "date_out_of_range": ("date_out_of_range", 30),
    "all_zero_quantity": ("no_positive_quantity", 120),
    "negative_quantity": ("negative_quantity", 60),
    "quantity_error": ("invalid_quantity", 25),
}
APP_QUARANTINE_KINDS = {
    "app_orphan_client_id": ("unknown_client", 60),
    "app_test_client_delivery": ("test_client", 24),
    "app_zero_quantity": ("no_positive_quantity", 50),
    "app_negative_quantity": ("negative_quantity", 20),
    "app_cancelled": ("cancelled", 300),
}


@dataclass
class HistoryRow:
    """One row of a history sheet; `row` is set once the sheet's order is fixed."""

    sheet: str
    sort_key: tuple
    cells: list
    event: Event | None = None
    kind: str | None = None
    column: str | None = None  # the header of the cell the defect sits in
    reason: str | None = None
    expect: dict | None = None
    dup_of: HistoryRow | None = None  # the row it repeats (merged into), in `dup_of.file`
    row: int = 0
    file: str = P.HISTORY_FILE  # the workbook that holds the row


@dataclass
class AppDelivery:
    """One row of the app's deliveries table."""

    day: date
    time: str
    client_id: int
    sizes: dict[int, int]  # kg -> cylinders
    event: Event | None = None
    kind: str | None = None
    reason: str | None = None
    status: str = "completed"
    merged_into: HistoryRow | None = None
    id: int = 0


@dataclass
class DeliveryPlan:
    events: list[Event] = field(default_factory=list)  # final events (history and app-only)
    history: dict[str, list[HistoryRow]] = field(default_factory=dict)
    app: list[AppDelivery] = field(default_factory=list)
    history_rows: int = 0
    app_rows: int = 0
    duplicates: int = 0


def _day_weights(
    start: date, end: date, growth_span: float = 2.0
) -> tuple[list[date], list[float]]:
    """Each day's weight: business grows linearly by `growth_span` (threefold by default) over
    the period; Saturdays and Sundays are quieter, the first week of February quietest."""
    days, weights = [], []
    span = (end - start).days
    d = start
    while d <= end:
        growth = 1.0 + growth_span * (d - start).days / span
        week = {5: 0.8, 6: 0.35}.get(d.weekday(), 1.0)
        lunar = 0.3 if (d.month == 2 and d.day <= 7) else 1.0
        days.append(d)
        weights.append(growth * week * lunar)
        d += timedelta(days=1)
    return days, weights


def _time(rng: random.Random, client: Client) -> str:
    hour = rng.choice(client.hours) if client.hours else rng.randint(8, 19)
    return f"{hour:02d}:{rng.randrange(0, 60, 5):02d}"


def _items(rng: random.Random, client: Client, regular_only: bool = False) -> dict[str, float]:
    if client.metered:
        code, count = rng.choice(client.products)
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


def _sizes(items: dict[str, float]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for code, qty in items.items():
        kg = P.PRODUCT_BY_CODE[code].kg
        sizes[kg] = sizes.get(kg, 0) + int(qty)
    return sizes


class _Picker:
    """Chooses clients for days, at most one event per client and day across every source."""

    def __init__(self, rng: random.Random, clients: list[Client]):
        self.rng = rng
        self.clients = clients
        self.cum: list[float] = []
        total = 0.0
        for c in clients:
            total += c.weight
            self.cum.append(total)
        self.taken: set[tuple[int, date]] = set()

    def pick(self, day: date, k: int, only=None) -> list[Client]:
        chosen: list[Client] = []
        tries = 0
        while len(chosen) < k and tries < k * 50 + 200:
            tries += 1
            c = self.rng.choices(self.clients, cum_weights=self.cum, k=1)[0]
            if (c.index, day) in self.taken:
                continue
            if c.active_until and day > c.active_until:
                continue
            if only and not only(c):
                continue
            self.taken.add((c.index, day))
            chosen.append(c)
        return chosen


_SLOT = {p.code: i for i, p in enumerate(P.PRODUCTS)}
_FIRST_PRODUCT = 7  # the product columns follow 客戶 ... 交易時間


def _render_history(event: Event, last: date | None) -> list:
    c = event.client
    cells: list = [c.code, c.invoice_title, c.short_name, c.address, event.salesperson]
    cells += [td.roc_compact(event.day), event.time]
    cells += [None] * len(P.PRODUCTS)
    for code, q in event.items.items():
        cells[_FIRST_PRODUCT + _SLOT[code]] = int(q) if float(q).is_integer() else q
    cells.append(td.roc_compact(last) if last else None)
    return cells


COL = {name: i for i, name in enumerate(history_headers("110-114年"))}


def plan_deliveries(
    seed: int, clients: list[Client], factor: float, test_client_ids: list[int]
) -> DeliveryPlan:
    """Build every history row and app delivery, with the outcome each must reach."""
    rng = rng_for(seed, "deliveries")
    picker = _Picker(rng, clients)
    plan = DeliveryPlan()
    n_hist = round(FULL_HISTORY_ROWS * factor)
    n_app = round(FULL_APP_DELIVERIES * factor)
    plan.history_rows, plan.app_rows = n_hist, n_app

    def count(full: int) -> int:
        return scale_count(full, factor, minimum=2)

    q_hist = {k: count(n) for k, (_, n) in HISTORY_QUARANTINE_KINDS.items()}
    n_dup = count(HISTORY_DUPLICATES)
    n_events = n_hist - n_dup - sum(q_hist.values())

    # 1. History events over the history's days.
    days, weights = _day_weights(HISTORY_START, HISTORY_END)
    per_day = apportion(weights, n_events, rng)
    events: list[Event] = []
    for day, k in zip(days, per_day, strict=True):
        for c in picker.pick(day, k):
            events.append(Event(len(events), c, day, _time(rng, c), _items(rng, c), c.salesperson))
    # A crowded day can fall short; top up on the busiest days of the last year.
    while len(events) < n_events:
        day = rng.choice(days[-365:])
        for c in picker.pick(day, 1):
            events.append(Event(len(events), c, day, _time(rng, c), _items(rng, c), c.salesperson))
    events.sort(key=lambda e: (e.day, e.time, e.client.code))

    # 2. Loadable defects on history-only events.
    free = [e for e in events]
    rng.shuffle(free)
    loaded_kinds = {k: count(n) for k, n in HISTORY_LOADED_KINDS.items()}
    eligible_for = {
        "roc_date_zero_padded": lambda e: e.day.year <= 2010,
        "tai_variant": lambda e: "臺" in e.client.address,
    }
    for kind, k in loaded_kinds.items():
        ok = eligible_for.get(kind, lambda e: True)
        pool = (e for e in free if e.defect is None and ok(e))
        for e in itertools.islice(pool, k):
            e.defect = kind

    # 3. The same deliveries in the app: cylinder-only history events in the app's period.
    eligible = [e for e in events if e.day >= APP_START and e.defect is None and e.cylinder_only]
    q_app = {k: count(n) for k, (_, n) in APP_QUARANTINE_KINDS.items()}
    n_shared = min(round(n_app * APP_SHARED_SHARE), len(eligible) * 9 // 10)
    for e in rng.sample(eligible, n_shared):
        e.in_app = True
    n_app_only = n_app - n_shared - sum(q_app.values())

    # 4. Exact duplicates of clean history-only rows.
    dup_pool = [e for e in events if e.defect is None and not e.in_app]
    dup_events = set(id(e) for e in rng.sample(dup_pool, n_dup))

    # 5. Render history rows.
    last_seen: dict[int, date] = {}
    rows: list[HistoryRow] = []
    for e in events:
        cells = _render_history(e, last_seen.get(e.client.index))
        last_seen[e.client.index] = e.day
        hr = HistoryRow(sheet_for(e.day), (e.day, e.time, e.client.code, 0), cells, event=e)
        if e.defect:
            _apply_loaded_defect(rng, hr)
        elif e.day.year <= 2010:
            hr.kind, hr.column, hr.expect = (
                "roc_date_6digit",
                "交易日期",
                {"date": e.day.isoformat()},
            )
        rows.append(hr)
        if id(e) in dup_events:
            rows.append(
                HistoryRow(
                    hr.sheet, hr.sort_key[:3] + (1,), list(cells), dup_of=hr, kind="exact_duplicate"
                )
            )
    plan.duplicates = n_dup

    # 6. Rows that cannot become deliveries.
    codes = {c.code for c in clients}
    for kind, k in q_hist.items():
        reason = HISTORY_QUARANTINE_KINDS[kind][0]
        for _ in range(k):
            rows.append(_quarantine_row(rng, picker, days, kind, reason, codes))

    for name, _, _ in HISTORY_SHEETS:
        plan.history[name] = []
    for hr in rows:
        plan.history[hr.sheet].append(hr)
    for name, sheet_rows in plan.history.items():
        sheet_rows.sort(key=lambda r: r.sort_key)
        for i, hr in enumerate(sheet_rows):
            hr.row = i + 2
        if name == HISTORY_SHEETS[0][0]:
            for hr in sheet_rows:
                del hr.cells[-1]  # the oldest sheet has no 最後十次日期
    assert sum(len(v) for v in plan.history.values()) == n_hist

    # 7. App deliveries: shared events, app-only events, and rows that cannot become deliveries.
    app_days, app_weights = _day_weights(APP_START, APP_END)
    app: list[AppDelivery] = []
    hist_row_of = {id(hr.event): hr for hr in rows if hr.event is not None and hr.dup_of is None}
    for e in events:
        if e.in_app:
            app.append(
                AppDelivery(
                    e.day,
                    e.time,
                    e.client.app_id,
                    _sizes(e.items),
                    event=e,
                    merged_into=hist_row_of[id(e)],
                )
            )
    app_only: list[Event] = []
    per_day = apportion(app_weights, n_app_only, rng)
    cylinder_client = lambda c: not c.metered  # noqa: E731
    for day, k in zip(app_days, per_day, strict=True):
        for c in picker.pick(day, k, only=cylinder_client):
            e = Event(
                0,
                c,
                day,
                _time(rng, c),
                _items(rng, c, regular_only=True),
                c.salesperson,
                in_history=False,
                in_app=True,
            )
            app_only.append(e)
    while len(app_only) < n_app_only:
        day = rng.choice(app_days[-200:])
        for c in picker.pick(day, 1, only=cylinder_client):
            app_only.append(
                Event(
                    0,
                    c,
                    day,
                    _time(rng, c),
                    _items(rng, c, regular_only=True),
                    c.salesperson,
                    in_history=False,
                    in_app=True,
                )
            )
    for e in app_only:
        app.append(AppDelivery(e.day, e.time, e.client.app_id, _sizes(e.items), event=e))
    for kind, k in q_app.items():
        reason = APP_QUARANTINE_KINDS[kind][0]
        for _ in range(k):
            a = _app_quarantine(rng, picker, app_days, clients, kind, reason)
            if kind == "app_test_client_delivery":
                a.client_id = test_client_ids[
                    len([x for x in app if x.kind == kind]) % len(test_client_ids)
                ]
            app.append(a)
    app.sort(key=lambda a: (a.day, a.time, a.client_id, a.kind or ""))
    for i, a in enumerate(app):
        a.id = i + 1
    assert len(app) == n_app, (len(app), n_app)
    plan.app = app

    final = [e for e in events] + app_only
    for i, e in enumerate(final):
        e.id = i + 1
    plan.events = final
    return plan


def _apply_loaded_defect(rng: random.Random, hr: HistoryRow) -> None:
    """Write an odd but valid form into the row; the event still becomes a delivery."""
    e = hr.event
    assert e is not None
    kind, d, c = e.defect, e.day, e.client
    compact = td.roc_compact(d)
    date_cell: object
    hr.kind = kind
    if kind in {"code_as_text", "code_whitespace", "code_fullwidth"}:
        text = c.code_text
        value = {
            "code_as_text": text,
            "code_whitespace": rng.choice([f" {text}", f"{text} ", f"  {text}", f"{text}\u3000"]),
            "code_fullwidth": td.to_fullwidth(text),
        }[kind]
        hr.cells[COL["客戶"]] = value
        hr.column, hr.expect = "客戶", {"client_code": text}
        return
    if kind == "client_detail_mismatch":
        if rng.random() < 0.5:
            hr.cells[COL["客戶簡稱"]] = c.short_name.strip() + rng.choice(["(舊)", "老店", "總店"])
            hr.column = "客戶簡稱"
        else:
            hr.cells[COL["地址"]] = f"臺東縣臺東市{rng.choice(P.ROADS)}{rng.randint(1, 500)}號"
            hr.column = "地址"
        hr.expect = {
            "client_code": c.code_text,
            "master_value": c.short_name if hr.column == "客戶簡稱" else c.address,
        }
        return
    if kind == "tai_variant":
        hr.cells[COL["地址"]] = c.address.replace("臺", "台")
        hr.column, hr.expect = (
            "地址",
            {"client_code": c.code_text, "normalised": c.address.replace("台", "臺").strip()},
        )
        return
    if kind == "roc_date_text":
        date_cell = str(compact)
    elif kind == "roc_date_float_text":
        date_cell = f"{compact}.0"
    elif kind == "roc_date_zero_padded":
        date_cell = f"{compact:07d}"
    elif kind == "roc_date_separated":
        sep, pad = rng.choice([("/", False), ("-", True), (".", False), ("/", True)])
        date_cell = td.roc_separated(d, sep, pad)
    elif kind == "roc_date_chinese":
        date_cell = td.roc_chinese(d, prefix=rng.random() < 0.5)
    elif kind == "date_fullwidth":
        date_cell = td.to_fullwidth(td.roc_separated(d, "/", pad=True))
    elif kind == "western_date_text":
        date_cell = rng.choice(
            [d.isoformat(), d.strftime("%Y/%m/%d 00:00:00"), d.strftime("%Y/%m/%d")]
        )
    elif kind == "western_date_cell":
        date_cell = datetime(d.year, d.month, d.day)
    elif kind == "western_date_compact":
        date_cell = int(d.strftime("%Y%m%d"))
    elif kind == "date_whitespace":
        date_cell = rng.choice([f" {compact} ", f"{compact} ", f"\t{compact}"])
    else:
        raise AssertionError(kind)
    parsed = td.parse(
        None
        if date_cell is None
        else str(date_cell)
        if not isinstance(date_cell, datetime)
        else date_cell.date().isoformat()
    )
    assert parsed.value == d, (kind, date_cell, parsed)
    hr.cells[COL["交易日期"]] = date_cell
    hr.column, hr.expect = "交易日期", {"date": d.isoformat()}


def _fresh_code(rng: random.Random, codes: set[int]) -> int:
    while True:
        code = rng.randint(1600000, 1999999)
        if code not in codes:
            return code


def _quarantine_row(
    rng: random.Random,
    picker: _Picker,
    days: list[date],
    kind: str,
    reason: str,
    codes: set[int],
) -> HistoryRow:
    """A history row that must be quarantined with `reason`."""
    while True:
        day = rng.choice(days)
        got = picker.pick(day, 1)
        if got:
            c = got[0]
            break
    e = Event(0, c, day, _time(rng, c), _items(rng, c), c.salesperson)
    cells = _render_history(e, None)
    hr = HistoryRow(sheet_for(day), (day, e.time, c.code, 2), cells, kind=kind, reason=reason)
    compact = td.roc_compact(day)
    roc = td.roc_year(day)
    product_cols = [COL[P.PRODUCT_BY_CODE[code].history_column] for code in e.items]
    if kind == "orphan_client_code":
        orphan = _fresh_code(rng, codes)
        cells[COL["客戶"]] = orphan
        hr.column, hr.expect = "客戶", {"client_code": str(orphan)}
    elif kind == "client_code_error":
        cells[COL["客戶"]] = REF_ERR
        hr.column = "客戶"
    elif kind == "client_code_malformed":
        cells[COL["客戶"]] = rng.choice([c.code // 100, f"{c.code // 10}X", c.code * 10 + 1, "無"])
        hr.column = "客戶"
    elif kind.startswith("date_"):
        hr.column = "交易日期"
        if kind == "date_empty":
            value: object = None
        elif kind == "date_excel_error":
            value = rng.choice([NAME_ERR, VALUE_ERR])
        elif kind == "date_impossible":
            non_leap = roc if (roc + 1911) % 4 else roc + 1
            value = rng.choice(
                [
                    non_leap * 10000 + 229,
                    roc * 10000 + 1300 + day.day,
                    f"{roc}/02/30",
                    roc * 10000 + 431,
                ]
            )
        elif kind == "date_roc_year_zero":
            value = rng.choice([f"000{day.month:02d}{day.day:02d}", f"0/{day.month}/{day.day}"])
        elif kind == "date_garbage":
            value = rng.choice(
                [
                    f"{compact}x",
                    f"?{roc}/{day.month}/{day.day}",
                    "下午",
                    f"{roc}/{day.month}/{day.day}/1",
                ]
            )
        elif kind == "date_excel_serial":
            # A bare serial whose middle digits are no month: never mistaken for a compact ROC date.
            while True:
                serial = (day - date(1899, 12, 30)).days
                if int(str(serial)[1:3]) > 12:
                    break
                day = day + timedelta(days=rng.randint(1, 40))
            value = serial
        elif kind == "date_out_of_range":
            if day.month == 2 and day.day == 29:
                day = day.replace(day=28)
            later = day.replace(year=day.year + 30)
            value = rng.choice([td.roc_compact(later), f"{roc - 90}{day.month:02d}{day.day:02d}"])
        else:
            raise AssertionError(kind)
        cells[COL["交易日期"]] = value
        if kind != "date_excel_error":
            got_reason = td.parse(None if value is None else str(value), DATE_MIN, DATE_MAX).reason
            assert "date_" + str(got_reason) == reason, (kind, value, got_reason)
    elif kind == "all_zero_quantity":
        for i in range(COL["50公斤"], COL["50公斤"] + len(P.PRODUCTS)):
            cells[i] = None
        if rng.random() < 0.7:
            for i in product_cols:
                cells[i] = 0
        hr.column = None  # a whole-row condition: every product column is zero or blank
    elif kind == "negative_quantity":
        i = product_cols[0]
        cells[i] = -rng.randint(1, 3) if not isinstance(cells[i], float) else -round(cells[i], 1)
        hr.column = history_headers("110-114年")[i]
    elif kind == "quantity_error":
        i = product_cols[0]
        cells[i] = VALUE_ERR
        hr.column = history_headers("110-114年")[i]
    else:
        raise AssertionError(kind)
    return hr


def _app_quarantine(
    rng: random.Random,
    picker: _Picker,
    days: list[date],
    clients: list[Client],
    kind: str,
    reason: str,
) -> AppDelivery:
    while True:
        day = rng.choice(days)
        got = picker.pick(day, 1, only=lambda c: not c.metered)
        if got:
            c = got[0]
            break
    sizes = _sizes(_items(rng, c, regular_only=True))
    a = AppDelivery(day, _time(rng, c), c.app_id, sizes, kind=kind, reason=reason)
    if kind == "app_orphan_client_id":
        a.client_id = len(clients) + 6 + rng.randint(1, 40)
    elif kind == "app_test_client_delivery":
        a.client_id = -1  # the caller sets a test client's id
    elif kind == "app_zero_quantity":
        a.sizes = {kg: 0 for kg in sizes}
    elif kind == "app_negative_quantity":
        kg = next(iter(sizes))
        a.sizes[kg] = -a.sizes[kg]
    elif kind == "app_cancelled":
        a.status = "cancelled"
    return a
