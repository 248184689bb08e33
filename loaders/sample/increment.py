"""`luckygas sample --increment`: a daily upload file, the load after the migration.

`2025-06 commercial deliver history.xlsx` arrives after the base sample's exports were
migrated. It keeps the transaction layout of a daily upload (the client workbook's 上傳清單:
編號, 業務員, 交易日期, 交易時間 and the 16 product quantities), so that both history layouts stay
covered. Its one sheet, 110-114年, holds:

- new deliveries from the day after the base history ends (2025-05-29) to 2025-06-20, of
  master clients and of clients outside the master, at most one per client and day across
  every source; a few codes no source has seen (customers with no details);
- a row for about half of the base app's app-only deliveries after the history ended: same
  client and day, the app's cylinders as regular products. Those app rows now merge into it;
- rows for client-days of the base history's last seven days: the day's delivery gains its
  items, and the base 5-column row merges into the increment's row (so does the app twin);
- exact duplicates of some of its own rows, and a few rows to quarantine (garbage dates,
  all-zero and negative quantities).

The base plan is rebuilt in memory by the same code from the same seeded streams and never
written; the increment draws from its own stream, so the base files keep their bytes.
`expected-increment.json` is the ground truth after loading the base files and the increment.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from loaders import taiwan_date as td
from loaders.hashing import sha256_of
from loaders.sample import profile as P
from loaders.sample.app_db import assign_app_ids
from loaders.sample.client_workbook import UPLOAD_HEADERS
from loaders.sample.clients import generate_clients
from loaders.sample.deliveries import DeliveryPlan, plan_deliveries
from loaders.sample.delivery_rows import (
    DATE_MAX,
    DATE_MIN,
    HISTORY_END,
    AppDelivery,
    HistoryRow,
    all_days,
    items_of_sizes,
    random_items,
    random_time,
)
from loaders.sample.delivery_truth import (
    delivery_defects,
    expected_outcomes,
    history_customers,
    json_number,
)
from loaders.sample.history_workbook import write_history_workbook
from loaders.sample.model import Client, rng_for, scale_count
from loaders.sample.truth import (
    GENERATOR_VERSION,
    MERGED,
    REASONS,
    SCHEMA_VERSION,
    Truth,
    dump_expected,
)

INCREMENT_FILE = "2025-06 commercial deliver history.xlsx"
INCREMENT_EXPECTED = "expected-increment.json"
INCREMENT_SHEET = "110-114年"
INCREMENT_START = HISTORY_END + timedelta(days=1)
INCREMENT_END = date(2025, 6, 20)
INCREMENT_CREATED = datetime(2025, 6, 21, 8, 30, 0)  # the workbook's document timestamp
HEADERS = list(UPLOAD_HEADERS)
FIRST_PRODUCT = HEADERS.index("交易時間") + 1

FULL_NEW_DELIVERIES = 3_000
FULL_NEW_CODES = 8
APP_CATCH_UP_SHARE = 0.5
FULL_GAINED_DAYS = 400
GAINED_DAYS = 7
FULL_DUPLICATES = 100
INCREMENT_QUARANTINE_KINDS = {
    "date_garbage": ("date_unparseable", 4),
    "all_zero_quantity": ("no_positive_quantity", 4),
    "negative_quantity": ("negative_quantity", 4),
}


@dataclass
class IncrementPlan:
    rows: list[HistoryRow]  # the sheet, in row order
    history: list[HistoryRow]  # every history row of base and increment, as they end
    app: list[AppDelivery]  # the base app rows as they end once the increment is loaded
    new_codes: list[int]


def _render(code: object, salesperson: str, day: date, at: str, items: dict) -> list:
    cells: list = [code, salesperson, td.roc_compact(day), at] + [None] * len(P.PRODUCTS)
    for code_, q in items.items():
        i = FIRST_PRODUCT + [p.code for p in P.PRODUCTS].index(code_)
        cells[i] = int(q) if float(q).is_integer() else q
    return cells


def _row(cells: list, code: int | None, day: date | None, items: dict | None) -> HistoryRow:
    return HistoryRow(
        INCREMENT_SHEET,
        (day or date.max, cells[3] or "", code or 0, 0),
        cells,
        code,
        day,
        file=INCREMENT_FILE,
        items=items,
        layout="history_transaction",
    )


def plan_increment(
    seed: int, clients: list[Client], plan: DeliveryPlan, factor: float
) -> IncrementPlan:
    rng = rng_for(seed, "increment")
    base = plan.history["Sheet1"]
    by_app_id = {c.app_id: c for c in clients}
    days = all_days(INCREMENT_START, INCREMENT_END)
    taken = {(hr.code, hr.day) for hr in base if hr.code is not None}
    for a in plan.app:
        c = by_app_id.get(a.client_id)
        if c:
            taken.add((c.code, a.day))
    rows: list[HistoryRow] = []

    # 1. Rows for about half of the app-only deliveries the history has not seen yet.
    pending = [
        a
        for a in plan.app
        if a.kind == "app_only_delivery" and INCREMENT_START <= a.day <= INCREMENT_END
    ]
    k = min(len(pending), max(1, round(len(pending) * APP_CATCH_UP_SHARE)))
    caught: dict[int, HistoryRow] = {}
    for a in sorted(rng.sample(pending, k), key=lambda a: a.id):
        c = by_app_id[a.client_id]
        items = items_of_sizes(a.sizes)
        hr = _row(_render(c.code, c.salesperson, a.day, a.time, items), c.code, a.day, items)
        caught[a.id] = hr
        rows.append(hr)

    # 2. New deliveries: master clients and clients outside the master.
    outsiders = plan.outsiders
    n_new = scale_count(FULL_NEW_DELIVERIES, factor, minimum=6)
    new: list[HistoryRow] = []
    while len(new) < n_new:
        day = rng.choice(days)
        if rng.random() < 0.7:
            c = rng.choices(clients, [c.weight for c in clients])[0]
            code, who, items, at = c.code, c.salesperson, random_items(rng, c), random_time(rng, c)
        else:
            code = rng.choice(outsiders).code
            who, at = (
                rng.choice(P.SALESPEOPLE),
                f"{rng.randint(8, 18):02d}:{rng.randrange(0, 60, 5):02d}",
            )
            items = {rng.choice(["GAS-C20-R", "GAS-C16-R", "GAS-C04-R"]): rng.randint(1, 3)}
        if (code, day) in taken:
            continue
        taken.add((code, day))
        new.append(_row(_render(code, who, day, at, items), code, day, items))
    seen = {c.code for c in clients} | {o.code for o in outsiders}
    new_codes: list[int] = []
    while len(new_codes) < scale_count(FULL_NEW_CODES, factor, minimum=2):
        code = rng.randint(1500000, 1999999)
        if code not in seen:
            seen.add(code)
            new_codes.append(code)
            day = rng.choice(days)
            items = {"GAS-C20-R": rng.randint(1, 2)}
            at = f"{rng.randint(8, 18):02d}:00"
            new.append(
                _row(_render(code, rng.choice(P.SALESPEOPLE), day, at, items), code, day, items)
            )
    rows += new

    # 3. The base history's last days gain their items: the 5-column row merges into the new
    # row, and so does its app twin (never one edited in the app).
    since = HISTORY_END - timedelta(days=GAINED_DAYS - 1)
    edited = {id(a.merged_into) for a in plan.app if a.merged_into is not None and a.kind}
    recent = [
        hr
        for hr in base
        if hr.reason is None and hr.kind is None and hr.day >= since and id(hr) not in edited
    ]
    gained: dict[int, HistoryRow] = {}
    for old in sorted(
        rng.sample(recent, min(len(recent), scale_count(FULL_GAINED_DAYS, factor, 3))),
        key=lambda r: r.row,
    ):
        c = old.master
        items = random_items(rng, c) if c else {"GAS-C20-R": rng.randint(1, 3)}
        who = c.salesperson if c else rng.choice(P.SALESPEOPLE)
        at = random_time(rng, c) if c else "10:00"
        hr = _row(_render(old.code, who, old.day, at, items), old.code, old.day, items)
        gained[id(old)] = hr
        rows.append(hr)

    # 4. Exact duplicates of some new rows, and rows to quarantine.
    for hr in sorted(
        rng.sample(new, min(len(new), scale_count(FULL_DUPLICATES, factor, 2))),
        key=lambda r: r.sort_key,
    ):
        dup = _row(list(hr.cells), hr.code, hr.day, hr.items)
        dup.sort_key = hr.sort_key[:3] + (1,)
        dup.kind, dup.dup_of = "exact_duplicate", hr
        rows.append(dup)
    for kind, (reason, full) in INCREMENT_QUARANTINE_KINDS.items():
        for _ in range(scale_count(full, factor, minimum=2)):
            template = rng.choice(new)
            cells = list(template.cells)
            hr = _row(cells, template.code, None, None)
            hr.sort_key = template.sort_key[:3] + (2,)
            hr.kind, hr.reason = kind, reason
            if kind == "date_garbage":
                cells[2] = rng.choice([f"{td.roc_compact(template.day)}x", "明天", "114/6/31/1"])
                hr.column = "交易日期"
            elif kind == "all_zero_quantity":
                for i in range(FIRST_PRODUCT, len(cells)):
                    cells[i] = 0 if cells[i] is not None else None
                hr.day = template.day
            else:
                i = next(i for i in range(FIRST_PRODUCT, len(cells)) if cells[i])
                cells[i] = -abs(cells[i])
                hr.column, hr.day = HEADERS[i], template.day
            rows.append(hr)

    rows.sort(key=lambda r: r.sort_key)
    for i, hr in enumerate(rows):
        hr.row = i + 2

    # The combined state: base rows that now merge into an increment row, app rows that now
    # merge into the increment's rows.
    history = []
    for hr in base:
        into = gained.get(id(hr))
        history.append(
            dataclasses.replace(hr, dup_of=into, kind="history_day_gained_items") if into else hr
        )
    app = []
    for a in plan.app:
        if a.id in caught:
            a = dataclasses.replace(
                a, merged_into=caught[a.id], kind="app_history_same_event", expect=None
            )
        elif a.merged_into is not None and id(a.merged_into) in gained:
            a = dataclasses.replace(a, merged_into=gained[id(a.merged_into)])
        app.append(a)
    return IncrementPlan(rows, history + rows, app, new_codes)


def generate_increment(out: Path, scale: str, seed: int, console: Console) -> dict:
    """Write the increment workbook and expected-increment.json into `out`; returns the doc."""
    n_clients, row_factor = P.SCALES[scale]
    started = time.perf_counter()

    def step(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {msg}")

    clients = generate_clients(seed, n_clients)
    test_ids = assign_app_ids(seed, clients)
    plan = plan_deliveries(seed, clients, row_factor, test_ids)
    step(f"base plan: {plan.history_rows:,} history rows (not written)")
    inc = plan_increment(seed, clients, plan, row_factor)
    step(f"increment: {len(inc.rows):,} rows")
    path = out / INCREMENT_FILE
    sheets = {INCREMENT_SHEET: inc.rows}
    write_history_workbook(path, sheets, INCREMENT_CREATED, headers=HEADERS)
    step(f"wrote {INCREMENT_FILE}")

    source = {
        "file": INCREMENT_FILE, "sheet": INCREMENT_SHEET, "kind": "sheet", "layout": "table",
        "header_row": 1, "last_row": len(inc.rows) + 1, "data_rows": len(inc.rows),
        "columns": len(HEADERS), "headers": HEADERS,
        "catalogue_layout": "history_transaction", "role": "migrated",
    }  # fmt: skip
    everything = Truth()
    everything.set_headers(INCREMENT_FILE, INCREMENT_SHEET, HEADERS)
    base_rows = [hr for hr in inc.history if hr.file == P.HISTORY_FILE]
    recon = delivery_defects(
        everything,
        {P.HISTORY_FILE: {"Sheet1": base_rows}, INCREMENT_FILE: sheets},
        inc.app,
        headers_of={INCREMENT_FILE: HEADERS},
    )
    n_outside = history_customers(everything, inc.history, clients)
    truth = everything.select(
        lambda g: g.file == INCREMENT_FILE or g.merged_into_file == INCREMENT_FILE
    )
    outcomes = expected_outcomes(clients, inc.history, inc.app, recon, n_outside)
    sums = {}
    for i in range(FIRST_PRODUCT, len(HEADERS)):
        total = sum(v for r in inc.rows if type(v := r.cells[i]) in (int, float))
        sums[HEADERS[i]] = json_number(total)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generator": {
            "version": GENERATOR_VERSION,
            "scale": scale,
            "seed": seed,
            "increment": True,
        },
        "date_bounds": {"earliest": DATE_MIN.isoformat(), "latest": DATE_MAX.isoformat()},
        "increment": {
            "base_files": [P.CLIENT_FILE, P.HISTORY_FILE, P.APP_FILE],
            "first_day": INCREMENT_START.isoformat(),
            "last_day": INCREMENT_END.isoformat(),
        },
        "files": [{"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}],
        "sources": [source],
        "outcomes": outcomes,
        "column_sums": [{"file": INCREMENT_FILE, "sheet": INCREMENT_SHEET, "sums": sums}],
        "reasons": REASONS,
        "defect_kinds": truth.kind_counts(),
        "defects": [g.as_json() for g in truth.groups()],
    }
    assert all(g["outcome"] != MERGED or g["merged_into_file"] for g in doc["defects"])
    (out / INCREMENT_EXPECTED).write_text(dump_expected(doc), encoding="utf-8")
    step(f"wrote {INCREMENT_EXPECTED} ({len(doc['defects'])} defect groups)")
    return doc
