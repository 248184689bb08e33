"""Mary's exception workbook: what failed, where, and the source row as it was written.

`luckygas report --out FILE.xlsx` reads what the dbt runs recorded in schema validation
(`latest_exceptions`: each rule as of its latest result and the newest quarantine; the
newest reconciliation; the migration metrics) and writes:

- 摘要 (summary): every business rule with its result, the quarantine reasons with their
  counts, each source's reconciliation, the success rates against the plan's targets, and
  the dbt run each part comes from;
- one sheet per failing rule or quarantine reason (C15, D06, unknown_client, ...; one per
  layout when a code spans several): the source file, sheet and row, the column and value
  at fault, Mary's review of it, then the source row's original cells (from schema raw),
  in file, sheet and row order so the file can be fixed top to bottom.

Chinese headers, frozen header row, autofilter, column widths that fit the text (a CJK
character counts double). Every text cell is written as text, never as a formula, link or
number. `--format csv` writes the same tables as CSV files (UTF-8 with a BOM, which Excel
opens as Unicode) into a directory; there a text cell that starts with `=`, `+`, `-`, `@`, a
tab or a carriage return is written with a leading apostrophe (`'=...`), so that no
spreadsheet runs it.
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

RULE_HEADERS = [
    "規則", "嚴重度", "中文說明", "English", "資料表", "檢查列數", "失敗列數", "狀態", "審核", "執行時間",
]  # fmt: skip
REASON_HEADERS = ["隔離原因", "中文說明", "English", "列數", "已接受"]
RECONCILIATION_HEADERS = ["來源檔案", "工作表", "讀取列數", "成功", "合併", "隔離", "差異"]
METRIC_HEADERS = [
    "對象",
    "來源檔案",
    "工作表",
    "來源列數",
    "成功",
    "合併",
    "隔離",
    "不計",
    "成功率",
    "目標",
    "達標",
]
ROW_HEADERS = [
    "來源檔案", "工作表", "列號", "客戶編號", "規則/原因", "說明", "來源欄位", "原始值",
    "欄位(model)", "值(model)", "審核", "審核備註", "審核人",
]  # fmt: skip
SKIPPED_RAW = set(LINEAGE_COLUMNS) | {"_loaded_at"}
SHEET_NAME_MAX = 31  # Excel's limit


@dataclass
class Table:
    """One sheet (or CSV file): a title, its header row, and its rows."""

    name: str
    headers: list[str]
    rows: list[list[object]] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)  # (row index, title)
    mixed: bool = False  # the summary's parts come from more than one dbt run


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def _run_label(conn: psycopg.Connection, run_id: str | None) -> str:
    if run_id is None:
        return "(none)"
    row = conn.execute(
        "select command, finished_at from validation.runs where run_id = %s", (run_id,)
    ).fetchone()
    if row is None:
        return run_id
    return f"dbt {row[0]} {row[1]:%Y-%m-%d %H:%M:%S} ({run_id[:8]})"


def build(conn: psycopg.Connection) -> list[Table]:
    """The summary and one table per failing rule or quarantine reason and source layout."""
    if not _exists(conn, "validation.exceptions"):
        raise UserError("no validation results in this database: run `dbt build` first")
    run = conn.execute(
        "select run_id from validation.reconciliation order by recorded_at desc limit 1"
    ).fetchone()
    if run is None:
        raise UserError("no reconciliation recorded yet: run `dbt build` first")
    reconciliation_run = run[0]
    newest = conn.execute(
        "select run_id from validation.runs order by finished_at desc limit 1"
    ).fetchone()[0]

    rules = conn.execute(
        "select s.rule_id, s.severity, s.description_zh, s.description_en, s.model,"
        " s.rows_checked, s.rows_failing, s.status, s.review_status,"
        " to_char(r.finished_at, 'YYYY-MM-DD HH24:MI:SS'), s.run_id"
        " from validation.rule_status s join validation.runs r using (run_id) order by rule_id"
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
        "select kind, code, coalesce(layout, ''), source_file, source_sheet, source_row,"
        " client_code, source_header, source_value, column_name, value,"
        " review_decision, review_note, reviewer, run_id"
        " from validation.latest_exceptions"
        " order by kind, code, layout, source_file, source_sheet, source_row"
    ).fetchall()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    quarantine_runs = set()
    for kind, code, *rest in exceptions:
        if kind == "quarantine":
            counts[code][0] += 1
            counts[code][1] += rest[9] == "accepted"
            quarantine_runs.add(rest[12])

    summary = Table("摘要", RULE_HEADERS)
    rule_runs = sorted({r[10] for r in rules})
    summary.sections.append((0, "業務規則 business rules"))
    summary.rows += [list(r[:10]) for r in rules]
    summary.rows.append([])
    summary.sections.append(
        (
            len(summary.rows),
            "隔離原因 quarantine reasons: "
            + ", ".join(_run_label(conn, r) for r in sorted(quarantine_runs))
            if quarantine_runs
            else "隔離原因 quarantine reasons",
        )
    )
    summary.rows.append(REASON_HEADERS)
    for code in sorted(counts):
        zh, en = reasons.get(code, (None, None))
        summary.rows.append([code, zh, en, *counts[code]])
    summary.rows.append([])
    title = f"對帳 reconciliation: {_run_label(conn, reconciliation_run)}"
    if reconciliation_run != newest:
        title += "; 注意 older than the newest run " + _run_label(conn, newest)
    summary.sections.append((len(summary.rows), title))
    summary.rows.append(RECONCILIATION_HEADERS)
    summary.rows += [
        list(r)
        for r in conn.execute(
            "select source_file, source_sheet, rows_read, final, merged, quarantined, difference"
            " from validation.reconciliation where run_id = %s order by 1, 2",
            (reconciliation_run,),
        )
    ]
    if _exists(conn, "validation.migration_metrics"):
        summary.rows.append([])
        summary.sections.append(
            (len(summary.rows), "轉移成功率 migration success against the plan's targets")
        )
        summary.rows.append(METRIC_HEADERS)
        summary.rows += [list(r) for r in conn.execute(_METRICS_SQL)]
    summary.rows.append([])
    summary.sections.append((len(summary.rows), "資料來源 where each part comes from"))
    summary.rows.append(["業務規則", ", ".join(_run_label(conn, r) for r in rule_runs)])
    summary.rows.append(["對帳", _run_label(conn, reconciliation_run)])
    summary.mixed = len(set(rule_runs) | {reconciliation_run} | quarantine_runs) > 1

    raw = _RawRows(conn)
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for item in exceptions:
        groups[(item[1], item[2])].append(item)
    layouts_of: dict[str, list[str]] = defaultdict(list)
    for code, layout in groups:
        layouts_of[code].append(layout)
    tables = [summary]
    names: set[str] = {summary.name}
    for code, layout in sorted(groups):
        items = groups[(code, layout)]
        zh = reasons.get(code, rule_text.get(code, (None, None)))[0]
        headers: list[str] = []
        cells_of: dict[tuple, dict[str, object]] = {}
        for item in items:
            file, sheet, row = item[3:6]
            cells = raw.cells(file, sheet, row)
            cells_of[(file, sheet, row)] = cells
            headers += [c for c in cells if c not in headers]
        name = code if len(layouts_of[code]) == 1 else f"{code} {layout or '-'}"
        table = Table(_sheet_name(name, names), ROW_HEADERS + [f"原始:{c}" for c in headers])
        for item in items:
            (_, _, _, file, sheet, row, client, header, shown, column, value,
             decision, note, reviewer, _) = item  # fmt: skip
            cells = cells_of[(file, sheet, row)]
            table.rows.append(
                [file, sheet, row, client, code, zh, header, shown, column, value,
                 decision, note, reviewer] + [cells.get(c) for c in headers]
            )  # fmt: skip
        tables.append(table)
    return tables


_METRICS_SQL = """
select entity, source_file, source_sheet, source_rows, final, merged, quarantined, set_aside,
    success_rate, target, meets_target
