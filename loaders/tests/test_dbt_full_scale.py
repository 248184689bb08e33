"""The full-scale sample (the real exports' sizes: 1,267 clients, 349,920 history rows, the app's
179,555 deliveries), loaded and built once: every table matches expected.json, and Mary's
record is complete at that scale: every exception row names its file, sheet and row, and
every rule's exception names the source header it is about.

The one test of the suite at full scale (about two minutes: generation, load, `dbt build`);
the timings themselves are the benchmarks' (bench/), never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from loaders import verify
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, fresh_database, run_dbt
from loaders.tests.test_dbt_deliveries import load, rows


@pytest.fixture(scope="module")
def built(pg, tmp_path_factory):
    """(conninfo, expected, sample directory) after load + dbt build of the full sample."""
    tmp = tmp_path_factory.mktemp("dbt-full")
    sample = tmp / "sample"
    generate(sample, scale="full", seed=20250521)
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    with fresh_database(pg, "full") as (conninfo, env):
        load(env, sample)
        result = run_dbt(["build"], dbt_env(env, tmp), timeout=1800)
        assert result.returncode == 0, result.stdout[-4000:]
        yield conninfo, expected, sample


def test_every_check_of_expected_json_holds(built):
    conninfo, _, sample = built
    expected = verify.read_expected(Path(sample))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        checks = verify.raw_checks(conn, expected) + verify.raw_table_checks(conn, expected)
        checks += verify.customer_checks(conn, expected)
        checks += verify.delivery_checks(conn, expected)
    bad = [(c.what, c.expected, c.actual) for c in checks if not c.ok]
    assert checks and bad == []


def test_every_exception_names_its_file_sheet_and_row(built):
    conninfo = built[0]
    counts = rows(
        conninfo,
        "select count(*), count(*) filter (where source_file is null or source_sheet is null"
        " or source_row is null) from validation.exceptions",
    )[0]
    assert counts[0] > 0 and counts[1] == 0, counts


def test_every_rule_exception_names_its_source_header(built):
    """The column map (seeds/source_columns.csv) names the source header of every rule
    exception, and the cell as written where the mart keeps it."""
    conninfo = built[0]
    headerless = rows(
        conninfo,
        "select code, layout, column_name, count(*) from validation.latest_exceptions"
        " where source_header is null group by 1, 2, 3 order by 1, 2, 3",
    )
    assert headerless == []
    # every quarantined row of expected.json is an exception of its reason
    expected = built[1]
    reasons = dict(
        rows(
            conninfo,
            "select code, count(*) from validation.latest_exceptions"
            " where kind = 'quarantine' group by code",
        )
    )
    want: dict[str, int] = {}
    for entity in ("customers", "deliveries"):
        for reason, n in expected["outcomes"][entity]["quarantine"].items():
            want[reason] = want.get(reason, 0) + n
    assert reasons == want
