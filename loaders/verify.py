"""Compare what the database holds with a sample's expected.json (the ground truth).

The raw layer, source by source (rows staged in `raw` against `data_rows`), and, once
`dbt build` has run, every raw table's layout and role (validation.raw_tables, none
unaccounted), the customers by source (each customer the master lacks with the details its
history gives), and the deliveries: every count, every product total, the reconciliation of
each source, and each defect instance's outcome found by its source row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from loaders.errors import UserError
from loaders.naming import table_name


@dataclass
class Check:
    what: str
    expected: int | Decimal
    actual: int | Decimal | None  # None: not in the database

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


def read_expected(path: Path) -> dict:
    """expected.json from a sample directory (or the file itself)."""
    path = path / "expected.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such file; run `luckygas sample --out DIR` first") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def raw_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """One check per source: rows in its raw table against expected.json's data_rows."""
    checks = []
    for src in expected["sources"]:
        kind = "sqlite" if src["kind"] == "table" else "xlsx"
        table = table_name(src["file"], src["sheet"], kind)
        exists = conn.execute("select to_regclass(%s) is not null", (f"raw.{table}",)).fetchone()
        actual = None
        if exists and exists[0]:
            query = sql.SQL("select count(*) from {}").format(sql.Identifier("raw", table))
            actual = conn.execute(query).fetchone()[0]
        checks.append(Check(f"raw: {src['file']}: {src['sheet']}", src["data_rows"], actual))
    return checks


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()
    return bool(row and row[0])


def raw_table_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """Raw tables by role, none unaccounted, and each source's layout (after `dbt build`)."""
    if not _exists(conn, "validation.raw_tables"):
        return []
    sources = [s for s in expected["sources"] if "role" in s]
    if not sources:
        return []
    got = {
        (file, sheet): (layout, role, status)
        for file, sheet, layout, role, status in conn.execute(
            "select source_file, source_sheet, layout, role, status from validation.raw_tables"
        )
    }
    checks = []
    for role in ("migrated", "not_migrated"):
        listed = [s for s in sources if s["role"] == role]
        have = sum(
            1 for s in listed if got.get((s["file"], s["sheet"]), (None, None, None))[2] == role
        )
        checks.append(Check(f"raw tables {role}", len(listed), have))
    unaccounted = sum(1 for _, _, status in got.values() if status in ("unrecognised", "not_read"))
    checks.append(Check("raw tables unaccounted (no layout, or not read)", 0, unaccounted))
    same = sum(
        1
        for s in sources
        if got.get((s["file"], s["sheet"]), (None,))[0] == s.get("catalogue_layout")
    )
    checks.append(Check("raw tables with the expected layout", len(sources), same))
    return checks


def customer_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """Customers and their quarantine against expected.json (empty before `dbt build`)."""
    exists = conn.execute("select to_regclass('marts.customers') is not null").fetchone()
    if not (exists and exists[0]):
        return []
    want = expected["outcomes"]["customers"]
    count, with_app = conn.execute(
        "select count(*), count(app_client_id) from marts.customers"
    ).fetchone()
    checks = [
        Check("customers", want["count"], count),
        Check("customers linked to an app client", want["with_app_id"], with_app),
    ]
    if "by_source" in want:
        got = dict(conn.execute("select customer_source, count(*) from marts.customers group by 1"))
        for source in sorted(set(want["by_source"]) | set(got)):
            checks.append(
                Check(
                    f"customers from {source}", want["by_source"].get(source, 0), got.get(source, 0)
                )
            )
    checks += _history_customer_checks(conn, expected)
    got = dict(conn.execute("select reason, count(*) from marts.customer_quarantine group by 1"))
    for reason in sorted(set(want["quarantine"]) | set(got)):
        checks.append(
            Check(
                f"customer quarantine: {reason}",
                want["quarantine"].get(reason, 0),
                got.get(reason, 0),
            )
        )
    return checks


CUSTOMER_DETAILS = ("client_code", "invoice_title", "short_name", "address", "history_rows")


def _history_customer_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """Each customer the master lacks: built from its history with the expected details."""
    want = [
        (g["file"], g["sheet"], i)
        for g in expected["defects"]
        if g["kind"] == "history_only_client"
        for i in g["instances"]
    ]
    if not want:
        return []
    have = {
        row[0]: row
        for row in conn.execute(
            "select client_code, invoice_title, short_name, address, history_rows, source_file,"
            " source_sheet, source_row from marts.customers"
            " where customer_source = 'delivery_history'"
        )
    }
    ok = 0
    for file, sheet, i in want:
        e = i["expect"]
        row = have.get(e["client_code"])
        if row is not None and list(row) == [
            *(e[k] for k in CUSTOMER_DETAILS),
            file,
            sheet,
            i["row"],
        ]:
            ok += 1
    return [
        Check(
            "customers from the delivery history with their details and latest row", len(want), ok
        )
    ]


DELIVERY_SOURCES = ("history", "app")


def _is_delivery_source(expected: dict, file: str, sheet: str) -> bool:
    for r in expected["outcomes"]["reconciliation"]:
        if (r["file"], r["sheet"]) == (file, sheet):
            return sheet not in {"客戶資料", "clients"}
    return False


