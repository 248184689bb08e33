"""`dbt build` in each phase of the migration, and before any load; dbt's own unit tests.

The migration goes in phases: (a) the client workbook alone, (b) the client workbook and the
app database, (c) everything (today's `luckygas load` of the whole sample). A model whose
source is not loaded yet builds empty, with one line in dbt's log (macro source_or_empty:
"... not loaded yet: built empty"), and every test passes on it (0 = 0); an entity none of
whose sources is loaded is not measured (validation.migration_metrics.sources_loaded 0) and
so no no-go. With no load at all, `dbt build` stops at once with one hint (the on-run-start
hook, macro require_load); seeds, their tests and the unit tests need no load. The unit
tests of models/_unit_tests.yml (the Taiwan-date, cleaning, code, flag and product macros)
pass in every phase, and before any load, and fail when an expectation is wrong. Each phase is built once per module, on its own fresh database of the session's
throwaway server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from loaders.cli import main
from loaders.raw import BOOKKEEPING_DDL
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import DBT, ROOT, dbt_env, environ, fresh_database, run_dbt

CLIENT = "2025-05 commercial client list.xlsx"
APP = "luckygas.db"
HISTORY = "2025-05 commercial deliver history.xlsx"

# What each phase loads: file names of the sample, or None for the whole sample folder.
PHASES = {"a": [CLIENT], "b": [CLIENT, APP], "c": None}

# The staging models that read one source each, and the line each logs when it is empty.
EMPTY_LINES = {
    "stg_legacy_app__clients": "raw table raw.luckygas__clients (source legacy_app.clients)",
    "stg_legacy_app__deliveries": "raw table raw.luckygas__deliveries (source legacy_app.deliveries)",
    "stg_legacy_app__drivers": "raw table raw.luckygas__drivers (source legacy_app.drivers)",
    "stg_legacy_app__vehicles": "raw table raw.luckygas__vehicles (source legacy_app.vehicles)",
}
HISTORY_LINE = (
    "staging.stg_delivery_history__deliveries: raw table raw.<history_daily|history_transaction>"
    " (source delivery_history, found by layout) not loaded yet: built empty"
)

UNIT_TESTS = 4  # models/_unit_tests.yml
NO_LOAD = "no load yet: run `luckygas load PATH` first"


def rows(conninfo: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def one(conninfo: str, sql: str, params=()):
    return rows(conninfo, sql, params)[0][0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("partial-sample") / "sample"
    generate(folder, scale="small", seed=9)
    return folder, json.loads((folder / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def phases(pg, sample, tmp_path_factory):
    """Each phase built on demand, once: {phase: (conninfo, dbt build result, dbt env)}."""
    folder, _ = sample
    built: dict[str, tuple] = {}
    with _Databases(pg) as databases:

        def get(phase: str):
            if phase not in built:
                conninfo, env = databases.new(f"p{phase}")
                files = PHASES[phase]
                paths = [str(folder)] if files is None else [str(folder / f) for f in files]
                with environ(env):
                    assert main(["load", *paths]) == 0
                run_env = dbt_env(env, tmp_path_factory.mktemp(f"dbt-phase-{phase}"))
                built[phase] = (conninfo, run_dbt(["build"], run_env), run_env)
            return built[phase]

        yield get


class _Databases:
    """Fresh databases on the session server, all dropped when the module is done."""

    def __init__(self, pg):
        self.pg = pg
        self.open: list = []

    def __enter__(self):
        return self

    def new(self, prefix: str) -> tuple[str, dict[str, str]]:
        context = fresh_database(self.pg, prefix)
        self.open.append(context)
        return context.__enter__()

    def __exit__(self, *exc):
        for context in reversed(self.open):
            context.__exit__(None, None, None)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-6000:] + result.stderr[-2000:]


def summary(result: subprocess.CompletedProcess) -> dict[str, int]:
    done = re.findall(r"Done\. (PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+)", result.stdout)
    assert done, output(result)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", done[-1])}


# -- no load at all ----------------------------------------------------------------------------


def test_build_before_any_load_stops_at_once_with_one_hint(pg, tmp_path):
    with fresh_database(pg, "pnone") as (conninfo, env):
        run_env = dbt_env(env, tmp_path)
        result = run_dbt(["build"], run_env)
        assert result.returncode != 0, output(result)
        assert NO_LOAD in result.stdout, output(result)
        # one message, not a model failing after another
        assert "Done. PASS" not in result.stdout and "SKIP=" not in result.stdout, output(result)
        assert result.stdout.count("_sources") == 1, output(result)
        # nothing built (dbt creates the schemas before the hook runs; they stay empty)
        assert (
            one(
                conninfo,
                "select count(*) from information_schema.tables"
                " where table_schema in ('staging', 'intermediate', 'marts', 'validation')",
            )
            == 0
        )
        # seeds need no load, nor do the tests of seeds alone and the unit tests (their
        # fixtures stand in for the raw tables)
        seeded = run_dbt(["seed"], run_env)
        assert seeded.returncode == 0, output(seeded)
        assert one(conninfo, "select count(*) from reference.products") > 0
        vectors = run_dbt(["test", "--select", "taiwan_date_vectors"], run_env)
        assert vectors.returncode == 0, output(vectors)
        unit = run_dbt(["test", "--select", "test_type:unit"], run_env)
        assert unit.returncode == 0, output(unit)
        assert len(re.findall(r"PASS \w+::\w+", unit.stdout)) == UNIT_TESTS, output(unit)


def test_loader_fixture_columns_are_the_bookkeeping_tables(pg):
    """macro raw_table_columns lists the loader's tables for unit tests given them before any
    load: the list read from the macro's text is what loaders/raw.py creates."""
    text = (ROOT / "macros" / "raw" / "raw_table_columns.sql").read_text()
    block = text[text.index("set bookkeeping") : text.index("} -%}")]
    listed = {
        table: dict(re.findall(r"'(\w+)': '([^']+)'", body))
        for table, body in re.findall(r"'(\w+)': \{([^}]*)\}", block)
    }
    assert set(listed) == {"loads", "sources", "columns"}
    with (
        fresh_database(pg, "pbook") as (conninfo, _),
        psycopg.connect(conninfo, autocommit=True) as conn,
    ):
        conn.execute(BOOKKEEPING_DDL)
        created = {
            table: dict(
                conn.execute(
                    "select attname, format_type(atttypid, atttypmod) from pg_attribute"
                    " where attrelid = %s::regclass and attnum > 0 and not attisdropped"
                    " order by attnum",
                    (f"raw._{table}",),
                ).fetchall()
            )
            for table in listed
        }
    assert listed == created


