"""Mary's record: what the pipeline does not recognise is kept and reported, every exception
can be located in its source, and her views survive the dbt commands an analyst runs.

One small sample, loaded, with one raw cell changed before `dbt build` the way a real export
would differ: a 區域 that no seed knows. The expected values come from the raw tables and
expected.json, never from the pipeline's own output.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from loaders.cli import main
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt
from loaders.tests.test_dbt_deliveries import load, rows

UNKNOWN_AREA = "X-新設區"

# The README's five queries (section "Validation results for Mary"), as written there.
MARYS_QUERIES = {
    "failing rules": "select rule_id, severity, description_zh, rows_checked, rows_failing,"
    " status from validation.rule_status where status <> 'pass' order by severity, rule_id",
    "rows to fix": "select source_file, source_sheet, source_row, code, source_header,"
    " source_value, review_decision from validation.latest_exceptions"
    " order by source_file, source_sheet, source_row, code, source_value",
    "quarantine reasons": "select e.code, q.description_zh, count(*)"
    " from validation.latest_exceptions e join reference.quarantine_reasons q on q.reason = e.code"
    " where e.kind = 'quarantine' group by 1, 2 order by 3 desc, 1",
    "rule history": "select r.finished_at, x.rule_id, x.rows_failing, x.status"
    " from validation.rule_results x join validation.runs r using (run_id)"
    " where x.rule_id = 'D06' order by r.finished_at",
    "reconciliation": "select entity, source_file, source_sheet, rows_read, final, merged,"
    " quarantined, difference from validation.latest_reconciliation order by 2, 3",
}


def failures(stdout: str) -> list[str]:
    """The lines of a dbt log that say what failed."""
    return [x for x in stdout.splitlines() if "ERROR" in x or "FAIL" in x or "Failure" in x]


def master_table(conninfo: str) -> str:
    return rows(
        conninfo,
        "select table_name from raw._sources where sheet = '客戶資料' and outcome = 'loaded'"
        " order by load_id desc limit 1",
    )[0][0]


@pytest.fixture(scope="module")
def built(pg, tmp_path_factory):
    """(conninfo, dbt env, expected, the changed row: file, sheet, row, client code)."""
    tmp = tmp_path_factory.mktemp("dbt-exceptions")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=13)
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    with fresh_database(pg, "x") as (conninfo, env):
        load(env, sample)
        table = master_table(conninfo)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                f'select _source_file, _source_sheet, _source_row, "客戶" from raw."{table}"'
                ' where "區域" is not null order by _source_row limit 1'
            ).fetchone()
            conn.execute(
                f'update raw."{table}" set "區域" = %s where _source_row = %s',
                (UNKNOWN_AREA, row[2]),
            )
        run_env = dbt_env(env, tmp)
        result = run_dbt(["build"], run_env)
        assert result.returncode == 0, result.stdout[-4000:]
        yield conninfo, run_env, expected, row


def test_an_unknown_area_stays_readable_and_is_an_exception(built):
    conninfo, _, _, (file, sheet, row, code) = built
    code = code.removesuffix(".0")
    assert rows(
        conninfo,
        "select area_label, area_code, area_name from marts.customers where client_code = %s",
        (code,),
    ) == [(UNKNOWN_AREA, None, None)]
    found = rows(
        conninfo,
        "select source_file, source_sheet, source_row, client_code, column_name, value,"
        " source_header, source_value, severity from validation.latest_exceptions"
        " where code = 'C17' and value = %s",
        (UNKNOWN_AREA,),
    )
    assert found == [
        (file, sheet, row, code, "area_code", UNKNOWN_AREA, "區域", UNKNOWN_AREA, "warn")
    ]


def test_the_real_area_values_and_typos_all_map(built):
    """Every 區域 the real file holds (docs/raw-formats.md section 1) has an area, the typos too."""
    conninfo = built[0]
    real = {
        "A-瑞光": "A", "B-四維": "B", "C-漢中": "C", "D-東方大鎮": "D", "E-力國": "E",
        "F-成功線": "F", "F-成功縣": "F", "G-都蘭線": "G", "H-鹿野線": "H", "H-鹿野縣": "H",
        "I-池上線": "I", "J-知本線": "J", "K-東大線": "K", "L-大武線": "L", "M-商校商圈": "M",
        "Y-富岡": "Y",
    }  # fmt: skip
    seed = dict(rows(conninfo, "select area_label, area_code from reference.delivery_areas"))
    assert seed == real
    unmapped = rows(
        conninfo,
        "select area_label from marts.customers where area_label is not null and area_code is null",
    )
    assert unmapped == [(UNKNOWN_AREA,)]


def test_every_exception_is_locatable(built):
    """Every exception row names its file, sheet and row; rule rows their source header."""
    conninfo = built[0]
    missing = rows(
        conninfo,
        "select code, kind, count(*) from validation.exceptions"
        " where source_file is null or source_sheet is null or source_row is null"
        " group by 1, 2",
    )
    assert missing == []
    # the not_null-style rules return whole rows now: a row of each is located and has cells
    headerless = rows(
        conninfo,
        "select code, column_name from validation.latest_exceptions"
        " where kind = 'rule' and left(code, 1) = 'C' and source_header is null",
    )
    assert headerless == []


def test_the_not_null_rules_return_their_rows(built):
    """C03/C04/C05/C07 failures carry lineage: a blanked cell is reported at its row."""
    conninfo, run_env, _, _ = built
    table = master_table(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        target = conn.execute(
            f'select _source_row, "結帳方式" from raw."{table}"'
            ' where "結帳方式" is not null order by _source_row desc limit 1'
        ).fetchone()
        conn.execute(
            f'update raw."{table}" set "結帳方式" = null where _source_row = %s', (target[0],)
        )
    try:
        result = run_dbt(["build", "--select", "+customers", "customers"], run_env)
        assert result.returncode == 0, result.stdout[-4000:]
        found = rows(
            conninfo,
            "select source_sheet, source_row, source_header, column_name"
            " from validation.latest_exceptions where code = 'C07'",
        )
        assert ("客戶資料", target[0], "結帳方式", "payment_method_zh") in found
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                f'update raw."{table}" set "結帳方式" = %s where _source_row = %s',
                (target[1], target[0]),
            )
        assert run_dbt(["build"], run_env).returncode == 0


def test_marys_queries_survive_freshness_and_a_partial_build(built):
    conninfo, run_env, expected, _ = built
    before = {name: rows(conninfo, sql) for name, sql in MARYS_QUERIES.items()}
    assert all(before.values()), {k: len(v) for k, v in before.items()}
    assert run_dbt(["source", "freshness"], run_env).returncode == 0
    result = run_dbt(["build", "--select", "+customer_cylinders"], run_env)
    assert result.returncode == 0, result.stdout[-4000:]
    after = {name: rows(conninfo, sql) for name, sql in MARYS_QUERIES.items()}
    assert after == before
    # the views are still there, and the runs that recorded no reconciliation say why
    notes = rows(
        conninfo,
        "select command, reconciliation_note from validation.runs order by finished_at desc limit 2",
    )
    assert [c for c, _ in notes] == ["build", "freshness"]
    assert all(n and "source_reconciliation" in n for _, n in notes)
    # and the reconciliation still accounts for every source row of expected.json
    read = {(f, s): n for _, f, s, n, *_ in after["reconciliation"]}
    for source in expected["sources"]:
        if (source["file"], source["sheet"]) in read:
            assert read[(source["file"], source["sheet"])] == source["data_rows"], source
    assert all(r[-1] == 0 for r in after["reconciliation"])


def test_an_accepted_customer_stays_accepted_after_its_next_delivery(built):
    """A review of C16 is of the customer (its code and details), not of the history row it
    is reported at: the customer's next delivery moves the exception, the review holds."""
    conninfo, run_env, _, _ = built
    file, sheet, row, code = rows(
        conninfo,
        "select source_file, source_sheet, source_row, client_code from validation.latest_exceptions"
        " where code = 'C16' and layout = 'history_daily' order by source_row limit 1",
    )[0]
    with environ(run_env):
        assert main(["review", "accept", "C16", "--file", file, "--sheet", sheet, "--row",
                     str(row), "--note", "業務確認是新客戶", "--by", "Mary"]) == 0  # fmt: skip
    table = rows(
        conninfo,
        "select table_name from raw._sources where source_file = %s and sheet = %s"
        " and outcome = 'loaded' order by load_id desc limit 1",
        (file, sheet),
    )[0][0]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "select column_name from raw._columns where table_name = %s order by position",
                (table,),
            )
        ]
        quoted = ", ".join(f'"{c}"' for c in columns if c != "最後十次日期")
        new_row = conn.execute(f'select max(_source_row) + 1 from raw."{table}"').fetchone()[0]
        conn.execute(
            f'insert into raw."{table}" ({quoted}, "最後十次日期", _load_id, _source_file,'
            " _source_sha256, _source_sheet, _source_row)"
            f" select {quoted}, '1140601', _load_id, _source_file, _source_sha256,"
            f' _source_sheet, %s from raw."{table}" where _source_row = %s',
            (new_row, row),
        )
        conn.execute(
            "update raw._sources set rows_written = rows_written + 1 where table_name = %s"
            " and load_id = (select max(load_id) from raw._sources where table_name = %s)",
            (table, table),
        )
    # the row joins a load already built (a real reload is a new load): rebuild in full
    result = run_dbt(["build", "--full-refresh"], run_env)
    assert result.returncode == 0, failures(result.stdout)
    now = rows(
        conninfo,
        "select source_row, review_decision, reviewer from validation.latest_exceptions"
        " where code = 'C16' and client_code = %s",
        (code,),
    )
    assert now == [(new_row, "accepted", "Mary")]
