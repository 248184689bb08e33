"""`luckygas migrate` and `luckygas rollback` on the small sample, in a database of their own.

The tests run in file order on one database (module fixture): a first migration into an
empty database, a dry run, a no-go, then a second migration with a changed file and the
rollback of it, which must bring raw and marts back row for row, and a migration stopped
at a no-go by the orphan-rate rule (R03), which must leave every table as it was.

The small sample's defects are dense on purpose: its delivery success rate is 99.58 %
(5,267 of 5,289 rows final or merged; 22 quarantined for reasons that count), below the
plan's 99.9 % (the full sample: 99.977 %). The migrations that must go through therefore
accept 99.5 % with `--success-target` (ACCEPT); test_success_rate_below_target_is_a_no_go
checks the plan's target itself.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections import Counter
from decimal import Decimal

import openpyxl
import psycopg
import pytest

from loaders.cli import main
from loaders.cutover.checks import percent
from loaders.hashing import sha256_of
from loaders.sample.generate import generate
from loaders.sample.truth import SET_ASIDE_REASONS
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt
from loaders.tests.test_migration_metrics import expected_metrics

# The small sample's delivery rate (99.58 %) is below the plan's 99.9 %: see the docstring.
ACCEPT = ["--success-target", "delivery=0.995"]


def rows(conninfo: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def execute(conninfo: str, statement: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(statement)


def tables(conninfo: str, schema: str) -> list[str]:
    return [
        r[0]
        for r in rows(
            conninfo,
            "select tablename from pg_tables where schemaname = %s order by 1",
            (schema,),
        )
    ]


def marts_state(conninfo: str) -> dict[str, list[str]]:
    """Every marts table, row for row, as text."""
    return {
        t: [r[0] for r in rows(conninfo, f'select t::text from marts."{t}" t order by 1')]
        for t in tables(conninfo, "marts")
    }


def raw_counts(conninfo: str) -> dict[str, int]:
    return {
        t: rows(conninfo, f'select count(*) from raw."{t}"')[0][0] for t in tables(conninfo, "raw")
    }


def raw_state(conninfo: str) -> dict[str, list[str]]:
    """Every raw table, row for row, as text."""
    return {
        t: [r[0] for r in rows(conninfo, f'select t::text from raw."{t}" t order by 1')]
        for t in tables(conninfo, "raw")
    }


def migrations(conninfo: str) -> list[tuple]:
    return rows(
        conninfo,
        "select migration_id, outcome, files, backup_path, counts_before, counts_after, message"
        " from validation.migrations order by migration_id",
    )


@pytest.fixture(scope="module")
def db(pg, tmp_path_factory):
    """(conninfo, env, sample dir, backup dir, tmp) after a first `luckygas migrate`."""
    tmp = tmp_path_factory.mktemp("migrate")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=9)
    backups = tmp / "backups"
    with fresh_database(pg, "m") as (conninfo, env):
        run_env = dbt_env(env, tmp)
        with environ(run_env):
            code = main(["migrate", *ACCEPT, "--backup-dir", str(backups), str(sample)])
        assert code == 0
        yield conninfo, run_env, sample, backups, tmp


def test_first_migration_succeeds_and_is_recorded(db):
    conninfo, _, sample, backups, _ = db
    (mid, outcome, files, backup_path, before, after, message) = migrations(conninfo)[-1]
    assert outcome == "succeeded", message
    assert backup_path is None and before == {}  # a brand-new database: nothing to back up
    assert rows(conninfo, "select backup_schemas from validation.migrations")[0][0] == []
    want = {
        str(p.resolve()): (sha256_of(p), p.stat().st_size)
        for p in sample.iterdir()
        if p.suffix in {".xlsx", ".db"} and not p.name.startswith("~$")
    }
    assert {f["path"]: (f["sha256"], f["bytes"]) for f in files} == want
    marts = {k.split(".", 1)[1]: v for k, v in after.items() if k.startswith("marts.")}
    actual = {t: len(v) for t, v in marts_state(conninfo).items()}
    assert marts == actual and actual["deliveries"] > 0
    assert not list(backups.glob("*.dump"))


def test_dry_run_writes_nothing(db, capsys):
    conninfo, env, sample, backups, tmp = db
    changed = tmp / "dry"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute("update deliveries set notes = 'dry run' where id % 5 = 0")
    loads = rows(conninfo, "select count(*) from raw._loads")
    history = migrations(conninfo)
    before = marts_state(conninfo)
    dumps = sorted(backups.glob("*"))
    with environ(env):
        assert main(["migrate", "--dry-run", "--backup-dir", str(backups), str(changed)]) == 0
    assert "plan (dry run" in capsys.readouterr().err
    assert rows(conninfo, "select count(*) from raw._loads") == loads
    assert migrations(conninfo) == history
    assert sorted(backups.glob("*")) == dumps
    assert marts_state(conninfo) == before


def test_missing_file_is_a_no_go(db, capsys):
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_counts(conninfo)
    missing = tmp / "nowhere" / "luckygas.db"
    capsys.readouterr()
    with environ(env):
        code = main(["migrate", "--backup-dir", str(backups), str(sample), str(missing)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("luckygas: no-go") and str(missing) in err[-1]
    assert not any(line.startswith("luckygas:") for line in err[:-1])
    assert marts_state(conninfo) == before
    assert raw_counts(conninfo) == raw_before
    mid, outcome, _, backup_path, *_, message = migrations(conninfo)[-1]
    assert outcome == "no-go" and backup_path is None and str(missing) in message


def consistent_state(conninfo: str) -> str:
    """What a reader sees of the final tables, in one snapshot: a digest of customers,
    deliveries, delivery_items and delivery_sources together."""
    tables = ("customers", "deliveries", "delivery_items", "delivery_sources")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            parts = [
                conn.execute(
                    f"select md5(coalesce(string_agg(t::text, ',' order by t::text), ''))"
                    f" from marts.{t} t"
                ).fetchone()[0]
                for t in tables
            ]
    return "|".join(parts)


def test_changed_file_migrates_then_rollback_restores_row_for_row(db):
    """A changed app database (other drivers, cancelled deliveries) migrates while a reader
    polls the final tables: it sees the old state or the new one, never a mix; Mary's own
    view on deliveries survives the swap; `rollback` brings raw and marts back row for row."""
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_counts(conninfo)
    state_before = consistent_state(conninfo)
    reconciliation = "select t::text from validation.source_reconciliation t order by 1"
    reconciliation_before = rows(conninfo, reconciliation)
    classified = (
        "select md5(string_agg(t::text, ',' order by t::text))"
        " from intermediate.int_delivery_rows_classified t"
    )
    classified_before = rows(conninfo, classified)
    execute(conninfo, "create schema if not exists mary")
    execute(
        conninfo,
        "create or replace view mary.big_days as select client_code, delivery_date"
        " from marts.deliveries where source_system = 'history+app'",
    )
    changed = tmp / "changed"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute(
            "update deliveries set driver_id = (select max(id) from drivers) where id % 10 = 0"
        )
        # rows of deliveries already migrated that now must be quarantined: a full build in
        # the shadow schemas drops their deliveries, and the reconciliation holds
        lite.execute(
            "update deliveries set status = 'CANCELLED' where status = 'COMPLETED'"
            " and notes is not 'Imported from historical data'"
        )  # app-only deliveries: a history row's twin stays a delivery whatever its status

    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(consistent_state(conninfo))
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        with environ(env):
            assert main(["migrate", *ACCEPT, "--backup-dir", str(backups), str(changed)]) == 0
    finally:
        stop.set()
        thread.join(timeout=60)
    state_after = consistent_state(conninfo)
    assert not errors, errors
    assert state_after != state_before
    assert set(seen) <= {state_before, state_after}, "a reader saw a half-built state"
    assert seen.count(state_before) > 0
    assert not [r for r in rows(conninfo, "select nspname from pg_namespace") if "__" in r[0]]

    mid, outcome, files, backup_path, counts_before, counts_after, _ = migrations(conninfo)[-1]
    assert outcome == "succeeded"
    assert (backups / backup_path.rsplit("/", 1)[-1]).is_file()
    assert {k: v for k, v in counts_before.items() if k.startswith("marts.")} == {
        f"marts.{t}": len(v) for t, v in before.items()
    }
    after = marts_state(conninfo)
    assert after != before  # the change reached the marts
    assert len(after["delivery_quarantine"]) > len(before["delivery_quarantine"])
    assert rows(conninfo, classified) != classified_before
    assert {k.split(".", 1)[1]: v for k, v in counts_after.items() if k.startswith("marts.")} == {
        t: len(v) for t, v in after.items()
    }
    # Mary's view was recreated on the new deliveries
    assert rows(conninfo, "select count(*) from mary.big_days") == rows(
        conninfo, "select count(*) from marts.deliveries where source_system = 'history+app'"
    )

    with environ(env):
        assert main(["rollback"]) == 0
    assert marts_state(conninfo) == before
    assert raw_counts(conninfo) == raw_before
    assert consistent_state(conninfo) == state_before
    # the validation history is kept, and the rollback is recorded
    assert migrations(conninfo)[-1][:2] == (mid, "succeeded")
    assert rows(conninfo, "select migration_id, outcome from validation.rollbacks") == [
        (mid, "rolled back")
    ]
    # staging and intermediate agree with raw again, and the views of other schemas are back:
    # the reconciliation Mary reads is the one before the migration, row for row
    assert rows(conninfo, classified) == classified_before
    assert rows(conninfo, reconciliation) == reconciliation_before
    assert rows(conninfo, "select count(*) > 0 from staging.stg_legacy_app__clients") == [(True,)]
    assert rows(conninfo, "select count(*) > 0 from mary.big_days") == [(True,)]


def test_orphan_rate_above_threshold_is_a_no_go(db, capsys):
    """An app database whose deliveries name clients the client master lacks (5 % of rows,
    above max_orphan_rate): rule R03 fails in the shadow build, the migration stops at a
    no-go, the load is undone and every table is as before, row for row; Mary finds the
    source in validation.exceptions."""
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_state(conninfo)
    state_before = consistent_state(conninfo)
    changed = tmp / "orphans"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute("update deliveries set client_id = 990000 + id where id % 20 = 0")
    capsys.readouterr()
    with environ(env):
        argv = ["migrate", "--verify-backup", "list", "--backup-dir", str(backups), str(changed)]
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("backup verified: pg_restore --list:" in line for line in err)
    last = err[-1]
    assert last.startswith("luckygas: migration") and "no-go at after-checks" in last
    assert "delivery_orphan_rate" in last and "load was undone" in last
    mid, outcome, *_, message = migrations(conninfo)[-1]
    assert outcome == "no-go" and "delivery_orphan_rate" in message
    assert marts_state(conninfo) == before
    assert raw_state(conninfo) == raw_before
    assert consistent_state(conninfo) == state_before
    assert not [r for r in rows(conninfo, "select nspname from pg_namespace") if "__" in r[0]]
    assert rows(conninfo, "select count(*) > 0 from staging.stg_legacy_app__clients") == [(True,)]
    # the failing rule's row names the source and its rate
    found = rows(
        conninfo,
        "select source_file, source_sheet, value::numeric from validation.exceptions"
        " where code = 'R03' and run_id = (select run_id from validation.runs"
        " order by finished_at desc limit 1)",
    )
    assert [(f, s) for f, s, _ in found] == [("luckygas.db", "deliveries")]
    assert found[0][2] > 0.01


def test_a_sheet_of_an_unknown_layout_is_a_no_go_naming_it(db, capsys):
    """The history workbook gains a sheet no layout of the catalogue describes: rule R04
    fails in the shadow build, and the no-go names the file, the sheet, its rows and its
    headers; every table is as before."""
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_state(conninfo)
    changed = tmp / "unknown-sheet"
    shutil.copytree(sample, changed)
    history = changed / "2025-05 commercial deliver history.xlsx"
    book = openpyxl.load_workbook(history)
    extra = book.create_sheet("備註")
    extra.append(["日期", "說明"])
    for k in range(4):
        extra.append([f"2025/05/{k + 1:02d}", f"補登第{k + 1}筆"])
    book.save(history)
    capsys.readouterr()
    with environ(env):
        argv = ["migrate", "--verify-backup", "list", "--backup-dir", str(backups), str(changed)]
        assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no-go at after-checks" in last and "load was undone" in last
    assert (
        "sheet '備註' of 2025-05 commercial deliver history.xlsx (4 rows; headers: 日期 | 說明)"
        in last
    )
    assert "raw_tables_accounted" in last
    assert migrations(conninfo)[-1][1] == "no-go"
    assert marts_state(conninfo) == before
    assert raw_state(conninfo) == raw_before


def test_success_rate_below_target_is_a_no_go(db, capsys):
    """At the plan's targets the small sample's deliveries are below 99.9 %: a no-go that
    names the entity, its rate, the target and the two largest quarantine reasons that count
    against it; nothing changes. The same migration with `--success-target delivery=0.995`
    goes through, and the lower target is on record: in validation.migrations' arguments and
    message, and in validation.migration_metrics."""
    conninfo, env, sample, backups, _ = db
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    want = expected_metrics(expected)
    rate = {e: want[(e, "entity", None, None)][5] for e in ("customer", "delivery")}
    assert Decimal("0.995") <= rate["delivery"] < Decimal("0.999") and rate["customer"] == 1
    delivery = percent(rate["delivery"], 3)  # 99.584 %
    counting = Counter(
        {
            r: n
            for r, n in expected["outcomes"]["deliveries"]["quarantine"].items()
            if r not in SET_ASIDE_REASONS
        }
    )
    top = sorted(counting.items(), key=lambda rn: (-rn[1], rn[0]))[:2]
    before = marts_state(conninfo)
    raw_before = raw_state(conninfo)
    argv = ["migrate", "--verify-backup", "list", "--backup-dir", str(backups), str(sample)]
    capsys.readouterr()
    with environ(env):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    [shown] = [line for line in err if "success rates:" in line]
    assert "customer 100.000 % of " in shown and f"delivery {delivery} of " in shown
    last = err[-1]
    assert "no-go at after-checks" in last and "load was undone" in last
    assert f"delivery: success rate {delivery} (" in last
    assert "is below its target 99.9 %" in last and "customer:" not in last
    assert "largest quarantine reasons: " + ", ".join(f"{r} {n}" for r, n in top) in last
    mid, outcome, *_, message = migrations(conninfo)[-1]
    assert outcome == "no-go" and f"delivery: success rate {delivery}" in message
    assert marts_state(conninfo) == before
    assert raw_state(conninfo) == raw_before

    with environ(env):
        assert main([*argv[:1], "--success-target", "delivery=0.995", *argv[1:]]) == 0
    [(arguments, outcome, message)] = rows(
        conninfo,
        "select arguments, outcome, message from validation.migrations"
        " where migration_id > %s order by migration_id",
        (mid,),
    )
    assert outcome == "succeeded"
    assert arguments[-2:] == ["--success-target", "delivery=0.995"]
    assert message == (
        f"delivery {delivery} accepted with --success-target"
        " delivery=0.995 (the plan's target: 99.9 %)"
    )
    assert rows(
        conninfo,
        "select entity, target, meets_target from validation.migration_metrics"
        " where level = 'entity' order by entity",
    ) == [("customer", Decimal("1.0"), True), ("delivery", Decimal("0.995"), True)]
    assert marts_state(conninfo) == before  # the same files: the same final tables


def test_analysts_dbt_build_goes_on_after_the_cut_over(db):
    """After migrations, swaps and a rollback, a plain `dbt build` (incremental, in the live
    schemas) passes and changes no final row."""
    conninfo, env, *_ = db
    before = marts_state(conninfo)
    build = run_dbt(["build"], env)
    assert build.returncode == 0, build.stdout[-3000:]
    assert "incremental model marts.deliveries" in build.stdout
    assert marts_state(conninfo) == before


def test_a_second_migrate_or_rollback_stops_while_one_runs(db, capsys):
    """One migrate or rollback at a time per database (an advisory lock): a second one stops
    with one message and records nothing."""
    from loaders.cutover.records import LOCK_KEY

    conninfo, env, sample, backups, _ = db
    history = migrations(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        capsys.readouterr()
        with environ(env):
            assert main(["migrate", "--backup-dir", str(backups), str(sample)]) == 2
            assert main(["rollback"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
    stops = [line for line in err if line.startswith("luckygas:")]
    assert len(stops) == 2 and all(
        line.startswith("luckygas: a session (unnamed, connected since ")
        and line.endswith(
            ") is writing to this database; wait for it to finish, then run this again"
        )
        for line in stops
    ), stops
    assert migrations(conninfo) == history


def test_rollback_without_a_migration_is_one_clear_error(pg, tmp_path, capsys):
    with fresh_database(pg, "r") as (_, env), environ(dbt_env(env, tmp_path)):
        assert main(["rollback"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "luckygas: no migration recorded yet (validation.migrations is missing)"


def test_table_checksums_see_every_value_and_no_order(db):
    """The rollback's verification: a checksum changes with any value, not with row order."""
    from loaders.cutover.catalog import table_checksums

    conninfo, *_ = db
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("create schema scratch")
        try:
            conn.execute("create table scratch.a (k int, v text)")
            conn.execute("create table scratch.b (k int, v text)")
            conn.execute("create table scratch.c (k int, v text)")
            conn.execute("insert into scratch.a values (1, 'x'), (2, 'y'), (3, null)")
            conn.execute("insert into scratch.b values (3, null), (1, 'x'), (2, 'y')")
            conn.execute("insert into scratch.c values (1, 'x'), (2, 'Y'), (3, null)")
            sums = table_checksums(conn, ["scratch"])
            assert sums["scratch.a"] == sums["scratch.b"] != sums["scratch.c"]
            conn.execute("truncate scratch.a")
            assert table_checksums(conn, ["scratch"])["scratch.a"] == ""
        finally:
            conn.execute("drop schema scratch cascade")


