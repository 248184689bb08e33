"""Daily loads after the migration: an increment builds incrementally, and equals a full refresh.

The small sample is loaded and built; then `luckygas sample --increment` writes a further
history file (new days, app deliveries the history now records too, re-sent rows of earlier
days, a few bad rows) and its ground truth, expected-increment.json. The increment is loaded
and `dbt build` runs incrementally: every figure must match the ground truth, only the
client-days the increment touches may be rewritten, and `dbt build --full-refresh` must give
the same rows, table for table.
"""

from __future__ import annotations

import json

import openpyxl
import psycopg
import pytest

from loaders.cli import main
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt

INCREMENT = "2025-06 commercial deliver history.xlsx"
MARTS = ("deliveries", "delivery_items", "delivery_sources")


def rows(conninfo: str, sql: str) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def snapshot(conninfo: str) -> dict[str, list[tuple]]:
    """Every row of the three incremental marts, as text, in a stable order."""
    return {
        table: rows(conninfo, f"select t::text from marts.{table} as t order by 1")
        for table in MARTS
    }


@pytest.fixture(scope="module")
def increment(pg, tmp_path_factory):
    """State after: base load + build, increment load + incremental build."""
    tmp = tmp_path_factory.mktemp("dbt-incremental")
    base, extra = tmp / "base", tmp / "increment"
    with fresh_database(pg, "i") as (conninfo, env):
        run_env = dbt_env(env, tmp)
        with environ(env):
            assert main(["sample", "--out", str(base), "--scale", "small", "--seed", "9"]) == 0
            increment_args = ["--scale", "small", "--seed", "9", "--increment"]
            assert main(["sample", "--out", str(extra), *increment_args]) == 0
            assert main(["load", str(base)]) == 0
            first = run_dbt(["build"], run_env)
            assert first.returncode == 0, first.stdout[-3000:]
            before = dict(rows(conninfo, "select delivery_key, xmin::text from marts.deliveries"))
            assert main(["load", str(extra)]) == 0
        second = run_dbt(["build"], run_env)
        expected = json.loads((extra / "expected-increment.json").read_text(encoding="utf-8"))
        yield {
            "conninfo": conninfo,
            "env": run_env,
            "pg_env": env,
            "expected": expected,
            "before": before,
            "build": second,
            "dir": extra,
        }


def test_incremental_build_passes(increment):
    build = increment["build"]
    assert build.returncode == 0, build.stdout[-5000:]
    assert "ERROR=0" in build.stdout
    # the marts ran as incremental models, not rebuilt
    assert "incremental model marts.deliveries" in build.stdout


def test_increment_figures_equal_its_ground_truth(increment):
    conninfo, want = increment["conninfo"], increment["expected"]["outcomes"]["deliveries"]
    assert rows(conninfo, "select count(*) from marts.deliveries") == [(want["count"],)]
    assert rows(conninfo, "select count(*) from marts.delivery_items") == [(want["items"],)]
    got = dict(rows(conninfo, "select source_system, count(*) from marts.deliveries group by 1"))
    assert got == {k: v for k, v in want["by_source_system"].items() if v}
    got = dict(rows(conninfo, "select reason, count(*) from marts.delivery_quarantine group by 1"))
    assert got == want["quarantine"]


def test_luckygas_verify_accepts_the_increment_truth(increment):
    """Every count, reconciliation and defect outcome of expected-increment.json."""
    with environ(increment["pg_env"]):
        assert main(["verify", str(increment["dir"] / "expected-increment.json")]) == 0


def test_days_of_the_base_history_gain_their_items(increment):
    """A transaction row of a day the base 5-column history has: one delivery, the new row
    primary (it has the items), the base row and the app twin merged into it."""
    conninfo, expected = increment["conninfo"], increment["expected"]
    groups = [g for g in expected["defects"] if g["kind"] == "history_day_gained_items"]
    assert groups and sum(len(g["instances"]) for g in groups) >= 3
    bridge = {
        (file, sheet, row): (role, rule, pfile, psheet, prow)
        for file, sheet, row, role, rule, pfile, psheet, prow in rows(
            conninfo,
            "select source_file, source_sheet, source_row, source_role, merge_rule,"
            " primary_source_file, primary_source_sheet, primary_source_row"
            " from marts.delivery_sources",
        )
    }
    for g in groups:
        for inst in g["instances"]:
            into = inst["merged_into"]
            assert bridge[(g["file"], g["sheet"], inst["row"])] == (
                "merged", "same_client_day", g["merged_into_file"], into["sheet"], into["row"],
            )  # fmt: skip
            assert bridge[(g["merged_into_file"], into["sheet"], into["row"])][0] == "primary"
    dups = [g for g in expected["defects"] if g["kind"] == "exact_duplicate"]
    for g in dups:
        for inst in g["instances"]:
            assert bridge[(g["file"], g["sheet"], inst["row"])][:2] == ("merged", "exact_duplicate")


def test_only_the_days_the_increment_touches_are_rewritten(increment):
    conninfo, before = increment["conninfo"], increment["before"]
    touched = set(
        rows(
            conninfo,
            "select distinct client_code, delivery_date from intermediate.int_delivery_rows_classified"
            f" where source_file = '{INCREMENT}' and delivery_key is not null",
        )
    )
    assert touched
    after = rows(
        conninfo,
        "select delivery_key, xmin::text, client_code, delivery_date from marts.deliveries",
    )
    untouched = [(key, xmin) for key, xmin, code, day in after if (code, day) not in touched]
    assert len(untouched) > 0.9 * len(before)
    assert all(before.get(key) == xmin for key, xmin in untouched)
    rewritten = [(key, xmin) for key, xmin, code, day in after if (code, day) in touched]
    assert rewritten and all(before.get(key) != xmin for key, xmin in rewritten)


def test_full_refresh_gives_exactly_the_same_rows(increment):
    conninfo, env = increment["conninfo"], increment["env"]
    incremental = snapshot(conninfo)
    refreshed = run_dbt(["build", "--full-refresh"], env)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert "ERROR=0" in refreshed.stdout
    assert snapshot(conninfo) == incremental
    assert all(incremental[t] for t in MARTS)


def test_reloaded_source_whose_rows_are_now_quarantined_or_moved(increment, tmp_path):
    """The daily file sent again with some dates now unreadable: those client-days have no
    delivery any more. The incremental build must drop their old deliveries (the
    reconciliation passes) and equal a full refresh."""
    conninfo, env = increment["conninfo"], increment["env"]
    changed = tmp_path / "reexport"
    changed.mkdir()
    book = openpyxl.load_workbook(increment["dir"] / INCREMENT)
    sheet = book.worksheets[0]
    for r in range(2, sheet.max_row + 1):  # the new deliveries of June (交易日期)
        value = sheet.cell(r, 3).value
        if isinstance(value, (int, float)) and value >= 1140601:
            sheet.cell(r, 3).value = "壞日期"
    book.save(changed / INCREMENT)
    days_before = set(
        rows(conninfo, "select distinct client_code, delivery_date::text from marts.deliveries")
    )
    with environ(increment["pg_env"]):
        assert main(["load", str(changed)]) == 0
    build = run_dbt(["build"], env)
    assert build.returncode == 0, build.stdout[-5000:]
    assert "incremental model marts.deliveries" in build.stdout
    days_after = set(
        rows(conninfo, "select distinct client_code, delivery_date::text from marts.deliveries")
    )
    assert days_before - days_after, "the change should leave some client-day empty"
    incremental = snapshot(conninfo)
    refreshed = run_dbt(["build", "--full-refresh"], env)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert snapshot(conninfo) == incremental
