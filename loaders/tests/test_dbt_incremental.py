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
from loaders.tests.test_dbt_deliveries import DELIVERY_MART_KEYS, primary_keys

INCREMENT = "2025-06 commercial deliver history.xlsx"
MARTS = ("deliveries", "delivery_items", "delivery_sources")
# every table the incremental path writes into, besides the marts: staging and the
# classification are incremental by source and by client-day
INCREMENTAL_TABLES = (
    "staging.stg_delivery_history__deliveries",
    "staging.stg_legacy_app__deliveries",
    "intermediate.int_delivery_items_conformed",
    "intermediate.int_delivery_rows_classified",
    *(f"marts.{table}" for table in MARTS),
    "marts.delivery_quarantine",
)
KEY = "source_file, source_sheet, source_row"


def rows(conninfo: str, sql: str) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def snapshot(conninfo: str) -> dict[str, list[tuple]]:
    """Every row of the three incremental marts, as text, in a stable order."""
    return {
        table: rows(conninfo, f"select t::text from marts.{table} as t order by 1")
        for table in MARTS
    }


def snapshot_all(conninfo: str) -> dict[str, list[tuple]]:
    """Every row of every table the incremental path writes, as text, in a stable order."""
    return {
        table: rows(conninfo, f"select t::text from {table} as t order by 1")
        for table in INCREMENTAL_TABLES
    }


def versions(conninfo: str, table: str) -> dict[tuple, str]:
    """The row version (xmin) of every row of a staging or intermediate table, by its row."""
    return {
        (file, sheet, row): xmin
        for file, sheet, row, xmin in rows(conninfo, f"select {KEY}, xmin::text from {table}")
    }


def build_equals_full_refresh(conninfo: str, env: dict[str, str]) -> dict[str, list[tuple]]:
    """`dbt build` (incremental), then `dbt build --full-refresh`: the same rows, table for
    table. Returns the incremental build's rows."""
    build = run_dbt(["build"], env)
    assert build.returncode == 0, build.stdout[-5000:]
    assert "incremental model intermediate.int_delivery_rows_classified" in build.stdout
    incremental = snapshot_all(conninfo)
    refreshed = run_dbt(["build", "--full-refresh"], env)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert snapshot_all(conninfo) == incremental
    return incremental


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
            staged_before = versions(conninfo, "staging.stg_delivery_history__deliveries")
            app_before = versions(conninfo, "staging.stg_legacy_app__deliveries")
            classified_before = versions(conninfo, "intermediate.int_delivery_rows_classified")
            assert main(["load", str(extra)]) == 0
        # the daily build (selectors.yml), as a daily job runs it
        second = run_dbt(["build", "--selector", "daily"], run_env)
        expected = json.loads((extra / "expected-increment.json").read_text(encoding="utf-8"))
        yield {
            "conninfo": conninfo,
            "env": run_env,
            "pg_env": env,
            "expected": expected,
            "before": before,
            "staged_before": staged_before,
            "app_before": app_before,
            "classified_before": classified_before,
            "build": second,
            "dir": extra,
        }


def test_incremental_build_passes(increment):
    build = increment["build"]
    assert build.returncode == 0, build.stdout[-5000:]
    assert "ERROR=0" in build.stdout
    # the marts ran as incremental models, not rebuilt
    assert "incremental model marts.deliveries" in build.stdout


def test_daily_selector_leaves_out_no_data_test_on_a_model(increment):
    """The daily selector builds every model and runs every data test that reads one (a
    test on a model and a seed included); only the seeds, the tests of seeds alone and the
    unit tests are left out."""
    env = increment["env"]
    listed = {}
    for args in (["ls"], ["ls", "--selector", "daily"]):
        done = run_dbt([*args, "--output", "json", "--output-keys", "unique_id depends_on"], env)
        assert done.returncode == 0, done.stdout[-3000:]
        nodes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        listed[args[-1]] = {n["unique_id"]: n.get("depends_on", {}).get("nodes", []) for n in nodes}
    every, daily = listed["ls"], listed["daily"]
    assert set(daily) <= set(every)
    left_out = set(every) - set(daily)
    kinds = {node.split(".")[0] for node in left_out}
    assert kinds <= {"seed", "unit_test", "test", "source"}, sorted(left_out)
    assert {n for n in left_out if n.startswith("seed.")} == {
        n for n in every if n.startswith("seed.")
    }
    for node in left_out:
        if node.startswith("test."):
            parents = every[node]
            assert parents and all(p.startswith("seed.") for p in parents), (node, parents)
    assert any(n.startswith("test.") for n in left_out)  # the seeds' own tests
    models = {n for n in every if n.startswith("model.")}
    assert models <= set(daily)
    model_tests = {
        n
        for n, parents in every.items()
        if n.startswith("test.") and any(p.startswith("model.") for p in parents)
    }
    assert model_tests <= set(daily)


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


