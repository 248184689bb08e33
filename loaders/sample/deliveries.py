"""The delivery history workbook and the app's deliveries, as the real exports have them.

The real history (`RAW_FORMATS.md` section 2) is one sheet, `Sheet1`, in long format: one row
per client per delivery day (客戶, 電子發票抬頭, 客戶簡稱, 地址, 最後十次日期), no quantities, the
client's details repeated on each row. 90 % of its client codes are not in the client master:
those clients are described only by their history rows. The app's deliveries were imported
from it (section 3): one per history row of a master client, COMPLETED, no quantities, no
driver; a few were edited in the app afterwards, and a few were created in the app alone.

Rows are sorted by client code, then date (an assumption: the real order is not recorded).
Odd but valid cells, and rows that cannot become deliveries, are injected at known places
with the outcome each must reach, at rates that keep the file about as clean as the real one.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from loaders import taiwan_date as td
from loaders.sample import profile as P
from loaders.sample.clients import _address
from loaders.sample.model import (
    NAME_ERR,
    REF_ERR,
    VALUE_ERR,
    Client,
    apportion,
    rng_for,
    scale_count,
)

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

FULL_HISTORY_ROWS = 349_920
FULL_APP_DELIVERIES = 179_555
FULL_OUTSIDE_CODES = 12_028  # history codes the client master lacks
# Empty cells of the real Sheet1 (full scale).
FULL_EMPTY = {"電子發票抬頭": 9, "客戶簡稱": 1_155, "地址": 2_415}
GENERIC_ACCOUNT = "維修現金客戶"  # a generic account name seen on several codes
DETAIL_CHANGE_SHARE = 0.03  # clients outside the master whose address or name changes
# Shares of clients outside the master that repeat another one's title, short name or address
# (branches, generic names, stalls of one market): tuned so that the distinct values come near
# the real file's (電子發票抬頭 12,738, 客戶簡稱 12,082, 地址 12,221 at full scale).
SHARED_TITLE, SHARED_SHORT_NAME, SHARED_ADDRESS = 0.031, 0.058, 0.085

# Full-scale rows per defect kind; the small sample keeps at least two of each.
HISTORY_LOADED_KINDS = {
    "roc_date_text": 30,
    "roc_date_float_text": 20,
    "roc_date_separated": 20,
    "roc_date_chinese": 15,
    "date_fullwidth": 10,
    "western_date_text": 15,
    "western_date_cell": 15,
    "western_date_compact": 10,
    "date_whitespace": 10,
    "code_as_text": 40,
    "code_whitespace": 20,
    "code_fullwidth": 10,
    "client_detail_mismatch": 60,
    "tai_variant": 40,
}
HISTORY_QUARANTINE_KINDS = {
    "client_code_error": ("invalid_client_code", 10),
    "client_code_malformed": ("invalid_client_code", 15),
    "date_empty": ("date_empty", 15),
    "date_excel_error": ("date_unparseable", 10),
    "date_garbage": ("date_unparseable", 10),
    "date_impossible": ("date_not_calendar_date", 15),
    "date_roc_year_zero": ("date_not_calendar_date", 5),
    "date_excel_serial": ("date_not_calendar_date", 10),
    "date_out_of_range": ("date_out_of_range", 10),
}
# App rows besides the imported ones (kind: quarantine reason or None, full-scale count).
APP_EXTRA_KINDS = {
    "app_only_delivery": (None, 200),
    "app_cancelled": ("cancelled", 30),
    "app_not_home": ("not_delivered", 20),
    "app_test_client_delivery": ("test_client", 24),
    "app_orphan_client_id": ("unknown_client", 10),
    "app_negative_quantity": ("negative_quantity", 10),
}
# Imported app rows edited in the app afterwards (full-scale counts).
APP_EDIT_KINDS = {"app_status_edited": 40, "app_quantity_edited": 30, "app_driver_edited": 30}
APP_DRIVERS = ["測試司機", "Test Driver", "王測試"]  # the app's 3 drivers are test rows
APP_PLATES = ["TEST-001", "TEST-002", "ABC-1234"]
IMPORT_NOTE = "Imported from historical data"


def history_headers(sheet: str = HISTORY_SHEET) -> list[str]:
    return list(HISTORY_HEADERS)


@dataclass
class Outsider:
    """A client the master lacks: only its history rows describe it."""

    code: int
    invoice_title: str
    short_name: str
    address: str
    change_day: date | None = None  # from this day on the address (or name) is `new_*`
    new_address: str | None = None
    new_short_name: str | None = None

    def details(self, day: date) -> tuple[str, str, str]:
        if self.change_day and day >= self.change_day:
            return (
                self.invoice_title,
                self.new_short_name or self.short_name,
                self.new_address or self.address,
            )
        return self.invoice_title, self.short_name, self.address


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


@dataclass
class DeliveryPlan:
    history: dict[str, list[HistoryRow]] = field(default_factory=dict)
    app: list[AppDelivery] = field(default_factory=list)
    outsiders: list[Outsider] = field(default_factory=list)
    history_rows: int = 0
    app_rows: int = 0


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


def _time(rng: random.Random, client: Client) -> str:
    hour = rng.choice(client.hours) if client.hours else rng.randint(8, 19)
    return f"{hour:02d}:{rng.randrange(0, 60, 5):02d}"


def _items(rng: random.Random, client: Client, regular_only: bool = False) -> dict[str, float]:
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


def _sizes(items: dict[str, float]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for code, qty in items.items():
        kg = P.PRODUCT_BY_CODE[code].kg
        sizes[kg] = sizes.get(kg, 0) + int(qty)
    return sizes


def items_of_sizes(sizes: dict[int, int]) -> dict[str, int]:
    """The app's cylinders by size as products: each size is its regular product."""
    return {P.APP_REGULAR_PRODUCT[kg]: q for kg, q in sorted(sizes.items()) if q}