def delivery_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """Deliveries, items, quarantine, reconciliation and defect outcomes (after dbt build)."""
    exists = conn.execute("select to_regclass('marts.deliveries') is not null").fetchone()
    if not (exists and exists[0]):
        return []
    want = expected["outcomes"]["deliveries"]
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    checks = [
        Check("deliveries", want["count"], one("select count(*) from marts.deliveries")),
        Check("delivery items", want["items"], one("select count(*) from marts.delivery_items")),
    ]
    got = dict(conn.execute("select source_system, count(*) from marts.deliveries group by 1"))
    for system in sorted(set(want["by_source_system"]) | set(got)):
        checks.append(
            Check(
                f"deliveries from {system}",
                want["by_source_system"].get(system, 0),
                got.get(system, 0),
            )
        )
    for key, query in (
        (
            "items_recorded",
            "select items_recorded::text, count(*) from marts.deliveries group by 1",
        ),
    ):
        if key in want:
            got = dict(conn.execute(query))
            for value in sorted(set(want[key]) | set(got)):
                checks.append(
                    Check(f"deliveries {key} = {value}", want[key].get(value, 0), got.get(value, 0))
                )
    for key, query in (
        (
            "client_details_differ",
            "select count(*) from marts.deliveries where client_details_differ",
        ),
        (
            "app_status_conflicts",
            "select count(*) from marts.deliveries"
            " where source_system = 'history+app' and app_status <> 'completed'",
        ),
    ):
        if key in want:
            checks.append(Check(f"deliveries {key}", want[key], one(query)))
    got = dict(conn.execute("select reason, count(*) from marts.delivery_quarantine group by 1"))
    for reason in sorted(set(want["quarantine"]) | set(got)):
        checks.append(
            Check(
                f"delivery quarantine: {reason}",
                want["quarantine"].get(reason, 0),
                got.get(reason, 0),
            )
        )
    got = dict(
        conn.execute("select product_code, sum(quantity) from marts.delivery_items group by 1")
    )
    for code in sorted(set(want["product_totals"]) | set(got)):
        checks.append(
            Check(
                f"delivered {code}",
                Decimal(str(want["product_totals"].get(code, 0))),
                got.get(code, Decimal(0)),
            )
        )
    split: dict[tuple[str, str], dict[str, int]] = {}
    for file, sheet, role, n in conn.execute(
        "select source_file, source_sheet, source_role, count(*) from marts.delivery_sources"
        " group by 1, 2, 3 union all select source_file, source_sheet, 'quarantined', count(*)"
        " from marts.delivery_quarantine group by 1, 2"
    ):
        split.setdefault((file, sheet), {})[role] = n
    for r in expected["outcomes"]["reconciliation"]:
        if not _is_delivery_source(expected, r["file"], r["sheet"]):
            continue
        have = split.get((r["file"], r["sheet"]), {})
        for outcome, role in (
            ("final", "primary"),
            ("merged", "merged"),
            ("quarantined", "quarantined"),
        ):
            checks.append(
                Check(f"{r['file']}: {r['sheet']}: {outcome}", r[outcome], have.get(role, 0))
            )
    return checks + _defect_checks(conn, expected)


def _defect_checks(conn: psycopg.Connection, expected: dict) -> list[Check]:
    """Per delivery defect kind: instances whose source row reached the expected outcome."""
    rows = []
    for g in expected["defects"]:
        if g["kind"] == "history_only_client":
            continue  # a customer, checked by customer_checks
        if not _is_delivery_source(expected, g["file"], g["sheet"]):
            continue
        for i in g["instances"]:
            into = i.get("merged_into") or {}
            exp = i.get("expect") or {}
            rows.append(
                (
                    g["kind"], g["file"], g["sheet"], i["row"], g["outcome"], g.get("reason"),
                    g.get("merged_into_file"), into.get("sheet"), into.get("row"),
                    exp.get("date"), exp.get("client_code"),
                    g.get("flag") == "client_detail_mismatch",
                    exp.get("app_status"), exp.get("driver_name"),
                )
            )  # fmt: skip
    if not rows:
        return []
    conn.execute(
        "create temp table if not exists verify_defects (kind text, file text, sheet text,"
        " row integer, outcome text, reason text, into_file text, into_sheet text,"
        " into_row integer, day date, client_code text, flagged boolean, app_status text,"
        " driver_name text)"
    )
    conn.execute("truncate verify_defects")
    with conn.cursor().copy("copy verify_defects from stdin") as copy:
        for row in rows:
            copy.write_row(row)
    reached = conn.execute(
        """
        select w.kind, count(*), count(*) filter (where case
            when w.outcome = 'quarantined' then q.reason is not distinct from w.reason
            when w.outcome = 'merged' then b.source_role = 'merged'
                and (b.primary_source_file, b.primary_source_sheet, b.primary_source_row)
                    = (w.into_file, w.into_sheet, w.into_row)
                and (w.app_status is null or d.app_status = w.app_status)
                and (w.driver_name is null or d.driver_name = w.driver_name)
            else b.source_role = 'primary'
                and (w.day is null or d.delivery_date = w.day)
                and (w.client_code is null or d.client_code = w.client_code)
                and d.client_details_differ = w.flagged
            end)
        from verify_defects as w
        left join marts.delivery_quarantine as q
            on (q.source_file, q.source_sheet, q.source_row) = (w.file, w.sheet, w.row)
        left join marts.delivery_sources as b
            on (b.source_file, b.source_sheet, b.source_row) = (w.file, w.sheet, w.row)
        left join marts.deliveries as d on d.delivery_key = b.delivery_key
        group by w.kind
        order by w.kind
        """
    ).fetchall()
    return [
        Check(f"defect {kind}: rows with the expected outcome", n, ok) for kind, n, ok in reached
    ]
