"""Sheet1 of the delivery history workbook, row by row, as the real export has it.

The real history (`docs/raw-formats.md` section 2) is one sheet in long format: one row per
client per delivery day (客戶, 電子發票抬頭, 客戶簡稱, 地址, 最後十次日期), no quantities, the
client's details repeated on each row. 90 % of its client codes are not in the client master
(`outsiders.py`). Rows are sorted by client code, then date (an assumption: the real order is
not recorded). Odd but valid cells, and rows that cannot become deliveries, are injected at
known places with the outcome each must reach, at rates that keep the file about as clean as
the real one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from loaders import taiwan_date as td
from loaders.sample import profile as P
from loaders.sample.delivery_rows import (
    COL,
    DATE_COLUMN,
    DATE_MAX,
    DATE_MIN,
    HISTORY_SHEET,
    HistoryRow,
    all_days,
)
from loaders.sample.model import NAME_ERR, REF_ERR, VALUE_ERR, Client, apportion, scale_count
from loaders.sample.outsiders import (
    FULL_OUTSIDE_CODES,
    Outsider,
    change_details,
    plan_outsiders,
)

FULL_HISTORY_ROWS = 349_920
# Empty cells of the real Sheet1 (full scale).
FULL_EMPTY = {"電子發票抬頭": 9, "客戶簡稱": 1_155, "地址": 2_415}

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


@dataclass
class HistorySheet:
    """The planned Sheet1: its rows in order, the outsiders they name, and every (code, day)
    with a row (broken rows included), which the app's own rows must avoid."""

    rows: list[HistoryRow]
    outsiders: list[Outsider]
    busy: set[tuple[int | None, date]]


def plan_history(
    rng: random.Random, clients: list[Client], factor: float, n_hist: int, n_imported: int
) -> HistorySheet:
    """`n_hist` rows; `n_imported` of them valid rows of master clients (the app imports those)."""
    days = all_days()
    cap = len(days)

    def count(full: int) -> int:
        return scale_count(full, factor, minimum=2)

    q_hist = {k: count(n) for k, (_, n) in HISTORY_QUARANTINE_KINDS.items()}
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
    outsiders = plan_outsiders(rng, n_out, master_codes)
    weights = [rng.lognormvariate(0, 1.3) for _ in outsiders]
    out_parts = _spread(rng, n_outside_rows, weights, cap)
    for o, k in zip(outsiders, out_parts, strict=True):
        client_days.append((o, sorted(rng.sample(days, k))))
    change_details(rng, client_days[len(in_history) :], n_out)  # the outsiders

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
    return HistorySheet(rows, outsiders, busy)


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


def _cells(code: object, details: tuple[str, str, str], day: date) -> list:
    title, short, address = details
    return [code, title, short, address, td.roc_compact(day)]


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