def _spread(rng: random.Random, total: int, weights: list[float], cap: int) -> list[int]:
    """`total` split by `weights`, each part between 1 and `cap`."""
    parts = apportion(weights, total, rng)
    parts = [min(cap, max(1, p)) for p in parts]
    order = sorted(range(len(parts)), key=lambda i: -weights[i])
    diff = total - sum(parts)
    i = 0
    while diff != 0:
        k = order[i % len(order)]
        if diff > 0 and parts[k] < cap:
            parts[k] += 1
            diff -= 1
        elif diff < 0 and parts[k] > 1:
            parts[k] -= 1
            diff += 1
        i += 1
    return parts


def _outsiders(rng: random.Random, n: int, taken: set[int]) -> list[Outsider]:
    """Clients the master lacks: codes like the master's (14-19...), realistic details, some
    sharing a title, a name or an address, a generic account name on a few codes."""
    prefixes = list(P.CODE_PREFIX_COUNTS)
    weights = [P.CODE_PREFIX_COUNTS[p] for p in prefixes]
    codes: set[int] = set()
    while len(codes) < n:
        prefix = rng.choices(prefixes, weights)[0]
        code = rng.randint(prefix * 100000, prefix * 100000 + 99999)
        if code not in taken and code not in codes:
            codes.add(code)
    out: list[Outsider] = []
    names: set[str] = set()
    for code in sorted(codes):
        # almost every name its own: a shop name, told apart by its street or a number
        while True:
            short = rng.choice(P.SHORT_NAME_HEADS) + rng.choice(P.SHORT_NAME_TAILS)
            if rng.random() < 0.85:
                short = rng.choice(
                    [
                        f"{rng.choice(P.ROADS)[:2]}{short}",
                        f"{short}{rng.choice(P.ROADS)[:2]}店",
                        f"{short}{rng.randint(2, 99)}號",
                    ]
                )
            if short not in names:
                names.add(short)
                break
        area = rng.choice(list(P.AREAS))
        c = Outsider(code, short + rng.choice(P.INVOICE_SUFFIXES), short, _address(rng, area))
        if rng.random() < 0.5:
            c.address = c.address.replace("臺東", "台東", 1)
        if out and rng.random() < SHARED_TITLE:
            c.invoice_title = rng.choice(out).invoice_title  # branches share a title
        if out and rng.random() < SHARED_SHORT_NAME:
            c.short_name = rng.choice(out).short_name
        if out and rng.random() < SHARED_ADDRESS:
            c.address = rng.choice(out).address  # a market or building with many stalls
        out.append(c)
    for c in rng.sample(out, max(2, n // 900)):
        c.invoice_title = c.short_name = GENERIC_ACCOUNT
    return out


def _cells(code: object, details: tuple[str, str, str], day: date) -> list:
    title, short, address = details
    return [code, title, short, address, td.roc_compact(day)]


def plan_deliveries(
    seed: int, clients: list[Client], factor: float, test_client_ids: list[int]
) -> DeliveryPlan:
    """Every history row and app delivery, with the outcome each must reach."""
    rng = rng_for(seed, "deliveries")
    plan = DeliveryPlan()
    days = all_days()
    cap = len(days)
    n_hist = round(FULL_HISTORY_ROWS * factor)
    n_app = round(FULL_APP_DELIVERIES * factor)
    plan.history_rows, plan.app_rows = n_hist, n_app

    def count(full: int) -> int:
        return scale_count(full, factor, minimum=2)

    q_hist = {k: count(n) for k, (_, n) in HISTORY_QUARANTINE_KINDS.items()}
    q_app = {k: count(n) for k, (_, n) in APP_EXTRA_KINDS.items()}
    n_imported = n_app - sum(q_app.values())
    n_outside_rows = n_hist - n_imported - sum(q_hist.values())

    # 1. Master clients in the history: all but one (the real history has 1,266 of 1,267).
    absent = min(clients, key=lambda c: (c.weight, c.code))
    in_history = [c for c in clients if c is not absent]
    room = [
        sum(1 for d in days if not c.active_until or d <= c.active_until) or 1 for c in in_history
    ]
    parts = _spread(rng, n_imported, [c.weight for c in in_history], cap)
    parts = [min(p, r) for p, r in zip(parts, room, strict=True)]
    short = n_imported - sum(parts)
    for i in sorted(range(len(parts)), key=lambda i: room[i] - parts[i], reverse=True):
        if short <= 0:
            break
        add = min(short, room[i] - parts[i])
        parts[i] += add
        short -= add
    client_days: list[tuple[object, list[date]]] = []
    for c, k in zip(in_history, parts, strict=True):
        own = [d for d in days if not c.active_until or d <= c.active_until] or days[:1]
        client_days.append((c, sorted(rng.sample(own, k))))

    # 2. Clients outside the master: a long tail of rows each.
    master_codes = {c.code for c in clients}
    n_out = round(FULL_OUTSIDE_CODES * factor)
    outsiders = _outsiders(rng, n_out, master_codes)
    weights = [rng.lognormvariate(0, 1.3) for _ in outsiders]
    out_parts = _spread(rng, n_outside_rows, weights, cap)
    for o, k in zip(outsiders, out_parts, strict=True):
        client_days.append((o, sorted(rng.sample(days, k))))
    # About 3 % of them change a detail from some day on (clients with a few rows at least).
    changing = [(o, ds) for o, ds in client_days[len(in_history) :] if len(ds) >= 3]
    n_change = min(len(changing), scale_count(round(DETAIL_CHANGE_SHARE * n_out), 1.0, 2))
    for o, ds in rng.sample(changing, n_change):
        assert isinstance(o, Outsider)
        o.change_day = ds[rng.randrange(1, len(ds))]
        if rng.random() < 0.7:
            o.new_address = _address(rng, rng.choice(list(P.AREAS)))
        else:
            o.new_short_name = o.short_name + rng.choice(["新店", "(搬遷)", "二館"])
    plan.outsiders = outsiders

    # 3. Every calendar day has a delivery: move a row of a busy outsider onto an empty day.
    per_day: dict[date, int] = dict.fromkeys(days, 0)
    for _, ds in client_days:
        for d in ds:
            per_day[d] += 1
    movable = [i for i, (who, ds) in enumerate(client_days) if isinstance(who, Outsider)]
    for d in days:
        while per_day[d] == 0:
            i = rng.choice(movable)
            who, ds = client_days[i]
            if len(ds) < 2 or d in ds:
                continue
            j = rng.randrange(len(ds))
            if per_day[ds[j]] < 2:
                continue
            per_day[ds[j]] -= 1
            ds[j] = d
            ds.sort()
            per_day[d] += 1

    # 4. Render the valid rows.
    rows: list[HistoryRow] = []
    for who, ds in client_days:
        for d in ds:
            if isinstance(who, Outsider):
                cells = _cells(who.code, who.details(d), d)
                hr = HistoryRow(HISTORY_SHEET, (who.code, d, 0), cells, who.code, d)
            else:
                cells = _cells(who.code, (who.invoice_title, who.short_name, who.address), d)
                hr = HistoryRow(HISTORY_SHEET, (who.code, d, 0), cells, who.code, d, master=who)
            rows.append(hr)

    # 5. The real file's empty cells, on rows of clients outside the master.
    outside_rows = [hr for hr in rows if hr.master is None]
    for header, full in FULL_EMPTY.items():
        for hr in rng.sample(outside_rows, scale_count(full, factor, minimum=2)):
            hr.cells[COL[header]] = None

    # 6. Odd but valid cells.
    free = list(rows)
    rng.shuffle(free)
    eligible_for = {
        "tai_variant": lambda hr: hr.master is not None and "臺" in hr.master.address,
        "client_detail_mismatch": lambda hr: hr.master is not None,
    }
    used: set[int] = set()
    for kind, full in HISTORY_LOADED_KINDS.items():
        ok = eligible_for.get(kind, lambda hr: True)
        want = count(full)
        for hr in free:
            if want == 0:
                break
            if id(hr) in used or not ok(hr) or None in hr.cells[1:4]:
                continue
            _apply_loaded_defect(rng, hr, kind)
            used.add(id(hr))
            want -= 1

    # 7. Rows that cannot become deliveries: extra rows of a client that has other rows, each
    # for a day on which that client has no row (the delivery it would have been, were it not
    # broken), with the client's details of that day and no empty cell (so the real
    # empty-cell counts stay exact).
    outsider_of = {o.code: o for o in outsiders}
    valid = list(rows)
    busy = {(hr.code, hr.day) for hr in valid}
    for kind, k in q_hist.items():
        reason = HISTORY_QUARANTINE_KINDS[kind][0]
        for _ in range(k):
            while True:
                base = rng.choice(valid)
                day = rng.choice(days)
                until = base.master.active_until if base.master else None
                if (base.code, day) not in busy and (until is None or day <= until):
                    break
            busy.add((base.code, day))
            if base.master is not None:
                c = base.master
                details = (c.invoice_title, c.short_name, c.address)
            else:
                details = outsider_of[base.code].details(day)  # type: ignore[index]
            rows.append(_quarantine_row(rng, base, day, details, kind, reason))

    rows.sort(key=lambda hr: hr.sort_key)
    for i, hr in enumerate(rows):
        hr.row = i + 2
    assert len(rows) == n_hist, (len(rows), n_hist)
    plan.history = {HISTORY_SHEET: rows}

    # 8. The app: one delivery per valid history row of a master client (the importer), a
    # few of them edited afterwards, and a few rows of the app alone.
    imported = [hr for hr in rows if hr.master is not None and hr.reason is None]
    assert len(imported) == n_imported, (len(imported), n_imported)
    app: list[AppDelivery] = []
    for hr in imported:
        assert hr.master is not None and hr.day is not None
        app.append(AppDelivery(hr.day, None, hr.master.app_id, {}, imported=True, merged_into=hr))
    edits = rng.sample(app, sum(count(n) for n in APP_EDIT_KINDS.values()))
    it = iter(edits)
    for kind, full in APP_EDIT_KINDS.items():
        for _ in range(count(full)):
            a = next(it)
            a.kind = kind
            if kind == "app_status_edited":
                a.status = rng.choice(["CANCELLED", "NOT_HOME"])
                a.expect = {"app_status": a.status.lower()}
            elif kind == "app_quantity_edited":
                master = a.merged_into.master  # type: ignore[union-attr]
                a.sizes = _sizes(_items(rng, master, regular_only=True))
                a.expect = {"items": items_of_sizes(a.sizes)}
            else:
                a.driver_id, a.vehicle_id = rng.randint(1, 3), rng.randint(1, 3)
                a.expect = {"driver_name": APP_DRIVERS[a.driver_id - 1]}
    # App-only rows fall on days their client has no history row, not even a broken one.
    app_of = {c.code: c.app_id for c in clients}
    taken = {(app_of[code], day) for code, day in busy if code in app_of}
    cylinder_clients = [c for c in clients if not c.metered and c.app_id]
    late_days = all_days(HISTORY_END + timedelta(days=1), APP_END)
    for kind, k in q_app.items():
        reason = APP_EXTRA_KINDS[kind][0]
        for n in range(k):
            while True:
                c = rng.choice(cylinder_clients)
                day = rng.choice(late_days) if rng.random() < 0.8 else rng.choice(days)
                if (c.app_id, day) not in taken:
                    break
            taken.add((c.app_id, day))
            a = AppDelivery(day, _time(rng, c), c.app_id, _sizes(_items(rng, c, True)))
            a.kind, a.reason = kind, reason
            a.driver_id, a.vehicle_id = rng.randint(1, 3), rng.randint(1, 3)
            if kind == "app_cancelled":
                a.status = "CANCELLED"
            elif kind == "app_not_home":
                a.status = "NOT_HOME"
            elif kind == "app_test_client_delivery":
                a.client_id = test_client_ids[n % len(test_client_ids)]
            elif kind == "app_orphan_client_id":
                a.client_id = len(clients) + 6 + rng.randint(1, 40)
            elif kind == "app_negative_quantity":
                kg = next(iter(a.sizes))
                a.sizes[kg] = -a.sizes[kg]
            elif kind == "app_only_delivery":
                a.expect = {"date": day.isoformat(), "client_code": c.code_text}
            app.append(a)
    app.sort(key=lambda a: (a.day, a.client_id, a.time or "", a.kind or ""))
    for i, a in enumerate(app):
        a.id = i + 1
    assert len(app) == n_app, (len(app), n_app)
    plan.app = app
    return plan


def _apply_loaded_defect(rng: random.Random, hr: HistoryRow, kind: str) -> None:
    """Write an odd but valid form into the row; it still becomes a delivery."""
    d, code = hr.day, hr.code
    assert d is not None and code is not None
    text = str(code)
    compact = td.roc_compact(d)
    hr.kind = kind
    if kind in {"code_as_text", "code_whitespace", "code_fullwidth"}:
        value = {
            "code_as_text": text,
            "code_whitespace": rng.choice([f" {text}", f"{text} ", f"  {text}", f"{text}\u3000"]),
            "code_fullwidth": td.to_fullwidth(text),
        }[kind]
        hr.cells[COL["客戶"]] = value
        hr.column, hr.expect = "客戶", {"client_code": text}
        return
    if kind == "client_detail_mismatch":
        c = hr.master
        assert c is not None
        if rng.random() < 0.5:
            hr.cells[COL["客戶簡稱"]] = c.short_name.strip() + rng.choice(["(舊)", "老店", "總店"])
            hr.column = "客戶簡稱"
        else:
            hr.cells[COL["地址"]] = f"臺東縣臺東市{rng.choice(P.ROADS)}{rng.randint(1, 500)}號"
            hr.column = "地址"
        hr.expect = {
            "client_code": text,
            "master_value": c.short_name if hr.column == "客戶簡稱" else c.address,
        }
        return
    if kind == "tai_variant":
        c = hr.master
        assert c is not None
        hr.cells[COL["地址"]] = c.address.replace("臺", "台")
        hr.column = "地址"
        hr.expect = {"client_code": text, "normalised": c.address.replace("台", "臺").strip()}
        return
    date_cell: object
    if kind == "roc_date_text":
        date_cell = str(compact)
    elif kind == "roc_date_float_text":
        date_cell = f"{compact}.0"
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
    shown = date_cell.date().isoformat() if isinstance(date_cell, datetime) else str(date_cell)
    assert td.parse(shown).value == d, (kind, date_cell)
    hr.cells[COL[DATE_COLUMN]] = date_cell
    hr.column, hr.expect = DATE_COLUMN, {"date": d.isoformat()}


def _quarantine_row(
    rng: random.Random,
    base: HistoryRow,
    day: date,
    details: tuple[str, str, str],
    kind: str,
    reason: str,
) -> HistoryRow:
    """A further row of `base`'s client, for `day`, that must be quarantined with `reason`."""
    assert base.code is not None
    cells = _cells(base.code, details, day)
    hr = HistoryRow(
        HISTORY_SHEET, (base.code, day, 1), cells, base.code, None, base.master, kind=kind
    )
    hr.reason = reason
    roc = td.roc_year(day)
    compact = td.roc_compact(day)
    if kind == "client_code_error":
        cells[COL["客戶"]] = REF_ERR
        hr.code, hr.column = None, "客戶"
    elif kind == "client_code_malformed":
        code = base.code
        cells[COL["客戶"]] = rng.choice([code // 100, f"{code // 10}X", code * 10 + 1, "無"])
        hr.code, hr.column = None, "客戶"
    else:
        hr.column = DATE_COLUMN
        value: object
        if kind == "date_empty":
            value = None
        elif kind == "date_excel_error":
            value = rng.choice([NAME_ERR, VALUE_ERR])
        elif kind == "date_garbage":
            value = rng.choice(
                [f"{compact}x", f"?{roc}/{day.month}/{day.day}", "下午", f"{roc}/{day.month}/1/1"]
            )
        elif kind == "date_impossible":
            non_leap = roc if (roc + 1911) % 4 else roc + 1
            value = rng.choice(
                [non_leap * 10000 + 229, roc * 10000 + 1300 + day.day, f"{roc}/02/30"]
            )
        elif kind == "date_roc_year_zero":
            value = rng.choice([f"000{day.month:02d}{day.day:02d}", f"0/{day.month}/{day.day}"])
        elif kind == "date_excel_serial":
            # A bare serial whose middle digits are no month: never a compact ROC date.
            d = day
            while True:
                serial = (d - date(1899, 12, 30)).days
                if int(str(serial)[1:3]) > 12:
                    break
                d += timedelta(days=rng.randint(1, 40))
            value = serial
        elif kind == "date_out_of_range":
            safe = day.replace(day=28) if (day.month, day.day) == (2, 29) else day
            later = safe.replace(year=safe.year + 30)
            value = rng.choice([td.roc_compact(later), f"{roc - 90}{day.month:02d}{day.day:02d}"])
        else:
            raise AssertionError(kind)
        cells[COL[DATE_COLUMN]] = value
        if kind != "date_excel_error":
            got = td.parse(None if value is None else str(value), DATE_MIN, DATE_MAX).reason
            assert "date_" + str(got) == reason, (kind, value, got)
    return hr


def history_only_clients(rows: list[HistoryRow], master_codes: set[int]) -> list[dict]:
    """The customers the pipeline must build from the history: per code outside the master,
    each detail from its latest row that has it (newest valid date first, rows without one
    last, then the later row), the latest row, and the number of rows."""
    by_code: dict[int, list[HistoryRow]] = {}
    for hr in rows:
        if hr.code is not None and hr.code not in master_codes:
            by_code.setdefault(hr.code, []).append(hr)
    out = []
    for code, mine in sorted(by_code.items()):
        mine.sort(key=lambda r: (r.day is not None, r.day or date.min, r.file, r.sheet, r.row))
        mine.reverse()  # latest first
        first = mine[0]

        def latest(col: int, fix=clean, mine=mine):
            for r in mine:
                if r.layout != "history_daily":
                    continue  # the transaction layout names no details
                value = fix(r.cells[col] if isinstance(r.cells[col], str) else None)
                if value:
                    return value
            return None

        out.append(
            {
                "row": first,
                "expect": {
                    "client_code": str(code),
                    "invoice_title": latest(COL["電子發票抬頭"]),
                    "short_name": latest(COL["客戶簡稱"]),
                    "address": latest(COL["地址"], clean_address),
                    "history_rows": len(mine),
                },
            }
        )
    return out
