"""Checkpoint 2: every input file found, hashed (SHA-256) and opened before anything is
written (`raw.plan`, which applies the readers' file checks); a problem is a no-go.

The files are then narrowed to the migration's phase (migrate.py's docstring: `--phase
clients`, `deliveries` or `all`). Which sources a phase takes is read from the catalogue
dbt itself uses (seeds/raw_layouts.csv: each layout's file and sheet patterns and the
staging model that reads it), so that the phases cannot disagree with the build:

- a *customer* source is one whose layout's staging model is a clients model (the client
  workbook's 客戶資料, the app's `clients` table); a *delivery* source one read by a
  deliveries model (the history workbooks' sheets, the app's `deliveries` table);
- the clients phase takes each file's customer sources and, from a file with no delivery
  source (the client workbook), its other sheets too (declared not migrated: rule R04
  accounts for them); from the app database only its `clients` table;
- the deliveries phase takes every file except those whose only migrated sources are
  customer sources (the client workbook, migrated by the clients phase): the history
  workbooks, the app database whole (its deliveries name its clients, so they come from
  one export: the clients table the clients phase loaded is `unchanged` then) and files of
  no entity (the residential plan, declared not migrated);
- each phase needs its own: the clients phase a customer source, the deliveries phase a
  delivery source, and the client workbook already in raw (`clients_in_raw`).

What a phase leaves out is named, one line per file (`Inputs.set_aside`), never dropped
silently. raw.load replaces only the tables of the sources it is given, so one phase's load
never empties the other's."""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from loaders import raw
from loaders.project import dbt_project_dir
from loaders.readers.base import Source, SourceError

PHASES = ("all", "clients", "deliveries")
# The staging models that read each entity's sources (seeds/raw_layouts.csv staging_model).
CUSTOMER_MODELS = frozenset({"stg_client_workbook__clients", "stg_legacy_app__clients"})
DELIVERY_MODELS = frozenset({"stg_delivery_history__deliveries", "stg_legacy_app__deliveries"})
# The dbt source the customers build cannot do without (it has no empty stand-in).
CLIENT_WORKBOOK_SOURCES = "models/staging/client_workbook/_client_workbook__sources.yml"


@dataclass(frozen=True)
class Inputs:
    """The files to load, or why they cannot be."""

    planned: raw.Plan | None  # what raw.load loads; None on a no-go
    files: list[dict]  # [{path, sha256, bytes}]: validation.migrations.files
    nogo: str = ""  # the no-go reason, or ''
    set_aside: list[str] = field(default_factory=list)  # what the phase leaves out, and why
    entities: frozenset[str] = frozenset()  # the entities whose sources are given


@dataclass(frozen=True)
class Layout:
    """A row of seeds/raw_layouts.csv, as far as the phases need it."""

    name: str
    priority: int
    file_pattern: re.Pattern | None
    sheet_pattern: re.Pattern | None
    staging_model: str
    only_empty: bool


