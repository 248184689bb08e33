"""`luckygas sample --increment`: a further history workbook, the daily load after the migration.

`2025-06 commercial deliver history.xlsx` arrives after the base sample's three exports were
migrated. Its one sheet, 110-114年, has the base history sheet's header and cell conventions and:

- new delivery events from the day after the base history ends (2025-05-21) to 2025-06-20, at
  most one per client and day across every source (base history, base app and increment);
- among them, a history row for about half of the base app's app-only deliveries after the
  history ended (the app ran to 2025-05-31): same client, day and time, the app's cylinders by
  size in the regular product columns. Those app rows now merge into the increment's row;
- re-sent rows: exact copies of base rows of the history's last seven days that became a
  delivery, each merged into the base row it copies;
- a few rows that must be quarantined (orphan client codes, garbage dates).

The base plan is rebuilt in memory by the same code from the same seeded streams and never
written; the increment draws from its own stream (`rng_for(seed, "increment")`), so the base
files keep their bytes. `expected-increment.json` is the ground truth after loading the base
files and the increment: the increment's sources, defects and column sums, and the outcomes of
the combined state.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from loaders.hashing import sha256_of
from loaders.sample import profile as P
from loaders.sample.app_db import assign_app_ids
from loaders.sample.clients import generate_clients
from loaders.sample.deliveries import (
    DATE_MAX,
    DATE_MIN,
    HISTORY_END,
    HISTORY_SHEETS,
    AppDelivery,
    DeliveryPlan,
    HistoryRow,
    _day_weights,
    _items,
    _Picker,
    _quarantine_row,
    _render_history,
    _time,
    history_headers,
    plan_deliveries,
)
from loaders.sample.generate import (
    GENERATOR_VERSION,
    SCALES,
    _delivery_defects,
    _outcomes,
    _write_history,
    dump_expected,
    history_column_sums,
)
from loaders.sample.model import Client, Event, apportion, rng_for, scale_count
from loaders.sample.truth import MERGED, REASONS, SCHEMA_VERSION, Truth

INCREMENT_FILE = "2025-06 commercial deliver history.xlsx"
INCREMENT_EXPECTED = "expected-increment.json"
INCREMENT_SHEET = HISTORY_SHEETS[-1][0]
INCREMENT_START = HISTORY_END + timedelta(days=1)
INCREMENT_END = date(2025, 6, 20)
INCREMENT_CREATED = datetime(2025, 6, 21, 8, 30, 0)  # the workbook's document timestamp

FULL_INCREMENT_EVENTS = 3_000  # rows of new events, the app's catch-up rows included
APP_CATCH_UP_SHARE = 0.5  # of the base's app-only deliveries after HISTORY_END
FULL_RESENT_ROWS = 400
RESENT_DAYS = 7  # re-sent rows copy base rows of the history's last days
INCREMENT_QUARANTINE_KINDS = {
    "orphan_client_code": ("unknown_client", 8),
    "date_garbage": ("date_unparseable", 4),
}


@dataclass
class IncrementPlan:
    rows: list[HistoryRow]  # the sheet, in row order
    new_events: list[Event]  # deliveries that no base source has
    caught_up: dict[int, HistoryRow]  # app delivery id -> the increment row it merges into
    resent: list[HistoryRow]
    quarantined: list[HistoryRow]
    events: list[Event]  # every final event of base and increment together
    app: list[AppDelivery]  # the base app rows as they end once the increment is loaded


def _taken(plan: DeliveryPlan, clients: list[Client]) -> set[tuple[int, date]]:
    """(client index, day) of every base source row that names a client of the master."""
    index_of_code = {c.code: c.index for c in clients}
    index_of_app_id = {c.app_id: c.index for c in clients}
    taken = {(e.client.index, e.day) for e in plan.events}
    for rows in plan.history.values():
        for hr in rows:
            day, _, code = hr.sort_key[:3]  # the day and client the row was drawn for
            if code in index_of_code:
                taken.add((index_of_code[code], day))
    for a in plan.app:
        if a.client_id in index_of_app_id:
            taken.add((index_of_app_id[a.client_id], a.day))
    return taken


def plan_increment(
    seed: int, clients: list[Client], plan: DeliveryPlan, factor: float
) -> IncrementPlan:
    """The increment's rows, from the base plan of the same seed and scale."""
    rng = rng_for(seed, "increment")
    picker = _Picker(rng, clients)
    picker.taken = _taken(plan, clients)

    # 1. History rows for about half of the app-only deliveries the history has not seen yet.
    pending = [
        a
        for a in plan.app
        if a.event is not None
        and a.merged_into is None
        and a.reason is None
        and INCREMENT_START <= a.day <= INCREMENT_END
    ]
    k = min(len(pending), max(2, round(len(pending) * APP_CATCH_UP_SHARE)))
    catch_up = sorted(rng.sample(pending, k), key=lambda a: a.id)

    # 2. New delivery events over the increment's days.
    n_events = scale_count(FULL_INCREMENT_EVENTS, factor, minimum=6)
    n_new = max(0, n_events - len(catch_up))
    days, weights = _day_weights(INCREMENT_START, INCREMENT_END, growth_span=0.0)
    new_events: list[Event] = []

    def add(day: date, k: int) -> None:
        for c in picker.pick(day, k):
            new_events.append(Event(0, c, day, _time(rng, c), _items(rng, c), c.salesperson))

    for day, k in zip(days, apportion(weights, n_new, rng), strict=True):
        add(day, k)
    while len(new_events) < n_new:  # a crowded day can fall short
        add(rng.choice(days), 1)

    # 3. Re-sent rows: copies of base rows of the last days that became a delivery.
    since = HISTORY_END - timedelta(days=RESENT_DAYS - 1)
    recent = [
        hr
        for hr in plan.history[INCREMENT_SHEET]
        if hr.event is not None and hr.dup_of is None and hr.reason is None
        if hr.event.day >= since
    ]
    k = min(len(recent), scale_count(FULL_RESENT_ROWS, factor, minimum=3))
    twins = [hr for hr in recent if hr.event.in_app]
    others = [hr for hr in recent if not hr.event.in_app]
    n_twins = min(len(twins), max(1, round(k * len(twins) / len(recent)))) if twins else 0
    n_others = min(len(others), k - n_twins)
    n_twins = k - n_others
    resent = [
        HistoryRow(
            INCREMENT_SHEET,
            hr.sort_key[:3] + (1,),
            list(hr.cells),
            kind="resent_row",
            dup_of=hr,
            file=INCREMENT_FILE,
        )
        for hr in sorted(
            rng.sample(twins, n_twins) + rng.sample(others, n_others), key=lambda r: r.row
        )
    ]

    # 4. Rows that must be quarantined.
    codes = {c.code for c in clients}
    quarantined = []
    for kind, (reason, full) in INCREMENT_QUARANTINE_KINDS.items():
        for _ in range(scale_count(full, factor, minimum=2)):
            hr = _quarantine_row(rng, picker, days, kind, reason, codes)
            hr.file = INCREMENT_FILE
            quarantined.append(hr)

    # 5. Render the new events' rows; 最後十次日期 continues from the base history.
    last_seen: dict[int, date] = {}
    for e in plan.events:
        if e.in_history:
            last_seen[e.client.index] = max(e.day, last_seen.get(e.client.index, e.day))
    now_in_history: dict[int, Event] = {}  # app delivery id -> its event, now also in history
    for a in catch_up:
        assert a.event is not None
        items = {P.APP_REGULAR_PRODUCT[kg]: q for kg, q in sorted(a.sizes.items()) if q}
        assert items == a.event.items and a.time == a.event.time, (a, a.event)
        now_in_history[a.id] = dataclasses.replace(a.event, in_history=True)
    rendered = list(now_in_history.values()) + new_events
    rendered.sort(key=lambda e: (e.day, e.time, e.client.code))
    row_of_event: dict[int, HistoryRow] = {}
    fresh_rows = []
    for e in rendered:
        cells = _render_history(e, last_seen.get(e.client.index))
        last_seen[e.client.index] = e.day
        hr = HistoryRow(
            INCREMENT_SHEET, (e.day, e.time, e.client.code, 0), cells, event=e, file=INCREMENT_FILE
        )
        row_of_event[id(e)] = hr
        fresh_rows.append(hr)

    rows = fresh_rows + resent + quarantined
    rows.sort(key=lambda r: r.sort_key)
    for i, hr in enumerate(rows):
        hr.row = i + 2
    assert all(hr.sheet == INCREMENT_SHEET for hr in rows)

    caught_up = {a_id: row_of_event[id(e)] for a_id, e in now_in_history.items()}
    app = [
        dataclasses.replace(a, merged_into=caught_up[a.id]) if a.id in caught_up else a
        for a in plan.app
    ]
    replaced = {id(a.event): now_in_history[a.id] for a in catch_up}
    events = [replaced.get(id(e), e) for e in plan.events] + new_events
    return IncrementPlan(rows, new_events, caught_up, resent, quarantined, events, app)


