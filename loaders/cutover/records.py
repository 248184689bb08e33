"""validation.migrations and validation.rollbacks: their tables, the Record that writes a
migration's or a rollback's row as the work goes, and `claim`, which takes the database's one
lock (loaders.lock: one load, migrate or rollback at a time) and creates the tables.

A migration's row names its phase (clients, deliveries or all: migrate.py) and the dbt
invocation of its shadow build (dbt_run_id: the run_id under which the on-run-end hook
recorded its rule results and exceptions in validation.*). A rehearsal is a row too, its
outcome `rehearsed` (the real run would go) or `no-go`; it never swaps, so `rollback`
never picks it."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from loaders import lock

LOCK_KEY = lock.KEY  # the advisory lock's key (loaders.lock)
OUTCOMES = {
    "migrations": ("running", "succeeded", "rehearsed", "no-go", "failed", "interrupted"),
    "rollbacks": ("running", "rolled back", "failed", "interrupted"),
}

DDL = """
create schema if not exists validation;
create table if not exists validation.migrations (
    migration_id serial primary key,
    started_at timestamptz not null default clock_timestamp(),
    finished_at timestamptz,
    arguments text[] not null,
    files jsonb not null default '[]',
    backup_path text,
    backup_schemas text[],
    counts_before jsonb,
    checksums_before jsonb,
    counts_after jsonb,
    outcome text not null default 'running'
        check (outcome in (
            'running', 'succeeded', 'rehearsed', 'no-go', 'failed', 'interrupted'
        )),
    message text,
    step text,
    swapped_at timestamptz,
    phase text not null default 'all',
    dbt_run_id text
);
-- tables made by an earlier version: the step a migration is at, the mark its swap commits
-- with (loaders.cutover.recovery reads both), its phase (earlier rows: all) and the run_id
-- of its shadow build's validation records
alter table validation.migrations add column if not exists step text,
    add column if not exists swapped_at timestamptz,
    add column if not exists phase text not null default 'all',
    add column if not exists dbt_run_id text;
create table if not exists validation.rollbacks (
    rollback_id serial primary key,
    migration_id integer not null references validation.migrations (migration_id),
    started_at timestamptz not null default clock_timestamp(),
    finished_at timestamptz,
    backup_path text,
    counts_after jsonb,
    checksums_after jsonb,
    views_recreated text[],
    views_not_recreated text[],
    restore_seconds numeric(10, 3),
    verify_seconds numeric(10, 3),
    outcome text not null default 'running'
        check (outcome in ('running', 'rolled back', 'failed', 'interrupted')),
    message text
);
"""

# An outcome check made by an earlier version lacks an outcome ('interrupted', 'rehearsed'):
# replaced (only then, as it locks the table).
OUTCOME_CHECK = """
do $$ begin
    if not exists (
        select 1 from pg_constraint where conrelid = 'validation.{table}'::regclass
        and conname = '{table}_outcome_check' and {every}
    ) then
        alter table validation.{table} drop constraint if exists {table}_outcome_check,
            add constraint {table}_outcome_check check (outcome in ({outcomes}));
    end if;
end $$;
"""

KEYS = {"migrations": "migration_id", "rollbacks": "rollback_id"}
JSONB_COLUMNS = {"files", "counts_before", "checksums_before", "counts_after", "checksums_after"}


def claim(conn: psycopg.Connection, command: str) -> None:
    """Take the database's lock for `command` (migrate or rollback: a second load, migrate
    or rollback on the database stops here, naming this one) and create the record tables
    on first use, or bring those of an earlier version up to date."""
    lock.acquire(conn, command)
    with conn.transaction():
        conn.execute(DDL)
        for table, outcomes in OUTCOMES.items():
            listed = ", ".join(f"'{o}'" for o in outcomes)
            every = " and ".join(f"pg_get_constraintdef(oid) like '%''{o}''%'" for o in outcomes)
            conn.execute(OUTCOME_CHECK.format(table=table, outcomes=listed, every=every))


@dataclass(frozen=True)
class Record:
    """One row of validation.migrations or validation.rollbacks (`table`), by its id."""

    conn: psycopg.Connection
    table: str  # migrations or rollbacks
    id: int

    @classmethod
    def start(cls, conn: psycopg.Connection, table: str, **cols) -> Record:
        """Insert the row (outcome running, started now) with `cols`."""
        names = [sql.Identifier(c) for c in cols]
        query = sql.SQL("insert into {} ({}) values ({}) returning {}").format(
            sql.Identifier("validation", table),
            sql.SQL(", ").join(names),
            sql.SQL(", ").join([sql.Placeholder()] * len(names)),
            sql.Identifier(KEYS[table]),
        )
        row = conn.execute(query, [_value(c, v) for c, v in cols.items()]).fetchone()
        return cls(conn, table, row[0])

    def set(self, **cols) -> None:
        """Set columns of the row (those of JSONB_COLUMNS stored as jsonb)."""
        self._update(cols)

    def finish(self, outcome: str, message: str | None, **cols) -> None:
        """Complete the row: its end (now), outcome and message (and any other column)."""
        self._update({"outcome": outcome, "message": message or None, **cols}, finished=True)

    def _update(self, cols: dict, finished: bool = False) -> None:
        sets = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols]
        if finished:
            sets.append(sql.SQL("finished_at = clock_timestamp()"))
        self.conn.execute(
            sql.SQL("update {} set {} where {} = %s").format(
                sql.Identifier("validation", self.table),
                sql.SQL(", ").join(sets),
                sql.Identifier(KEYS[self.table]),
            ),
            [*(_value(c, v) for c, v in cols.items()), self.id],
        )

    def read(self, *cols: str) -> tuple | None:
        """The row's `cols`, or None when there is no such row."""
        return self.conn.execute(
            sql.SQL("select {} from {} where {} = %s").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in cols),
                sql.Identifier("validation", self.table),
                sql.Identifier(KEYS[self.table]),
            ),
            (self.id,),
        ).fetchone()


def _value(column: str, value):
    return Jsonb(value) if column in JSONB_COLUMNS and value is not None else value