@functools.cache
def layouts() -> tuple[Layout, ...]:
    """The catalogue, lowest priority first, `$delivery_history_files` replaced by its var
    (dbt_project.yml), as macro raw_layout_matched reads it."""
    project = yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))
    history = str(project["vars"]["delivery_history_files"])
    found = []
    with (dbt_project_dir() / "seeds" / "raw_layouts.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            file_pattern = (row["file_pattern"] or "").replace("$delivery_history_files", history)
            found.append(
                Layout(
                    row["layout"],
                    int(row["priority"]),
                    re.compile(file_pattern, re.IGNORECASE) if file_pattern else None,
                    re.compile(row["sheet_pattern"]) if row["sheet_pattern"] else None,
                    row["staging_model"] or "",
                    row["only_empty"].strip().lower() == "true",
                )
            )
    return tuple(sorted(found, key=lambda lay: lay.priority))


def entity_of(file_name: str, s: Source) -> str | None:
    """`customer`, `delivery` or None (a source of no entity): by the first layout whose file
    and sheet patterns match (the headers are the build's business: rule R04)."""
    for lay in layouts():
        if lay.only_empty:
            continue
        if lay.file_pattern is not None and not lay.file_pattern.search(file_name):
            continue
        if lay.sheet_pattern is not None and not lay.sheet_pattern.search(s.sheet):
            continue
        if lay.staging_model in CUSTOMER_MODELS:
            return "customer"
        if lay.staging_model in DELIVERY_MODELS:
            return "delivery"
        return None
    return None


def _narrowed(f: raw.PlannedFile, phase: str) -> tuple[list[Source], str]:
    """The sources of `f` the phase takes, and a line naming what it leaves out (or '')."""
    kinds = {s.sheet: entity_of(f.path.name, s) for s in f.sources}
    has_customer = "customer" in kinds.values()
    has_delivery = "delivery" in kinds.values()
    if phase == "clients":
        if not has_customer:
            return [], f"{f.path.name}: no client source (the deliveries phase migrates it)"
        if not has_delivery:
            return list(f.sources), ""
        taken = [s for s in f.sources if kinds[s.sheet] == "customer"]
        left = [s.sheet for s in f.sources if kinds[s.sheet] != "customer"]
        return taken, (
            f"{f.path.name}: only {', '.join(s.sheet for s in taken)} (its"
            f" {', '.join(left)} wait for the deliveries phase)"
        )
    if phase == "deliveries" and has_customer and not has_delivery:
        return [], f"{f.path.name}: a client source (the clients phase migrates it)"
    return list(f.sources), ""


def inspect_inputs(paths: Sequence[Path], phase: str = "all") -> Inputs:
    """The files under `paths` the phase takes, found, hashed and opened; or the no-go
    reason (a file that cannot be read, or none of what the phase needs)."""
    try:
        planned = raw.plan(paths)
    except SourceError as exc:
        return Inputs(None, [], str(exc))
    kept, set_aside = [], []
    for f in planned.files:
        sources, note = _narrowed(f, phase) if phase != "all" else (list(f.sources), "")
        if note:
            set_aside.append(note)
        if sources:
            kept.append(raw.PlannedFile(f.path, f.sha256, f.size, sources))
    files = [{"path": str(f.path.resolve()), "sha256": f.sha256, "bytes": f.size} for f in kept]
    entities = frozenset(
        e for f in kept for s in f.sources if (e := entity_of(f.path.name, s)) is not None
    )
    shown = ", ".join(map(str, paths))
    if not files:
        nogo = f"no loadable file under {shown}"
        if phase != "all":
            nogo += f" for the {phase} phase ({'; '.join(set_aside)})"
        return Inputs(None, [], nogo, set_aside)
    needed = {"clients": "customer", "deliveries": "delivery"}.get(phase)
    if needed is not None and needed not in entities:
        what = (
            "the client workbook (its sheet 客戶資料) or the app database's clients table"
            if needed == "customer"
            else "a delivery source (the history workbook or the app database)"
        )
        return Inputs(
            None, files, f"the {phase} phase needs {what}; none under {shown}", set_aside, entities
        )
    return Inputs(raw.Plan(kept, planned.notes), files, "", set_aside, entities)


def client_workbook_table() -> str:
    """The raw table the customers build reads the client workbook from (its dbt source)."""
    doc = yaml.safe_load((dbt_project_dir() / CLIENT_WORKBOOK_SOURCES).read_text(encoding="utf-8"))
    [source] = [s for s in doc["sources"] if s["name"] == "client_workbook"]
    [table] = [t for t in source["tables"] if t["name"] == "clients"]
    return f"{source.get('schema', 'raw')}.{table.get('identifier', table['name'])}"


def clients_in_raw(conn: psycopg.Connection) -> str:
    """'' when raw holds the client workbook (the clients phase ran); else the no-go reason
    of a deliveries phase: without it the customers build has nothing to start from and
    every delivery would be an orphan."""
    table = client_workbook_table()
    if conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()[0]:
        return ""
    return (
        f"the deliveries phase needs the clients migrated first ({table} is not in raw):"
        " run `luckygas migrate --phase clients` with the client workbook"
    )
