"""What the planned delivery rows must become: their defect groups, outcomes and totals.

Each history row that is not a plain delivery, and each app row, goes into the `Truth` with
the outcome it must reach (loaded, flagged, merged into another row, quarantined with a
reason), and so does each customer the history describes. Each source's rows reconcile
(final + merged + quarantined), and the final tables' totals (customers, deliveries, items,
product totals, quarantine by reason) are counted from the plan. Used for expected.json and
expected-increment.json alike.
"""

from __future__ import annotations

from collections import defaultdict

from loaders.sample import profile as P
from loaders.sample.app_db import TEST_CLIENTS
from loaders.sample.delivery_rows import AppDelivery, HistoryRow, history_headers, items_of_sizes
from loaders.sample.model import Client
from loaders.sample.outsiders import history_only_clients
from loaders.sample.truth import FLAGGED, LOADED, MERGED, QUARANTINED, Instance, Truth


def delivery_defects(
    truth: Truth,
    history: dict[str, dict[str, list[HistoryRow]]],
    app: list[AppDelivery],
    headers_of: dict[str, list] | None = None,
) -> list[dict]:
    """Record every history and app row that is not a plain delivery; returns reconciliation.

    `history` maps each history file to its sheets (file -> sheet -> rows); a merged row names
    the file of the row it is merged into (`HistoryRow.file`, `AppDelivery.merged_into.file`).
    """
    recon: list[dict] = []
    for hf, sheets in history.items():
        for sheet, rows in sheets.items():
            headers = (headers_of or {}).get(hf)
            recon.append(history_sheet_defects(truth, hf, sheet, rows, headers))
    recon.append(app_defects(truth, app))
    return recon


APP_DEFECT_COLUMN = {
    "app_orphan_client_id": "client_id",
    "app_test_client_delivery": "client_id",
    "app_cancelled": "status",
    "app_not_home": "status",
    "app_status_edited": "status",
    "app_driver_edited": "driver_id",
}


def app_defects(truth: Truth, app: list[AppDelivery]) -> dict:
    """The app's rows: merged into their history row, app-only, or quarantined."""
    r = {"rows": len(app), "final": 0, "merged": 0, "quarantined": 0}
    af = P.APP_FILE
    for a in app:
        column = APP_DEFECT_COLUMN.get(a.kind or "")
        value: object = None
        if column == "client_id":
            value = a.client_id
        elif column == "status":
            value = a.status
        elif column == "driver_id":
            value = a.driver_id
        elif a.kind in ("app_quantity_edited", "app_negative_quantity"):
            kg, value = next(
                (kg, q)
                for kg, q in sorted(a.sizes.items())
                if q and (q < 0) == (a.reason is not None)
            )
            column = f"delivered_{kg}kg"
        if a.merged_into is not None:
            r["merged"] += 1
            into = a.merged_into
            truth.add(a.kind or "app_history_same_event", af, "deliveries", column, MERGED,
                      Instance(a.id, value, a.expect, merged_into={"sheet": into.sheet, "row": into.row},
                               has_cell=column is not None),
                      merged_into_file=into.file)  # fmt: skip
        elif a.reason:
            r["quarantined"] += 1
            truth.add(a.kind, af, "deliveries", column, QUARANTINED,
                      Instance(a.id, value, has_cell=column is not None), reason=a.reason)  # fmt: skip
        else:
            r["final"] += 1
            truth.add(a.kind or "app_only_delivery", af, "deliveries", None, LOADED,
                      Instance(a.id, None, a.expect, has_cell=False))  # fmt: skip
    return {"file": af, "sheet": "deliveries", **r}