from validation.migration_metrics
order by entity, level, source_file nulls first, source_sheet
"""


def _sheet_name(name: str, taken: set[str]) -> str:
    """A sheet name Excel accepts (31 characters, none of []:*?/\\), unique in the book."""
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:SHEET_NAME_MAX]
    candidate, n = clean, 1
    while candidate in taken:
        n += 1
        suffix = f"~{n}"
        candidate = clean[: SHEET_NAME_MAX - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


class _RawRows:
    """The original cells of source rows, under their headers as written, from the raw table
    each (file, sheet) was staged in."""

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

    def _headers(self, table: str) -> dict[str, str]:
        """Raw column name -> the header as written (a blank header keeps its column name)."""
        return {
            name: header or name
            for name, header in self.conn.execute(
                "select column_name, original_header from raw._columns where table_name = %s"
                " order by position",
                (table,),
            )
        }

    def cells(self, file: str | None, sheet: str | None, row: int | None) -> dict[str, object]:
        if file is None or sheet is None or row is None:
            return {}
        key = (file, sheet)
        if key not in self.cache:
            self.cache[key] = {}
            table = self.tables.get(key)
            if table is not None:
                headers = self._headers(table)
                cur = self.conn.execute(
                    sql.SQL("select * from {}").format(sql.Identifier("raw", table))
                )
                names = [d.name for d in cur.description]
                for values in cur:
                    record = dict(zip(names, values, strict=True))
                    self.cache[key][record["_source_row"]] = {
                        headers.get(k, k): v for k, v in record.items() if k not in SKIPPED_RAW
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
        for j, header in enumerate(table.headers):
            sheet.write_string(0, j, header, bold)
        sheet.freeze_panes(1, 0)
        for i, row in enumerate(table.rows, start=1):
            for j, value in enumerate(row):
                if isinstance(value, str):
                    sheet.write_string(i, j, value)  # never a formula, URL or number
                else:
                    sheet.write(i, j, value)
                if j < len(widths):
                    widths[j] = max(widths[j], _width(value))
                else:
                    widths.append(_width(value))
        for index, text in table.sections:
            if index > 0:
                sheet.write_string(index, 0, text, title)
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


# What a spreadsheet reads as the start of a formula when it opens a CSV file (OWASP's list:
# =, +, -, @, and the tab and carriage return that some programs strip before looking).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text that starts like a formula gets a leading
    apostrophe (`'=HYPERLINK(...)`), the mark Excel and LibreOffice users know for "text as
    typed"; numbers, dates and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(tables: list[Table], directory: Path) -> None:
    """One CSV file per table (UTF-8 with a BOM), every text cell through `csv_text`."""
    directory.mkdir(parents=True, exist_ok=True)
    for table in tables:
        with (directory / f"{table.name}.csv").open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([csv_text(h) for h in table.headers])
            writer.writerows([csv_text(v) for v in row] for row in table.rows)
