"""Load the small sample, run `dbt build`, and compare the deliveries with expected.json.

Every delivery figure of expected.json (counts, source systems, items, product totals,
quarantine reasons, per-source reconciliation) and every delivery defect's outcome, row by
row, checked against the final tables; then the database's own guarantees: foreign keys
that reject an orphan, and a reconciliation test that fails when a row goes missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from loaders.cli import main
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database, run_dbt

HISTORY = "2025-05 commercial deliver history.xlsx"
APP = "luckygas.db"
DELIVERY_LAYOUTS = {"history_daily", "history_transaction", "app_deliveries"}


def delivery_sheets(expected: dict) -> set[tuple[str, str]]:
    """The (file, sheet) of every delivery source: a table of a delivery layout."""
    return {
        (s["file"], s["sheet"])
        for s in expected["sources"]
        if s.get("catalogue_layout") in DELIVERY_LAYOUTS
    }


def load(env: dict[str, str], path) -> None:
    """`luckygas load PATH` against the database `env` names."""
    with environ(env):
        assert main(["load", str(path)]) == 0


@pytest.fixture(scope="module")
def built(pg, tmp_path_factory):
    """(conninfo, expected, dbt result, dbt env, sample dir) after load + dbt build."""
    tmp = tmp_path_factory.mktemp("dbt-deliveries")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=9)
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    with fresh_database(pg, "d") as (conninfo, env):
        load(env, sample)
        run_env = dbt_env(env, tmp)
        result = run_dbt(["build"], run_env)
        yield conninfo, expected, result, run_env, sample


def rows(conninfo: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def number(x) -> Decimal:
    return Decimal(str(x))


def delivery_groups(expected: dict) -> list[dict]:
    """Defect groups of delivery rows (a client only the history has is a customer's)."""
    sheets = delivery_sheets(expected)
    return [
        g
        for g in expected["defects"]
        if (g["file"], g["sheet"]) in sheets and g["kind"] != "history_only_client"
    ]


def test_dbt_build_passes_every_model_and_test(built):
    _, _, result, _, _ = built
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "ERROR=0" in result.stdout


def test_delivery_counts_equal_expected(built):
    conninfo, expected, _, _, _ = built
    want = expected["outcomes"]["deliveries"]
    assert rows(conninfo, "select count(*) from marts.deliveries") == [(want["count"],)]
    assert rows(conninfo, "select count(*) from marts.delivery_items") == [(want["items"],)]
    by_system = dict(
        rows(conninfo, "select source_system, count(*) from marts.deliveries group by 1")
    )
    assert by_system == want["by_source_system"]
    reasons = dict(
        rows(conninfo, "select reason, count(*) from marts.delivery_quarantine group by 1")
    )
    assert reasons == want["quarantine"]


def test_product_totals_equal_expected(built):
    conninfo, expected, _, _, _ = built
    got = dict(
        rows(conninfo, "select product_code, sum(quantity) from marts.delivery_items group by 1")
    )
    want = {
        code: number(q) for code, q in expected["outcomes"]["deliveries"]["product_totals"].items()
    }
    assert got == want


def test_every_source_row_is_accounted_for_per_source(built):
    """rows = final + merged + quarantined, for each sheet and the app's table."""
    conninfo, expected, _, _, _ = built
    got = {}
    for file, sheet, role, n in rows(
        conninfo,
        "select source_file, source_sheet, source_role, count(*) from marts.delivery_sources"
        " group by 1, 2, 3"
        " union all select source_file, source_sheet, 'quarantined', count(*)"
        " from marts.delivery_quarantine group by 1, 2",
    ):
        got.setdefault((file, sheet), Counter())[role] += n
    for r in expected["outcomes"]["reconciliation"]:
        if (r["file"], r["sheet"]) not in delivery_sheets(expected):
            continue
        c = got[(r["file"], r["sheet"])]
        assert (c["primary"], c["merged"], c["quarantined"]) == (
            r["final"],
            r["merged"],
            r["quarantined"],
        ), (r["file"], r["sheet"])
        assert sum(c.values()) == r["rows"]


def test_every_delivery_defect_reaches_its_outcome(built):
    """Each instance of each delivery defect group, found by its source row."""
    conninfo, expected, _, _, _ = built
    quarantined = {
        (f, s, r): reason
        for f, s, r, reason in rows(
            conninfo,
            "select source_file, source_sheet, source_row, reason from marts.delivery_quarantine",
        )
    }
    bridge = {
        (f, s, r): (role, pf, ps, pr, key)
        for f, s, r, role, pf, ps, pr, key in rows(
            conninfo,
            "select source_file, source_sheet, source_row, source_role, primary_source_file,"
            " primary_source_sheet, primary_source_row, delivery_key from marts.delivery_sources",
        )
    }
    deliveries = {
        key: (code, day, differ, status, driver)
        for key, code, day, differ, status, driver in rows(
            conninfo,
            "select delivery_key, client_code, delivery_date, client_details_differ, app_status,"
            " driver_name from marts.deliveries",
        )
    }
    checked = Counter()
    for g in delivery_groups(expected):
        for inst in g["instances"]:
            where = (g["file"], g["sheet"], inst["row"])
            if g["outcome"] == "quarantined":
                assert quarantined.get(where) == g["reason"], (g["kind"], where)
            elif g["outcome"] == "merged":
                into = (
                    g["merged_into_file"],
                    inst["merged_into"]["sheet"],
                    inst["merged_into"]["row"],
                )
                role, *primary, key = bridge[where]
                assert (role, tuple(primary)) == ("merged", into), (g["kind"], where)
                assert bridge[into][0] == "primary"
                *_, status, driver = deliveries[key]
                want = inst.get("expect", {})
                if "app_status" in want:
                    assert status == want["app_status"], (g["kind"], where)
                if "driver_name" in want:
                    assert driver == want["driver_name"], (g["kind"], where)
            else:
                role, *_, key = bridge[where]
                assert role == "primary", (g["kind"], where)
                code, day, differ, *_ = deliveries[key]
                want = inst.get("expect", {})
                if "date" in want:
                    assert day.isoformat() == want["date"], (g["kind"], where, inst)
                if "client_code" in want:
                    assert code == want["client_code"], (g["kind"], where)
                assert differ == (g.get("flag") == "client_detail_mismatch"), (g["kind"], where)
            checked[g["outcome"]] += 1
    assert set(checked) == {"loaded", "flagged", "merged", "quarantined"}, checked
    flagged = sum(
        len(g["instances"]) for g in delivery_groups(expected) if g["outcome"] == "flagged"
    )
    assert rows(conninfo, "select count(*) from marts.deliveries where client_details_differ") == [
        (flagged,)
    ]


def test_delivery_keys_are_stable_functions_of_the_source_rows(built):
    """md5(client_code | delivery_date | delivery_of_day), whatever the machine or build."""
    conninfo, _, _, _, _ = built
    got = rows(
        conninfo,
        "select delivery_key, client_code, delivery_date, delivery_of_day from marts.deliveries",
    )
    assert got
    for key, code, day, nth in got:
        assert key == hashlib.md5(f"{code}|{day.isoformat()}|{nth}".encode()).hexdigest()


def test_merged_deliveries_carry_both_lineages(built):
    conninfo, _, _, _, _ = built
    got = rows(
        conninfo,
        "select d.source_system, count(distinct s.source_system), min(d.source_rows),"
        " max(d.source_rows), count(distinct s.source_system) filter (where s.source_role ="
        " 'primary') from marts.deliveries d join marts.delivery_sources s using (delivery_key)"
        " group by 1 order by 1",
    )
    # the history row is the primary of a merged delivery; the app row merges into it
    assert got == [
        ("app", 1, 1, 1, 1),
        ("history", 1, 1, 1, 1),
        ("history+app", 2, 2, 2, 1),
    ]
    primary = rows(
        conninfo,
        "select distinct s.source_system from marts.deliveries d join marts.delivery_sources s"
        " using (delivery_key) where d.source_system = 'history+app' and s.source_role = 'primary'",
    )
    assert primary == [("history",)]


def test_postgres_rejects_a_delivery_of_an_unknown_customer(built):
    conninfo, _, _, _, _ = built
    with psycopg.connect(conninfo) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "insert into marts.deliveries"
                " select md5('orphan'), '9999999', d.delivery_date, 1, d.delivery_time,"
                " d.salesperson, d.driver_name, d.vehicle_plate, d.app_status, d.app_notes, d.app_returned,"
                " d.items_recorded,"
                " d.total_cylinders,"
                " d.metered_kg, d.total_kg, d.source_system, d.source_rows, d.app_delivery_id,"
                " d.source_file, d.source_sheet, d.source_row, d.source_short_name,"
                " d.source_address, d.client_details_differ, d.last_load_id"
                " from marts.deliveries d limit 1"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "insert into marts.delivery_items (delivery_key, product_code, quantity, unit,"
                " source_column, client_code, delivery_date, last_load_id)"
                " values (md5('no such delivery'), 'GAS-C20-R', 1, 'cylinder', '20公斤',"
                " '1234567', date '2024-01-01', 1)"
            )


