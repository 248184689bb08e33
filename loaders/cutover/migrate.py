"""`luckygas migrate PATH...`: checkpoint 1 (the server answers) and 2 (the inputs), then the
steps of steps.py, stopping at the first that does not hold. A stop undoes what the steps
did, so a stopped migration leaves every table as it was; each migration but a dry run is
one row of validation.migrations (succeeded, rehearsed, no-go or failed). A migration killed
outright stays `running` until the next migrate or rollback recovers it (recovery.py): the
row records the step under way, and the swap marks it in its own transaction.

**Phases** (`--phase`), so that the plan can migrate the clients on one day and the
deliveries on another, each with its own go/no-go, backup, row and rollback:

- `clients`: the client workbook, and of the app database when given only its `clients`
  table (inputs.py says which sources each phase takes, from the catalogue dbt uses, and
  names what it leaves out). Its go/no-go judges the customers: the deliveries, whose
  sources are not loaded yet, build empty and are not judged (checks.judged), with a line
  saying so, rather than a no-go for having nothing to measure.
- `deliveries`: the history workbooks and the app database (whole). It needs the client
  workbook in raw already (a no-go naming the clients phase otherwise), and judges both
  entities: the customers are rebuilt too (clients known only from the history join them).
- `all` (the default): every file given, both entities, as before the phases.

raw.load replaces only the tables of the sources it is given, so the deliveries phase keeps
the clients phase's raw tables, and a clients phase run again keeps the deliveries'. Each
phase takes its own backup first, so `luckygas rollback` of the deliveries phase restores
exactly the state the clients phase left. The row's `phase` column records it.

**A rehearsal** (`--rehearse`), the plan's "dry run": every step a migration runs up to and
including the after-checks (shadow cleanup, backup and its verification, the load into raw,
the dbt build into the shadow schemas, every after-check and the success rates against the
targets), then the undo a stop runs (the shadow schemas dropped, raw restored from the
backup and verified against its counts and checksums); never the swap. Its row's outcome is
`rehearsed` (the real run would be a GO) or `no-go` with the reasons, and the last line
says which and why, with what the real run would publish (the shadow marts' row counts
against the live ones). The live staging, intermediate, marts and reference relations are
never touched. raw is: the load writes it, as the build reads it from there (raw.py and the
models name schema raw; a scratch copy would need both to take another schema), so while a
rehearsal runs, from its load to its undo (the dbt build and the after-checks: seconds on
the sample, minutes at full scale), the staging views, which read raw, show its rows; the
marts and the intermediate tables do not. Run it when nobody reads the staging views. The
shadow build's dbt hook records its rule results and exceptions in validation.* under its
run_id (the row's dbt_run_id), which is what to read for what the real run would quarantine;
the validation views of the latest results (rule_status, latest_exceptions) then show the
rehearsal's until the next build. A rehearsal keeps its backup file, as a no-go does.

**`--dry-run`** stays the quick check of the inputs (checkpoint 2, the phase's files and
its prerequisite) that prints the plan and writes nothing, not even a row: it opens the
files but loads nothing and builds nothing, so it cannot say what the migration would do;
`--rehearse` does."""

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
from loaders.cutover.errors import Failed, NoGo
from loaders.cutover.inputs import PHASES, Inputs, clients_in_raw, inspect_inputs
from loaders.cutover.records import Record, claim
from loaders.cutover.recovery import recover
from loaders.cutover.steps import REHEARSAL, STEPS, TOTAL, Run, Say, Step, Timings
from loaders.errors import UserError
from loaders.project import dbt_project_dir


@dataclass
class MigrationResult:
    migration_id: int | None  # None: a dry run
    backup_path: Path | None
    counts_before: dict[str, int] = field(default_factory=dict)
    counts_after: dict[str, int] = field(default_factory=dict)  # {} for a rehearsal
    timings: Timings = field(default_factory=Timings)
    metrics: list[checks.Metric] = field(default_factory=list)  # the shadow build's, entity level
    phase: str = "all"
    rehearsed: bool = False  # a rehearsal that would go: nothing was published
    would_publish: dict[str, int] = field(default_factory=dict)  # a rehearsal's shadow marts
    verdict: str = ""  # a rehearsal's: why the real run would go


