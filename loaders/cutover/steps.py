"""The migration's checkpoints from the backup on, in order: each a Step with its `run` and
its `undo`. migrate() runs them in order; at a stop it undoes, newest first, every step that
started since the last commit (the swap commits: after it, only `rollback` undoes it).
A rehearsal runs REHEARSAL, the steps up to the after-checks, and then undoes them all as a
stop does (migrate.py)."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from loaders import connection, raw
from loaders.cutover import backup, checks, children, dbt, swap
from loaders.cutover.backup import Backup
from loaders.cutover.catalog import SHADOW_SUFFIX, TARGET_SCHEMAS, table_counts
from loaders.cutover.errors import NoGo
from loaders.cutover.inputs import Inputs
from loaders.cutover.records import Record
from loaders.cutover.recovery import end_sessions
from loaders.errors import UserError

TOTAL = 9  # the checkpoints shown as [n/9]: server and inputs (migrate.py), then STEPS
Say = Callable[[str], None]


@dataclass
class Timings:
    backup: float = 0.0
    backup_verify: float = 0.0
    load: float = 0.0
    dbt: float = 0.0
    after: float = 0.0  # after-checks, vacuum and swap
    vacuum: float = 0.0  # VACUUM (ANALYZE) of the shadow tables, before the swap
    swap: float = 0.0  # the one transaction readers may wait on


@dataclass(frozen=True)
class Built:
    """What `dbt build` into the shadow schemas left for the after-checks."""

    run: dbt.DbtRun  # its result objects
    log: Path


@dataclass
class Run:
    """One migration under way: what its steps read and write."""

    target: connection.Target
    conn: psycopg.Connection  # autocommit, holding the migrate/rollback lock
    record: Record
    paths: list[Path]
    inputs: Inputs
    backup_dir: Path
    verify_restore: bool
    targets: dict[str, float]
    major: int  # the server's major version
    say: Say
    phase: str = "all"  # clients, deliveries or all (inputs.py, checks.PHASE_ENTITIES)
    rehearse: bool = False  # run REHEARSAL, then undo it: nothing is published
    step: Step | None = None  # the step running
    started: list[Step] = field(default_factory=list)  # what a stop undoes
    timings: Timings = field(default_factory=Timings)
    backup: Backup | None = None
    built: Built | None = None
    metrics: list[checks.Metric] = field(default_factory=list)  # entity level, judged
    not_judged: list[str] = field(default_factory=list)  # entities the phase does not judge
    counts_after: dict[str, int] = field(default_factory=dict)
    swapped: bool = False  # the swap committed: the migration is in

    def progress(self, text: str) -> None:
        assert self.step is not None and self.step.number is not None
        self.say(f"[{self.step.number}/{TOTAL}] {text}")

    def note(self, text: str) -> None:
        self.say(f"      {text}")

    def session(self, tool: str) -> str:
        """application_name of a child's sessions: luckygas-migrate-17-dbt (recovery.py)."""
        return children.session_name("migrate", self.record.id, tool)

    def commit(self) -> None:
        """The migration is in: a stop from here on undoes nothing before it."""
        self.started.clear()


def _nothing(run: Run) -> str | None:
    return None


@dataclass(frozen=True)
class Step:
    """A checkpoint: its run, and the undo a stop calls (returning what it undid, or None)."""

    name: str  # as a stop names it: "no-go at after-checks"
    number: int | None  # its [n/9] in the progress lines (None: it prints none)
    run: Callable[[Run], None]
    undo: Callable[[Run], str | None] = _nothing  # what it undid, for the message


# -- the steps, in their order ------------------------------------------------------------


def clear_leftovers(r: Run) -> None:
    left = swap.drop_shadows(r.conn)
    if left:
        r.note(f"dropped what an earlier stopped migration left: {', '.join(left)}")


