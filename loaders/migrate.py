"""`luckygas migrate` and `luckygas rollback`: the migration plan's checkpoints as one command.

migrate PATH... runs, stopping at the first checkpoint that does not hold:

1. server: it answers (the embedded one, or the one PG* / LUCKYGAS_DSN name).
2. inputs: every PATH exists and every file is found, hashed (SHA-256) and opened
   (`raw.plan`); a missing or unreadable file is a *no-go* before anything is written.
3. backup of the target schemas (`raw` and the schemas dbt builds: `staging`,
   `intermediate`, `marts`, `reference`) with `pg_dump -Fc`, taken in the snapshot
   of a repeatable-read transaction (`pg_export_snapshot`) in which the row count and a
   checksum of every table are recorded, so the figures describe exactly what the backup
   holds. On a database without those schemas there is nothing to back up: no file, and
   `backup_schemas` records the empty list (a rollback then drops the schemas).
4. the backup verified: `pg_restore --list` lists every table and (by default) a restore
   into a scratch database has the recorded row counts.
5. go.
6. load: `raw.load` of the files.
7. `dbt build` (a subprocess, like an analyst's) into SHADOW schemas (`marts__shadow` ...,
   dbt var `schema_suffix`): the live staging, intermediate, marts, reference and
   validation relations are not touched, and a fresh build has no incremental state to go
   stale. The on-run-end hook still records the run in `validation`, so Mary sees why a
   migration stopped.
8. after-checks (target/run_results.json): no model failed; the reconciliation tests
   (customers_reconcile, deliveries_reconcile) and every error-severity test passed, among
   them the orphan-rate gate R03 (tests/reconciliation/delivery_orphan_rate.sql). Then the
   migration metrics of the shadow build (validation.migration_metrics): each entity's
   success rate meets its target (var migration_success_targets, the plan's; `--success-
   target ENTITY=RATE` sets another for this migration, passed to dbt and recorded in the
   migration's arguments). A failed check is a *no-go*.
9. swap (`swap_in`), after a VACUUM (ANALYZE) of the shadow tables so that no autovacuum
   holds a lock on them: every shadow relation moved into its live schema in ONE transaction,
   so readers of customers and deliveries see the old tables or the new ones, never a mix.
   Then the row count of every table of the target schemas is recorded.

A stop after the load (a no-go at the after-checks, a failed build, a failed swap) drops
the shadow schemas and undoes the load: raw is restored from the backup and verified
against its counts and checksums. A stopped migration therefore leaves every table as it
was. `--dry-run` runs the checks that write nothing and prints the plan: no backup, no
load, no row in `validation.migrations`.

Every migration (not a dry run) is one row of `validation.migrations`, written when it
starts and completed when it ends, with outcome succeeded, no-go or failed.

rollback [--to ID] (default: the latest succeeded migration not rolled back yet) brings the
target schemas back to their state before that migration, from its backup, in ONE
transaction (psql --single-transaction): drop them (cascade), replay the backup
(`pg_restore -f -` piped into psql), recreate the views of other schemas that depended on
them (validation.source_reconciliation, views of Mary's). Dropping the schemas, rather than `pg_restore --clean`, also removes tables
created after the backup (a new file's raw table), and `--clean` alone cannot drop a table
other schemas' views depend on. A view whose definition no longer fits the restored tables
is left out (warned, listed in the rollback row; `dbt build` recreates it). Then it
verifies: each table's row count and checksum (md5 of the sorted md5s of its rows) equal
the migration's counts_before and checksums_before, and the set of tables is the same.
Each rollback is one row of `validation.rollbacks`; the validation schema itself is never
touched by the restore (Mary's history and reviews stay), but its dbt-built tables
(raw_tables, source_reconciliation, migration_metrics) are rebuilt on the restored tables
(`dbt run --select path:models/validation`) so they show the restored state.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loaders import connection, embedded, raw
from loaders.errors import UserError
from loaders.readers.base import SourceError

# What a migration changes and a rollback restores: the raw layer and every schema dbt builds
# (dbt_project.yml), so that after a rollback staging, intermediate and marts agree with raw.
# The validation schema is not among them: its history survives a rollback.
TARGET_SCHEMAS = ("raw", "staging", "intermediate", "marts", "reference")
RECONCILE_TESTS = ("customers_reconcile", "deliveries_reconcile")
SHADOW_SUFFIX = (
    "__shadow"  # dbt var schema_suffix: where migrate builds (macros/generate_schema_name)
)
SWAP_LOCK_TIMEOUT = "60s"  # how long the swap waits for readers' locks before giving up
LOCK_KEY = 0x4C47_4D49  # pg_advisory_lock key: one migrate or rollback at a time per database
PROJECT_DIR = Path(__file__).resolve().parents[1]  # the dbt project (dbt_project.yml)
SUCCESS_TARGETS_VAR = "migration_success_targets"  # dbt var: the plan's target per entity

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
        check (outcome in ('running', 'succeeded', 'no-go', 'failed')),
    message text
);
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
        check (outcome in ('running', 'rolled back', 'failed')),
    message text
);
"""

Say = Callable[[str], None]


class NoGo(UserError):
    """A checkpoint said no: nothing was changed (exit 2)."""


class Failed(UserError):
    """The work or a check after it failed (exit 2); the backup allows a rollback."""


@dataclass
class Timings:
    backup: float = 0.0
    backup_verify: float = 0.0
    load: float = 0.0
    dbt: float = 0.0
    after: float = 0.0
    vacuum: float = 0.0  # VACUUM (ANALYZE) of the shadow tables, before the swap
    swap: float = 0.0  # the one transaction readers may wait on