def migrate(
    paths: Sequence[Path],
    *,
    phase: str = "all",
    rehearse: bool = False,
    dry_run: bool = False,
    backup_dir: Path | None = None,
    verify_restore: bool = True,
    arguments: Sequence[str] = (),
    success_target_overrides: Mapping[str, float] | None = None,
    say: Say = print,
) -> MigrationResult:
    """Run the checkpoints; raise NoGo / Failed / UserError at the first that fails.

    `phase` (clients, deliveries, all) narrows the inputs and the entities judged;
    `rehearse` runs the steps up to the after-checks and undoes them (see the module
    docstring): a GO returns (rehearsed True), a NO-GO raises NoGo as a migration does.
    Until the swap the live staging, intermediate, marts, reference and validation
    relations are not touched: dbt builds into the shadow schemas. `success_target_overrides`
    ({entity: rate}) replace the plan's targets for this migration; they are appended to
    `arguments` in validation.migrations, so that accepting a lower rate is on record."""
    if phase not in PHASES:
        raise UserError(f"--phase {phase}: not a phase (the phases: {', '.join(PHASES)})")
    if rehearse and dry_run:
        raise UserError("--dry-run checks the inputs, --rehearse runs everything: choose one")
    paths = [Path(p) for p in paths]
    targets = checks.success_targets(success_target_overrides)
    arguments = [*arguments, *checks.success_target_arguments(success_target_overrides)]
    backup_dir = Path(backup_dir) if backup_dir is not None else default_backup_dir()
    target = connection.resolve()
    say(f"[1/{TOTAL}] server: {target.description}")
    with connection.connect(target, autocommit=True) as conn:
        say(f"      reachable, PostgreSQL {conn.info.server_version}")
        inputs = inspect_inputs(paths, phase)
        for f in inputs.files:
            say(f"[2/{TOTAL}] file {f['path']}: {f['bytes']:,} bytes, sha256 {f['sha256'][:16]}...")
        for note in inputs.set_aside:
            say(f"[2/{TOTAL}] not in the {phase} phase: {note}")
        if dry_run:
            return _dry_run(conn, inputs, targets, backup_dir, phase, say)
        claim(conn, "migrate")
        recover(conn, target, server_major(conn), say, by="migrate")
        record = Record.start(
            conn, "migrations", arguments=list(arguments), files=inputs.files, phase=phase
        )
        nogo = inputs.nogo or (clients_in_raw(conn) if phase == "deliveries" else "")
        if nogo:
            record.finish("no-go", nogo)
            if rehearse:
                raise NoGo(
                    f"rehearsal (migration {record.id}): the real run would be a NO-GO because"
                    f" {nogo}; nothing was changed"
                )
            raise NoGo(f"no-go (migration {record.id}): {nogo}; nothing was changed")
        what = "rehearsal (nothing will be published)" if rehearse else "migration"
        say(f"{what} {record.id}" + ("" if phase == "all" else f", phase {phase}"))
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
            phase=phase,
            rehearse=rehearse,
        )
        seconds = _walk(run, REHEARSAL if rehearse else STEPS)
        if rehearse:
            return _rehearsed(run, targets, seconds)
        run.timings.after = seconds["after-checks"] + seconds["vacuum"] + seconds["swap"]
        message = "; ".join(checks.accepted_below_plan(run.metrics, targets))
        record.finish("succeeded", message, counts_after=run.counts_after)
    assert run.backup is not None
    return MigrationResult(
        record.id,
        run.backup.path,
        run.backup.counts,
        run.counts_after,
        run.timings,
        run.metrics,
        phase,
    )


def _rehearsed(
    run: Run, targets: Mapping[str, float], seconds: dict[str, float]
) -> MigrationResult:
    """Every after-check held: note what the real run would publish, undo every step (as a
    stop does) and record the verdict. Failed when the undo fails (then the message says
    how to restore); an interruption during it leaves the row `running` for recovery."""
    run.timings.after = seconds["after-checks"]
    assert run.backup is not None
    would = {
        f"marts.{k.split('.', 1)[1]}": v
        for k, v in table_counts(run.conn, [f"marts{SHADOW_SUFFIX}"]).items()
    }
    live = {k: v for k, v in run.backup.counts.items() if k.startswith("marts.")}
    publish = ", ".join(
        f"{k.split('.', 1)[1]} {live.get(k, 0):,} -> {v:,}" for k, v in sorted(would.items())
    )
    judged = "; ".join([*(m.shown() for m in run.metrics), *run.not_judged])
    accepted = checks.accepted_below_plan(run.metrics, targets)
    verdict = (
        "every after-check holds (reconciliation exact, orphan rate within the threshold, no"
        f" error test failing; {judged})" + "".join(f"; {a}" for a in accepted)
        + f"; it would publish marts {publish}"
    )  # fmt: skip
    run.record.set(step="rehearsal undo")  # killed in the undo: recovery restores raw
    undone, ok = _undo(run)
    if not ok:
        message = f"the real run would be a GO, but {undone}"
        run.record.finish("failed", message)
        raise Failed(f"rehearsal (migration {run.record.id}): {message}")
    run.record.finish("rehearsed", f"the real run would be a GO: {verdict}; {undone}")
    run.say(f"[{TOTAL}/{TOTAL}] rehearsal: the real run would be a GO because {verdict};"
            f" nothing was published ({undone})")  # fmt: skip
    return MigrationResult(
        run.record.id,
        run.backup.path,
        run.backup.counts,
        {},
        run.timings,
        run.metrics,
        run.phase,
        rehearsed=True,
        would_publish=would,
        verdict=verdict,
    )


