"""Mary's exception workbook: what failed, where, and the source row as it was written.

`luckygas report --out FILE.xlsx` reads the validation results the dbt runs recorded
(macros/record_validation.sql: each rule as of its latest result, the newest quarantine and
reconciliation) and writes:

- 摘要 (summary): every business rule with its result, the quarantine reasons with their
  counts, and each source's reconciliation;
- one sheet per failing rule or quarantine reason (C15, D06, unknown_client, ...): the source
  file, sheet and row number, the column and value at fault, and then the source row's
  original cells (from schema raw), sorted by file, sheet and row so the file can be fixed
  top to bottom.

Chinese headers, frozen header row, autofilter, column widths that fit the text (a CJK
character counts double). `--format csv` writes the same tables as CSV files (UTF-8 with a
BOM, which Excel opens as Unicode) into a directory.
"""

from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from loaders.errors import UserError
from loaders.naming import LINEAGE_COLUMNS

RULE_HEADERS = ["規則", "嚴重度", "中文說明", "English", "資料表", "檢查列數", "失敗列數", "狀態"]
REASON_HEADERS = ["隔離原因", "中文說明", "English", "列數"]
RECONCILIATION_HEADERS = ["來源檔案", "工作表", "讀取列數", "成功", "合併", "隔離", "差異"]
ROW_HEADERS = ["來源檔案", "工作表", "列號", "規則/原因", "說明", "欄位", "值"]
SKIPPED_RAW = set(LINEAGE_COLUMNS) | {"_loaded_at"}


@dataclass
class Table:
    """One sheet (or CSV file): a title, its header row, and its rows."""

    name: str
    headers: list[str]
    rows: list[list[object]] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)  # (row index, title)


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def build(conn: psycopg.Connection) -> list[Table]:
    """The summary and one table per failing rule or quarantine reason, newest run."""
    if not _exists(conn, "validation.exceptions"):
        raise UserError("no validation results in this database: run `dbt build` first")
    run = conn.execute(
        "select run_id from validation.reconciliation order by recorded_at desc limit 1"
    ).fetchone()
    if run is None:
        raise UserError("no reconciliation recorded yet: run `dbt build` first")
    run_id = run[0]

    rules = conn.execute(
        "select rule_id, severity, description_zh, description_en, model, rows_checked,"
        " rows_failing, status from validation.rule_status order by rule_id"
    ).fetchall()
    reasons = dict(
        (r[0], (r[1], r[2]))
        for r in conn.execute(
            "select reason, description_zh, description_en from reference.quarantine_reasons"
        )
    )
    rule_text = {r[0]: (r[2], r[3]) for r in rules}
    # each rule as of its latest result, the newest quarantine (view validation.latest_exceptions)
    exceptions = conn.execute(
        "select kind, code, source_file, source_sheet, source_row, column_name, value"
        " from validation.latest_exceptions"
        " order by kind, code, source_file, source_sheet, source_row"
    ).fetchall()
    counts: dict[str, int] = defaultdict(int)
    for kind, code, *_ in exceptions:
        if kind == "quarantine":
            counts[code] += 1

    summary = Table("摘要", RULE_HEADERS)
    summary.sections.append((0, "業務規則 business rules"))
    summary.rows += [list(r) for r in rules]
    summary.rows.append([])
    summary.sections.append((len(summary.rows), "隔離原因 quarantine reasons"))
    summary.rows.append(REASON_HEADERS)
    for code in sorted(counts):
        zh, en = reasons.get(code, (None, None))
        summary.rows.append([code, zh, en, counts[code]])
    summary.rows.append([])
    summary.sections.append((len(summary.rows), "對帳 reconciliation"))
    summary.rows.append(RECONCILIATION_HEADERS)
    summary.rows += [
        list(r)
        for r in conn.execute(
            "select source_file, source_sheet, rows_read, final, merged, quarantined, difference"
            " from validation.reconciliation where run_id = %s order by 1, 2",
            (run_id,),
        )
    ]

    raw = _RawRows(conn)
    by_code: dict[str, list[tuple]] = defaultdict(list)
    for kind, code, file, sheet, row, column, value in exceptions:
        by_code[code].append((kind, code, file, sheet, row, column, value))
    tables = [summary]
    for code in sorted(by_code):
        items = by_code[code]
        zh = reasons.get(code, rule_text.get(code, (None, None)))[0]
        extra: list[str] = []
        cells_of: dict[tuple, dict[str, object]] = {}
        for _, _, file, sheet, row, _, _ in items:
            cells = raw.cells(file, sheet, row)
            cells_of[(file, sheet, row)] = cells
            extra += [c for c in cells if c not in extra]
        table = Table(code[:31], ROW_HEADERS + [f"原始:{c}" for c in extra])
        for _, _, file, sheet, row, column, value in items:
            cells = cells_of[(file, sheet, row)]
            table.rows.append(
                [file, sheet, row, code, zh, column, value] + [cells.get(c) for c in extra]
            )
        tables.append(table)
    return tables


class _RawRows:
    """The original cells of source rows, from the raw table each (file, sheet) was staged in."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.tables = {
            (f, s): t
            for f, s, t in conn.execute(
                "select distinct on (source_file, sheet) source_file, sheet, table_name"
                " from raw._sources where outcome <> 'failed'"
                " order by source_file, sheet, load_id desc"
            )
        }
        self.cache: dict[tuple[str, str], dict[int, dict[str, object]]] = {}

    def cells(self, file: str | None, sheet: str | None, row: int | None) -> dict[str, object]:
        if file is None or sheet is None or row is None:
            return {}
        key = (file, sheet)
        if key not in self.cache:
            self.cache[key] = {}
            table = self.tables.get(key)
            if table is not None:
                cur = self.conn.execute(
                    sql.SQL("select * from {}").format(sql.Identifier("raw", table))
                )
                names = [d.name for d in cur.description]
                for values in cur:
                    record = dict(zip(names, values, strict=True))
                    self.cache[key][record["_source_row"]] = {
                        k: v for k, v in record.items() if k not in SKIPPED_RAW
                    }
        return self.cache[key].get(row, {})


def _width(value: object) -> int:
    text = "" if value is None else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def write_xlsx(tables: list[Table], path: Path) -> None:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_urls": False})
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    title = book.add_format({"bold": True, "font_size": 12})
    for table in tables:
        sheet = book.add_worksheet(table.name)
        widths = [_width(h) for h in table.headers]
        sheet.write_row(0, 0, table.headers, bold)
        sheet.freeze_panes(1, 0)
        for i, row in enumerate(table.rows, start=1):
            for j, value in enumerate(row):
                sheet.write(i, j, value)
                if j < len(widths):
                    widths[j] = max(widths[j], _width(value))
                else:
                    widths.append(_width(value))
        for index, text in table.sections:
            if index > 0:
                sheet.write(index, 0, text, title)
        for j, w in enumerate(widths):
            sheet.set_column(j, j, min(max(w + 2, 6), 60))
        if table.rows and not table.sections:
            sheet.autofilter(0, 0, len(table.rows), len(table.headers) - 1)
        elif table.sections:
            sheet.autofilter(0, 0, len(_rules_block(table)), len(table.headers) - 1)
    book.close()


def _rules_block(table: Table) -> list[list[object]]:
    """The summary's first block (the rules), for its autofilter."""
    end = next((i for i, t in table.sections if i > 0), len(table.rows))
    return table.rows[: end - 1]


def write_csv(tables: list[Table], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for table in tables:
        with (directory / f"{table.name}.csv").open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(table.headers)
            writer.writerows(table.rows)
