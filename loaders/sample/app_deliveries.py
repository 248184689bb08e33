"""The app's deliveries table: rows imported from the history, edits, and the app's own rows.

The app's deliveries were imported from the history (`docs/raw-formats.md` section 3): one per
valid history row of a master client, COMPLETED, no quantities, no driver. A few were edited
in the app afterwards (status, cylinders, driver), and a few rows were created in the app
alone, mostly in the days after the history export ends; some of those must be quarantined.
"""

from __future__ import annotations

import random
from datetime import timedelta

from loaders.sample import profile as P
from loaders.sample.delivery_rows import (
    APP_END,
    HISTORY_END,
    AppDelivery,
    all_days,
    items_of_sizes,
    random_items,
    random_time,
)
from loaders.sample.history_sheet import HistorySheet
from loaders.sample.model import Client, scale_count

FULL_APP_DELIVERIES = 179_555
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


def extra_counts(factor: float) -> dict[str, int]:
    """How many rows of each kind the app has besides the imported ones, at this scale."""
    return {k: scale_count(n, factor, minimum=2) for k, (_, n) in APP_EXTRA_KINDS.items()}


def plan_app(
    rng: random.Random,
    clients: list[Client],
    sheet: HistorySheet,
    factor: float,
    n_app: int,
    test_client_ids: list[int],
) -> list[AppDelivery]:
    """`n_app` rows: one per valid history row of a master client (the importer), a few of
    them edited afterwards, and the app's own rows, on days their client has no history row."""
    days = all_days()

    def count(full: int) -> int:
        return scale_count(full, factor, minimum=2)

    q_app = extra_counts(factor)
    n_imported = n_app - sum(q_app.values())
    imported = [hr for hr in sheet.rows if hr.master is not None and hr.reason is None]
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
                a.sizes = _sizes(random_items(rng, master, regular_only=True))
                a.expect = {"items": items_of_sizes(a.sizes)}
            else:
                a.driver_id, a.vehicle_id = rng.randint(1, 3), rng.randint(1, 3)
                a.expect = {"driver_name": APP_DRIVERS[a.driver_id - 1]}
    # App-only rows fall on days their client has no history row, not even a broken one.
    app_of = {c.code: c.app_id for c in clients}
    taken = {(app_of[code], day) for code, day in sheet.busy if code in app_of}
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
            a = AppDelivery(day, random_time(rng, c), c.app_id, _sizes(random_items(rng, c, True)))
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
    return app


def _sizes(items: dict[str, float]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for code, qty in items.items():
        kg = P.PRODUCT_BY_CODE[code].kg
        sizes[kg] = sizes.get(kg, 0) + int(qty)
    return sizes