# The primary keys of the delivery marts, added after the insert by the post-hook
# ensure_primary_key (not declared in the contract).
DELIVERY_MART_KEYS = {
    "marts.deliveries": ["delivery_key"],
    "marts.delivery_items": ["delivery_key", "product_code"],
    "marts.delivery_sources": ["source_file", "source_sheet", "source_row"],
}


def primary_keys(conninfo: str) -> dict[str, list[str]]:
    """Each delivery mart's primary key columns, in key order, as PostgreSQL has them."""
    got = rows(
        conninfo,
        "select c.conrelid::regclass::text, array_agg(a.attname::text order by k.n)"
        " from pg_constraint as c cross join unnest(c.conkey) with ordinality as k (attnum, n)"
        " join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum"
        " where c.contype = 'p' and c.conrelid::regclass::text = any(%s) group by 1",
        (list(DELIVERY_MART_KEYS),),
    )
    return dict(got)


def test_delivery_marts_have_their_primary_keys(built):
    conninfo, _, _, _, _ = built
    assert primary_keys(conninfo) == DELIVERY_MART_KEYS
    with psycopg.connect(conninfo) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "insert into marts.delivery_sources select * from marts.delivery_sources limit 1"
        )


def first_run(conninfo: str) -> str:
    """The run id of the fixture's `dbt build` (later tests run dbt again)."""
    return rows(conninfo, "select run_id from validation.runs order by finished_at limit 1")[0][0]


