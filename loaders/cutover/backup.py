"""Backups of the target schemas and their restore: pg_dump -Fc in one snapshot in which each
table's count and checksum are taken, its verification (pg_restore --list, or a restore into
a scratch database), and its replay in one psql transaction."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loaders import connection, embedded
from loaders.cutover import children
from loaders.cutover.catalog import (
    TARGET_SCHEMAS,
    View,
    dependent_views,
    existing_schemas,
    relation_oids,
    table_checksums,
    table_counts,
)
from loaders.cutover.errors import Unverified
from loaders.errors import UserError


@dataclass(frozen=True)
class Backup:
    """A backup and what its snapshot held."""

    path: Path | None  # None: no target schema existed, nothing was dumped
    schemas: list[str]  # the schemas dumped
    counts: dict[str, int]  # {"schema.table": rows}
    checksums: dict[str, str]  # {"schema.table": catalog.table_checksums}


def default_backup_dir() -> Path:
    return embedded.project_home() / "backups"


def server_major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def pg_program(name: str, target: connection.Target, major: int) -> str:
    """pg_dump / pg_restore / psql: the embedded wheel's, or for an external server the one
    on PATH when it is at least the server's major version (else the wheel's, PG 16)."""
    wheel = str(embedded.bin_path(name))
    if target.kind == "external":
        found = shutil.which(name)
        if found:
            out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
            m = re.search(r"(\d+)(?:\.\d+)?", out)
            if m and int(m.group(1)) >= major:
                return found
    return wheel


def _run(argv: Sequence[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    result = children.run(argv, env=env)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[:500]
        raise UserError(f"{what} failed (exit {result.returncode}): {detail}")
    return result


def _named(target: connection.Target, session: str | None) -> dict[str, str]:
    """target.env, with PGAPPNAME `session` (libpq programs take their name from it)."""
    return {**target.env, "PGAPPNAME": session} if session else dict(target.env)


def private_dir(path: Path, *, tighten: bool) -> str | None:
    """Create the folder `path` (and its missing parents) 0700: backups hold every customer
    of the database. An existing folder is made 0700 with `tighten` (the project's own
    folder); another one (given with --backup-dir) keeps its mode: returns a note when
    others can read it (the backup files themselves are 0600), else None."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=0o700)
        os.chmod(p, 0o700)  # mkdir's mode is masked by the umask
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and (tighten or path in missing):
        os.chmod(path, 0o700)
    elif mode & 0o077:
        return f"note: the backup folder {path} is open to others (mode {mode:04o}); its files are 0600"
    return None


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 before a program writes it (pg_dump -f keeps the
    mode of the file it truncates)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


def take(
    target: connection.Target,
    path: Path,
    schemas: Sequence[str] = TARGET_SCHEMAS,
    session: str | None = None,
) -> Backup:
    """pg_dump -Fc of the existing `schemas` into `path` (0600), in one exported snapshot in
    which the counts and checksums are taken. No schema: no file (Backup.path None).
    `session`: application_name of pg_dump's session (children.session_name)."""
    with connection.connect(target) as snap, tempfile.TemporaryFile("w+") as stderr:
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        present = existing_schemas(snap, schemas)
        proc = None
        if present:
            snapshot = snap.execute("select pg_export_snapshot()").fetchone()[0]
            pg_dump = pg_program("pg_dump", target, server_major(snap))
            argv = [pg_dump, "-Fc", f"--snapshot={snapshot}", "-f", str(path)]
            for s in present:
                argv += ["-n", s]
            private_file(path)
            proc = children.popen(
                argv, env=_named(target, session), stderr=stderr, stdout=subprocess.DEVNULL
            )
        try:
            counts = table_counts(snap, present)
            checksums = table_checksums(snap, present)
            code = proc.wait() if proc is not None else 0
        finally:
            if proc is not None:
                children.stop(proc, grace=0)  # an interruption: pg_dump goes too
            snap.rollback()
        if code != 0:
            stderr.seek(0)
            raise UserError(f"pg_dump failed (exit {code}): {' '.join(stderr.read().split())}")
    return Backup(path if present else None, present, counts, checksums)


