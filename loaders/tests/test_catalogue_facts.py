"""Each fact of the catalogue has one home; the copies that must stay are pinned to it.

The homes: seeds/quarantine_reasons.csv (the reasons, their precedence and the column each
names), seeds/products.csv (the products), dbt_project.yml's vars (the delivery date bounds),
seeds/business_rules.csv (the rules and their severities). The dbt project reads them; the
sample generator writes exports without dbt and keeps copies, and a dbt test's severity is
its own config, so those are compared here. Every file is read on its own terms (csv, yaml,
the Python module, the SQL text), never through the code that uses it.
"""

from __future__ import annotations

import csv
import importlib
import pkgutil
import re
from datetime import date
from pathlib import Path

import yaml

import loaders.sample
from loaders.sample import profile, truth

ROOT = Path(__file__).resolve().parents[2]
SQL_DIRS = ("models", "macros", "tests", "analyses")


def seed(name: str) -> list[dict[str, str]]:
    with (ROOT / "seeds" / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sql_files() -> dict[Path, str]:
    return {
        p: p.read_text(encoding="utf-8")
        for d in SQL_DIRS
        for p in sorted((ROOT / d).glob("**/*.sql"))
    }


def yml_models(folder: str) -> dict[str, dict]:
    """model name -> its entry, as the yml files under models/<folder> declare it."""
    found = {}
    for path in sorted((ROOT / "models" / folder).glob("**/*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            found[model["name"]] = model
    return found


# --- quarantine reasons -------------------------------------------------------------------

REASONS = seed("quarantine_reasons")


def test_reasons_are_listed_in_their_precedence():
    """precedence is 1..n, and the file lists the reasons in that order."""
    assert [int(r["precedence"]) for r in REASONS] == list(range(1, len(REASONS) + 1))


def test_truth_names_the_delivery_reasons_of_the_catalogue():
    """expected.json's reasons (truth.REASONS) are the catalogue's delivery reasons; the
    set-aside flag is pinned in test_migration_metrics.py."""
    delivery = {r["reason"] for r in REASONS if "delivery" in r["entity"].split("/")}
    assert set(truth.REASONS) == delivery


def test_models_decide_reasons_only_through_the_catalogue():
    """No SQL spells a reason's CASE branch (`then '<reason>'`): each model maps reasons to
    conditions for macro first_quarantine_reason, and every reason it maps is catalogued."""
    codes = {r["reason"] for r in REASONS}
    mapped = set()
    for path, text in sql_files().items():
        for reason in codes:
            assert f"then '{reason}'" not in text, (path, reason)
        for call in re.findall(r"first_quarantine_reason\(\{(.*?)\}\)", text, re.S):
            mapped |= set(re.findall(r"'(\w+)':", call))
    assert mapped and mapped <= codes, mapped - codes


def test_each_reason_names_a_column_of_its_quarantine():
    """value_column is a column of the quarantine table of each entity the reason applies to."""
    marts = yml_models("marts")
    columns = {
        entity: {c["name"] for c in marts[f"{entity}_quarantine"]["columns"]}
        for entity in ("customer", "delivery")
    }
    for r in REASONS:
        for entity in r["entity"].split("/"):
            assert r["value_column"] in columns[entity], (r["reason"], entity)
        assert r["model_column"], r["reason"]


# --- products -----------------------------------------------------------------------------

PRODUCTS = sorted(seed("products"), key=lambda p: int(p["column_order"]))


def test_products_are_in_column_order():
    assert [int(p["column_order"]) for p in PRODUCTS] == list(range(1, len(PRODUCTS) + 1))


def test_the_generators_products_are_the_seeds():
    """loaders/sample/profile.py's products, in the exports' column order."""
    assert [
        (p.code, p.kind, p.kg, p.brand, p.client_column, p.history_column) for p in profile.PRODUCTS
    ] == [
        (
            p["product_code"],
            p["kind"],
            int(p["size_kg"]),
            p["brand"],
            p["client_column"],
            p["history_column"],
        )
        for p in PRODUCTS
    ]


def test_the_generators_app_sizes_are_the_seeds():
    """The app's columns: each regular cylinder's app_column, by size."""
    regular = {
        int(p["size_kg"]): p
        for p in PRODUCTS
        if p["brand"] == "regular" and p["kind"] == "cylinder" and p["app_column"]
    }
    assert {kg: p["product_code"] for kg, p in regular.items()} == profile.APP_REGULAR_PRODUCT
    assert tuple(profile.APP_SIZES) == tuple(sorted(regular, reverse=True))
    assert all(p["app_column"] == f"delivered_{kg}kg" for kg, p in regular.items())


def test_no_sql_spells_a_product():
    """Models, macros and dbt tests read the products from the seed (macro
    product_catalogue): none quotes a product's code or its workbook or history column."""
    spelled = []
    for path, text in sql_files().items():
        for p in PRODUCTS:
            for value in (p["product_code"], p["client_column"], p["history_column"]):
                if f"'{value}'" in text or f'"{value}"' in text:
                    spelled.append(f"{path.relative_to(ROOT)}: {value}")
    assert spelled == []


# --- delivery date bounds -----------------------------------------------------------------


def test_the_generators_date_bounds_are_the_projects():
    """Every module of loaders.sample that defines DATE_MIN / DATE_MAX holds the vars."""
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    want = (
        date.fromisoformat(project["delivery_date_min"]),
        date.fromisoformat(project["delivery_date_max"]),
    )
    found = {}
    for info in pkgutil.iter_modules(loaders.sample.__path__):
        module = importlib.import_module(f"loaders.sample.{info.name}")
        if hasattr(module, "DATE_MIN") or hasattr(module, "DATE_MAX"):
            found[info.name] = (module.DATE_MIN, module.DATE_MAX)
    assert found and set(found.values()) == {want}, found


# --- rule severities ----------------------------------------------------------------------


def rule_tests() -> dict[str, list[str]]:
    """rule_id -> the severity of each dbt test carrying it (meta rule_id), from the models'
    yml and the singular tests' config() (dbt's default severity is error)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "models").glob("**/*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            tests = list(model.get("data_tests") or [])
            for column in model.get("columns") or []:
                tests += column.get("data_tests") or []
            for t in tests:
                if not isinstance(t, dict):
                    continue
                (args,) = t.values()
                config = (args or {}).get("config") or {}
                if "rule_id" in (config.get("meta") or {}):
                    severity = config.get("severity", "error")
                    found.setdefault(config["meta"]["rule_id"], []).append(severity)
    for path in sorted((ROOT / "tests").glob("**/*.sql")):
        text = path.read_text(encoding="utf-8")
        rule = re.search(r"""["']rule_id["']\s*:\s*["'](\w+)["']""", text)
        if rule:
            severity = re.search(r"""severity\s*=\s*["'](\w+)["']""", text)
            found.setdefault(rule[1], []).append(severity[1] if severity else "error")
    return found


def test_every_rule_is_one_test_with_the_catalogues_severity():
    catalogue = {r["rule_id"]: r["severity"] for r in seed("business_rules")}
    assert rule_tests() == {rule: [severity] for rule, severity in catalogue.items()}
