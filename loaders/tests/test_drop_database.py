"""`connection.drop_database` as a role that is not a superuser, with an autovacuum worker
in the database: the case where `drop database ... with (force)` fails on PostgreSQL 15
and 16 (the worker belongs to no role, so FORCE refuses to end it), as it did once in CI's
teardown on Debian's PostgreSQL 15 after a migrate. The test makes the case sure instead
of waiting for it: autovacuum's naptime at 1 s for the test, and a table whose vacuum is
slowed to a crawl, so the worker stays in the database until it is told to stop.

Needs a superuser (a role, ALTER SYSTEM): it runs on the embedded server only.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from loaders import connection

ROLE = "lg_test_dropper"
DATABASE = "lg_test_autovacuumed"


def _workers(admin: psycopg.Connection) -> int:
    return admin.execute(
        "select count(*) from pg_stat_activity"
        " where datname = %s and backend_type = 'autovacuum worker'",
        (DATABASE,),
    ).fetchone()[0]


@pytest.fixture
def role_conninfo(pg) -> Iterator[str]:
    """A login role with CREATEDB only, and autovacuum waking every second meanwhile."""
    assert not pg.external
    password = secrets.token_urlsafe(16)
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        admin.execute(f"drop role if exists {ROLE}")
        admin.execute(f"create role {ROLE} login createdb password '{password}'")
        admin.execute("alter system set autovacuum_naptime = 1")
        admin.execute("select pg_reload_conf()")
    try:
        yield make_conninfo(pg.conninfo, user=ROLE, password=password, dbname="postgres")
    finally:
        with psycopg.connect(pg.conninfo, autocommit=True) as admin:
            admin.execute(f"drop database if exists {DATABASE} with (force)")  # a superuser
            admin.execute(f"drop role {ROLE}")
            admin.execute("alter system reset autovacuum_naptime")
            admin.execute("select pg_reload_conf()")


def test_drop_database_stops_an_autovacuum_worker_that_force_cannot(pg, role_conninfo):
    with psycopg.connect(role_conninfo, autocommit=True) as conn:
        conn.execute(f"create database {DATABASE}")
    own = psycopg.connect(make_conninfo(role_conninfo, dbname=DATABASE), autocommit=True)
    own.execute("create table t as select g, md5(g::text) as m from generate_series(1, 20000) g")
    own.execute(
        "alter table t set (autovacuum_vacuum_cost_delay = 100,"
        " autovacuum_vacuum_cost_limit = 1, autovacuum_analyze_threshold = 1)"
    )
    own.execute("delete from t where g % 2 = 0")  # dead rows: autovacuum's next round
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        deadline = time.monotonic() + 60
        while not _workers(admin) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _workers(admin) == 1, "no autovacuum worker came in 60 s"

        with psycopg.connect(role_conninfo, autocommit=True) as conn:
            # The premise: FORCE, as this role, refuses while the worker is there.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"drop database {DATABASE} with (force)")
            assert _workers(admin) == 1  # still there: the vacuum crawls
            connection.drop_database(conn, DATABASE)  # ends `own`, stops the worker

        exists = admin.execute("select count(*) from pg_database where datname = %s", (DATABASE,))
        assert exists.fetchone()[0] == 0
    with pytest.raises(psycopg.OperationalError):
        own.execute("select 1")  # the role's own session was ended
    own.close()
    with psycopg.connect(role_conninfo, autocommit=True) as conn:
        connection.drop_database(conn, DATABASE)  # no such database: nothing to do