def verify(target: connection.Target, backup: Backup, *, scratch: bool, major: int) -> str:
    """pg_restore --list names every table; with `scratch`, a restore into a new database
    has the same row counts. Returns a one-line summary; UserError if it does not hold."""
    path, counts = backup.path, backup.counts
    if path is None:
        return "nothing to verify"
    pg_restore = pg_program("pg_restore", target, major)
    listing = _run([pg_restore, "--list", str(path)], target.env, "pg_restore --list").stdout
    listed = {
        f"{m.group(1)}.{m.group(2)}"
        for m in re.finditer(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ", listing, re.M)
    }
    missing = sorted(set(counts) - listed)
    if missing:
        raise UserError(f"backup {path} lacks the data of {', '.join(missing)}")
    if not scratch:
        return f"pg_restore --list: {len(listed)} tables"
    with connection.connect(target, autocommit=True) as admin:
        name = f"{scratch_prefix(admin)}{secrets.token_hex(6)}"
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            argv = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error"]
            _run([*argv, "-d", f"dbname={name}", str(path)], target.env, "scratch restore")
            with psycopg.connect(make_conninfo(target.conninfo, dbname=name)) as conn:
                restored = table_counts(conn, sorted({k.split(".")[0] for k in counts}))
        finally:
            connection.drop_database(admin, name)
    if restored != counts:
        diff = sorted(k for k in set(counts) | set(restored) if counts.get(k) != restored.get(k))
        raise UserError(f"backup {path} restored with other row counts: {', '.join(diff)}")
    return f"restored into a scratch database: {len(restored)} tables, counts equal"


def scratch_prefix(conn: psycopg.Connection) -> str:
    """The name of the scratch databases that verify the backups of `conn`'s database begin
    with (its oid in it): a killed migrate's is dropped by the next one (recovery.py), and
    another database's is left alone."""
    oid = conn.execute("select oid from pg_database where datname = current_database()")
    return f"luckygas_verify_{oid.fetchone()[0]}_"


def differences(
    backup: Backup, counts: Mapping[str, int], checksums: Mapping[str, str]
) -> list[str]:
    """How the tables now (`counts`, `checksums`) differ from the backup's: one line per
    table whose count differs, or whose checksum does with an equal count."""
    found = [
        f"{k}: rows {backup.counts.get(k)} before, {counts.get(k)} now"
        for k in sorted(set(counts) | set(backup.counts))
        if counts.get(k) != backup.counts.get(k)
    ]
    found += [
        f"{k}: checksum differs"
        for k in sorted(set(checksums) | set(backup.checksums))
        if checksums.get(k) != backup.checksums.get(k) and counts.get(k) == backup.counts.get(k)
    ]
    return found


def restore(
    target: connection.Target,
    path: Path | None,
    views: Sequence[View],
    major: int,
    schemas: Sequence[str] = TARGET_SCHEMAS,
    session: str | None = None,
) -> None:
    """One psql transaction: drop `schemas`, replay their part of the backup at `path` (None:
    an empty backup), recreate `views`; one that no longer fits is left out, with a warning.

    The transaction is the script's own `begin` ... `commit`, not psql --single-transaction,
    which commits when its input ends: an input cut short (this process killed) must end in
    a rollback, never in half a restore committed. psql and pg_restore are children that die
    with this process (children.py); `session` names psql's session."""
    psql = pg_program("psql", target, major)
    pg_restore = pg_program("pg_restore", target, major)
    prefix = "\\set ON_ERROR_STOP on\nset client_min_messages = warning;\nbegin;\n" + "".join(
        f"drop schema if exists {s} cascade;\n" for s in schemas
    )
    subset = tuple(schemas) != TARGET_SCHEMAS
    if subset and path is not None:
        # pg_restore --schema restores the schema's objects, not the schema itself
        prefix += "".join(f"create schema {s};\n" for s in schemas)
    suffix = "".join(_recreate(v) for v in views) + "commit;\n"
    with tempfile.TemporaryFile("w+b") as errors:
        psql_argv = [psql, "-X", "-q", "-f", "-"]
        with children.guarded(
            children.popen(
                psql_argv,
                env=_named(target, session),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        ) as proc:
            assert proc.stdin is not None
            try:
                proc.stdin.write(prefix.encode())
                if path is not None:
                    only = [f"--schema={x}" for x in schemas] if subset else []
                    with children.guarded(
                        children.popen(
                            [pg_restore, *only, "-f", "-", str(path)],
                            env=target.env,
                            stdout=subprocess.PIPE,
                            stderr=errors,
                        )
                    ) as dump:
                        assert dump.stdout is not None
                        shutil.copyfileobj(dump.stdout, proc.stdin, 1 << 20)
                        if dump.wait() != 0:
                            children.stop(proc, grace=0)  # no commit: nothing changed
                            raise UserError(f"pg_restore could not read {path}")
                proc.stdin.write(suffix.encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            code = proc.wait()
        errors.seek(0)
        text = errors.read().decode(errors="replace")
    if code != 0:
        lines = [x for x in text.splitlines() if "ERROR" in x or "FATAL" in x] or text.splitlines()
        raise UserError(
            f"restore failed and was rolled back (nothing changed): {' '.join(lines[:3])}"
        )


def restore_raw(
    target: connection.Target,
    conn: psycopg.Connection,
    backup: Backup,
    major: int,
    session: str | None = None,
) -> int:
    """Raw back to the backup's (dropped when the backup has none), in one transaction, and
    verified against its counts and checksums; the views on raw are recreated. Returns the
    number of raw tables verified; Unverified when they differ."""
    views = dependent_views(conn, relation_oids(conn, ["raw"]))
    path = backup.path if "raw" in backup.schemas else None
    restore(target, path, views, major, ("raw",), session)
    want = Backup(
        backup.path,
        ["raw"],
        {k: v for k, v in backup.counts.items() if k.startswith("raw.")},
        {k: v for k, v in backup.checksums.items() if k.startswith("raw.")},
    )
    if differences(want, table_counts(conn, ["raw"]), table_checksums(conn, ["raw"])):
        raise Unverified("raw does not verify against the backup's counts and checksums")
    return len(want.counts)


def _recreate(v: View) -> str:
    """A DO block that recreates the view `v`, or warns that it no longer fits. Its dollar
    quote is a tag found in neither the definition nor the name (a fixed one, such as
    $luckygas$, would end the block early in a view that holds it: every restore failed)."""
    body = (
        f"begin execute {_literal(v.statement)}; exception when others then raise warning"
        f" {_literal(f'view {v.name} not recreated: %')}, sqlerrm; end"
    )
    tag = "$luckygas$"
    while tag in body:
        tag = f"$v{secrets.token_hex(6)}$"
    return f"do {tag} {body} {tag};\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
