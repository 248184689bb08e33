"""Backups of the target schemas and their restore: pg_dump -Fc in one snapshot in which each
table's count and checksum are taken, its verification (pg_restore --list, or a restore into
a scratch database), and its replay in one psql transaction."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loaders import connection, embedded
from loaders.cutover.catalog import (
    TARGET_SCHEMAS,
    View,
    existing_schemas,
    table_checksums,
    table_counts,
)
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
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[:500]
        raise UserError(f"{what} failed (exit {result.returncode}): {detail}")
    return result


def take(target: connection.Target, path: Path, schemas: Sequence[str] = TARGET_SCHEMAS) -> Backup:
    """pg_dump -Fc of the existing `schemas` into `path`, in one exported snapshot in which
    the counts and checksums are taken. No schema: no file (Backup.path None)."""
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
            proc = subprocess.Popen(argv, env=target.env, stderr=stderr, stdout=subprocess.DEVNULL)
        try:
            counts = table_counts(snap, present)
            checksums = table_checksums(snap, present)
        finally:
            code = proc.wait() if proc is not None else 0
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
    name = f"luckygas_verify_{secrets.token_hex(6)}"
    with connection.connect(target, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            argv = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error"]
            _run([*argv, "-d", f"dbname={name}", str(path)], target.env, "scratch restore")
            with psycopg.connect(make_conninfo(target.conninfo, dbname=name)) as conn:
                restored = table_counts(conn, sorted({k.split(".")[0] for k in counts}))
        finally:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
    if restored != counts:
        diff = sorted(k for k in set(counts) | set(restored) if counts.get(k) != restored.get(k))
        raise UserError(f"backup {path} restored with other row counts: {', '.join(diff)}")
    return f"restored into a scratch database: {len(restored)} tables, counts equal"


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
) -> None:
    """One psql transaction: drop `schemas`, replay their part of the backup at `path` (None:
    an empty backup), recreate `views`; one that no longer fits is left out, with a warning."""
    psql = pg_program("psql", target, major)
    pg_restore = pg_program("pg_restore", target, major)
    prefix = "\\set ON_ERROR_STOP on\nset client_min_messages = warning;\n" + "".join(
        f"drop schema if exists {s} cascade;\n" for s in schemas
    )
    subset = tuple(schemas) != TARGET_SCHEMAS
    if subset and path is not None:
        # pg_restore --schema restores the schema's objects, not the schema itself
        prefix += "".join(f"create schema {s};\n" for s in schemas)
    suffix = "".join(
        "do $luckygas$ begin execute "
        + _literal(v.statement)
        + "; exception when others then raise warning 'view "
        + v.name.replace("'", "''")
        + " not recreated: %', sqlerrm; end $luckygas$;\n"
        for v in views
    )
    with tempfile.TemporaryFile("w+b") as errors:
        proc = subprocess.Popen(
            [psql, "-X", "-q", "--single-transaction", "-f", "-"],
            env=target.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(prefix.encode())
            if path is not None:
                only = [f"--schema={x}" for x in schemas] if subset else []
                dump = subprocess.Popen(
                    [pg_restore, *only, "-f", "-", str(path)],
                    env=target.env,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                )
                assert dump.stdout is not None
                shutil.copyfileobj(dump.stdout, proc.stdin, 1 << 20)
                if dump.wait() != 0:
                    proc.kill()
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


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