def take_backup(r: Run) -> None:
    """pg_dump into a 0600 file of a 0700 folder (the project's own folder is made 0700;
    one given with --backup-dir keeps its mode, with a note when others can read it)."""
    note = backup.private_dir(r.backup_dir, tighten=r.backup_dir == backup.default_backup_dir())
    if note:
        r.note(note)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (r.backup_dir / f"migration-{r.record.id}-{stamp}.dump").resolve()
    t = time.perf_counter()
    b = r.backup = backup.take(r.target, path, session=r.session("pg_dump"))
    r.timings.backup = time.perf_counter() - t
    if b.path is None:
        r.progress("backup: no target schema yet: nothing to back up (recorded)")
    else:
        r.progress(f"backup: {b.path} ({b.path.stat().st_size:,} bytes, {len(b.counts)} tables,"
                   f" {sum(b.counts.values()):,} rows) in {r.timings.backup:.1f} s")  # fmt: skip
    r.record.set(
        backup_path=None if b.path is None else str(b.path),
        backup_schemas=b.schemas,
        counts_before=b.counts,
        checksums_before=b.checksums,
    )


def verify_backup(r: Run) -> None:
    t = time.perf_counter()
    summary = backup.verify(r.target, r.backup, scratch=r.verify_restore, major=r.major)
    r.timings.backup_verify = time.perf_counter() - t
    r.progress(f"backup verified: {summary} ({r.timings.backup_verify:.1f} s)")


def go(r: Run) -> None:
    phase = "" if r.phase == "all" else f" for the {r.phase} phase"
    r.progress(f"go: {len(r.inputs.files)} files present, hashed and readable{phase}")


def load(r: Run) -> None:
    t = time.perf_counter()
    report = raw.load(
        r.inputs.planned,
        lambda: connection.connect(r.target, autocommit=True),
        arguments=[
            "migrate",
            *(["--phase", r.phase] if r.phase != "all" else []),
            *(["--rehearse"] if r.rehearse else []),
            *map(str, r.paths),
        ],
        lock=False,  # this migrate holds the lock, on the session of r.conn
    )
    r.timings.load = time.perf_counter() - t
    n_loaded = sum(x.outcome == "loaded" for x in report.results)
    rows = sum(x.rows_written for x in report.results)
    r.progress(f"load {report.load_id}: {n_loaded} sources loaded, {rows:,} rows,"
               f" {len(report.results) - n_loaded} unchanged ({r.timings.load:.1f} s)")  # fmt: skip


def undo_load(r: Run) -> str:
    """Restore raw from the backup (drop it if the backup has none) and verify it."""
    assert r.backup is not None
    tables = backup.restore_raw(r.target, r.conn, r.backup, r.major, r.session("psql"))
    r.note(f"the load was undone: raw restored from the backup ({tables} tables verify)")
    return "the load was undone (raw restored from the backup and verified)"


def build(r: Run) -> None:
    """dbt build into the shadow schemas, in-process through dbt's API (so it ends with the
    migrate, however the migrate ends), a line per node as it runs, its sessions named
    r.session("dbt"), its log 0600 beside the backups; what it did from its result objects."""
    t = time.perf_counter()
    log = r.backup_dir / f"migration-{r.record.id}-dbt.log"
    r.note(f"dbt build into *{SHADOW_SUFFIX} running (its log: {log})")
    with tempfile.TemporaryDirectory(prefix="luckygas-dbt-") as tmp:
        env = dbt.dbt_environment(r.target, Path(tmp), r.session("dbt"), r.major)
        run = dbt.build_shadow(env, log, r.targets)
    r.timings.dbt = time.perf_counter() - t
    if run.code == 2:
        raise UserError(f"dbt build did not run: {run.error}; see {log}")
    r.progress(f"dbt build into *{SHADOW_SUFFIX}: {run.summary} ({r.timings.dbt:.1f} s)")
    r.built = Built(run, log)
    empty = built_empty(run.macro_messages)
    if empty:
        r.note(f"built empty, their sources not loaded yet: {', '.join(empty)}")
    if run.invocation_id:
        r.record.set(dbt_run_id=run.invocation_id)
        r.note(
            f"its rule results and exceptions: validation.* where run_id = '{run.invocation_id}'"
        )