def test_a_new_file_stages_and_classifies_only_its_rows_and_days(increment):
    """Staging is incremental by source: the base history's and the app's rows are not
    rewritten, the new file's are added. The classification is incremental by client-day:
    the rows of the days the new file touches are classified again, every other row is
    left as it was."""
    conninfo = increment["conninfo"]
    staged = versions(conninfo, "staging.stg_delivery_history__deliveries")
    base = increment["staged_before"]
    assert base and all(staged.get(key) == xmin for key, xmin in base.items())
    new = [key for key in staged if key not in base]
    assert new and all(file == INCREMENT for file, _, _ in new)
    app = versions(conninfo, "staging.stg_legacy_app__deliveries")
    assert app == increment["app_before"]

    touched = set(
        rows(
            conninfo,
            "select distinct client_code, delivery_date::text"
            " from intermediate.int_delivery_rows_classified"
            f" where source_file = '{INCREMENT}' and client_code is not null"
            " and delivery_date is not null",
        )
    )
    day_of = {
        (file, sheet, row): (code, day)
        for file, sheet, row, code, day in rows(
            conninfo,
            f"select {KEY}, client_code, delivery_date::text"
            " from intermediate.int_delivery_rows_classified",
        )
    }
    classified = versions(conninfo, "intermediate.int_delivery_rows_classified")
    before = increment["classified_before"]
    kept = [key for key in before if day_of[key] not in touched]
    redone = [key for key in before if day_of[key] in touched]
    assert len(kept) > 0.9 * len(before)
    assert all(classified[key] == before[key] for key in kept)
    assert redone and all(classified[key] != before[key] for key in redone)


def test_full_refresh_gives_exactly_the_same_rows(increment):
    conninfo, env = increment["conninfo"], increment["env"]
    incremental = snapshot(conninfo)
    assert primary_keys(conninfo) == DELIVERY_MART_KEYS  # kept by the incremental runs
    refreshed = run_dbt(["build", "--full-refresh"], env)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert "ERROR=0" in refreshed.stdout
    assert snapshot(conninfo) == incremental
    assert all(incremental[t] for t in MARTS)
    assert primary_keys(conninfo) == DELIVERY_MART_KEYS  # added again after the insert


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


def test_reloaded_history_sheet_whose_rows_moved(increment, tmp_path):
    """The daily file sent again with rows moved: some re-sent rows now name another
    client, some June rows another day. Their old client-days lose them, the new ones gain
    them (merging with what those days hold), in staging, the classification and the marts;
    the incremental build equals a full refresh."""
    conninfo, env = increment["conninfo"], increment["env"]
    book = openpyxl.load_workbook(increment["dir"] / INCREMENT)
    sheet = book.worksheets[0]
    codes = [sheet.cell(r, 1).value for r in range(2, sheet.max_row + 1)]
    moved_client, moved_day = [], []
    for r in range(2, sheet.max_row + 1):
        date = sheet.cell(r, 3).value
        if not isinstance(date, (int, float)):
            continue
        if date < 1140601 and len(moved_client) < 3:
            other = next(c for c in codes if c != sheet.cell(r, 1).value and c is not None)
            moved_client.append((r, sheet.cell(r, 1).value, other, date))
            sheet.cell(r, 1).value = other
        elif date >= 1140601 and len(moved_day) < 3:
            moved_day.append((r, sheet.cell(r, 1).value, date))
            sheet.cell(r, 3).value = date + 1 if date % 100 < 28 else date - 1
    assert moved_client and moved_day
    changed = tmp_path / "moved"
    changed.mkdir()
    book.save(changed / INCREMENT)
    with environ(increment["pg_env"]):
        assert main(["load", str(changed)]) == 0
    load_id = rows(conninfo, "select max(load_id) from raw._loads")[0][0]
    after = build_equals_full_refresh(conninfo, env)
    # staging holds the reloaded sheet once, of its new load only
    assert rows(
        conninfo,
        "select distinct load_id from staging.stg_delivery_history__deliveries"
        f" where source_file = '{INCREMENT}'",
    ) == [(load_id,)]
    sheet_rows = rows(
        conninfo,
        f"select count(*) from raw._sources where load_id = {load_id}",
    )
    assert sheet_rows == [(1,)]
    # each moved row is classified under its new client or day
    for r, _, other, _ in moved_client:
        got = rows(
            conninfo,
            "select client_code from intermediate.int_delivery_rows_classified"
            f" where source_file = '{INCREMENT}' and source_row = {r}",
        )
        assert got == [(f"{other:07d}" if isinstance(other, int) else other,)]
    assert after["marts.delivery_sources"]