def history_sheet_defects(
    truth: Truth, hf: str, sheet: str, rows: list[HistoryRow], headers: list | None = None
) -> dict:
    r = {"rows": len(rows), "final": 0, "merged": 0, "quarantined": 0}
    headers = headers or history_headers(sheet)
    first = headers[0]
    for hr in rows:
        column = first if hr.column == "客戶" else hr.column
        cell = None
        if column is not None:
            cell = hr.cells[headers.index(column)]
        if hr.dup_of is not None:
            r["merged"] += 1
            into = hr.dup_of
            truth.add(hr.kind or "exact_duplicate", hf, sheet, None, MERGED, merged_into_file=into.file,
                      instance=Instance(hr.row, merged_into={"sheet": into.sheet, "row": into.row}, has_cell=False))  # fmt: skip
        elif hr.reason:
            r["quarantined"] += 1
            truth.add(
                hr.kind,
                hf,
                sheet,
                column,
                QUARANTINED,
                Instance(hr.row, cell, hr.expect, has_cell=column is not None),
                reason=hr.reason,
            )
        else:
            r["final"] += 1
            if hr.kind == "client_detail_mismatch":
                truth.add(
                    hr.kind,
                    hf,
                    sheet,
                    column,
                    FLAGGED,
                    Instance(hr.row, cell, hr.expect, has_cell=column is not None),
                    flag="client_detail_mismatch",
                )
            elif hr.kind:
                truth.add(
                    hr.kind,
                    hf,
                    sheet,
                    column,
                    LOADED,
                    Instance(hr.row, cell, hr.expect, has_cell=column is not None),
                )
    return {"file": hf, "sheet": sheet, **r}


def history_customers(
    truth: Truth, rows: list[HistoryRow], clients: list[Client], keep=lambda hr: True
) -> int:
    """One flagged instance per client the master lacks: the customer its history describes
    (recorded where `keep` accepts its latest row); returns how many there are."""
    found = history_only_clients(rows, {c.code for c in clients})
    for c in found:
        if not keep(c["row"]):
            continue
        hr = c["row"]
        truth.add("history_only_client", hr.file, hr.sheet, "客戶", FLAGGED,
                  Instance(hr.row, hr.cells[0], c["expect"]), flag="history_only_client")  # fmt: skip
    return len(found)


def expected_outcomes(
    clients: list[Client],
    history: list[HistoryRow],
    app: list[AppDelivery],
    recon: list[dict],
    outside: int,
) -> dict:
    """Totals of the final tables: deliveries, their items, the quarantine, the customers."""
    totals: dict[str, float] = defaultdict(float)
    items = 0
    with_items = 0
    reasons: dict[str, int] = defaultdict(int)
    for hr in history:
        if hr.reason:
            reasons[hr.reason] += 1
    primaries = [hr for hr in history if not hr.reason and hr.dup_of is None]
    for hr in primaries:
        for code, qty in (hr.items or {}).items():
            totals[code] += qty
            items += 1
        with_items += bool(hr.items)
    merged = app_only = conflicts = 0
    for a in app:
        if a.reason:
            reasons[a.reason] += 1
            continue
        if a.merged_into is not None:
            merged += 1
            conflicts += a.status != "COMPLETED"
            if a.merged_into.items:
                continue  # the history row records the items
        else:
            app_only += 1
        got = items_of_sizes(a.sizes) if all(q >= 0 for q in a.sizes.values()) else {}
        for code, qty in got.items():
            totals[code] += qty
            items += 1
        with_items += bool(got)
    final_history = len(primaries)
    differ = sum(1 for hr in primaries if hr.kind == "client_detail_mismatch")
    for r in recon:
        assert r["rows"] == r["final"] + r["merged"] + r["quarantined"], r
    n = len(clients)
    count = final_history + app_only
    reconciliation = recon + [
        {"file": P.CLIENT_FILE, "sheet": P.MASTER_SHEET, "rows": n, "final": n, "merged": 0, "quarantined": 0},
        {"file": P.APP_FILE, "sheet": "clients", "rows": n + len(TEST_CLIENTS), "final": 0, "merged": n,
         "quarantined": len(TEST_CLIENTS)},
    ]  # fmt: skip
    return {
        "customers": {
            "count": n + outside,
            "by_source": {"client_master": n, "delivery_history": outside, "legacy_app": 0},
            "with_app_id": n,
            "quarantine": {"test_client": len(TEST_CLIENTS)},
        },
        "deliveries": {
            "count": count,
            "items": items,
            "by_source_system": {
                "history": final_history - merged,
                "app": app_only,
                "history+app": merged,
            },
            "items_recorded": {"false": count - with_items, "true": with_items},
            "client_details_differ": differ,
            "app_status_conflicts": conflicts,
            "quarantine": dict(sorted(reasons.items())),
            "product_totals": {code: json_number(totals[code]) for code in sorted(totals)},
        },
        "reconciliation": reconciliation,
    }


def json_number(x: float) -> int | float:
    """A sum as JSON shows it: whole numbers without .0, others rounded to 3 decimals."""
    x = round(x, 3)
    return int(x) if float(x).is_integer() else x
