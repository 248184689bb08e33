"""`luckygas rollback [--to ID]`: the target schemas back to their state before a migration
(default: the latest succeeded one not rolled back), from its backup, in ONE transaction;
then every table's count and checksum verified against the backup's, and the validation
models rebuilt. Each rollback is one row of validation.rollbacks; the validation schema's
history (Mary's record and reviews) is never restored over. A migrate or rollback killed
earlier is recovered first (recovery.py).

A migration is rolled back by a rollback of it, and by a rollback of an earlier migration
run after it (that restores the state before both). `--to N` of a migration rolled back so,
with no migration since that rollback, is refused: the tables are the state before N, or
before an earlier one; restoring N's backup would do nothing, or re-apply what the rollback
undid."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from loaders import connection
from loaders.cutover.backup import Backup, differences, restore, server_major
from loaders.cutover.catalog import (
    TARGET_SCHEMAS,
    VIEW_KINDS,
    dependent_views,
    relation_exists,
    relation_oids,
    relations,
    table_checksums,
    table_counts,
)
from loaders.cutover.children import session_name
from loaders.cutover.dbt import rebuild_validation
from loaders.cutover.errors import Unverified
from loaders.cutover.records import Record, claim
from loaders.cutover.recovery import recover
from loaders.cutover.steps import Say
from loaders.errors import UserError

# SQL: migration m was not rolled back, by a rollback of it or of an earlier migration
# started after it (one migrate or rollback at a time: started after it, it ran after it)
UNDONE = (
    "not exists (select 1 from validation.rollbacks r where r.outcome = 'rolled back'"
    " and r.migration_id <= m.migration_id and r.started_at > m.started_at)"
)
# the rollback that rolled back migration %(id)s last, when no migration that may have
# changed the tables (succeeded, or failed: its undo may have failed) ran after it
ROLLED_BACK = """
select r.rollback_id, r.migration_id, r.finished_at
from validation.rollbacks r, validation.migrations m
where m.migration_id = %(id)s and r.outcome = 'rolled back'
    and r.migration_id <= m.migration_id and r.started_at > m.started_at
    and not exists (
        select 1 from validation.migrations later where later.started_at > r.started_at
        and later.outcome in ('succeeded', 'failed')
    )