@dataclass(frozen=True)
class Metric:
    """One row of validation.migration_metrics: an entity, or one source of it."""

    entity: str
    level: str  # entity or source
    source_file: str | None
    source_sheet: str | None
    source_rows: int
    final: int
    merged: int
    quarantined: int
    set_aside: int
    success_rate: Decimal | None  # None: nothing left to measure
    target: Decimal
    meets_target: bool

    @property
    def measured(self) -> int:
        """The denominator: source rows less the rows set aside."""
        return self.source_rows - self.set_aside

    def shown(self) -> str:
        """`delivery 99.584 % of 5,289 rows (target 99.9 %)`, the rate truncated, not rounded,
        so that a rate below its target never reads as equal to it."""
        name = (
            self.entity
            if self.level == "entity"
            else f"{self.source_sheet!r} of {self.source_file}"
        )
        if self.success_rate is None:
            return f"{name}: no row to measure (target {percent(self.target)})"
        return (
            f"{name} {percent(self.success_rate, 3)} of {self.measured:,} rows"
            f" (target {percent(self.target)})"
        )


@dataclass
class MigrationResult:
    migration_id: int | None
    backup_path: Path | None
    counts_before: dict[str, int] = field(default_factory=dict)
    counts_after: dict[str, int] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    metrics: list[Metric] = field(default_factory=list)  # the shadow build's, entity level


@dataclass
class RollbackResult:
    rollback_id: int
    migration_id: int
    restore_seconds: float
    verify_seconds: float
    total_seconds: float
    views_not_recreated: list[str]


# -- helpers -----------------------------------------------------------------------------


def default_backup_dir() -> Path:
    return embedded.project_home() / "backups"


def _server_major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def pg_program(name: str, target: connection.Target, server_major: int) -> str:
    """pg_dump / pg_restore / psql: the embedded wheel's, or for an external server the one
    on PATH when it is at least the server's major version (else the wheel's, PG 16)."""
    wheel = str(embedded.bin_path(name))
    if target.kind == "external":
        found = shutil.which(name)
        if found:
            out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
            m = re.search(r"(\d+)(?:\.\d+)?", out)
            if m and int(m.group(1)) >= server_major:
                return found
    return wheel


def _run(argv: Sequence[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[:500]
        raise UserError(f"{what} failed (exit {result.returncode}): {detail}")
    return result


def existing_schemas(conn: psycopg.Connection, schemas: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "select nspname from pg_namespace where nspname = any(%s) order by nspname",
        (list(schemas),),
    ).fetchall()
    return [r[0] for r in rows]


def tables_of(conn: psycopg.Connection, schemas: Sequence[str]) -> list[tuple[str, str]]:
    return conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n"
        " on n.oid = c.relnamespace where n.nspname = any(%s) and c.relkind in ('r', 'p')"
        " order by 1, 2",
        (list(schemas),),
    ).fetchall()


def table_counts(conn: psycopg.Connection, schemas: Sequence[str]) -> dict[str, int]:
    """{"schema.table": rows} for every table of `schemas`."""
    counts = {}
    for schema, table in tables_of(conn, schemas):
        q = sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
        counts[f"{schema}.{table}"] = int(conn.execute(q).fetchone()[0])
    return counts


def table_checksums(conn: psycopg.Connection, schemas: Sequence[str]) -> dict[str, str]:
    """{"schema.table": checksum of its rows} ('' for an empty table): the md5 of the sorted
    md5s of its rows as text, so that the aggregate holds 32 bytes per row whatever the row's
    width, and equal tables give equal sums whatever their physical order."""
    sums = {}
    for schema, table in tables_of(conn, schemas):
        q = sql.SQL(
            "select coalesce(md5(string_agg(h, '' order by h)), '')"
            " from (select md5(t::text) as h from {} as t) as rows"
        ).format(sql.Identifier(schema, table))
        sums[f"{schema}.{table}"] = conn.execute(q).fetchone()[0]
    return sums


def take_lock(conn: psycopg.Connection) -> None:
    """A session advisory lock: a second migrate or rollback on the database stops here."""
    if not conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        raise UserError("another `luckygas migrate` or `rollback` is running on this database")


def ensure_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(DDL)


def _update(conn: psycopg.Connection, mid: int, **cols) -> None:
    """Set columns of the migration's row (a dict is stored as jsonb)."""
    sets, params = [], []
    for name, value in cols.items():
        sets.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
        params.append(json.dumps(value) if isinstance(value, dict) else value)
    conn.execute(
        sql.SQL("update validation.migrations set {} where migration_id = %s").format(
            sql.SQL(", ").join(sets)
        ),
        [*params, mid],
    )


def _finish(conn: psycopg.Connection, mid: int, outcome: str, message: str, **cols) -> None:
    """Complete the migration's row: its end, outcome and message (and any other column)."""
    with conn.transaction():
        conn.execute(
            "update validation.migrations set finished_at = clock_timestamp()"
            " where migration_id = %s",
            (mid,),
        )
        _update(conn, mid, outcome=outcome, message=message or None, **cols)


# -- success targets -------------------------------------------------------------------


def percent(rate: Decimal | float, places: int | None = None) -> str:
    """0.99584 -> `99.584 %` (`places` decimals, truncated), 1 -> `100 %`, 0.999 -> `99.9 %`."""
    value = Decimal(str(rate)) * 100
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    else:
        value = value.normalize()
    return f"{value:f} %"


def project_success_targets() -> dict[str, float]:
    """The plan's success target per entity: var migration_success_targets of dbt_project.yml."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return {str(k): float(v) for k, v in project["vars"][SUCCESS_TARGETS_VAR].items()}


def parse_success_target(text: str) -> tuple[str, float]:
    """`ENTITY=RATE` (RATE a fraction, 0 to 1: delivery=0.995) -> (entity, rate);
    ValueError with the reason otherwise."""
    entity, sep, rate = text.partition("=")
    if not sep or not entity.strip():
        raise ValueError(f"{text!r} is not ENTITY=RATE (such as delivery=0.995)")
    try:
        value = Decimal(rate.strip())
    except InvalidOperation:
        raise ValueError(f"{rate!r} is not a number (a rate between 0 and 1)") from None
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"{rate!r} is not a rate between 0 and 1 (99.5 % is 0.995)")
    return entity.strip(), float(value)


def success_targets(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The plan's targets with `overrides` (from --success-target) applied; UserError for an
    entity the plan has no target for."""
    targets = project_success_targets()
    unknown = sorted(set(overrides or {}) - set(targets))
    if unknown:
        raise UserError(
            f"--success-target: no entity {', '.join(unknown)} (the entities: {', '.join(targets)})"
        )
    return {**targets, **(overrides or {})}


def success_target_arguments(overrides: Mapping[str, float] | None) -> list[str]:
    """The overrides as the command line writes them, for validation.migrations."""
    return [a for e, r in (overrides or {}).items() for a in ("--success-target", f"{e}={r}")]


# -- inputs ------------------------------------------------------------------------------


def inspect_inputs(paths: Sequence[Path]) -> tuple[tuple | None, list[dict], str]:
    """(raw.plan result or None, files [{path, sha256, bytes}], no-go reason or '')."""
    for p in paths:
        if not Path(p).exists():
            return None, [], f"{p}: no such file or directory"
    try:
        planned = raw.plan(paths)
    except SourceError as exc:
        return None, [], str(exc)
    files = [
        {"path": str(f.path.resolve()), "sha256": f.sha256, "bytes": f.size} for f in planned[0]
    ]
    if not files:
        return None, [], f"no loadable file under {', '.join(map(str, paths))}"
    return planned, files, ""


# -- backup ------------------------------------------------------------------------------


def backup(
    target: connection.Target,
    path: Path | None,
    schemas: Sequence[str] = TARGET_SCHEMAS,
) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """pg_dump -Fc of the existing `schemas` into `path`, in one exported snapshot in which
    the counts and checksums are taken: (schemas dumped, counts, checksums)."""
    with connection.connect(target) as snap, tempfile.TemporaryFile("w+") as stderr:
        snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snap.read_only = True
        present = existing_schemas(snap, schemas)
        proc = None
        if present:
            assert path is not None
            snapshot = snap.execute("select pg_export_snapshot()").fetchone()[0]
            pg_dump = pg_program("pg_dump", target, _server_major(snap))
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
    return present, counts, checksums


def verify_backup(
    target: connection.Target,
    path: Path,
    counts: dict[str, int],
    *,
    scratch: bool,
    server_major: int,
) -> str:
    """pg_restore --list names every table; with `scratch`, a restore into a new database
    has the same row counts. Returns a one-line summary; UserError if it does not hold."""
    pg_restore = pg_program("pg_restore", target, server_major)
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


# -- dbt ---------------------------------------------------------------------------------


def dbt_environment(target: connection.Target, tmp: Path) -> dict[str, str]:
    """target.env; profiles from DBT_PROFILES_DIR, ./profiles.yml, or a copy of the example."""
    env = dict(target.env)
    if not env.get("DBT_PROFILES_DIR") and not (PROJECT_DIR / "profiles.yml").exists():
        profiles = tmp / "profiles"
        profiles.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_DIR / "profiles.yml.example", profiles / "profiles.yml")
        env["DBT_PROFILES_DIR"] = str(profiles)
    return env