def test_raw_versions_are_scanned_once_per_invocation(increment):
    """The delivery raw tables' versions (macro raw_delivery_versions), asked for twice in
    one dbt invocation, scan the app's deliveries once: the second call reads what the
    first kept for that invocation. The next invocation scans again. Both calls give what
    the table holds (load id, rows, xmin range)."""
    conninfo, env = increment["conninfo"], increment["env"]
    app = rows(
        conninfo,
        "select table_name from raw._sources where outcome = 'loaded'"
        " and source_file = 'luckygas.db' and sheet = 'deliveries'"
        " order by load_id desc limit 1",
    )[0][0]

    def scans() -> int:
        return rows(
            conninfo,
            "select seq_scan from pg_stat_user_tables"
            f" where schemaname = 'raw' and relname = '{app}'",
        )[0][0]

    truth = list(
        rows(
            conninfo,
            "select max(_load_id), count(*), min(xmin::text::bigint), max(xmin::text::bigint)"
            f' from raw."{app}"',
        )[0]
    )
    inline = (  # the macro reads the seed raw_layouts: dbt wants the ref stated
        "-- depends_on: {{ ref('raw_layouts') }}\n"
        "versions {{ tojson(raw_delivery_versions()) }} | {{ tojson(raw_delivery_versions()) }}"
    )
    for _ in range(2):
        before = scans()
        compiled = run_dbt(["compile", "--inline", inline], env)
        assert compiled.returncode == 0, compiled.stdout[-3000:]
        assert scans() - before == 1
        line = next(x for x in compiled.stdout.splitlines() if x.startswith("versions "))
        first, second = (json.loads(part) for part in line[len("versions ") :].split(" | "))
        assert first == second
        assert first[app] == truth


def test_raw_rows_changed_in_place_are_built_again(increment):
    """Rows of a raw table changed by hand, keeping its load id (an UPDATE moving a history
    row to another client, one moving an app delivery to another day): the
    incremental build notices (the tables' row counts and xmin ranges against the state each
    model recorded) and builds the delivery path again, equal to a full refresh; the build
    after that, with nothing changed, rewrites no staged row."""
    conninfo, env = increment["conninfo"], increment["env"]
    history, app = (
        rows(
            conninfo,
            "select table_name from raw._sources where outcome = 'loaded'"
            f" and source_file {op} order by load_id desc limit 1",
        )[0][0]
        for op in ("like '%deliver history%' and source_file <> '" + INCREMENT + "'",
                   "= 'luckygas.db' and sheet = 'deliveries'")
    )  # fmt: skip
    with psycopg.connect(conninfo, autocommit=True) as conn:
        moved, code = conn.execute(
            f'select _source_row, "客戶" from raw."{history}" where "客戶" is not null'
            " order by _source_row limit 1"
        ).fetchone()
        other = conn.execute(
            f'select "客戶" from raw."{history}" where "客戶" is not null and "客戶" <> %s'
            " order by _source_row limit 1",
            (code,),
        ).fetchone()[0]
        conn.execute(
            f'update raw."{history}" set "客戶" = %s where _source_row = %s', (other, moved)
        )
        conn.execute(
            f'update raw."{app}" set scheduled_date = (select min(scheduled_date)'
            f' from raw."{app}") where _source_row = (select max(_source_row) from raw."{app}")'
        )
    build = run_dbt(["build"], env)
    assert build.returncode == 0, build.stdout[-5000:]
    assert "was changed in place" in build.stdout
    incremental = snapshot_all(conninfo)
    assert rows(
        conninfo,
        "select client_code_raw from staging.stg_delivery_history__deliveries"
        f" where source_row = {moved} and source_file = ("
        f'select distinct _source_file from raw."{history}")',
    ) == [(other,)]
    refreshed = run_dbt(["build", "--full-refresh"], env)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert snapshot_all(conninfo) == incremental
    staged = versions(conninfo, "staging.stg_delivery_history__deliveries")
    again = run_dbt(["build"], env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "was changed in place" not in again.stdout
    assert versions(conninfo, "staging.stg_delivery_history__deliveries") == staged


def test_source_removed(increment):
    """A history source no longer loaded (its raw table dropped and its load records
    gone): its rows leave staging, the classification and the marts, the days only it
    held lose their deliveries, and the incremental build equals a full refresh."""
    conninfo, env = increment["conninfo"], increment["env"]
    (table,) = rows(
        conninfo,
        "select distinct table_name from raw._sources"
        f" where source_file = '{INCREMENT}' and outcome = 'loaded'",
    )[0:1]
    days_before = set(
        rows(conninfo, "select distinct client_code, delivery_date::text from marts.deliveries")
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'drop table raw."{table[0]}"')
        conn.execute("delete from raw._columns where table_name = %s", table)
        conn.execute("delete from raw._sources where table_name = %s", table)
    after = build_equals_full_refresh(conninfo, env)
    for name in INCREMENTAL_TABLES:
        assert not rows(
            conninfo, f"select 1 from {name} where source_file = '{INCREMENT}' limit 1"
        ), name
    days_after = set(
        rows(conninfo, "select distinct client_code, delivery_date::text from marts.deliveries")
    )
    assert days_before - days_after, "the June days only the removed file held are gone"
    assert after["marts.deliveries"]
