"""The clients the master lacks: 90 % of the history's codes, described only by its rows.

Planning makes them (codes like the master's, realistic details, some shared, a few that
change from some day on); `history_only_clients` says which customer the pipeline must
build from each one's rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from loaders.sample import profile as P
from loaders.sample.clients import random_address
from loaders.sample.delivery_rows import COL, HistoryRow, clean, clean_address
from loaders.sample.model import scale_count

FULL_OUTSIDE_CODES = 12_028  # history codes the client master lacks
GENERIC_ACCOUNT = "維修現金客戶"  # a generic account name seen on several codes
DETAIL_CHANGE_SHARE = 0.03  # clients outside the master whose address or name changes
# Shares of clients outside the master that repeat another one's title, short name or address
# (branches, generic names, stalls of one market): tuned so that the distinct values come near
# the real file's (電子發票抬頭 12,738, 客戶簡稱 12,082, 地址 12,221 at full scale).
SHARED_TITLE, SHARED_SHORT_NAME, SHARED_ADDRESS = 0.031, 0.058, 0.085


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


def plan_outsiders(rng: random.Random, n: int, taken: set[int]) -> list[Outsider]:
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
        c = Outsider(code, short + rng.choice(P.INVOICE_SUFFIXES), short, random_address(rng, area))
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


def change_details(
    rng: random.Random, outsider_days: list[tuple[Outsider, list[date]]], n_out: int
) -> None:
    """About 3 % of the outsiders change a detail from some day on (of those with a few rows
    at least): their address mostly, else their short name."""
    changing = [(o, ds) for o, ds in outsider_days if len(ds) >= 3]
    n_change = min(len(changing), scale_count(round(DETAIL_CHANGE_SHARE * n_out), 1.0, 2))
    for o, ds in rng.sample(changing, n_change):
        o.change_day = ds[rng.randrange(1, len(ds))]
        if rng.random() < 0.7:
            o.new_address = random_address(rng, rng.choice(list(P.AREAS)))
        else:
            o.new_short_name = o.short_name + rng.choice(["新店", "(搬遷)", "二館"])


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
