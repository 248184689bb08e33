"""A `luckygas migrate` killed outright (SIGKILL, no undo) is recovered by the next command.

In file order on one database (module fixture, after a first migration of the small sample):
a second migration of a changed app database is killed with SIGKILL while its dbt build
runs. Its dbt runs in its process (dbtRunner), so it dies with it: no process of it is
left, and the sessions it had open end with their connections or, still running a
statement, are ended by the next migrate, which right after taking the lock must put back
what the killed one left: raw as after the first migration, row for row (the killed load's
raw._loads and raw._sources rows gone), no shadow schema, no session of the dead dbt, the
row `interrupted`; marts were never touched. The recovering migrate
here is a no-go (a missing file), so that the recovered state can be compared before
anything else is written; the migration after it goes through. The backups and the dbt
log are the user's alone (0600 in a 0700 folder). Last, a saved view holding `$luckygas$`
survives a rollback.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time

import psutil
import pytest

from loaders.cli import main
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import ROOT, dbt_env, environ, fresh_database
from loaders.tests.test_migrate import (
    ACCEPT,
    execute,
    marts_state,
    migrations,
    raw_state,
    rows,
)

DBT_SESSIONS = (
    "select count(*) from pg_stat_activity where datname = current_database()"
    " and application_name like 'luckygas-migrate-%%-dbt'"
)
SHADOWS = "select nspname from pg_namespace where nspname like '%%\\_\\_shadow' order by 1"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_migrate(env, tmp, argv, name):
    """`luckygas migrate` as a process of its own: (the process, its output file)."""
    out = tmp / f"{name}.log"
    with out.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loaders.cli", *argv],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, out


def wait_for_build(conninfo, proc, out) -> list[psutil.Process]:
    """Wait until the migrate's dbt build writes the shadow schemas, under its own session
    name; the migrate's child processes then (none is dbt: dbt runs in the migrate)."""
    deadline, seen = time.monotonic() + 150, False
    while not seen and time.monotonic() < deadline and proc.poll() is None:
        # dbt opens and closes its sessions as it goes: one seen is enough
        seen = rows(conninfo, DBT_SESSIONS)[0][0] > 0 and len(rows(conninfo, SHADOWS)) >= 2
        time.sleep(0 if seen else 0.1)
    assert seen and proc.poll() is None, out.read_text()
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert not any("dbt" in " ".join(k.cmdline()) for k in kids), [k.cmdline() for k in kids]
    return kids


@pytest.fixture(scope="module")
def db(pg, tmp_path_factory):
    """(conninfo, env, sample, changed sample, backups, tmp) after a first migration, and
    the state it left (raw and marts, row for row)."""
    tmp = tmp_path_factory.mktemp("killed")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=9)
    changed = tmp / "changed"
    shutil.copytree(sample, changed)
    with sqlite3.connect(changed / "luckygas.db") as lite:
        lite.execute(
            "update deliveries set driver_id = (select max(id) from drivers) where id % 10 = 0"
        )
    backups = tmp / "backups"
    with fresh_database(pg, "k") as (conninfo, env):
        run_env = dbt_env(env, tmp)
        with environ(run_env):
            code = main(["migrate", *ACCEPT, "--backup-dir", str(backups), str(sample)])
        assert code == 0
        first = {"raw": raw_state(conninfo), "marts": marts_state(conninfo)}
        yield conninfo, run_env, changed, backups, tmp, first


