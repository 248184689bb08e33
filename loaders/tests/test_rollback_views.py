"""The cut-over's restore and its children, without dbt: on a tiny database of their own.

- A saved view whose definition holds `$luckygas$` (the dollar quote the restore once used
  around every view it recreates) survives a restore.
- A restore whose dump cannot be read changes nothing (the script's transaction never
  reaches its `commit`).
- Backup folders are made 0700 and files 0600; a folder given by the user keeps its mode.
- A child started by children.popen dies with its parent, even of a SIGKILL, and writes
  files only its user can read.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import psutil
import psycopg
import pytest

from loaders import connection
from loaders.cutover import backup, children
from loaders.cutover.catalog import View, dependent_views, relation_oids
from loaders.tests.dbt_runner import environ, fresh_database


@pytest.fixture
def tiny(pg, tmp_path):
    """(conninfo, target) of a new database with raw.t and Mary's view on it, whose text
    holds the old dollar quote."""
    with fresh_database(pg, "v") as (conninfo, env), environ(env):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("create schema raw; create schema mary")
            conn.execute("create table raw.t (k int, v text)")
            conn.execute("insert into raw.t values (1, 'a'), (2, 'b')")
            conn.execute(
                "create view mary.quoted as select k, '$luckygas$ it''s $v1$'::text as tag"
                " from raw.t"
            )
        yield conninfo, connection.resolve()


def test_the_dollar_quote_is_never_in_the_view():
    statement = "create view mary.x as select '$luckygas$'::text as tag"
    block = backup._recreate(View("mary.x", "v", statement))
    tag = block.split(" ", 2)[1]
    assert tag != "$luckygas$" and tag.startswith("$v") and tag.endswith("$")
    assert block.count(tag) == 2 and block.endswith(f" {tag};\n")
    plain = backup._recreate(View("mary.y", "v", "create view mary.y as select 1"))
    assert plain.startswith("do $luckygas$ ")


def test_a_view_holding_the_old_dollar_quote_survives_a_restore(tiny, tmp_path):
    conninfo, target = tiny
    with psycopg.connect(conninfo, autocommit=True) as conn:
        major = backup.server_major(conn)
        taken = backup.take(target, tmp_path / "b.dump", ["raw"])
        conn.execute("insert into raw.t values (3, 'c')")
        views = dependent_views(conn, relation_oids(conn, ["raw"]))
        assert [v.name for v in views] == ["mary.quoted"]
        assert backup.restore_raw(target, conn, taken, major) == 1
        assert conn.execute("select k, tag from mary.quoted order by k").fetchall() == [
            (1, "$luckygas$ it's $v1$"),
            (2, "$luckygas$ it's $v1$"),
        ]


def test_a_restore_whose_dump_cannot_be_read_changes_nothing(tiny, tmp_path):
    conninfo, target = tiny
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP" + os.urandom(64))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        views = dependent_views(conn, relation_oids(conn, ["raw"]))
        with pytest.raises(Exception, match="could not read|restore failed"):
            backup.restore(target, broken, views, backup.server_major(conn), ("raw",))
        assert conn.execute("select count(*) from raw.t").fetchone() == (2,)
        assert conn.execute("select count(*) from mary.quoted").fetchone() == (2,)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_folders_are_private(tmp_path):
    made = tmp_path / "a" / "b"
    assert backup.private_dir(made, tighten=False) is None
    assert mode(made) == mode(made.parent) == 0o700
    given = tmp_path / "given"
    given.mkdir()
    given.chmod(0o755)
    note = backup.private_dir(given, tighten=False)
    assert note and "open to others (mode 0755)" in note and mode(given) == 0o755
    assert backup.private_dir(given, tighten=True) is None and mode(given) == 0o700
    dump = given / "x.dump"
    dump.write_text("old")
    dump.chmod(0o644)
    backup.private_file(dump)
    assert mode(dump) == 0o600 and dump.read_text() == ""


PARENT = textwrap.dedent(
    """
    import sys, time
    from loaders.cutover import children
    proc = children.popen(
        [sys.executable, "-c",
         "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('x'); time.sleep(60)",
         sys.argv[1]]
    )
    print(proc.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_dies_with_its_parent_even_of_sigkill(tmp_path):
    written = tmp_path / "written"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(written)], stdout=subprocess.PIPE, text=True
    )
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        deadline = time.monotonic() + 20
        while not written.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mode(written) == 0o600  # umask 077
        assert os.getpgid(child.pid) == child.pid != os.getpgid(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs([child], timeout=5)
        assert not alive
    finally:
        parent.kill()
        parent.stdout.close()


def test_stop_ends_the_child_and_its_group():
    proc = children.popen(["sh", "-c", "sleep 60 & sleep 60; wait"])
    time.sleep(0.3)
    group = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    children.stop(proc, grace=1)
    assert proc.returncode is not None
    assert not psutil.wait_procs(group, timeout=5)[1]


def test_record_tables_of_an_earlier_version_are_brought_up_to_date(pg):
    """validation.migrations / rollbacks made before `interrupted` existed: claim replaces
    their outcome checks and adds the columns the recovery reads."""
    from loaders.cutover.records import claim

    with (
        fresh_database(pg, "o") as (conninfo, _),
        psycopg.connect(conninfo, autocommit=True) as conn,
    ):
        conn.execute(
            "create schema validation;"
            " create table validation.migrations (migration_id serial primary key,"
            " arguments text[] not null, outcome text not null default 'running'"
            " check (outcome in ('running', 'succeeded', 'no-go', 'failed')));"
            " create table validation.rollbacks (rollback_id serial primary key,"
            " migration_id integer not null, outcome text not null default 'running'"
            " check (outcome in ('running', 'rolled back', 'failed')))"
        )
        conn.execute("insert into validation.migrations (arguments) values ('{migrate}')")
        claim(conn, "migrate")
        conn.execute(
            "update validation.migrations set outcome = 'interrupted', step = 'load',"
            " swapped_at = null"
        )
        conn.execute(
            "insert into validation.rollbacks (migration_id, outcome) values (1, 'interrupted')"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("update validation.migrations set outcome = 'gone'")
        claim(conn, "migrate")  # again: nothing to replace, the lock held already


def test_recover_completes_rows_without_raw_to_restore_and_ends_orphan_sessions(tiny):
    """Rows a killed migrate or rollback left `running` where raw needs no restore: killed
    before its backup (nothing changed), after its swap committed (it is in: `succeeded`),
    a rollback; and a session of a dead child, still running its statement, is ended."""
    import threading

    from loaders.cutover.records import Record, claim
    from loaders.cutover.recovery import recover

    conninfo, target = tiny
    said: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        claim(conn, "migrate")
        early = Record.start(conn, "migrations", arguments=["migrate"])
        early.set(step="backup")
        swapped = Record.start(conn, "migrations", arguments=["migrate"])
        swapped.set(step="swap", backup_path=None, backup_schemas=[])
        conn.execute(
            "update validation.migrations set swapped_at = now() where migration_id = %s",
            (swapped.id,),
        )
        rb = Record.start(conn, "rollbacks", migration_id=swapped.id)
        orphan = psycopg.connect(
            conninfo, autocommit=True, application_name="luckygas-migrate-9-dbt"
        )
        errors: list[BaseException] = []

        def sleep() -> None:
            try:
                orphan.execute("select pg_sleep(60)")
            except BaseException as exc:  # noqa: BLE001 - the test reads it
                errors.append(exc)

        thread = threading.Thread(target=sleep)
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        done = recover(conn, target, backup.server_major(conn), said.append, by="migrate")
        thread.join(timeout=10)
        orphan.close()
        assert time.monotonic() - started < 10 and errors
        assert done.sessions == 1 and done.migrations == [early.id, swapped.id]
        assert done.rollbacks == [rb.id]
        outcomes = dict(
            conn.execute("select migration_id, outcome from validation.migrations").fetchall()
        )
        assert outcomes == {early.id: "interrupted", swapped.id: "succeeded"}
        assert swapped.read("counts_after")[0] == {"raw.t": 2}
        assert rb.read("outcome") == ("interrupted",)
    assert said[0].startswith(f"recovered migration {early.id}, killed at backup: it had changed")
    assert "1 session(s) of its children ended" in said[0]
    assert said[1].startswith(f"recovered migration {swapped.id}, killed at swap: its swap had")
    assert said[2].startswith(f"recovered rollback {rb.id} of migration {swapped.id}:")
    assert f"run `luckygas rollback --to {swapped.id}` again" in said[2]
