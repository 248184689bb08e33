"""`luckygas migrate` and `luckygas rollback` on the small sample, in a database of their own.

The tests run in file order on one database (module fixture): a first migration into an
empty database, a dry run, a no-go, then a second migration with a changed file and the
rollback of it, which must bring raw and marts back row for row.
"""

from __future__ import annotations

import shutil
import sqlite3

import psycopg
import pytest

from loaders.cli import main
from loaders.hashing import sha256_of
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database


def rows(conninfo: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


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
            code = main(["migrate", "--backup-dir", str(backups), str(sample)])
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


def test_changed_file_migrates_then_rollback_restores_row_for_row(db):
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_counts(conninfo)
    changed = tmp / "changed"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute(
            "update deliveries set driver_id = (select max(id) from drivers) where id % 10 = 0"
        )
    with environ(env):
        assert main(["migrate", "--backup-dir", str(backups), str(changed)]) == 0
    mid, outcome, files, backup_path, counts_before, counts_after, _ = migrations(conninfo)[-1]
    assert outcome == "succeeded"
    assert (backups / backup_path.rsplit("/", 1)[-1]).is_file()
    assert {k: v for k, v in counts_before.items() if k.startswith("marts.")} == {
        f"marts.{t}": len(v) for t, v in before.items()
    }
    after = marts_state(conninfo)
    assert after != before  # the change reached the marts
    assert {k.split(".", 1)[1]: v for k, v in counts_after.items() if k.startswith("marts.")} == {
        t: len(v) for t, v in after.items()
    }

    with environ(env):
        assert main(["rollback"]) == 0
    assert marts_state(conninfo) == before
    assert raw_counts(conninfo) == raw_before
    # the validation history is kept, and the rollback is recorded
    assert migrations(conninfo)[-1][:2] == (mid, "succeeded")
    assert rows(conninfo, "select migration_id, outcome from validation.rollbacks") == [
        (mid, "rolled back")
    ]
    # the views other schemas built on raw and marts are back
    assert rows(conninfo, "select count(*) > 0 from validation.source_reconciliation") == [(True,)]
    assert rows(conninfo, "select count(*) > 0 from staging.stg_legacy_app__clients") == [(True,)]


def test_failed_after_check_is_recorded_and_rolled_back(db, capsys):
    """Cancelling app deliveries in a reloaded file: the incremental marts keep the stale
    deliveries (README: removed rows need --full-refresh), the reconciliation catches it,
    the migration is 'failed', and `rollback --to` undoes it."""
    conninfo, env, sample, backups, tmp = db
    before = marts_state(conninfo)
    raw_before = raw_counts(conninfo)
    changed = tmp / "cancelled"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute("update deliveries set status = 'cancelled' where id % 10 = 0")
    capsys.readouterr()
    with environ(env):
        assert main(["migrate", "--backup-dir", str(backups), str(changed)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("luckygas: migration") and "rollback --to" in last
    mid, outcome, *_, message = migrations(conninfo)[-1]
    assert outcome == "failed" and "dbt build" in message
    with environ(env):
        assert main(["rollback", "--to", str(mid)]) == 0
    assert marts_state(conninfo) == before
    assert raw_counts(conninfo) == raw_before


def test_run_results_checks(tmp_path):
    """After-checks on run_results.json: reconciliation must pass, error tests must not fail,
    warn tests may."""
    import json
    import time

    from loaders.migrate import check_run_results

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