order by r.rollback_id desc limit 1
"""


@dataclass
class RollbackResult:
    rollback_id: int
    migration_id: int
    restore_seconds: float
    verify_seconds: float
    total_seconds: float
    views_not_recreated: list[str]


def pick_migration(conn: psycopg.Connection, to: int | None) -> tuple[Record, str, Backup]:
    """The migration to undo (`to`, or the latest succeeded one not rolled back): its
    record, its outcome and its backup. UserError if there is none or it has no backup."""
    if to is None:
        row = conn.execute(
            "select migration_id from validation.migrations m where outcome = 'succeeded'"
            f" and {UNDONE} order by migration_id desc limit 1"
        ).fetchone()
        if row is None:
            raise UserError("no succeeded migration to roll back (give --to MIGRATION_ID)")
        to = row[0]
    migration = Record(conn, "migrations", to)
    row = migration.read(
        "outcome", "backup_path", "backup_schemas", "counts_before", "checksums_before"
    )
    if row is None:
        raise UserError(f"no migration {to} in validation.migrations")
    outcome, path, schemas, counts, checksums = row
    if outcome in ("rehearsed", "no-go"):
        # Undone when it stopped: rolling back "to" it would only undo the migrations after
        # it, which is what naming one of those says plainly.
        raise UserError(
            f"migration {to} was a {'rehearsal' if outcome == 'rehearsed' else 'no-go'}:"
            " it published nothing, so there is nothing of it to roll back (to undo a later"
            " migration, give that one's id)"
        )
    done = conn.execute(ROLLED_BACK, {"id": to}).fetchone()
    if done is not None:
        rid, of, at = done
        by = f"rollback {rid}" if of == to else f"rollback {rid} of migration {of}"
        when = "an unknown time" if at is None else f"{at:%Y-%m-%d %H:%M:%S %Z}".strip()
        raise UserError(f"migration {to} was already rolled back ({by} at {when}); nothing to do")
    if schemas is None:
        raise UserError(f"migration {to} ({outcome}) has no backup: it changed nothing")
    if path is not None and not Path(path).is_file():
        raise UserError(f"migration {to}: backup {path} is missing")
    backup = Backup(None if path is None else Path(path), schemas, counts or {}, checksums or {})
    return migration, outcome, backup


def rollback(to: int | None = None, *, say: Say = print) -> RollbackResult:
    """Restore the target schemas to their state before migration `to`; verify; record."""
    target = connection.resolve()
    started = time.perf_counter()
    with connection.connect(target, autocommit=True) as conn:
        if not relation_exists(conn, "validation.migrations"):
            raise UserError("no migration recorded yet (validation.migrations is missing)")
        claim(conn, "rollback")
        major = server_major(conn)
        recover(conn, target, major, say, by="rollback")
        migration, outcome, backup = pick_migration(conn, to)
        mid = migration.id
        later = [
            r[0]
            for r in conn.execute(
                "select migration_id from validation.migrations m where migration_id > %s"
                f" and outcome in ('succeeded', 'failed') and {UNDONE} order by 1",
                (mid,),
            ).fetchall()
        ]
        if later:
            say(f"note: this also undoes the later migrations {', '.join(map(str, later))}")
        path = None if backup.path is None else str(backup.path)
        record = Record.start(conn, "rollbacks", migration_id=mid, backup_path=path)
        rid = record.id
        say(f"rollback {rid}: migration {mid} ({outcome}), backup {path or '(empty)'}")
        try:
            views = dependent_views(conn, relation_oids(conn, TARGET_SCHEMAS))
            t = time.perf_counter()
            restore(
                target, backup.path, views, major, session=session_name("rollback", rid, "psql")
            )
            restore_s = time.perf_counter() - t
            say(
                f"restore: {restore_s:.1f} s (schemas {', '.join(TARGET_SCHEMAS)}, one transaction)"
            )
            existing = {v.qualified for v in relations(conn, kinds=VIEW_KINDS)}
            recreated = [v.name for v in views if v.name in existing]
            missing = [v.name for v in views if v.name not in existing]
            if missing:
                say(f"note: views not recreated (run `dbt build`): {', '.join(missing)}")
            t = time.perf_counter()
            counts = table_counts(conn, TARGET_SCHEMAS)
            checksums = table_checksums(conn, TARGET_SCHEMAS)
            verify_s = time.perf_counter() - t
            problems = differences(backup, counts, checksums)
            say(f"verify: {len(counts)} tables, counts and checksums"
                f" {'equal' if not problems else 'DIFFER'} ({verify_s:.1f} s)")  # fmt: skip
            record.finish(
                "failed" if problems else "rolled back",
                "; ".join(problems),
                counts_after=counts,
                checksums_after=checksums,
                views_recreated=recreated,
                views_not_recreated=missing,
                restore_seconds=round(restore_s, 3),
                verify_seconds=round(verify_s, 3),
            )
            if problems:
                raise Unverified(
                    f"rollback {rid} restored but does not verify: {'; '.join(problems)}"
                )
            problem = rebuild_validation(target, say, session_name("rollback", rid, "dbt"), major)
            if problem:
                record.set(message=problem)
        except (UserError, psycopg.Error, OSError) as exc:
            if not isinstance(exc, Unverified):  # its row is written already
                record.finish("failed", str(exc))
            if isinstance(exc, UserError):
                raise
            raise UserError(f"rollback {rid} failed: {exc}") from exc
    total = time.perf_counter() - started
    say(f"rolled back migration {mid} in {total:.1f} s")
    return RollbackResult(rid, mid, restore_s, verify_s, total, missing)
