"""The column map (seeds/source_columns.csv) as a Markdown page: docs/column-map.md.

The seed is the record: every column of every migrated layout and what becomes of it. The
page is generated from it, never edited by hand; `loaders/tests/test_column_map.py` asserts
that the page equals `render_markdown(seeds/source_columns.csv)`, so the two cannot drift.

    python -m loaders.column_map > docs/column-map.md
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP_CSV = ROOT / "seeds" / "source_columns.csv"
MAP_COLUMNS = [
    "layout",
    "source_column",
    "source_header",
    "role",
    "mart_columns",
    "as_written",
    "reason",
]
ROLES = ("migrated", "not_migrated")

INTRO = """\
# The column map

<!-- Generated from seeds/source_columns.csv by loaders/column_map.py: do not edit by hand. -->

Every column of every **migrated** layout of `seeds/raw_layouts.csv`, and what becomes of it:
the final columns (`model.column`) it feeds, or, when it is not migrated, why. The map is the
dbt seed `seeds/source_columns.csv` (`reference.source_columns`); this page is generated from
it.

- **Rule R05** (`tests/reconciliation/source_columns_mapped.sql`, severity error) fails when a
  raw table of a migrated layout (`validation.raw_tables`) has a column the map does not name
  for that layout: `dbt build` fails, `luckygas migrate` is a no-go naming the failed test,
  and `validation.exceptions` (code R05) names the file, the sheet, the header row and the
  header.
  An export that gains a column stops there instead of the column vanishing in staging:
  declare it in the seed, migrated or not migrated with a reason, then build again.
- **Raw column** is the raw table's column (`raw._columns.column_name`): the header itself, or
  `col_<n>` for a blank header (`loaders/naming.py`).
- **As written** is the one final column that keeps the cell as written or its cleaned text,
  in the table whose rows carry the value (`customers`, `deliveries`), shown to Mary beside an
  exception; for a yes/no column, the column that keeps a stray word (NULL for V and blank).
  Empty where none does: numbers, hour windows, and dates, which `deliveries` keeps parsed
  only (a quarantined row's date as written is `delivery_quarantine.delivery_date_raw`).
- Lineage (`source_file`, `source_sheet`, `source_row`), keys and decisions (`delivery_key`,
  quarantine `reason`) draw on several columns and are not listed.
- `loaders/tests/test_column_map.py` checks that this page equals the seed's rendering, that
  every named column is a column of its model (`models/marts/**/_*.yml`), that the map covers
  exactly the headers the sample generator writes for each layout, and that R05 fails when
  the client master gains a column.

Regenerate the page after editing the seed:

```sh
.venv/bin/python -m loaders.column_map > docs/column-map.md
```
"""


@dataclass(frozen=True)
class MappedColumn:
    """One row of the column map."""

    layout: str
    source_column: str
    source_header: str  # as written; empty for a blank header
    role: str
    mart_columns: tuple[str, ...]
    as_written: str
    reason: str


def read_map(csv_path: Path) -> list[MappedColumn]:
    """The rows of the column map, in file order; a malformed file raises ValueError."""
    with open(csv_path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != MAP_COLUMNS:
            raise ValueError(f"{csv_path}: columns {reader.fieldnames}, expected {MAP_COLUMNS}")
        rows = [
            MappedColumn(
                layout=r["layout"],
                source_column=r["source_column"],
                source_header=r["source_header"],
                role=r["role"],
                mart_columns=tuple(r["mart_columns"].split()),
                as_written=r["as_written"],
                reason=r["reason"],
            )
            for r in reader
        ]
    for n, row in enumerate(rows, start=2):
        if row.role not in ROLES:
            raise ValueError(f"{csv_path}:{n}: role {row.role!r} is not one of {ROLES}")
    return rows


def _layouts(layouts_path: Path) -> dict[str, dict[str, str]]:
    with open(layouts_path, encoding="utf-8", newline="") as f:
        return {r["layout"]: r for r in csv.DictReader(f)}


# Names to show as code: dotted (customers.area_label) or snake_case (stg_..., status_raw).
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+|[A-Za-z0-9]+_[A-Za-z0-9_]+")
_MARKDOWN = re.compile(r"([\\`*_~|<\[\]])")


def _text(text: str) -> str:
    """Plain text safe in a table cell: Markdown's punctuation escaped (8~9, a | b)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _prose(text: str) -> str:
    """A reason: identifiers as code, the rest as plain text."""
    out, at = [], 0
    for m in _IDENTIFIER.finditer(text):
        out.append(_text(text[at : m.start()]))
        out.append(f"`{m.group()}`")
        at = m.end()
    out.append(_text(text[at:]))
    return "".join(out)


def _code(names: tuple[str, ...] | list[str]) -> str:
    return " ".join(f"`{n}`" for n in names)


def _header_cell(row: MappedColumn) -> str:
    if not row.source_header:
        return "(blank)"
    return _prose(row.source_header)


def render_markdown(csv_path: Path, layouts_path: Path | None = None) -> str:
    """docs/column-map.md from the map at `csv_path` and the layout catalogue beside it.

    `layouts_path` defaults to raw_layouts.csv in the map's folder: each layout's description
    and staging model come from there.
    """
    csv_path = Path(csv_path)
    rows = read_map(csv_path)
    layouts = _layouts(Path(layouts_path or csv_path.with_name("raw_layouts.csv")))
    order = list(dict.fromkeys(r.layout for r in rows))
    unknown = [name for name in order if name not in layouts]
    if unknown:
        raise ValueError(f"{csv_path}: layouts not in the catalogue: {', '.join(unknown)}")

    lines = [INTRO]
    lines += [
        "## Summary",
        "",
        "| layout | staging model | columns | migrated | not migrated |",
        "|---|---|---:|---:|---:|",
    ]
    for name in order:
        of = [r for r in rows if r.layout == name]
        migrated = sum(r.role == "migrated" for r in of)
        lines.append(
            f"| [{name}](#{name}) | `{layouts[name]['staging_model']}` |"
            f" {len(of)} | {migrated} | {len(of) - migrated} |"
        )
    for name in order:
        layout = layouts[name]
        lines += [
            "",
            f"## {name}",
            "",
            f"{_text(layout['description'])}. Read by `{layout['staging_model']}`.",
            "",
            "| source header | raw column | role | mart columns, or why not migrated | as written |",
            "|---|---|---|---|---|",
        ]
        for r in (r for r in rows if r.layout == name):
            becomes = _code(r.mart_columns) if r.role == "migrated" else _prose(r.reason)
            as_written = f"`{r.as_written}`" if r.as_written else ""
            role = "migrated" if r.role == "migrated" else "**not migrated**"
            lines.append(
                f"| {_header_cell(r)} | `{r.source_column}` | {role} | {becomes} | {as_written} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Print docs/column-map.md for the project's seed."""
    sys.stdout.write(render_markdown(MAP_CSV))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
