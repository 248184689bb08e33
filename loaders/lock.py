"""One lock per database for every command that writes `raw` or the published tables:
`luckygas load`, `migrate` and `rollback`.

It is a PostgreSQL session advisory lock, held by the connection that took it and released by
the server when that connection ends, however it ends (exit, Ctrl-C, kill -9, a lost
network): a killed command never leaves it behind, and a record found `running` by the
holder of the lock belongs to a process that is gone (`loaders.raw` and
`loaders.cutover.recovery` rely on that). A second command does not wait: it stops with one
line naming the command that holds the lock.
"""

from __future__ import annotations

import os
import socket

import psycopg

from loaders.errors import UserError

KEY = 0x4C47_4D49  # pg_advisory_lock key ("LGMI"); below 2**32, so pg_locks shows it in objid
APPLICATION_PREFIX = "luckygas "


def acquire(conn: psycopg.Connection, command: str) -> None:
    """Take the lock on `conn` (an autocommit connection, kept open for the whole command)
    and name the session after `command`; UserError naming the holder when it is taken."""
    conn.execute(
        "select set_config('application_name', %s, false)",
        (f"{APPLICATION_PREFIX}{command} (pid {os.getpid()} on {socket.gethostname()})"[:63],),
    )
    if conn.execute("select pg_try_advisory_lock(%s)", (KEY,)).fetchone()[0]:
        return
    raise UserError(
        f"{holder(conn) or 'another luckygas command'} is writing to this database;"
        " wait for it to finish, then run this again"
    )


def release(conn: psycopg.Connection) -> None:
    """Give the lock back before the connection ends (closing the connection does too)."""
    if not conn.closed and not conn.broken:
        conn.execute("select pg_advisory_unlock(%s)", (KEY,))


def holder(conn: psycopg.Connection) -> str | None:
    """Who holds the lock: its session's name and since when, or None when it is free or
    the holder's session cannot be seen (another role without pg_read_all_stats)."""
    row = conn.execute(
        "select a.application_name, to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')"
        " from pg_locks l join pg_stat_activity a on a.pid = l.pid"
        " where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = %s::oid"
        " and l.database = (select oid from pg_database where datname = current_database())"
        " and l.pid <> pg_backend_pid()",
        (KEY,),
    ).fetchone()
    if row is None:
        return None
    name, since = row
    if name and name.startswith(APPLICATION_PREFIX):
        return f"{name}, connected since {since},"
    return f"a session ({name or 'unnamed'}, connected since {since})"