# The line macro source_or_empty logs for a model whose raw table is not loaded yet.
BUILT_EMPTY = re.compile(
    r"(?:^|\s)\w+\.(\w+): raw table (\S+) \(source [^)]*\) not loaded yet: built empty"
)


def built_empty(messages: Sequence[str]) -> list[str]:
    """The models the build made empty because their raw table is not loaded (a phase that
    has not loaded it yet), from what macro source_or_empty said:
    `stg_legacy_app__deliveries (raw.luckygas__deliveries)`."""
    found = dict.fromkeys(
        f"{m[1]} ({m[2]})" for text in messages for m in BUILT_EMPTY.finditer(text)
    )
    return list(found)


def undo_build(r: Run) -> str | None:
    """End the sessions of this build's dbt (stopped already, but its backends may still run
    a statement, holding locks on the shadows), then drop the shadow schemas."""
    end_sessions(r.conn, r.session("dbt"))
    return "the shadow build was dropped" if swap.drop_shadows(r.conn) else None


def after_checks(r: Run) -> None:
    b = r.built
    assert b is not None
    problems = b.run.problems()
    if any(not p.startswith(("test ", "reconciliation ")) for p in problems):
        raise UserError(f"{'; '.join(problems)}; see {b.log}")
    if problems:
        raise NoGo("; ".join(checks.unaccounted_tables(r.conn) + problems))
    if b.run.code != 0:
        raise UserError(f"dbt build exited {b.run.code} ({b.run.summary}); see {b.log}")
    metrics, r.not_judged = checks.judged(checks.shadow_metrics(r.conn), r.phase)
    r.metrics = [m for m in metrics if m.level == "entity"]
    r.note("success rates: " + "; ".join([*(m.shown() for m in r.metrics), *r.not_judged]))
    for m in metrics:
        if m.level == "source" and not m.meets_target:
            r.note(f"note: source below its entity's target: {m.shown()}")
    short = checks.below_target(r.conn, metrics, r.phase)
    if short:
        raise NoGo("; ".join(short))
    judged = " and ".join(m.entity for m in r.metrics)
    r.progress("after-checks: reconciliation exact, orphan rate within the threshold,"
               f" no error test failing, success rates meet their targets ({judged})")  # fmt: skip


def vacuum(r: Run) -> None:
    t = time.perf_counter()
    swap.vacuum_shadows(r.conn)
    r.timings.vacuum = time.perf_counter() - t


def swap_in(r: Run) -> None:
    t = time.perf_counter()
    # the row is marked in the swap's own transaction: a migrate killed after it committed
    # is known to be in (recovery.py)
    s = swap.swap_in(r.conn, inside=lambda: r.record.set(swapped_at=datetime.now(UTC)))
    r.timings.swap = time.perf_counter() - t
    r.commit()
    r.swapped = True
    r.counts_after = table_counts(r.conn, TARGET_SCHEMAS)
    marts = {k: v for k, v in r.counts_after.items() if k.startswith("marts.")}
    r.progress(f"swapped in {s.moved} relations in one transaction ({r.timings.swap:.2f} s)"
               + (f"; views recreated: {', '.join(s.recreated)}" if s.recreated else "")
               + (f"; views NOT recreated: {', '.join(s.missing)}" if s.missing else "")
               + "; marts: " + ", ".join(f"{k.split('.', 1)[1]}={v:,}" for k, v in marts.items()))  # fmt: skip


STEPS = (
    Step("shadow cleanup", None, clear_leftovers),
    Step("backup", 3, take_backup),
    Step("backup verification", 4, verify_backup),
    Step("go", 5, go),
    Step("load", 6, load, undo_load),
    Step("dbt build", 7, build, undo_build),
    Step("after-checks", 8, after_checks),
    Step("vacuum", None, vacuum),
    Step("swap", 9, swap_in),
)
# A rehearsal: every step up to the after-checks (then undone); never the vacuum or the swap.
REHEARSAL = STEPS[: [s.name for s in STEPS].index("after-checks") + 1]