def test_validation_rule_results_hold_every_rule(built):
    conninfo, expected, _, _, _ = built
    run = first_run(conninfo)
    got = rows(
        conninfo,
        "select r.rule_id, c.severity, r.severity, r.description_zh, r.rows_checked, r.rows_failing,"
        " r.status from validation.rule_results r"
        " full join reference.business_rules c on c.rule_id = r.rule_id and r.run_id = %s"
        " where r.run_id = %s or r.run_id is null order by 1",
        (run, run),
    )
    assert len(got) == rows(conninfo, "select count(*) from reference.business_rules")[0][0]
    # the reconciliation rules check every source row of their entity
    read = {"customer": 0, "delivery": 0}
    for source in expected["outcomes"]["reconciliation"]:
        client_rows = source["sheet"] in ("客戶資料", "clients")
        read["customer" if client_rows else "delivery"] += source["rows"]
    source_rows = {"R01": read["customer"], "R02": read["delivery"], "R03": read["delivery"]}
    for rule, want_severity, severity, zh, checked, failing, status in got:
        assert rule is not None and severity == want_severity and zh, rule
        assert failing is not None and status in {"pass", "warn"}, rule
        assert (failing == 0) == (status == "pass"), rule
        assert checked and checked > 0, rule
        if rule in source_rows:
            assert checked == source_rows[rule], rule


def test_validation_exceptions_hold_every_quarantined_and_failing_row(built):
    conninfo, expected, _, _, _ = built
    run = first_run(conninfo)
    quarantined = dict(
        rows(
            conninfo,
            "select code, count(*) from validation.exceptions where run_id = %s"
            " and kind = 'quarantine' group by 1",
            (run,),
        )
    )
    want = Counter(expected["outcomes"]["deliveries"]["quarantine"])
    want.update(expected["outcomes"]["customers"]["quarantine"])
    assert quarantined == dict(want)
    located = rows(
        conninfo,
        "select count(*) filter (where source_file is null or source_sheet is null"
        " or source_row is null) from validation.exceptions where run_id = %s",
        (run,),
    )
    assert located == [(0,)]
    d06 = set(
        rows(
            conninfo,
            "select source_sheet, source_row from validation.exceptions"
            " where run_id = %s and code = 'D06'",
            (run,),
        )
    )
    flagged = {
        (g["sheet"], i["row"])
        for g in delivery_groups(expected)
        if g.get("flag") == "client_detail_mismatch"
        for i in g["instances"]
    }
    assert d06 == flagged
    failing = dict(
        rows(
            conninfo,
            "select rule_id, rows_failing from validation.rule_results where run_id = %s",
            (run,),
        )
    )
    per_rule = dict(
        rows(
            conninfo,
            "select code, count(*) from validation.exceptions where run_id = %s and kind = 'rule'"
            " group by 1",
            (run,),
        )
    )
    assert per_rule == {rule: n for rule, n in failing.items() if n}