# -- the phases --------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_phase_builds_every_model_and_test(phases, phase):
    _, result, _ = phases(phase)
    assert result.returncode == 0, output(result)
    counts = summary(result)
    assert counts["ERROR"] == 0 and counts["SKIP"] == 0, output(result)
    # the unit tests ran in the build, on their own rows, whatever is loaded
    assert len(re.findall(r"PASS \w+::\w+", result.stdout)) == UNIT_TESTS, output(result)


def test_phase_a_client_workbook_alone(phases, sample):
    _, expected = sample
    conninfo, result, _ = phases("a")
    want = expected["outcomes"]["customers"]
    # the master's customers; no app id, no delivery
    assert rows(conninfo, "select count(*), count(app_client_id) from marts.customers") == [
        (want["by_source"]["client_master"], 0)
    ]
    assert one(conninfo, "select count(*) from marts.customer_quarantine") == 0
    for model in ("deliveries", "delivery_items", "delivery_quarantine", "delivery_sources"):
        assert one(conninfo, f"select count(*) from marts.{model}") == 0, model
    # every staging model of a source not loaded is empty and says so in the log
    for model, line in EMPTY_LINES.items():
        assert one(conninfo, f"select count(*) from staging.{model}") == 0, model
        assert f"staging.{model}: {line} not loaded yet: built empty" in result.stdout, model
    assert HISTORY_LINE in result.stdout
    assert "stg_client_workbook__clients: raw table" not in result.stdout
    # reconciliation: the master only, exact; the deliveries not measured (no no-go)
    assert rows(
        conninfo,
        "select entity, source_file, rows_read, difference from validation.source_reconciliation",
    ) == [("customer", CLIENT, want["by_source"]["client_master"], 0)]
    assert rows(
        conninfo,
        "select entity, source_rows, sources_loaded, meets_target from"
        " validation.migration_metrics where level = 'entity' order by entity",
    ) == [("customer", want["by_source"]["client_master"], 1, True), ("delivery", 0, 0, True)]


