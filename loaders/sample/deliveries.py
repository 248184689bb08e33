"""The delivery plan: every history row and app delivery, with the outcome each must reach.

The history sheet is planned first (`history_sheet.py`, with the clients the master lacks
from `outsiders.py`), then the app's deliveries, most of them imported from it
(`app_deliveries.py`); both draw from one seeded stream, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

from loaders.sample.app_deliveries import FULL_APP_DELIVERIES, extra_counts, plan_app
from loaders.sample.delivery_rows import HISTORY_SHEET, AppDelivery, HistoryRow
from loaders.sample.history_sheet import FULL_HISTORY_ROWS, plan_history
from loaders.sample.model import Client, rng_for
from loaders.sample.outsiders import Outsider


@dataclass
class DeliveryPlan:
    """The planned rows: the history's (sheet -> rows), the app's, and the outsiders."""

    history: dict[str, list[HistoryRow]]
    app: list[AppDelivery]
    outsiders: list[Outsider]
    history_rows: int
    app_rows: int


def plan_deliveries(
    seed: int, clients: list[Client], factor: float, test_client_ids: list[int]
) -> DeliveryPlan:
    """Every history row and app delivery, with the outcome each must reach."""
    rng = rng_for(seed, "deliveries")
    n_hist = round(FULL_HISTORY_ROWS * factor)
    n_app = round(FULL_APP_DELIVERIES * factor)
    n_imported = n_app - sum(extra_counts(factor).values())
    sheet = plan_history(rng, clients, factor, n_hist, n_imported)
    app = plan_app(rng, clients, sheet, factor, n_app, test_client_ids)
    return DeliveryPlan(
        history={HISTORY_SHEET: sheet.rows},
        app=app,
        outsiders=sheet.outsiders,
        history_rows=n_hist,
        app_rows=n_app,
    )