def test_validation_reconciliation_matches_expected(built):
    conninfo, expected, _, _, _ = built
    run = first_run(conninfo)
    got = {
        (f, s): (r, fi, m, q, d)
        for f, s, r, fi, m, q, d in rows(
            conninfo,
            "select source_file, source_sheet, rows_read, final, merged, quarantined, difference"
            " from validation.reconciliation where run_id = %s",
            (run,),
        )
    }
    want = {
        (r["file"], r["sheet"]): (r["rows"], r["final"], r["merged"], r["quarantined"], 0)
        for r in expected["outcomes"]["reconciliation"]
    }
    assert got == want


def test_validation_history_is_kept_across_runs(built):
    conninfo, _, _, env, _ = built
    before = rows(conninfo, "select count(*), count(distinct run_id) from validation.rule_results")[
        0
    ]
    again = run_dbt(["test", "--select", "customers"], env)
    assert again.returncode == 0, again.stdout[-3000:]
    after = rows(conninfo, "select count(*), count(distinct run_id) from validation.rule_results")[
        0
    ]
    assert after[1] == before[1] + 1 and after[0] > before[0]
    latest = rows(conninfo, "select count(*) from validation.rule_status where rule_id like 'C%%'")
    catalogue = rows(
        conninfo, "select count(*) from reference.business_rules where entity = 'customer'"
    )
    assert latest == catalogue and catalogue[0][0] >= 17


def test_luckygas_verify_checks_every_delivery_figure(built, capsys):
    """The full-scale command (`make demo`) on the small sample: every check matches."""
    conninfo, expected, _, _, sample = built
    env = {
        k: v
        for k, v in built[3].items()
        if k in {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE", "PGPASSWORD"}
    }
    with environ(env):
        assert main(["verify", str(sample)]) == 0
    out = capsys.readouterr().out
    kinds = {g["kind"] for g in delivery_groups(expected)}
    for kind in kinds:
        assert f"defect {kind}: rows with the expected outcome" in out
    assert "deliveries from history+app" in out and "DIFFERS" not in out


def test_reconciliation_fails_when_a_row_goes_missing(built):
    """The dbt test is not vacuous: drop one quarantined row and it fails, naming the source."""
    conninfo, _, _, env, _ = built
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "delete from marts.delivery_quarantine where (source_file, source_sheet, source_row) ="
            " (select source_file, source_sheet, source_row from marts.delivery_quarantine"
            " order by 1, 2, 3 limit 1)"
        )
    failed = run_dbt(["test", "--select", "deliveries_reconcile"], env)
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert re.search(r"FAIL \d+ deliveries_reconcile", failed.stdout), failed.stdout[-3000:]
    rebuilt = run_dbt(["build", "--select", "delivery_quarantine", "deliveries_reconcile"], env)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]


# One violation per delivery rule: the column assignments that break it on a good row.
VIOLATIONS = {
    "d01": "delivery_date = date '1999-12-31'",
    "d02": "quantity = 0",
    "d03": "total_cylinders = 0, metered_kg = 0",
    "d04": "delivery_time = time '05:30'",
    "d05": "total_cylinders = 51",
    "d06": "client_details_differ = true",
    "d07": "source_system = 'history+app', app_status = 'cancelled'",
}
GOOD_ROW = {
    "deliveries": "not client_details_differ and delivery_time between '08:00' and '20:00'"
    " and total_cylinders between 1 and 50 and items_recorded"
    " and coalesce(app_status, 'completed') = 'completed'",
    "delivery_items": "quantity > 0",
}


def _rule_sql(target: Path) -> dict[str, str]:
    compiled = target / "compiled" / "luckygas" / "models" / "marts" / "deliveries"
    return {
        p.stem.split("_")[1]: p.read_text(encoding="utf-8") for p in compiled.rglob("rule_d*.sql")
    }


