"""Compare what the database holds with a sample's expected.json (the ground truth).

The raw layer, source by source (rows staged in `raw` against `data_rows`), and, once
`dbt build` has run, the customers and their quarantine. Later issues add the deliveries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from loaders.errors import UserError
from loaders.naming import table_name


@dataclass
class Check:
    what: str
    expected: int
    actual: int | None  # None: not in the database

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