def generate_increment(out: Path, scale: str, seed: int, console: Console) -> dict:
    """Write the increment workbook and expected-increment.json into `out`; returns the doc."""
    n_clients, row_factor = SCALES[scale]
    started = time.perf_counter()

    def step(msg: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {msg}")

    clients = generate_clients(seed, n_clients)
    test_ids = assign_app_ids(seed, clients)
    plan = plan_deliveries(seed, clients, row_factor, test_ids)
    step(f"base plan: {len(plan.events):,} delivery events (not written)")
    inc = plan_increment(seed, clients, plan, row_factor)
    step(
        f"increment: {len(inc.rows):,} rows ({len(inc.new_events):,} new deliveries, "
        f"{len(inc.caught_up):,} app deliveries caught up, {len(inc.resent):,} re-sent, "
        f"{len(inc.quarantined):,} to quarantine)"
    )
    path = out / INCREMENT_FILE
    sheets = {INCREMENT_SHEET: inc.rows}
    _write_history(path, sheets, INCREMENT_CREATED)
    step(f"wrote {INCREMENT_FILE}")

    headers = history_headers(INCREMENT_SHEET)
    source = {
        "file": INCREMENT_FILE, "sheet": INCREMENT_SHEET, "kind": "sheet", "layout": "table",
        "header_row": 1, "last_row": len(inc.rows) + 1, "data_rows": len(inc.rows),
        "columns": len(headers), "headers": headers,
    }  # fmt: skip
    # Every row of the combined state is classified as for the base; the document keeps the
    # groups of the increment's rows and of the base rows whose outcome the increment changes.
    everything = Truth()
    for name in plan.history:
        everything.set_headers(P.HISTORY_FILE, name, history_headers(name))
    everything.set_headers(INCREMENT_FILE, INCREMENT_SHEET, headers)
    recon = _delivery_defects(
        everything, {P.HISTORY_FILE: plan.history, INCREMENT_FILE: sheets}, inc.app
    )
    truth = everything.select(
        lambda g: g.file == INCREMENT_FILE or g.merged_into_file == INCREMENT_FILE
    )
    history_rows = [hr for rows in [*plan.history.values(), inc.rows] for hr in rows]
    outcomes = _outcomes(clients, inc.events, history_rows, inc.app, recon)
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
        "column_sums": history_column_sums(INCREMENT_FILE, sheets),
        "reasons": REASONS,
        "defect_kinds": truth.kind_counts(),
        "defects": [g.as_json() for g in truth.groups()],
    }
    assert all(g["outcome"] != MERGED or g["merged_into_file"] for g in doc["defects"])
    (out / INCREMENT_EXPECTED).write_text(dump_expected(doc), encoding="utf-8")
    step(f"wrote {INCREMENT_EXPECTED} ({len(doc['defects'])} defect groups)")
    return doc