def dbt_target_dir(env: dict[str, str]) -> Path:
    value = env.get("DBT_TARGET_PATH")
    if not value:
        return PROJECT_DIR / "target"
    path = Path(value)
    return path if path.is_absolute() else PROJECT_DIR / path


def run_dbt(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """One dbt command of the project, its output to `log`; (exit code, summary)."""
    venv_dbt = Path(sys.executable).parent / "dbt"  # the dbt installed beside loaders
    dbt = venv_dbt if venv_dbt.exists() else Path(shutil.which("dbt") or "dbt")
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(
            [str(dbt), *args, "--project-dir", str(PROJECT_DIR)],
            env=env,
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    text = log.read_text(encoding="utf-8", errors="replace")
    done = re.findall(r"Done\. (PASS=\d+ .*TOTAL=\d+)", text)
    return code, done[-1] if done else ""


def run_dbt_build(
    env: dict[str, str], log: Path, targets: Mapping[str, float] | None = None
) -> tuple[int, str]:
    """`dbt build` of the project into the shadow schemas, with the success `targets` (all
    of them: --vars replaces a dict var whole); its output to `log`; (exit code, summary)."""
    variables: dict = {"schema_suffix": SHADOW_SUFFIX}
    if targets:
        variables[SUCCESS_TARGETS_VAR] = dict(targets)
    return run_dbt(["build", "--vars", json.dumps(variables)], env, log)


def rebuild_validation(target: connection.Target, say: Say) -> str | None:
    """After a restore: rebuild the validation models (raw_tables, source_reconciliation,
    migration_metrics: tables computed from the restored raw and marts, which the backup
    does not hold), so Mary's record shows the restored state and the hook records its
    reconciliation. None, or what went wrong (the restore itself stands)."""
    with tempfile.TemporaryDirectory(prefix="luckygas-dbt-") as tmp:
        env = dbt_environment(target, Path(tmp))
        log = Path(tmp) / "dbt.log"
        code, summary = run_dbt(["run", "--select", "path:models/validation"], env, log)
        if code == 0:
            say(f"validation rebuilt on the restored tables: {summary or 'done'}")
            return None
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    problem = "validation models not rebuilt (run `dbt build`): " + " | ".join(tail)
    say(f"note: {problem}")
    return problem


def check_run_results(target_dir: Path, since: float) -> list[str]:
    """Problems in the dbt build's run_results.json (empty list: every after-check holds)."""
    results_path = target_dir / "run_results.json"
    if not results_path.exists() or results_path.stat().st_mtime < since:
        return [f"{results_path} was not written by this build"]
    results = json.loads(results_path.read_text(encoding="utf-8"))["results"]
    try:
        nodes = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    except (OSError, ValueError, KeyError):
        nodes = {}
    problems = []
    by_name = {
        r["unique_id"].split(".")[-1]: r for r in results if r["unique_id"].startswith("test.")
    }
    for name in RECONCILE_TESTS:
        r = by_name.get(name)
        if r is None:
            problems.append(f"reconciliation test {name} did not run")
        elif r["status"] != "pass":
            problems.append(f"reconciliation test {name}: {r['status']} ({r.get('failures')} rows)")
    for r in results:
        uid = r["unique_id"]
        if not uid.startswith("test.") and r["status"] == "error":
            problems.append(f"{uid.split('.')[0]} {uid.split('.', 2)[-1]}: error")
            continue
        if not uid.startswith("test.") or r["status"] not in ("fail", "error"):
            continue
        severity = str(nodes.get(uid, {}).get("config", {}).get("severity", "error")).lower()
        if severity == "error" and uid.split(".")[-1] not in RECONCILE_TESTS:
            problems.append(f"test {uid.split('.', 2)[-1]}: {r['status']}")
    return problems


def unaccounted_tables(conn: psycopg.Connection) -> list[str]:
    """Each raw table rule R04 rejects in the shadow build: file, sheet, rows and headers."""
    view = sql.Identifier(f"validation{SHADOW_SUFFIX}", "raw_tables")
    if not conn.execute(
        "select to_regclass(%s)", (f"validation{SHADOW_SUFFIX}.raw_tables",)
    ).fetchone()[0]:
        return []
    rows = conn.execute(
        sql.SQL(
            "select source_file, source_sheet, raw_rows, rows_staged, status, layout, headers"
            " from {} where status in ('unrecognised', 'not_read')"
            " order by source_file, source_sheet"
        ).format(view)
    ).fetchall()
    found = []
    for file, sheet, n, staged, status, layout, headers in rows:
        shown = " | ".join(h or "(blank)" for h in headers[:12]) + (
            " | ..." if len(headers) > 12 else ""
        )
        if status == "unrecognised":
            found.append(
                f"sheet {sheet!r} of {file} ({n:,} rows; headers: {shown}) matches no layout of"
                " seeds/raw_layouts.csv: declare it (migrated, or not_migrated with a reason)"
            )
        else:
            found.append(
                f"sheet {sheet!r} of {file} ({n:,} rows, layout {layout}) was read for"
                f" {staged:,} of its rows by its staging model"
            )
    return found


def shadow_metrics(conn: psycopg.Connection) -> list[Metric]:
    """validation.migration_metrics of the shadow build: entities first, then their sources."""
    name = f"validation{SHADOW_SUFFIX}.migration_metrics"
    if not conn.execute("select to_regclass(%s)", (name,)).fetchone()[0]:
        raise NoGo(f"{name} was not built: the success rates could not be measured")
    rows = conn.execute(
        sql.SQL(
            "select entity, level, source_file, source_sheet, source_rows, final, merged,"
            " quarantined, set_aside, success_rate, target, meets_target from {}"
            " order by entity, level, source_file, source_sheet"
        ).format(sql.Identifier(*name.split(".")))
    ).fetchall()
    return [Metric(*r) for r in rows]


def largest_reasons(conn: psycopg.Connection, entity: str, n: int = 2) -> list[tuple[str, int]]:
    """The `n` quarantine reasons with the most rows of `entity` in the shadow build, among
    those that count against the success rate (not set aside): (reason, rows)."""
    quarantine = sql.Identifier(f"marts{SHADOW_SUFFIX}", f"{entity}_quarantine")
    reasons = sql.Identifier(f"reference{SHADOW_SUFFIX}", "quarantine_reasons")
    return conn.execute(
        sql.SQL(
            "select q.reason, count(*) from {} as q left join {} as r on r.reason = q.reason"
            " where not coalesce(r.set_aside, false) group by q.reason"
            " order by count(*) desc, q.reason limit %s"
        ).format(quarantine, reasons),
        (n,),
    ).fetchall()


def below_target(conn: psycopg.Connection, metrics: Sequence[Metric]) -> list[str]:
    """A no-go reason per entity below its target: its rate, the target and the two largest
    quarantine reasons that count against it."""
    found = []
    for m in metrics:
        if m.level != "entity" or m.meets_target:
            continue
        if m.success_rate is None:
            found.append(f"{m.entity}: no source row to migrate, success cannot be measured")
            continue
        reasons = largest_reasons(conn, m.entity)
        found.append(
            f"{m.entity}: success rate {percent(m.success_rate, 3)}"
            f" ({m.final + m.merged:,} of {m.measured:,} rows final or merged,"
            f" {m.set_aside:,} set aside) is below its target {percent(m.target)}"
            + (
                "; largest quarantine reasons: "
                + ", ".join(f"{reason} {count:,}" for reason, count in reasons)
                if reasons
                else ""
            )
            + f" (to accept a lower rate for this migration: --success-target {m.entity}=RATE)"
        )
    return found


# -- migrate -----------------------------------------------------------------------------


def migrate(
    paths: Sequence[Path],
    *,
    dry_run: bool = False,
    backup_dir: Path | None = None,
    verify_restore: bool = True,
    arguments: Sequence[str] = (),
    success_target_overrides: Mapping[str, float] | None = None,
    say: Say = print,
) -> MigrationResult:
    """Run the checkpoints; raise NoGo / Failed / UserError at the first that fails.

    Until the swap (step 9) the live staging, intermediate, marts, reference and
    validation relations are not touched: dbt builds into the shadow schemas. A stop after
    the load undoes the load (raw restored from the backup), so a stopped migration leaves
    every table as it was. `success_target_overrides` ({entity: rate}) replace the plan's
    targets for this migration; they are appended to `arguments` in validation.migrations,
    so that accepting a lower rate is on record."""
    paths = [Path(p) for p in paths]
    targets = success_targets(success_target_overrides)
    arguments = [*arguments, *success_target_arguments(success_target_overrides)]
    shown_targets = ", ".join(f"{e} {percent(r)}" for e, r in targets.items())
    backup_dir = Path(backup_dir) if backup_dir is not None else default_backup_dir()
    target = connection.resolve()
    say(f"[1/9] server: {target.description}")
    with connection.connect(target, autocommit=True) as conn:
        major = _server_major(conn)
        say(f"      reachable, PostgreSQL {conn.info.server_version}")
        planned, files, nogo = inspect_inputs(paths)
        for f in files:
            say(f"[2/9] file {f['path']}: {f['bytes']:,} bytes, sha256 {f['sha256'][:16]}...")
        if dry_run:
            present = existing_schemas(conn, TARGET_SCHEMAS)
            counts = table_counts(conn, present)
            say(f"plan (dry run, nothing written): back up schemas {', '.join(present) or '(none)'}"
                f" ({len(counts)} tables, {sum(counts.values()):,} rows) into {backup_dir};"
                f" verify it; load {len(files)} files; dbt build into the shadow schemas"
                f" (*{SHADOW_SUFFIX}) in {PROJECT_DIR}; check reconciliation, orphan rate,"
                f" error tests and success rates (targets: {shown_targets}); swap the shadow"
                " relations in; record counts")  # fmt: skip
            if nogo:
                raise NoGo(f"no-go: {nogo}")
            say("go: every input is present and readable")
            return MigrationResult(None, None, counts_before=counts)

        take_lock(conn)
        ensure_tables(conn)
        mid = conn.execute(
            "insert into validation.migrations (arguments, files) values (%s, %s)"
            " returning migration_id",
            (list(arguments), json.dumps(files)),
        ).fetchone()[0]
        result = MigrationResult(mid, None)
        if nogo:
            _finish(conn, mid, "no-go", nogo)
            raise NoGo(f"no-go (migration {mid}): {nogo}; nothing was changed")
        say(f"migration {mid}")
        step = "backup"
        loaded = False  # from the load on, a stop undoes the load
        schemas: list[str] = []
        try:
            left = drop_shadows(conn)
            if left:
                say(f"      dropped what an earlier stopped migration left: {', '.join(left)}")
            backup_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            path = (backup_dir / f"migration-{mid}-{stamp}.dump").resolve()
            t = time.perf_counter()
            schemas, counts, checksums = backup(target, path)
            result.timings.backup = time.perf_counter() - t
            result.counts_before = counts
            if not schemas:
                path = None
                say("[3/9] backup: no target schema yet: nothing to back up (recorded)")
            else:
                say(f"[3/9] backup: {path} ({path.stat().st_size:,} bytes, {len(counts)} tables,"
                    f" {sum(counts.values()):,} rows) in {result.timings.backup:.1f} s")  # fmt: skip
            result.backup_path = path
            _update(
                conn,
                mid,
                backup_path=None if path is None else str(path),
                backup_schemas=schemas,
                counts_before=counts,
                checksums_before=checksums,
            )
            step = "backup verification"
            t = time.perf_counter()
            if path is not None:
                summary = verify_backup(
                    target, path, counts, scratch=verify_restore, server_major=major
                )
            else:
                summary = "nothing to verify"
            result.timings.backup_verify = time.perf_counter() - t
            say(f"[4/9] backup verified: {summary} ({result.timings.backup_verify:.1f} s)")
            say(f"[5/9] go: {len(files)} files present, hashed and readable")

            step = "load"
            loaded = True
            t = time.perf_counter()
            report = raw.load(
                paths,
                lambda: connection.connect(target, autocommit=True),
                planned=planned,
                arguments=["migrate", *map(str, paths)],
            )
            result.timings.load = time.perf_counter() - t
            n_loaded = sum(r.outcome == "loaded" for r in report.results)
            rows = sum(r.rows_written for r in report.results)
            say(f"[6/9] load {report.load_id}: {n_loaded} sources loaded, {rows:,} rows,"
                f" {len(report.results) - n_loaded} unchanged ({result.timings.load:.1f} s)")  # fmt: skip

            step = "dbt build"
            t = time.perf_counter()
            log = backup_dir / f"migration-{mid}-dbt.log"
            say(f"      dbt build into *{SHADOW_SUFFIX} running (its output: {log})")
            with tempfile.TemporaryDirectory(prefix="luckygas-dbt-") as tmp:
                env = dbt_environment(target, Path(tmp))
                started = time.time() - 1
                code, summary = run_dbt_build(env, log, targets)
                result.timings.dbt = time.perf_counter() - t
                if code != 0 and not summary:
                    raise UserError(f"dbt build exited {code} (no summary); see {log}")
                say(
                    f"[7/9] dbt build into *{SHADOW_SUFFIX}: {summary} ({result.timings.dbt:.1f} s)"
                )
                step = "after-checks"
                t = time.perf_counter()
                problems = check_run_results(dbt_target_dir(env), started)
            if any(not p.startswith(("test ", "reconciliation ")) for p in problems):
                raise UserError(f"{'; '.join(problems)}; see {log}")
            if problems:
                raise NoGo("; ".join(unaccounted_tables(conn) + problems))
            if code != 0:
                raise UserError(f"dbt build exited {code} ({summary}); see {log}")
            metrics = shadow_metrics(conn)
            result.metrics = [m for m in metrics if m.level == "entity"]
            say("      success rates: " + "; ".join(m.shown() for m in result.metrics))
            for m in metrics:
                if m.level == "source" and not m.meets_target:
                    say(f"      note: source below its entity's target: {m.shown()}")
            short = below_target(conn, metrics)
            if short:
                raise NoGo("; ".join(short))
            say("[8/9] after-checks: reconciliation exact, orphan rate within the threshold,"
                " no error test failing, every entity's success rate meets its target")  # fmt: skip

            step = "vacuum"
            t_vacuum = time.perf_counter()
            vacuum_shadows(conn)
            result.timings.vacuum = time.perf_counter() - t_vacuum
            step = "swap"
            t_swap = time.perf_counter()
            moved, recreated, missing = swap_in(conn)
            result.timings.swap = time.perf_counter() - t_swap
            loaded = False  # the migration is in: from here on only `rollback` undoes it
            result.counts_after = table_counts(conn, TARGET_SCHEMAS)
            result.timings.after = time.perf_counter() - t
            marts = {k: v for k, v in result.counts_after.items() if k.startswith("marts.")}
            say(f"[9/9] swapped in {moved} relations in one transaction"
                f" ({result.timings.swap:.2f} s)"
                + (f"; views recreated: {', '.join(recreated)}" if recreated else "")
                + (f"; views NOT recreated: {', '.join(missing)}" if missing else "")
                + "; marts: " + ", ".join(f"{k.split('.', 1)[1]}={v:,}" for k, v in marts.items()))  # fmt: skip
        except (UserError, psycopg.Error, OSError) as exc:
            nogo = isinstance(exc, NoGo)
            what = f"no-go at {step}" if nogo else f"failed at {step}"
            message = f"{what}: {' '.join(str(exc).split())}"
            if not conn.closed:
                message += "; " + _stop(conn, target, mid, loaded, schemas, major, say)
                _finish(conn, mid, "no-go" if nogo else "failed", message)
            raise (NoGo if nogo else Failed)(f"migration {mid} {message}") from exc
        except BaseException as exc:  # Ctrl-C: undo what can be undone, record, re-raise
            if not conn.closed:
                message = f"interrupted at {step}: {exc!r}"
                message += "; " + _stop(conn, target, mid, loaded, schemas, major, say)
                _finish(conn, mid, "failed", message)
            raise
        plan = project_success_targets()
        accepted = [
            f"{m.entity} {percent(m.success_rate, 3)} accepted with --success-target"
            f" {m.entity}={targets[m.entity]} (the plan's target: {percent(plan[m.entity])})"
            for m in result.metrics
            if targets[m.entity] != plan[m.entity]
            and m.success_rate is not None
            and m.success_rate < Decimal(str(plan[m.entity]))
        ]
        _finish(conn, mid, "succeeded", "; ".join(accepted), counts_after=result.counts_after)
        return result


def _stop(
    conn: psycopg.Connection,
    target: connection.Target,
    mid: int,
    loaded: bool,
    schemas: Sequence[str],
    major: int,
    say: Say,
) -> str:
    """After a stop: drop the shadow schemas and, if the load ran, restore raw from the
    backup. Returns what was done, for the message."""
    done = []
    try:
        if drop_shadows(conn):
            done.append("the shadow build was dropped")
        if not loaded:
            return "; ".join(done + ["the live tables were not touched"])
        row = conn.execute(
            "select backup_path, counts_before, checksums_before from validation.migrations"
            " where migration_id = %s",
            (mid,),
        ).fetchone()
        backup_path = row[0] if "raw" in schemas else None
        views = dependent_views(conn, relation_oids(conn, ["raw"]))
        restore(target, backup_path, views, major, schemas=("raw",))
        want = {k: v for k, v in (row[1] or {}).items() if k.startswith("raw.")}
        want_sums = {k: v for k, v in (row[2] or {}).items() if k.startswith("raw.")}
        if table_counts(conn, ["raw"]) != want or table_checksums(conn, ["raw"]) != want_sums:
            raise UserError("raw does not verify against the backup's counts and checksums")
        say(f"      the load was undone: raw restored from the backup ({len(want)} tables verify)")
        done.append("the load was undone (raw restored from the backup and verified)")
        done.append("the live tables were not touched")
    except (UserError, psycopg.Error, OSError) as exc:
        done.append(
            f"undoing the load FAILED ({' '.join(str(exc).split())}): "
            f"`luckygas rollback --to {mid}` restores the state before it"
        )
    return "; ".join(done)


# -- rollback ----------------------------------------------------------------------------

DEPENDENT_VIEWS = """
with recursive deps(oid) as (
    select distinct r.ev_class
    from pg_depend d
    join pg_rewrite r on r.oid = d.objid and d.classid = 'pg_rewrite'::regclass
    where d.refobjid = any(%(oids)s::oid[]) and r.ev_class <> d.refobjid
    union
    select r.ev_class
    from deps
    join pg_depend d on d.refobjid = deps.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite r on r.oid = d.objid
    where r.ev_class <> deps.oid
)
select n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid, true)
from deps join pg_class c on c.oid = deps.oid join pg_namespace n on n.oid = c.relnamespace
where c.oid <> all(%(oids)s::oid[]) and c.relkind in ('v', 'm')
order by c.oid
"""

RELATIONS = """
select c.oid, n.nspname, c.relname, c.relkind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
order by n.nspname, c.relname
"""

RELKIND = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}


def relation_oids(conn: psycopg.Connection, schemas: Sequence[str]) -> list[int]:
    return [r[0] for r in conn.execute(RELATIONS, (list(schemas),)).fetchall()]


def dependent_views(conn: psycopg.Connection, oids: Sequence[int]) -> list[tuple[str, str, str]]:
    """Views and materialized views that depend (transitively) on the relations `oids` and
    are not among them, in creation order: (qualified name, 'v' or 'm', create statement).
    Dropping those relations with cascade drops these; the statements recreate them."""
    out = []
    with conn.transaction():
        # an empty search_path: every name in the definitions comes schema-qualified
        conn.execute("select set_config('search_path', '', true)")
        found = conn.execute(DEPENDENT_VIEWS, {"oids": list(oids)}).fetchall()
    for schema, name, kind, definition in found:
        ident = sql.Identifier(schema, name).as_string(conn)
        what = "materialized view" if kind == "m" else "view"
        out.append((f"{schema}.{name}", kind, f"create {what} {ident} as {definition.rstrip(';')}"))
    return out


# -- the shadow build and the swap --------------------------------------------------------


def shadow_schemas(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(shadow schema, live schema) for every schema a shadow build made (marts__shadow ...)."""
    pattern = "%" + SHADOW_SUFFIX.replace("_", "\\_")
    found = conn.execute(
        "select nspname from pg_namespace where nspname like %s order by 1", (pattern,)
    ).fetchall()
    return [(r[0], r[0][: -len(SHADOW_SUFFIX)]) for r in found]


def drop_shadows(conn: psycopg.Connection) -> list[str]:
    """Drop what a shadow build left (an earlier migration that stopped, or this one)."""
    dropped = []
    for shadow, _ in shadow_schemas(conn):
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(shadow)))
        dropped.append(shadow)
    return dropped


def vacuum_shadows(conn: psycopg.Connection) -> None:
    """VACUUM (ANALYZE) every table of the shadow schemas before the swap (conn in
    autocommit). Autovacuum otherwise starts on the freshly written tables, and the swap's
    locks wait for it until deadlock_timeout (1 s) cancels it, once per table: readers
    waited 1.3 to 2.3 s for the swap at full scale. Readers' first queries on the new
    tables also get statistics and an all-visible map."""
    shadows = [shadow for shadow, _ in shadow_schemas(conn)]
    for _, schema, name, kind in conn.execute(RELATIONS, (shadows,)).fetchall():
        if kind in ("r", "p", "m"):
            conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.Identifier(schema, name)))


def swap_in(conn: psycopg.Connection) -> tuple[int, list[str], list[str]]:
    """Move every relation of the shadow schemas into its live schema, in ONE transaction:
    a reader sees the old customers, deliveries ... or the new ones, never a mix, and
    never a missing table (it waits for the locks, at most SWAP_LOCK_TIMEOUT, then sees
    the new tables). The live schemas themselves are kept (their privileges, and what
    else lives in them, such as validation's history tables). Views of other schemas on
    the replaced relations (a saved query of Mary's) are recreated on the new ones.
    Returns (relations moved, views recreated, views that could not be)."""
    with conn.transaction():
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(SWAP_LOCK_TIMEOUT)))
        pairs = shadow_schemas(conn)
        if not pairs:
            raise UserError("the dbt build made no shadow schema: nothing to swap in")
        moving = conn.execute(RELATIONS, ([shadow for shadow, _ in pairs],)).fetchall()
        live_of = dict(pairs)
        replaced = []  # (oid, live schema, name, kind) of the live relations being replaced
        for _, shadow, name, _ in moving:
            row = conn.execute(
                "select c.oid, c.relkind from pg_class c join pg_namespace n"
                " on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
                (live_of[shadow], name),
            ).fetchone()
            if row is not None:
                replaced.append((row[0], live_of[shadow], name, row[1]))
        views = dependent_views(conn, [oid for oid, *_ in replaced])
        for live in live_of.values():
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(live)))
        for _, live, name, kind in replaced:
            conn.execute(
                sql.SQL("drop {} if exists {} cascade").format(
                    sql.SQL(RELKIND.get(kind, "table")), sql.Identifier(live, name)
                )
            )
        for _, shadow, name, kind in moving:
            conn.execute(
                sql.SQL("alter {} {} set schema {}").format(
                    sql.SQL(RELKIND[kind]),
                    sql.Identifier(shadow, name),
                    sql.Identifier(live_of[shadow]),
                )
            )
        for shadow, _ in pairs:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(shadow)))
        recreated, missing = [], []
        for name, _, statement in views:
            if conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]:
                continue  # not dropped: it did not depend on a replaced relation after all
            try:
                with conn.transaction():  # a savepoint: a view that no longer fits is left out
                    conn.execute(statement)
                recreated.append(name)
            except psycopg.Error:
                missing.append(name)
    return len(moving), recreated, missing


def pick_migration(conn: psycopg.Connection, to: int | None) -> tuple:
    cols = "migration_id, outcome, backup_path, backup_schemas, counts_before, checksums_before"
    if to is None:
        row = conn.execute(
            f"select {cols} from validation.migrations m where outcome = 'succeeded'"
            " and not exists (select 1 from validation.rollbacks r where r.migration_id ="
            " m.migration_id and r.outcome = 'rolled back') order by migration_id desc limit 1"
        ).fetchone()
        if row is None:
            raise UserError("no succeeded migration to roll back (give --to MIGRATION_ID)")
    else:
        row = conn.execute(
            f"select {cols} from validation.migrations where migration_id = %s", (to,)
        ).fetchone()
        if row is None:
            raise UserError(f"no migration {to} in validation.migrations")
    if row[3] is None:
        raise UserError(f"migration {row[0]} ({row[1]}) has no backup: it changed nothing")
    if row[2] is not None and not Path(row[2]).is_file():
        raise UserError(f"migration {row[0]}: backup {row[2]} is missing")
    return row


def rollback(to: int | None = None, *, say: Say = print) -> RollbackResult:
    """Restore the target schemas to their state before migration `to`; verify; record."""
    target = connection.resolve()
    started = time.perf_counter()
    with connection.connect(target, autocommit=True) as conn:
        if (
            not existing_schemas(conn, ["validation"])
            or conn.execute("select to_regclass('validation.migrations') is null").fetchone()[0]
        ):
            raise UserError("no migration recorded yet (validation.migrations is missing)")
        take_lock(conn)
        ensure_tables(conn)
        mid, outcome, backup_path, schemas, counts_before, checksums_before = pick_migration(
            conn, to
        )
        later = [
            r[0]
            for r in conn.execute(
                "select migration_id from validation.migrations m where migration_id > %s"
                " and outcome in ('succeeded', 'failed') and not exists (select 1 from"
                " validation.rollbacks r where r.migration_id = m.migration_id"
                " and r.outcome = 'rolled back') order by 1",
                (mid,),
            ).fetchall()
        ]
        if later:
            say(f"note: this also undoes the later migrations {', '.join(map(str, later))}")
        rid = conn.execute(
            "insert into validation.rollbacks (migration_id, backup_path) values (%s, %s)"
            " returning rollback_id",
            (mid, backup_path),
        ).fetchone()[0]
        say(f"rollback {rid}: migration {mid} ({outcome}), backup {backup_path or '(empty)'}")
        try:
            views = dependent_views(conn, relation_oids(conn, TARGET_SCHEMAS))
            major = _server_major(conn)
            t = time.perf_counter()
            restore(target, backup_path, views, major)
            restore_s = time.perf_counter() - t
            say(
                f"restore: {restore_s:.1f} s (schemas {', '.join(TARGET_SCHEMAS)}, one transaction)"
            )
            existing = {
                f"{s}.{n}"
                for s, n in conn.execute(
                    "select n.nspname, c.relname from pg_class c join pg_namespace n"
                    " on n.oid = c.relnamespace where c.relkind in ('v', 'm')"
                ).fetchall()
            }
            recreated = [v for v, _, _ in views if v in existing]
            missing = [v for v, _, _ in views if v not in existing]
            if missing:
                say(f"note: views not recreated (run `dbt build`): {', '.join(missing)}")
            t = time.perf_counter()
            counts = table_counts(conn, TARGET_SCHEMAS)
            checksums = table_checksums(conn, TARGET_SCHEMAS)
            verify_s = time.perf_counter() - t
            problems = [
                f"{k}: rows {counts_before.get(k)} before, {counts.get(k)} now"
                for k in sorted(set(counts) | set(counts_before))
                if counts.get(k) != counts_before.get(k)
            ]
            problems += [
                f"{k}: checksum differs"
                for k in sorted(set(checksums) | set(checksums_before or {}))
                if checksums.get(k) != (checksums_before or {}).get(k)
                and counts.get(k) == counts_before.get(k)
            ]
            say(f"verify: {len(counts)} tables, counts and checksums"
                f" {'equal' if not problems else 'DIFFER'} ({verify_s:.1f} s)")  # fmt: skip
            conn.execute(
                "update validation.rollbacks set finished_at = clock_timestamp(), outcome = %s,"
                " message = %s, counts_after = %s, checksums_after = %s, views_recreated = %s,"
                " views_not_recreated = %s, restore_seconds = %s, verify_seconds = %s"
                " where rollback_id = %s",
                (
                    "failed" if problems else "rolled back",
                    "; ".join(problems) or None,
                    json.dumps(counts),
                    json.dumps(checksums),
                    recreated,
                    missing,
                    round(restore_s, 3),
                    round(verify_s, 3),
                    rid,
                ),
            )
            if problems:
                raise UserError(
                    f"rollback {rid} restored but does not verify: {'; '.join(problems)}"
                )
            problem = rebuild_validation(target, say)
            if problem:
                conn.execute(
                    "update validation.rollbacks set message = %s where rollback_id = %s",
                    (problem, rid),
                )
        except (UserError, psycopg.Error, OSError) as exc:
            if not isinstance(exc, UserError) or "does not verify" not in str(exc):
                conn.execute(
                    "update validation.rollbacks set finished_at = clock_timestamp(),"
                    " outcome = 'failed', message = %s where rollback_id = %s",
                    (str(exc), rid),
                )
            if isinstance(exc, UserError):
                raise
            raise UserError(f"rollback {rid} failed: {exc}") from exc
    total = time.perf_counter() - started
    say(f"rolled back migration {mid} in {total:.1f} s")
    return RollbackResult(rid, mid, restore_s, verify_s, total, missing)


def restore(
    target: connection.Target,
    backup_path: str | None,
    views: list[tuple[str, str, str]],
    server_major: int,
    schemas: Sequence[str] = TARGET_SCHEMAS,
) -> None:
    """One psql transaction: drop `schemas`, replay their part of the backup, recreate views."""
    psql = pg_program("psql", target, server_major)
    pg_restore = pg_program("pg_restore", target, server_major)
    prefix = "\\set ON_ERROR_STOP on\nset client_min_messages = warning;\n" + "".join(
        f"drop schema if exists {s} cascade;\n" for s in schemas
    )
    subset = tuple(schemas) != TARGET_SCHEMAS
    if subset and backup_path is not None:
        # pg_restore --schema restores the schema's objects, not the schema itself
        prefix += "".join(f"create schema {s};\n" for s in schemas)
    suffix = "".join(
        "do $luckygas$ begin execute "
        + _literal(statement)
        + "; exception when others then raise warning 'view "
        + name.replace("'", "''")
        + " not recreated: %', sqlerrm; end $luckygas$;\n"
        for name, _, statement in views
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
            if backup_path is not None:
                only = [f"--schema={x}" for x in schemas] if subset else []
                dump = subprocess.Popen(
                    [pg_restore, *only, "-f", "-", backup_path],
                    env=target.env,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                )
                assert dump.stdout is not None
                shutil.copyfileobj(dump.stdout, proc.stdin, 1 << 20)
                if dump.wait() != 0:
                    proc.kill()
                    raise UserError(f"pg_restore could not read {backup_path}")
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
