"""Ground truth: what the pipeline must make of every source row, written as expected.json.

The schema is documented in loaders/sample/expected.schema.json (JSON Schema, draft 2020-12)
and in docs/expected-json.md. Later issues extend it by adding keys, never by changing
the meaning of existing ones; `schema_version` says which shape a file has.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from loaders.sample.model import cell_type, raw_text

SCHEMA_VERSION = 2
GENERATOR_VERSION = "2"

# Outcomes a source row can reach.
LOADED = "loaded"  # becomes (part of) a final record; `expect` holds the typed values
FLAGGED = "flagged"  # becomes a final record, with a rule or flag raised and the odd value kept
MERGED = "merged"  # describes the same record as another row (`merged_into`)
QUARANTINED = "quarantined"  # cannot become a record; `reason` from the catalogue
RAW_ONLY = "raw_only"  # a sheet that only reaches the raw layer; staged as its text

# Quarantine reasons (the catalogue; docs/expected-json.md describes each).
REASONS = {
    "unknown_client": "app client id that is no app client, or whose code no client source has",
    "invalid_client_code": "client code missing, an Excel error, or not 7 digits",
    "test_client": "a test client of the legacy app (code not a client code, 測試 name)",
    "date_empty": "no delivery date",
    "date_unparseable": "delivery date in no accepted form (garbage, Excel error)",
    "date_not_calendar_date": "delivery date not a real calendar date (1120229, ROC year 0)",
    "date_out_of_range": "delivery date valid but outside the plausible range",
    "no_positive_quantity": "every product quantity zero or blank",
    "negative_quantity": "a product quantity below zero",
    "invalid_quantity": "a product quantity that is not a number (Excel error)",
    "cancelled": "app delivery with status cancelled",
    "not_delivered": "app delivery with a status other than completed or cancelled (not home)",
}
# Reasons whose rows are rightly not migrated because they are no record of the entity (a
# test client, a cancelled or undelivered app order): set aside from the migration's success
# rate, while every other quarantined row counts against it. The column set_aside of
# seeds/quarantine_reasons.csv says the same (loaders/tests/test_migration_metrics.py).
SET_ASIDE_REASONS = frozenset({"test_client", "cancelled", "not_delivered"})


@dataclass
class Instance:
    row: int
    value: object = None  # the cell as written (rendered to raw text and cell type)
    expect: dict | None = None
    merged_into: dict | None = None
    has_cell: bool = True

    def as_json(self) -> dict:
        out: dict = {"row": self.row}
        if self.has_cell:
            out["cell_type"] = cell_type(self.value)
            out["value"] = raw_text(self.value)
        if self.expect:
            out["expect"] = self.expect
        if self.merged_into:
            out["merged_into"] = self.merged_into
        return out


@dataclass
class Group:
    kind: str
    file: str
    sheet: str
    column: str | None
    outcome: str
    reason: str | None = None
    flag: str | None = None
    column_index: int | None = None  # 1-based spreadsheet column (headers can repeat)
    merged_into_file: str | None = None
    instances: list[Instance] = field(default_factory=list)

    def as_json(self) -> dict:
        out = {
            "kind": self.kind,
            "file": self.file,
            "sheet": self.sheet,
            "column": self.column,
            "outcome": self.outcome,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.flag:
            out["flag"] = self.flag
        if self.column_index is not None:
            out["column_index"] = self.column_index
        if self.merged_into_file:
            out["merged_into_file"] = self.merged_into_file
        out["count"] = len(self.instances)
        out["instances"] = [i.as_json() for i in sorted(self.instances, key=lambda i: i.row)]
        return out


class Truth:
    """Collects defects and counts while the generator renders the files."""

    def __init__(self) -> None:
        self._groups: dict[tuple, Group] = {}
        self.sources: list[dict] = []
        self.outcomes: dict = {}
        self.column_sums: list[dict] = []
        self._headers: dict[tuple[str, str], list] = {}

    def set_headers(self, file: str, sheet: str, headers: list | None) -> None:
        """Header cells of a source, so that each group can name its column's position too."""
        self._headers[(file, sheet)] = list(headers or [])

    def add(
        self,
        kind: str,
        file: str,
        sheet: str,
        column: str | None,
        outcome: str,
        instance: Instance,
        reason: str | None = None,
        flag: str | None = None,
        column_index: int | None = None,
        merged_into_file: str | None = None,
    ) -> None:
        if outcome == QUARANTINED:
            assert reason in REASONS, reason
        headers = self._headers.get((file, sheet), [])
        if column_index is None and column in headers:
            column_index = headers.index(column) + 1
        key = (kind, file, sheet, column, outcome, reason, flag, merged_into_file)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(
                kind, file, sheet, column, outcome, reason, flag, column_index, merged_into_file
            )
        group.instances.append(instance)

    def groups(self) -> list[Group]:
        return sorted(
            self._groups.values(),
            key=lambda g: (
                g.kind,
                g.file,
                g.sheet,
                g.column or "",
                g.reason or "",
                g.flag or "",
                g.merged_into_file or "",
            ),
        )

    def select(self, keep: Callable[[Group], bool]) -> Truth:
        """A Truth with only the groups `keep` accepts (sources and sums are not copied)."""
        out = Truth()
        out._groups = {k: g for k, g in self._groups.items() if keep(g)}
        out._headers = dict(self._headers)
        return out

    def kind_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for g in self._groups.values():
            counts[g.kind] += len(g.instances)
        return dict(sorted(counts.items()))


def dump_expected(doc: dict) -> str:
    """JSON, indented for reading, with each defect instance on one compact line."""
    placeholder = "\u0000instances\u0000"
    groups = doc["defects"]
    shell = dict(
        doc, defects=[dict(g, instances=f"{placeholder}{i}") for i, g in enumerate(groups)]
    )
    text = json.dumps(shell, ensure_ascii=False, indent=1)

    def instances(m: re.Match) -> str:
        rows = groups[int(m[1])]["instances"]
        lines = ",\n   ".join(
            json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in rows
        )
        return f"[\n   {lines}\n  ]" if lines else "[]"

    return re.sub(r'"\\u0000instances\\u0000(\d+)"', instances, text) + "\n"
