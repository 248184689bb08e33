"""`luckygas migrate PATH...`: checkpoint 1 (the server answers) and 2 (the inputs), then the
steps of steps.py, stopping at the first that does not hold. A stop undoes what the steps
did, so a stopped migration leaves every table as it was; each migration but a dry run is
one row of validation.migrations (succeeded, no-go or failed). A migration killed outright
stays `running` until the next migrate or rollback recovers it (recovery.py): the row
records the step under way, and the swap marks it in its own transaction."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from loaders import connection
from loaders.cutover import checks
from loaders.cutover.backup import default_backup_dir, server_major
from loaders.cutover.catalog import SHADOW_SUFFIX, TARGET_SCHEMAS, existing_schemas, table_counts
from loaders.cutover.dbt import PROJECT_DIR
from loaders.cutover.errors import Failed, NoGo
from loaders.cutover.inputs import Inputs, inspect_inputs
from loaders.cutover.records import Record, claim
from loaders.cutover.recovery import recover
from loaders.cutover.steps import STEPS, TOTAL, Run, Say, Timings
from loaders.errors import UserError


@dataclass
class MigrationResult:
    migration_id: int | None  # None: a dry run
    backup_path: Path | None
    counts_before: dict[str, int] = field(default_factory=dict)
    counts_after: dict[str, int] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    metrics: list[checks.Metric] = field(default_factory=list)  # the shadow build's, entity level


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

    Until the swap the live staging, intermediate, marts, reference and validation
    relations are not touched: dbt builds into the shadow schemas. `success_target_overrides`
    ({entity: rate}) replace the plan's targets for this migration; they are appended to
    `arguments` in validation.migrations, so that accepting a lower rate is on record."""
    paths = [Path(p) for p in paths]
    targets = checks.success_targets(success_target_overrides)
    arguments = [*arguments, *checks.success_target_arguments(success_target_overrides)]
    backup_dir = Path(backup_dir) if backup_dir is not None else default_backup_dir()
    target = connection.resolve()
    say(f"[1/{TOTAL}] server: {target.description}")
    with connection.connect(target, autocommit=True) as conn:
        say(f"      reachable, PostgreSQL {conn.info.server_version}")
        inputs = inspect_inputs(paths)
        for f in inputs.files:
            say(f"[2/{TOTAL}] file {f['path']}: {f['bytes']:,} bytes, sha256 {f['sha256'][:16]}...")
        if dry_run:
            return _dry_run(conn, inputs, targets, backup_dir, say)
        claim(conn, "migrate")
        recover(conn, target, server_major(conn), say, by="migrate")
        record = Record.start(conn, "migrations", arguments=list(arguments), files=inputs.files)
        if inputs.nogo:
            record.finish("no-go", inputs.nogo)
            raise NoGo(f"no-go (migration {record.id}): {inputs.nogo}; nothing was changed")
        say(f"migration {record.id}")
        run = Run(
            target=target,
            conn=conn,
            record=record,
            paths=paths,
            inputs=inputs,
            backup_dir=backup_dir,
            verify_restore=verify_restore,
            targets=targets,
            major=server_major(conn),
            say=say,
        )
        seconds = _walk(run)
        run.timings.after = seconds["after-checks"] + seconds["vacuum"] + seconds["swap"]
        message = "; ".join(checks.accepted_below_plan(run.metrics, targets))
        record.finish("succeeded", message, counts_after=run.counts_after)
    assert run.backup is not None
    return MigrationResult(
        record.id, run.backup.path, run.backup.counts, run.counts_after, run.timings, run.metrics
    )


def _dry_run(
    conn: psycopg.Connection,
    inputs: Inputs,
    targets: Mapping[str, float],
    backup_dir: Path,
    say: Say,
) -> MigrationResult:
    """Print the plan and write nothing; NoGo if an input fails its check."""
    present = existing_schemas(conn, TARGET_SCHEMAS)
    counts = table_counts(conn, present)
    shown_targets = ", ".join(f"{e} {checks.percent(r)}" for e, r in targets.items())
    say(f"plan (dry run, nothing written): back up schemas {', '.join(present) or '(none)'}"
        f" ({len(counts)} tables, {sum(counts.values()):,} rows) into {backup_dir};"
        f" verify it; load {len(inputs.files)} files; dbt build into the shadow schemas"
        f" (*{SHADOW_SUFFIX}) in {PROJECT_DIR}; check reconciliation, orphan rate,"
        f" error tests and success rates (targets: {shown_targets}); swap the shadow"
        " relations in; record counts")  # fmt: skip
    if inputs.nogo:
        raise NoGo(f"no-go: {inputs.nogo}")
    say("go: every input is present and readable")
    return MigrationResult(None, None, counts_before=counts)


def _walk(run: Run) -> dict[str, float]:
    """Run every step; at a stop undo, record and raise NoGo or Failed (or re-raise an
    interruption). Returns each step's seconds."""
    seconds = {}
    try:
        for step in STEPS:
            run.step = step
            run.record.set(step=step.name)  # for the recovery of a migrate killed in it
            run.started.append(step)
            t = time.perf_counter()
            step.run(run)
            seconds[step.name] = time.perf_counter() - t
    except BaseException as exc:
        if run.swapped and not run.conn.closed:  # the migration is in: nothing to undo
            run.record.finish("succeeded", f"swapped in, then stopped: {exc!r}")
        if run.swapped:
            raise
        if not isinstance(exc, (UserError, psycopg.Error, OSError)):
            _interrupted(run, exc)
            raise
        nogo = isinstance(exc, NoGo)
        message = (
            f"{'no-go' if nogo else 'failed'} at {run.step.name}: {' '.join(str(exc).split())}"
        )
        if not run.conn.closed:
            message += "; " + _undo(run)
            run.record.finish("no-go" if nogo else "failed", message)
        raise (NoGo if nogo else Failed)(f"migration {run.record.id} {message}") from exc
    return seconds


def _interrupted(run: Run, exc: BaseException) -> None:
    """Ctrl-C or SIGTERM: undo what can be undone and record it (a second interruption
    during the undo leaves the row `running`, for the next migrate to recover)."""
    if not run.conn.closed:
        message = f"interrupted at {run.step.name}: {exc!r}; " + _undo(run)
        run.record.finish("failed", message)


def _undo(run: Run) -> str:
    """Undo the started steps, newest first. Returns what was done, for the message."""
    done = []
    for step in reversed(run.started):
        try:
            note = step.undo(run)
        except (UserError, psycopg.Error, OSError) as exc:
            done.append(
                f"undoing the {step.name} FAILED ({' '.join(str(exc).split())}): "
                f"`luckygas rollback --to {run.record.id}` restores the state before it"
            )
            return "; ".join(done)
        if note:
            done.append(note)
    return "; ".join([*done, "the live tables were not touched"])