def test_phase_b_client_workbook_and_app(phases, sample):
    _, expected = sample
    conninfo, result, _ = phases("b")
    want = expected["outcomes"]["customers"]
    by_source = want["by_source"]
    # the customers of the master and the app (the history's own are phase c's)
    assert rows(conninfo, "select count(*), count(app_client_id) from marts.customers") == [
        (by_source["client_master"] + by_source["legacy_app"], want["with_app_id"])
    ]
    got = dict(rows(conninfo, "select reason, count(*) from marts.customer_quarantine group by 1"))
    assert got == want["quarantine"]
    # the app's deliveries build (the app database holds them); no history yet
    app = next(
        r
        for r in expected["outcomes"]["reconciliation"]
        if (r["file"], r["sheet"]) == (APP, "deliveries")
    )
    assert one(conninfo, "select count(*) from staging.stg_legacy_app__deliveries") == app["rows"]
    assert one(conninfo, "select count(*) from staging.stg_delivery_history__deliveries") == 0
    assert HISTORY_LINE in result.stdout
    assert result.stdout.count("not loaded yet: built empty") == 1  # the history's alone
    assert one(conninfo, "select count(*) from marts.deliveries where source_system <> 'app'") == 0
    assert one(conninfo, "select count(*) from marts.deliveries") > 0
    # every source reconciles exactly, and both entities are measured
    assert (
        one(conninfo, "select count(*) from validation.source_reconciliation where difference <> 0")
        == 0
    )
    assert rows(
        conninfo,
        "select entity, sources_loaded from validation.migration_metrics"
        " where level = 'entity' order by entity",
    ) == [("customer", 2), ("delivery", 1)]


def test_phase_c_everything_unchanged(phases, sample):
    _, expected = sample
    conninfo, result, _ = phases("c")
    want = expected["outcomes"]
    assert one(conninfo, "select count(*) from marts.customers") == want["customers"]["count"]
    assert one(conninfo, "select count(*) from marts.deliveries") == want["deliveries"]["count"]
    assert "not loaded yet" not in result.stdout
    assert HISTORY_LINE not in result.stdout
    got = {
        (f, s): (n, final, merged, q)
        for f, s, n, final, merged, q in rows(
            conninfo,
            "select source_file, source_sheet, rows_read, final, merged, quarantined"
            " from validation.source_reconciliation",
        )
    }
    assert got == {
        (r["file"], r["sheet"]): (r["rows"], r["final"], r["merged"], r["quarantined"])
        for r in want["reconciliation"]
    }


# -- dbt's unit tests ----------------------------------------------------------------------------


def test_unit_tests_pass(phases):
    _, _, env = phases("c")
    result = run_dbt(["test", "--select", "test_type:unit"], env)
    assert result.returncode == 0, output(result)
    passed = re.findall(r"PASS (\w+)::(\w+)", result.stdout)
    assert len(passed) >= UNIT_TESTS, output(result)
    assert {model for model, _ in passed} == {
        "stg_legacy_app__deliveries",
        "stg_legacy_app__clients",
        "stg_client_workbook__clients",
    }


def test_a_wrong_expectation_fails_its_unit_test(phases, tmp_path):
    """The project copied with one expected value flipped (2025-05-21 of the compact ROC date
    1140521 expected as 2025-05-22): that unit test fails, the others pass."""
    _, _, env = phases("a")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dbt_project.yml", project)
    for folder in ("models", "macros", "seeds", "tests", "analyses"):
        shutil.copytree(ROOT / folder, project / folder)
    tests = project / "models" / "_unit_tests.yml"
    text = tests.read_text(encoding="utf-8")
    right = "{app_delivery_id: 1, delivery_date: 2025-05-21,"
    assert text.count(right) == 1
    tests.write_text(
        text.replace(right, "{app_delivery_id: 1, delivery_date: 2025-05-22,"), "utf-8"
    )
    run_env = {
        **env,
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(DBT), "test", "--select", "test_type:unit", "--project-dir", str(project)],
        env=run_env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, output(result)
    assert re.findall(r"FAIL \d+ \w+::(\w+)", result.stdout) == [
        "app_delivery_dates_through_the_taiwan_date_macro"
    ], output(result)
    assert len(re.findall(r"PASS \w+::\w+", result.stdout)) == UNIT_TESTS - 1, output(result)
    # a failed comparison (dbt counts it in ERROR=), not a unit test that did not compile
    assert "actual differs from expected" in result.stdout, output(result)
    assert "2025-05-22→2025-05-21" in result.stdout, output(result)