def test_rule_catalogue_matches_the_delivery_rule_tests(built):
    conninfo, _, result, env, _ = built
    catalogue = rows(
        conninfo,
        "select lower(rule_id), severity from reference.business_rules where entity = 'delivery'",
    )
    assert sorted(_rule_sql(Path(env["DBT_TARGET_PATH"]))) == sorted(r for r, _ in catalogue)
    assert sorted(VIOLATIONS) == sorted(r for r, _ in catalogue)
    for rule, severity in catalogue:
        line = next(
            x for x in result.stdout.splitlines() if f" rule_{rule}_" in x and "START" not in x
        )
        assert "PASS" in line or (severity == "warn" and "WARN" in line), line


def test_every_delivery_rule_fails_on_its_fixture_and_passes_on_a_good_row(built):
    conninfo, _, _, env, _ = built
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for rule, sql in sorted(_rule_sql(Path(env["DBT_TARGET_PATH"])).items()):
            relation = re.search(r'"[^"]+"\."marts"\."(deliveries|delivery_items)"', sql)
            assert relation, rule
            table = relation.group(1)
            conn.execute(
                f"create temp table fx_{rule} as select * from marts.{table}"
                f" where {GOOD_ROW[table]} order by 1 limit 1"
            )
            check = sql.replace(relation.group(0), f"pg_temp.fx_{rule}")
            count = f"select count(*) from ({check}) as failing"
            assert conn.execute(count).fetchone()[0] == 0, f"rule {rule} fails on a good row"
            conn.execute(f"update fx_{rule} set {VIOLATIONS[rule]}")
            assert conn.execute(count).fetchone()[0] == 1, f"rule {rule} passes its fixture"


def test_flagged_history_rows_are_the_d06_warnings(built):
    """client_detail_mismatch rows (expected.json) are exactly the rows rule D06 warns of."""
    conninfo, expected, _, env, _ = built
    sql = _rule_sql(Path(env["DBT_TARGET_PATH"]))["d06"]
    warned = set(rows(conninfo, f"select source_sheet, source_row from ({sql}) as failing"))
    flagged = {
        (g["sheet"], i["row"])
        for g in delivery_groups(expected)
        if g.get("flag") == "client_detail_mismatch"
        for i in g["instances"]
    }
    assert warned == flagged and flagged


def test_docs_generate_describes_every_mart_column(built):
    """`dbt docs generate` works, and every column of every mart table has a description."""
    _, _, _, env, _ = built
    docs = run_dbt(["docs", "generate"], env)
    assert docs.returncode == 0, docs.stdout[-3000:]
    target = Path(env["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    catalog = json.loads((target / "catalog.json").read_text(encoding="utf-8"))
    marts = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    assert {"deliveries", "delivery_items", "delivery_sources", "delivery_quarantine"} <= {
        n["name"] for n in marts.values()
    }
    undescribed = []
    for uid, node in marts.items():
        assert node["description"].strip(), uid
        in_database = catalog["nodes"][uid]["columns"]
        for column in in_database:
            described = node["columns"].get(column, {}).get("description", "").strip()
            if not described:
                undescribed.append(f"{node['name']}.{column}")
    assert undescribed == []


def test_compound_uniqueness_expectation_catches_a_repeated_row(built):
    """tests/generic/expect_compound_columns_to_be_unique, on a copy with one row twice."""
    conninfo, _, _, env, _ = built
    compiled = Path(env["DBT_TARGET_PATH"]) / "compiled" / "luckygas" / "models"
    (sql,) = [
        text
        for path in compiled.rglob("expect_compound_columns_to_be_*.sql")
        if "int_delivery_rows_classified" in (text := path.read_text(encoding="utf-8"))
    ]
    relation = re.search(r'"[^"]+"\."intermediate"\."int_delivery_rows_classified"', sql)
    assert relation
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "create temp table fx_unique as"
            " select * from intermediate.int_delivery_rows_classified order by source_row limit 50"
        )
        check = f"select count(*) from ({sql.replace(relation.group(0), 'pg_temp.fx_unique')}) as t"
        assert conn.execute(check).fetchone()[0] == 0
        conn.execute("insert into fx_unique select * from fx_unique limit 1")
        assert conn.execute(check).fetchone()[0] == 1
