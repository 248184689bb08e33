"""validation.migration_metrics against expected.json: load the small sample, `dbt build`,
and compare each entity's and each source's rows, final, merged, quarantined, set-aside rows,
success rate and target with what the sample's ground truth says they must be.

The expected figures come from expected.json (outcomes.reconciliation per source, the
quarantined defect groups per reason, outcomes.*.quarantine per entity) and the reason
catalogue's set-aside flag (truth.SET_ASIDE_REASONS), never from hard-coded numbers.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from loaders.cli import main
from loaders.sample import truth
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import ROOT, dbt_env, environ, fresh_database, run_dbt

ENTITY_OF_LAYOUT = {
    "client_master": "customer",
    "app_clients": "customer",
    "history_daily": "delivery",
    "history_transaction": "delivery",
    "app_deliveries": "delivery",
}
COLUMNS = (
    "entity, level, source_file, source_sheet, source_rows, final, merged, quarantined,"
    " set_aside, success_rate, target, meets_target"
)


def plan_targets() -> dict[str, Decimal]:
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    return {k: Decimal(str(v)) for k, v in project["vars"]["migration_success_targets"].items()}


def expected_metrics(expected: dict, targets: dict[str, Decimal] | None = None) -> dict:
    """{(entity, level, file, sheet): (source_rows, final, merged, quarantined, set_aside,
    success_rate, target, meets_target)} as expected.json says they must be."""
    targets = targets or plan_targets()
    entity_of = {
        (s["file"], s["sheet"]): ENTITY_OF_LAYOUT[s["catalogue_layout"]]
        for s in expected["sources"]
        if s["catalogue_layout"] in ENTITY_OF_LAYOUT
    }
    aside: Counter = Counter()
    for g in expected["defects"]:
        if g["outcome"] == truth.QUARANTINED and g["reason"] in truth.SET_ASIDE_REASONS:
            aside[(g["file"], g["sheet"])] += g["count"]
    counts: dict[tuple, Counter] = {}
    for r in expected["outcomes"]["reconciliation"]:
        entity = entity_of[(r["file"], r["sheet"])]
        for key in ((entity, "source", r["file"], r["sheet"]), (entity, "entity", None, None)):
            c = counts.setdefault(key, Counter())
            c.update({k: r[k] for k in ("rows", "final", "merged", "quarantined")})
            c["set_aside"] += aside[(r["file"], r["sheet"])]
    out = {}
    for key, c in counts.items():
        target = targets[key[0]]
        measured = c["rows"] - c["set_aside"]
        ok = c["final"] + c["merged"]
        rate = Decimal(ok) / Decimal(measured) if measured else None
        out[key] = (
            c["rows"], c["final"], c["merged"], c["quarantined"], c["set_aside"], rate, target,
            ok >= target * measured if measured else key[1] == "source",
        )  # fmt: skip
    return out


def rows(conninfo: str, query: str, params=()) -> list[tuple]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def metrics(conninfo: str) -> dict:
    return {
        tuple(r[:4]): tuple(r[4:])
        for r in rows(conninfo, f"select {COLUMNS} from validation.migration_metrics")
    }


def same(have: dict, want: dict) -> None:
    """Equal counts, targets and verdicts; rates equal to 20 significant digits (numeric)."""
    assert set(have) == set(want)
    for key, w in want.items():
        h = have[key]
        assert h[:5] + h[6:] == w[:5] + w[6:], key
        assert (h[5] is None) == (w[5] is None), key
        if w[5] is not None:
            assert abs(h[5] - w[5]) < Decimal("1e-15"), key


@pytest.fixture(scope="module")
def built(pg, tmp_path_factory):
    """(conninfo, expected, dbt result, dbt env) after load + dbt build of a small sample."""
    tmp = tmp_path_factory.mktemp("migration-metrics")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=17)
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    with fresh_database(pg, "mm") as (conninfo, env):
        with environ(env):
            assert main(["load", str(sample)]) == 0
        run_env = dbt_env(env, tmp)
        yield conninfo, expected, run_dbt(["build"], run_env), run_env


def test_seed_and_truth_set_aside_the_same_reasons():
    """seeds/quarantine_reasons.csv's set_aside is truth.SET_ASIDE_REASONS, and the seed
    catalogues every reason of truth.REASONS."""
    path = Path(ROOT, "seeds", "quarantine_reasons.csv")
    with path.open(encoding="utf-8", newline="") as f:
        seed = {r["reason"]: r["set_aside"] for r in csv.DictReader(f)}
    assert set(seed.values()) == {"true", "false"}
    assert {reason for reason, flag in seed.items() if flag == "true"} == truth.SET_ASIDE_REASONS
    assert set(truth.REASONS) <= set(seed)


def test_build_passes(built):
    _, _, result, _ = built
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "migration_metrics" in result.stdout


def test_metrics_equal_expected(built):
    """Every entity and source row: counts, set-aside rows, rate, target and verdict."""
    conninfo, expected, _, _ = built
    same(metrics(conninfo), expected_metrics(expected))


def test_entity_rows_add_up_the_quarantine_by_reason(built):
    """At entity level, quarantined and set_aside are expected.json's quarantine by reason
    (outcomes.customers / outcomes.deliveries), split by the catalogue's set-aside flag."""
    conninfo, expected, _, _ = built
    have = {
        e: (q, a)
        for e, q, a in rows(
            conninfo,
            "select entity, quarantined, set_aside from validation.migration_metrics"
            " where level = 'entity'",
        )
    }
    for entity, outcome in (("customer", "customers"), ("delivery", "deliveries")):
        by_reason = expected["outcomes"][outcome]["quarantine"]
        aside = sum(n for r, n in by_reason.items() if r in truth.SET_ASIDE_REASONS)
        assert have[entity] == (sum(by_reason.values()), aside), entity
    loaded = {r for (r,) in rows(conninfo, "select reason from reference.quarantine_reasons"
                                 " where set_aside")}  # fmt: skip
    assert loaded == truth.SET_ASIDE_REASONS


def test_the_targets_are_the_plans_unless_a_var_overrides_them(built):
    """Targets from dbt_project.yml; --vars (what `luckygas migrate --success-target` passes)
    replaces them, and meets_target follows."""
    conninfo, expected, _, run_env = built
    plan = plan_targets()
    assert plan == {"customer": Decimal("1.0"), "delivery": Decimal("0.999")}
    found = dict(
        rows(conninfo, "select entity, target from validation.migration_metrics"
             " where level = 'entity'")
    )  # fmt: skip
    assert found == plan
    lower = {"customer": 1.0, "delivery": 0.99}
    result = run_dbt(
        ["run", "--select", "migration_metrics", "--vars",
         json.dumps({"migration_success_targets": lower})],
        run_env,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stdout[-3000:]
        want = expected_metrics(expected, {k: Decimal(str(v)) for k, v in lower.items()})
        same(metrics(conninfo), want)
        assert want[("delivery", "entity", None, None)][-1]  # the small sample meets 99 %
    finally:
        assert run_dbt(["run", "--select", "migration_metrics"], run_env).returncode == 0