def test_killed_migrate_is_recovered_by_the_next(db, capsys):
    conninfo, env, changed, backups, tmp, first = db
    [(first_id, outcome, *_)] = migrations(conninfo)
    assert outcome == "succeeded"
    argv = ["migrate", *ACCEPT, "--verify-backup", "list", "--backup-dir", str(backups)]
    proc, out = start_migrate(env, tmp, [*argv, str(changed)], "killed")
    try:
        kids = wait_for_build(conninfo, proc, out)
        os.kill(proc.pid, signal.SIGKILL)  # the migrate alone, not its group
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # nothing it ran outlived it (its dbt was in its process)
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, [k.cmdline() for k in alive]

    # what the kill left: the row running, raw holding the killed migration's load
    killed_id, outcome, *_ = migrations(conninfo)[-1]
    assert killed_id == first_id + 1 and outcome == "running"
    assert raw_state(conninfo) != first["raw"]
    assert marts_state(conninfo) == first["marts"]
    dump = next(backups.glob(f"migration-{killed_id}-*.dump"))

    # the next migrate recovers, right after the lock: then stops at its no-go (a missing
    # file), so the recovered state is seen before anything else is written
    capsys.readouterr()
    missing = tmp / "nowhere" / "luckygas.db"
    with environ(env):
        assert main([*argv, str(changed), str(missing)]) == 2
    err = capsys.readouterr().err
    [said] = [line for line in err.splitlines() if line.startswith("recovered migration")]
    assert said.startswith(f"recovered migration {killed_id}, killed at dbt build: raw restored")
    assert said.endswith("marked interrupted") and "shadow schemas dropped" in said
    history = migrations(conninfo)
    assert [h[1] for h in history] == ["succeeded", "interrupted", "no-go"]
    message = history[1][-1]
    assert message.startswith("killed at dbt build") and "raw restored from its backup" in message
    assert raw_state(conninfo) == first["raw"]  # raw._loads and raw._sources included
    assert marts_state(conninfo) == first["marts"]
    assert rows(conninfo, SHADOWS) == []
    assert rows(conninfo, DBT_SESSIONS) == [(0,)]

    # the migration after it goes through
    with environ(env):
        assert main([*argv, str(changed)]) == 0
    history = migrations(conninfo)
    assert [h[1] for h in history] == ["succeeded", "interrupted", "no-go", "succeeded"]
    assert marts_state(conninfo) != first["marts"]
    assert rows(conninfo, SHADOWS) == []

    # the backups and dbt logs are the user's alone
    last_id = history[-1][0]
    assert mode(backups) == 0o700
    for path in [dump, next(backups.glob(f"migration-{last_id}-*.dump"))]:
        assert mode(path) == 0o600, path
    for mid in (killed_id, last_id):
        assert mode(backups / f"migration-{mid}-dbt.log") == 0o600


def test_sigterm_stops_dbt_and_undoes_the_load(db):
    """SIGTERM unwinds a migrate as Ctrl-C does: dbt (in the process) cancels its queries
    and hands the interruption back, its sessions are ended, its shadows dropped, the load
    undone, the row `failed` saying where it was interrupted; exit 130."""
    conninfo, env, changed, backups, tmp, first = db
    raw_before, marts_before = raw_state(conninfo), marts_state(conninfo)
    sample = tmp / "sample"
    argv = ["migrate", *ACCEPT, "--verify-backup", "list", "--backup-dir", str(backups)]
    proc, out = start_migrate(env, tmp, [*argv, str(sample)], "terminated")
    try:
        kids = wait_for_build(conninfo, proc, out)
        proc.terminate()
        assert proc.wait(timeout=60) == 130, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not psutil.wait_procs(kids, timeout=5)[1]
    mid, outcome, *_, message = migrations(conninfo)[-1]
    assert outcome == "failed" and message.startswith("interrupted at dbt build: Terminated(")
    assert "the load was undone" in message
    assert raw_state(conninfo) == raw_before
    assert marts_state(conninfo) == marts_before
    assert rows(conninfo, SHADOWS) == []
    assert rows(conninfo, DBT_SESSIONS) == [(0,)]


def test_a_saved_view_holding_the_old_dollar_quote_survives_a_rollback(db):
    """The restore recreates the views of other schemas in DO blocks: their dollar quote
    must not occur in the view (a fixed `$luckygas$` made every rollback fail)."""
    conninfo, env, *_, first = db
    execute(conninfo, "create schema if not exists mary")
    execute(
        conninfo,
        "create view mary.quoted as select client_code, '$luckygas$ it''s'::text as tag"
        " from marts.deliveries",
    )
    with environ(env):
        assert main(["rollback"]) == 0
    assert marts_state(conninfo) == first["marts"]
    assert rows(conninfo, "select distinct tag from mary.quoted") == [("$luckygas$ it's",)]
    assert rows(conninfo, "select outcome from validation.rollbacks") == [("rolled back",)]