def test_run_results_checks(tmp_path):
    """After-checks on run_results.json: reconciliation must pass, error tests must not fail,
    warn tests may."""
    import json
    import time

    from loaders.cutover.dbt import check_run_results

    def write(results, severities):
        (tmp_path / "run_results.json").write_text(json.dumps({"results": results}))
        nodes = {uid: {"config": {"severity": sev}} for uid, sev in severities.items()}
        (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))

    ok = [
        {"unique_id": "test.luckygas.customers_reconcile", "status": "pass"},
        {"unique_id": "test.luckygas.deliveries_reconcile", "status": "pass"},
        {"unique_id": "test.luckygas.rule_c05.abc", "status": "warn"},
    ]
    since = time.time() - 5
    write(ok, {"test.luckygas.rule_c05.abc": "warn"})
    assert check_run_results(tmp_path, since) == []
    write(
        [*ok, {"unique_id": "test.luckygas.rule_c01.x", "status": "fail"}],
        {"test.luckygas.rule_c01.x": "ERROR"},
    )
    assert check_run_results(tmp_path, since) == ["test rule_c01.x: fail"]
    write([ok[0], {**ok[1], "status": "skipped"}], {})
    assert check_run_results(tmp_path, since) == [
        "reconciliation test deliveries_reconcile: skipped (None rows)"
    ]
    write(ok[:1], {})
    assert check_run_results(tmp_path, since) == [
        "reconciliation test deliveries_reconcile did not run"
    ]
    assert "not written by this build" in check_run_results(tmp_path, time.time() + 60)[0]