def _dry_run(
    conn: psycopg.Connection,
    inputs: Inputs,
    targets: Mapping[str, float],
    backup_dir: Path,
    phase: str,
    say: Say,
) -> MigrationResult:
    """Print the plan and write nothing; NoGo if an input fails its check (or the deliveries
    phase finds no clients migrated). It loads and builds nothing: --rehearse does."""
    present = existing_schemas(conn, TARGET_SCHEMAS)
    counts = table_counts(conn, present)
    shown_targets = ", ".join(
        f"{e} {checks.percent(r)}" for e, r in targets.items() if e in checks.PHASE_ENTITIES[phase]
    )
    phase_shown = "" if phase == "all" else f" of the {phase} phase"
    say(f"plan (dry run, nothing written): back up schemas {', '.join(present) or '(none)'}"
        f" ({len(counts)} tables, {sum(counts.values()):,} rows) into {backup_dir};"
        f" verify it; load {len(inputs.files)} files{phase_shown}; dbt build into the shadow schemas"
        f" (*{SHADOW_SUFFIX}) in {dbt_project_dir()}; check reconciliation, orphan rate,"
        f" error tests and success rates (targets: {shown_targets}); swap the shadow"
        " relations in; record counts")  # fmt: skip
    nogo = inputs.nogo or (clients_in_raw(conn) if phase == "deliveries" else "")
    if nogo:
        raise NoGo(f"no-go: {nogo}")
    say("go: every input is present and readable (what the migration would do: --rehearse)")
    return MigrationResult(None, None, counts_before=counts)


def _walk(run: Run, steps: Sequence[Step]) -> dict[str, float]:
    """Run `steps`; at a stop undo, record and raise NoGo or Failed (or re-raise an
    interruption). Returns each step's seconds."""
    seconds = {}
    try:
        for step in steps:
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
        reason = " ".join(str(exc).split())
        if run.rehearse and nogo:
            message = f"the real run would be a NO-GO because at {run.step.name}: {reason}"
        else:
            message = f"{'no-go' if nogo else 'failed'} at {run.step.name}: {reason}"
        if not run.conn.closed:
            message += "; " + _undo(run)[0]
            run.record.finish("no-go" if nogo else "failed", message)
        who = (
            f"rehearsal (migration {run.record.id}):"
            if run.rehearse
            else f"migration {run.record.id}"
        )
        raise (NoGo if nogo else Failed)(f"{who} {message}") from exc
    return seconds


def _interrupted(run: Run, exc: BaseException) -> None:
    """Ctrl-C or SIGTERM: undo what can be undone and record it (a second interruption
    during the undo leaves the row `running`, for the next migrate to recover)."""
    if not run.conn.closed:
        message = f"interrupted at {run.step.name}: {exc!r}; " + _undo(run)[0]
        run.record.finish("failed", message)


def _undo(run: Run) -> tuple[str, bool]:
    """Undo the started steps, newest first. Returns what was done, for the message, and
    whether every undo held."""
    done = []
    for step in reversed(run.started):
        try:
            note = step.undo(run)
        except (UserError, psycopg.Error, OSError) as exc:
            done.append(
                f"undoing the {step.name} FAILED ({' '.join(str(exc).split())}): "
                f"`luckygas rollback --to {run.record.id}` restores the state before it"
            )
            return "; ".join(done), False
        if note:
            done.append(note)
    return "; ".join([*done, "the live tables were not touched"]), True
