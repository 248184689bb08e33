"""Every raw table is accounted for, and the real history layout becomes deliveries.

Two loads of the small sample, each into a database of its own:

- only the client workbook and the delivery history (no app database): every history row
  with a valid code and date is a delivery, and every code the master lacks is a customer
  described by its own history rows, as expected.json says;
- then the history workbook again with one extra sheet of a layout the catalogue does not
  know: `dbt build` fails on rule R04, and validation.raw_tables and validation.exceptions
  name the sheet, its rows and headers.
"""

from __future__ import annotations

import json
import shutil

import openpyxl
import psycopg
import pytest

from loaders.cli import main
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt

CLIENTS = "2025-05 commercial client list.xlsx"
HISTORY = "2025-05 commercial deliver history.xlsx"


def rows(conninfo: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def load(env: dict[str, str], *paths) -> None:
    with environ(env):
        assert main(["load", *map(str, paths)]) == 0


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("coverage") / "sample"
    generate(out, scale="small", seed=11)
    return out, json.loads((out / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def history_only(pg, sample, tmp_path_factory):
    """(conninfo, dbt result, env) after loading the client workbook and the history only."""
    folder, _ = sample
    tmp = tmp_path_factory.mktemp("coverage-history")
    with fresh_database(pg, "cov") as (conninfo, env):
        load(env, folder / CLIENTS, folder / HISTORY)
        run_env = dbt_env(env, tmp)
        yield conninfo, run_dbt(["build"], run_env), run_env


def history_source(expected: dict) -> dict:
    [src] = [s for s in expected["sources"] if s["file"] == HISTORY]
    return src


def test_the_history_is_one_sheet_of_the_real_layout(sample):
    _, expected = sample
    src = history_source(expected)
    assert src["sheet"] == "Sheet1"
    assert src["headers"] == ["客戶", "電子發票抬頭", "客戶簡稱", "地址", "最後十次日期"]
    assert src["catalogue_layout"] == "history_daily" and src["role"] == "migrated"


def test_build_passes_without_the_app(history_only):
    _, result, _ = history_only
    assert result.returncode == 0, result.stdout[-3000:]


def test_every_valid_history_row_is_a_delivery(history_only, sample):
    conninfo, _, _ = history_only
    _, expected = sample
    src = history_source(expected)
    [recon] = [r for r in expected["outcomes"]["reconciliation"] if r["file"] == HISTORY]
    quarantined = recon["quarantined"]
    got = rows(conninfo, "select count(*), count(*) filter (where source_system = 'history'),"
               " count(*) filter (where items_recorded) from marts.deliveries")[0]  # fmt: skip
    # no app: no merge, every history row is its own delivery or quarantined
    assert got == (src["data_rows"] - quarantined, src["data_rows"] - quarantined, 0)
    assert rows(conninfo, "select count(*) from marts.delivery_quarantine") == [(quarantined,)]
    by_reason = dict(
        rows(conninfo, "select reason, count(*) from marts.delivery_quarantine group by 1")
    )
    assert "unknown_client" not in by_reason  # a code the master lacks is a customer
    assert sum(by_reason.values()) == quarantined
    assert rows(
        conninfo,
        "select difference from validation.source_reconciliation where source_sheet = 'Sheet1'",
    ) == [(0,)]


def test_codes_missing_from_the_master_are_customers_with_their_history_details(
    history_only, sample
):
    conninfo, _, _ = history_only
    _, expected = sample
    want = {
        i["expect"]["client_code"]: (i["expect"], i["row"])
        for g in expected["defects"]
        if g["kind"] == "history_only_client"
        for i in g["instances"]
    }
    assert want, "the sample has clients outside the master"
    have = {
        r[0]: r
        for r in rows(
            conninfo,
            "select client_code, invoice_title, short_name, address, history_rows, source_row,"
            " details_lineage from marts.customers where customer_source = 'delivery_history'",
        )
    }
    assert set(have) == set(want)
    for code, (e, row) in want.items():
        _, title, short, address, n, source_row, lineage = have[code]
        assert (title, short, address, n, source_row) == (
            e["invoice_title"], e["short_name"], e["address"], e["history_rows"], row,
        ), code  # fmt: skip
        for header, value in (("電子發票抬頭", title), ("客戶簡稱", short), ("地址", address)):
            assert (header in lineage) == (value is not None)
    # never a placeholder: no invented name or address
    assert rows(
        conninfo,
        "select count(*) from marts.customers where invoice_title like '客戶 %%'"
        " or address = '地址待更新'",
    ) == [(0,)]
    # rule C16 lists them for the business to confirm, each at its latest history row
    found = rows(
        conninfo,
        "select client_code, source_sheet, source_row from validation.latest_exceptions"
        " where code = 'C16'",
    )
    assert {(c, s, r) for c, s, r in found} == {(c, "Sheet1", row) for c, (_, row) in want.items()}


def test_every_raw_table_has_its_layout_and_role(history_only, sample):
    conninfo, _, _ = history_only
    _, expected = sample
    want = {
        (s["file"], s["sheet"]): (s["catalogue_layout"], s["role"])
        for s in expected["sources"]
        if s["file"] in (CLIENTS, HISTORY)
    }
    have = {
        (f, s): (layout, role)
        for f, s, layout, role, status in rows(
            conninfo,
            "select source_file, source_sheet, layout, role, status from validation.raw_tables",
        )
        if status in ("migrated", "not_migrated")
    }
    assert have == want
    reasons = rows(
        conninfo, "select count(*) from validation.raw_tables where role = 'not_migrated'"
        " and coalesce(status_reason, '') = ''",
    )  # fmt: skip
    assert reasons == [(0,)]


def test_a_sheet_of_an_unknown_layout_fails_the_build(history_only, sample, tmp_path):
    conninfo, _, run_env = history_only
    folder, _ = sample
    changed = tmp_path / HISTORY
    shutil.copy(folder / HISTORY, changed)
    book = openpyxl.load_workbook(changed)
    extra = book.create_sheet("備註")
    extra.append(["日期", "說明", "經手人"])
    for k in range(7):
        extra.append([f"2025/05/{k + 1:02d}", f"補登第{k + 1}筆", "林志明"])
    book.save(changed)
    env = {k: v for k, v in run_env.items() if k.startswith("PG")}
    load(env, changed)
    result = run_dbt(["build"], run_env)
    assert result.returncode != 0
    assert "raw_tables_accounted" in result.stdout
    assert rows(
        conninfo,
        "select source_sheet, raw_rows, status, headers from validation.raw_tables"
        " where status <> 'migrated' and role is distinct from 'not_migrated'",
    ) == [("備註", 7, "unrecognised", ["日期", "說明", "經手人"])]
    found = rows(
        conninfo,
        "select source_file, source_sheet, value from validation.latest_exceptions"
        " where code = 'R04'",
    )
    assert found == [(HISTORY, "備註", "日期 | 說明 | 經手人")]
    # the reconciliation counts it from raw, as rows nobody read
    assert rows(
        conninfo,
        "select entity, rows_read, difference from validation.source_reconciliation"
        " where source_sheet = '備註'",
    ) == [("unrecognised", 7, 7)]
