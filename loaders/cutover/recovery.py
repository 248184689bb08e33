"""What a killed `luckygas migrate` or `rollback` left, put right by the next one.

A migrate killed outright (kill -9, a lost machine) runs no undo: its row stays `running`,
raw may hold its load while marts hold the previous build, its shadow schemas stay, and
the sessions of its dbt (in its process) and of its children (psql's) may still run their
last statement. The next migrate would back that state up as if it were consistent, and a rollback to it
would restore it. So migrate and rollback call `recover` right after taking the lock and
before anything else: the lock is held by the session of the command that runs, and the
server ends a session when its process dies, so a row found `running` by the holder of the
lock belongs to a process that is gone.

What is consistent after a killed migration, by what its row says (steps.py records the
step it starts, and the swap marks the row in its own transaction):
- no backup yet (backup_schemas null): nothing was changed; the row is marked.
- a backup and no swap: the live dbt schemas are untouched (dbt builds into the shadow
  schemas and the swap is one transaction that did not commit); raw may hold the load: it is
  restored from the backup and verified, the shadows are dropped, the row `interrupted`.
- the swap committed: raw and the dbt schemas are the new ones together, after every
  after-check passed: the migration is in, only its last lines were not written; the row
  is `succeeded` (with its counts), and `luckygas rollback --to N` undoes it as any other.
A rollback found `running` ran its restore in one transaction: the tables are the state
before its migration, or the state it started from, both whole; the row is `interrupted`
and the rollback should be run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from loaders import connection
from loaders.cutover import children, swap
from loaders.cutover.backup import Backup, restore_raw, scratch_prefix
from loaders.cutover.catalog import TARGET_SCHEMAS, table_counts
from loaders.cutover.records import Record
from loaders.errors import UserError

# The steps of steps.py before the load: a migration stopped there had changed nothing.
BEFORE_LOAD = ("shadow cleanup", "backup", "backup verification", "go")
SESSIONS_GONE_SECONDS = 30.0  # how long recovery waits for ended sessions to exit

Say = Callable[[str], None]


@dataclass(frozen=True)
class Recovered:
    """What `recover` did: the rows it completed, and the orphan sessions it ended."""

    migrations: list[int]
    rollbacks: list[int]
    sessions: int


def end_sessions(conn: psycopg.Connection, pattern: str | None = None) -> int:
    """End the sessions of this database whose application_name is LIKE `pattern` (default:
    the name of any cut-over child, children.session_name) other than `conn`'s, and wait
    for them to exit (their transactions roll back). Only the holder of the lock calls this:
    a child's session then belongs to a process that is gone, or that is being stopped.
    Returns how many there were."""
    pattern = pattern or children.session_pattern()
    pids = [
        r[0]
        for r in conn.execute(
            "select pid from pg_stat_activity where datname = current_database()"
            " and application_name like %s and pid <> pg_backend_pid()",
            (pattern,),
        ).fetchall()
    ]
    if not pids:
        return 0
    conn.execute("select pg_terminate_backend(pid) from unnest(%s::int[]) as pid", (pids,))
    deadline = time.monotonic() + SESSIONS_GONE_SECONDS
    while time.monotonic() < deadline:
        left = conn.execute(
            "select count(*) from pg_stat_activity where pid = any(%s)", (pids,)
        ).fetchone()[0]
        if not left:
            break
        time.sleep(0.1)
    return len(pids)


def drop_scratch_databases(conn: psycopg.Connection) -> list[str]:
    """Drop the scratch databases a killed backup verification of this database left."""
    prefix = scratch_prefix(conn)
    names = [
        r[0]
        for r in conn.execute(
            "select datname from pg_database where starts_with(datname, %s)", (prefix,)
        ).fetchall()
    ]
    for name in names:
        connection.drop_database(conn, name)
    return names


def recover(
    conn: psycopg.Connection,
    target: connection.Target,
    major: int,
    say: Say,
    *,
    by: str,
) -> Recovered:
    """Put right what killed migrations and rollbacks left (see the module doc); `by`
    names the command recovering, for the messages. Call it holding the lock (records.claim),
    before anything else. One line via `say` per row completed. UserError when a killed
    migration's raw cannot be restored: its row stays `running`, to be recovered again."""
    sessions = end_sessions(conn)
    running = conn.execute(
        "select migration_id, step, backup_path, backup_schemas, counts_before,"
        " checksums_before, swapped_at is not null from validation.migrations"
        " where outcome = 'running' order by migration_id"
    ).fetchall()
    rollbacks = conn.execute(
        "select rollback_id, migration_id from validation.rollbacks"
        " where outcome = 'running' order by rollback_id"
    ).fetchall()
    if not running and not rollbacks and not sessions:
        return Recovered([], [], 0)
    scratch = drop_scratch_databases(conn)
    ended = [f"{sessions} session(s) of its children ended"] if sessions else []
    if scratch:
        ended.append(f"scratch database(s) {', '.join(scratch)} dropped")
    for mid, step, path, schemas, counts, checksums, swapped in running:
        where = f"at {step}" if step else "at an unknown step"
        if swapped:
            counts_after = table_counts(conn, TARGET_SCHEMAS)
            done = [
                "its swap had committed: the new tables are in, raw and the dbt schemas"
                f" agree (`luckygas rollback --to {mid}` undoes it)"
            ]
            outcome = "succeeded"
            extra = {"counts_after": counts_after}
        elif schemas is None or step in BEFORE_LOAD:
            done = ["it had changed nothing yet"]
            outcome, extra = "interrupted", {}
        else:
            backup = Backup(None if path is None else Path(path), schemas, counts, checksums)
            session = children.session_name("recovery", mid, "psql")
            try:
                tables = restore_raw(target, conn, backup, major, session)
            except (UserError, psycopg.Error, OSError) as exc:
                raise UserError(
                    f"migration {mid} was killed {where} and could not be recovered: raw"
                    f" may hold its load while the dbt schemas hold the build before it"
                    f" ({' '.join(str(exc).split())}); put its backup back and run this again"
                ) from exc
            done = [f"raw restored from its backup and verified ({tables} tables)"]
            outcome, extra = "interrupted", {}
        dropped = swap.drop_shadows(conn)
        if dropped:
            done.append(f"shadow schemas dropped ({', '.join(dropped)})")
        details = "; ".join([*done, *ended])
        message = (
            f"killed {where} (its process ended without finishing); recovered by"
            f" `luckygas {by}`: {details}"
        )
        Record(conn, "migrations", mid).finish(outcome, message, **extra)
        say(f"recovered migration {mid}, killed {where}: {details}; marked {outcome}")
        ended = []
    for rid, mid in rollbacks:
        message = (
            f"killed before it finished (its restore is one transaction: the tables are"
            f" whole, before or after it); run `luckygas rollback --to {mid}` again"
        )
        Record(conn, "rollbacks", rid).finish("interrupted", message)
        say(f"recovered rollback {rid} of migration {mid}: {message}; marked interrupted")
    if ended:
        say(f"recovered: {'; '.join(ended)}")
    return Recovered([r[0] for r in running], [r[0] for r in rollbacks], sessions)
