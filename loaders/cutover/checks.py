"""The after-checks on the shadow build that read its tables: every raw table accounted for
(rule R04), and each entity's success rate (validation.migration_metrics) against its
target, the plan's (dbt_project.yml) or one set with --success-target.

Which entities a migration judges depends on its phase (`judged`): each phase judges the
entities it migrates (PHASE_ENTITIES), and any other entity whose sources raw already holds;
an entity of another phase with no source row yet (the deliveries during the clients phase)
is not judged, with a line saying so, instead of being a no-go for having nothing to
measure. Phase `all` judges both, as before."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation

import psycopg
import yaml
from psycopg import sql

from loaders.cutover.catalog import SHADOW_SUFFIX, relation_exists
from loaders.cutover.dbt import SUCCESS_TARGETS_VAR
from loaders.cutover.errors import NoGo
from loaders.errors import UserError
from loaders.project import dbt_project_dir


def percent(rate: Decimal | float, places: int | None = None) -> str:
    """0.99584 -> `99.584 %` (`places` decimals, truncated), 1 -> `100 %`, 0.999 -> `99.9 %`."""
    value = Decimal(str(rate)) * 100
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    else:
        value = value.normalize()
    return f"{value:f} %"


# -- targets -------------------------------------------------------------------------------


def project_success_targets() -> dict[str, float]:
    """The plan's success target per entity: var migration_success_targets of dbt_project.yml."""
    project = yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))
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


# The entities each phase migrates: they must have rows and meet their targets.
PHASE_ENTITIES = {
    "all": ("customer", "delivery"),
    "clients": ("customer",),
    "deliveries": ("customer", "delivery"),  # customers are rebuilt too (history-only codes)
}


# -- the shadow build's metrics -------------------------------------------------------------


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


def shadow_metrics(conn: psycopg.Connection) -> list[Metric]:
    """validation.migration_metrics of the shadow build: entities first, then their sources."""
    name = f"validation{SHADOW_SUFFIX}.migration_metrics"
    if not relation_exists(conn, name):
        raise NoGo(f"{name} was not built: the success rates could not be measured")
    rows = conn.execute(
        sql.SQL(
            "select entity, level, source_file, source_sheet, source_rows, final, merged,"
            " quarantined, set_aside, success_rate, target, meets_target from {}"
            " order by entity, level, source_file, source_sheet"
        ).format(sql.Identifier(*name.split(".")))
    ).fetchall()
    return [Metric(*r) for r in rows]


def judged(metrics: Sequence[Metric], phase: str) -> tuple[list[Metric], list[str]]:
    """The metrics the phase judges (entity and source level), and a line per entity it does
    not: one of another phase with no source row in the build."""
    own = PHASE_ENTITIES[phase]
    skipped = {
        m.entity
        for m in metrics
        if m.level == "entity" and m.entity not in own and m.success_rate is None
    }
    notes = [
        f"{e}: not judged in the {phase} phase (no {e} source loaded yet: the"
        f" {'deliveries' if e == 'delivery' else 'clients'} phase migrates them)"
        for e in sorted(skipped)
    ]
    return [m for m in metrics if m.entity not in skipped], notes


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


def below_target(
    conn: psycopg.Connection, metrics: Sequence[Metric], phase: str = "all"
) -> list[str]:
    """A no-go reason per entity below its target: its rate, the target and the two largest
    quarantine reasons that count against it. An entity the phase migrates with nothing to
    measure is one too, whatever meets_target says (the model lets an entity none of whose
    sources is loaded meet it): a phase that migrates no row of its own entity is no
    migration of it."""
    found = []
    for m in metrics:
        if m.level != "entity":
            continue
        if m.success_rate is None and m.entity in PHASE_ENTITIES[phase]:
            hint = "" if phase != "all" else " (to migrate the clients alone: --phase clients)"
            found.append(f"{m.entity}: no source row to migrate, success cannot be measured{hint}")
            continue
        if m.meets_target or m.success_rate is None:
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


def accepted_below_plan(metrics: Sequence[Metric], targets: Mapping[str, float]) -> list[str]:
    """For the record: each entity that passed only with a target lower than the plan's."""
    plan = project_success_targets()
    return [
        f"{m.entity} {percent(m.success_rate, 3)} accepted with --success-target"
        f" {m.entity}={targets[m.entity]} (the plan's target: {percent(plan[m.entity])})"
        for m in metrics
        if targets[m.entity] != plan[m.entity]
        and m.success_rate is not None
        and m.success_rate < Decimal(str(plan[m.entity]))
    ]


# -- raw tables ------------------------------------------------------------------------------


def unaccounted_tables(conn: psycopg.Connection) -> list[str]:
    """Each raw table rule R04 rejects in the shadow build: file, sheet, rows and headers."""
    name = f"validation{SHADOW_SUFFIX}.raw_tables"
    if not relation_exists(conn, name):
        return []
    rows = conn.execute(
        sql.SQL(
            "select source_file, source_sheet, raw_rows, rows_staged, status, layout, headers"
            " from {} where status in ('unrecognised', 'not_read')"
            " order by source_file, source_sheet"
        ).format(sql.Identifier(*name.split(".")))
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
