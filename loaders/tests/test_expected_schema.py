"""expected.json against loaders/sample/expected.schema.json (JSON Schema, draft 2020-12).

The schema checks shapes; the few rules it cannot express (sums, counts) are checked here.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

from loaders.sample import truth
from loaders.sample.generate import generate

SCHEMA_PATH = Path(truth.__file__).with_name("expected.schema.json")
GUIDE_PATH = Path(truth.__file__).parents[2] / "docs" / "expected-json.md"
SEED = 20250521


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A freshly generated small sample's expected.json, as read back from disk."""
    out = tmp_path_factory.mktemp("sample-small")
    generate(out, scale="small", seed=SEED, console=Console(stderr=True, quiet=True))
    return json.loads((out / "expected.json").read_text(encoding="utf-8"))


def _errors(validator: Draft202012Validator, doc: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_schema_is_valid_draft_2020_12(schema: dict) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]
    assert schema["properties"]["schema_version"] == {
        "const": truth.SCHEMA_VERSION,
        "description": schema["properties"]["schema_version"]["description"],
    }


def _declared_properties(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every property declaration, skipping the if/then/else/not branches that only constrain."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}/{name}", sub
        for key, sub in node.items():
            if key not in {"if", "then", "else", "not"}:
                yield from _declared_properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _declared_properties(sub, f"{path}/{i}")


def test_every_property_is_described(schema: dict) -> None:
    undescribed = [
        path
        for path, sub in _declared_properties(schema)
        if not (isinstance(sub, dict) and sub.get("description"))
    ]
    assert undescribed == []


def test_generated_sample_is_valid(validator: Draft202012Validator, expected: dict) -> None:
    assert _errors(validator, expected) == []


def test_reason_enum_is_the_catalogue(schema: dict, expected: dict) -> None:
    assert schema["$defs"]["reason"]["enum"] == list(truth.REASONS)
    assert schema["properties"]["reasons"]["required"] == list(truth.REASONS)
    assert expected["reasons"] == truth.REASONS


def test_counts_the_schema_cannot_check(expected: dict) -> None:
    kinds: Counter[str] = Counter()
    for group in expected["defects"]:
        rows = [i["row"] for i in group["instances"]]
        assert group["count"] == len(rows), group["kind"]
        assert rows == sorted(rows), group["kind"]
        kinds[group["kind"]] += group["count"]
    assert expected["defect_kinds"] == dict(kinds)
    for r in expected["outcomes"]["reconciliation"]:
        assert r["rows"] == r["final"] + r["merged"] + r["quarantined"], r
    for s in expected["sources"]:
        if s["kind"] == "sheet":
            assert s["data_rows"] == s["last_row"] - (s["header_row"] or 0), s["sheet"]
            if s["headers"] is not None:
                assert len(s["headers"]) == s["columns"], s["sheet"]


def test_guide_names_every_kind_and_reason(expected: dict) -> None:
    """docs/expected-json.md keeps a row for every defect kind and reason code."""
    guide = GUIDE_PATH.read_text(encoding="utf-8")
    missing = [k for k in [*expected["defect_kinds"], *truth.REASONS] if f"`{k}`" not in guide]
    assert missing == []


# Broken documents: each mutation must make the generated document invalid.


@pytest.fixture(scope="module")
def trimmed(validator: Draft202012Validator, expected: dict) -> dict:
    """The generated document with at most three instances per group: quicker to validate."""
    doc = copy.deepcopy(expected)
    for group in doc["defects"]:
        group["instances"] = group["instances"][:3]
        group["count"] = len(group["instances"])
    assert _errors(validator, doc) == []
    return doc


def _group(doc: dict, outcome: str) -> dict:
    return next(g for g in doc["defects"] if g["outcome"] == outcome)


def _set(outcome: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda doc: _group(doc, outcome).__setitem__(key, value)


def _drop(outcome: str, key: str) -> Callable[[dict], None]:
    return lambda doc: _group(doc, outcome).pop(key)


def _first(outcome: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda doc: _group(doc, outcome)["instances"][0].__setitem__(key, value)


BROKEN: dict[str, Callable[[dict], None]] = {
    "outcome lost": _set("loaded", "outcome", "lost"),
    "quarantined without reason": _drop("quarantined", "reason"),
    "reason not in catalogue": _set("quarantined", "reason", "looks_wrong"),
    "reason on a loaded group": _set("loaded", "reason", "date_empty"),
    "flagged without flag": _drop("flagged", "flag"),
    "unknown key in a group": _set("loaded", "reson", "date_empty"),
    "unknown key in an instance": _first("loaded", "comment", "x"),
    "cell type x": _first("loaded", "cell_type", "x"),
    "loaded row without expect": lambda doc: _group(doc, "loaded")["instances"][0].pop("expect"),
    "number staged with .0": lambda doc: next(
        i for g in doc["defects"] for i in g["instances"] if i.get("cell_type") == "n"
    ).__setitem__("value", "990905.0"),
    "blank cell with text": lambda doc: next(
        i for g in doc["defects"] for i in g["instances"] if i.get("cell_type") == "b"
    ).__setitem__("value", ""),
    "merged row without merged_into": lambda doc: _group(doc, "merged")["instances"][0].pop(
        "merged_into"
    ),
    "merged group without merged_into_file": _drop("merged", "merged_into_file"),
    "column_index zero": lambda doc: next(
        g for g in doc["defects"] if "column_index" in g
    ).__setitem__("column_index", 0),
    "table source with a column count as list": lambda doc: next(
        s for s in doc["sources"] if s["kind"] == "table"
    ).__setitem__("columns", ["id"]),
    "merged_into on a loaded row": _first("loaded", "merged_into", {"sheet": "x", "row": 2}),
    "row zero": _first("loaded", "row", 0),
    "schema_version 1": lambda doc: doc.__setitem__("schema_version", 1),
    "source without its role": lambda doc: doc["sources"][0].pop("role"),
    "customers without by_source": lambda doc: doc["outcomes"]["customers"].pop("by_source"),
    "missing defects": lambda doc: doc.pop("defects"),
    "source kind view": lambda doc: doc["sources"][0].__setitem__("kind", "view"),
    "sheet source without header_row": lambda doc: doc["sources"][0].pop("header_row"),
    "reconciliation without merged": lambda doc: doc["outcomes"]["reconciliation"][0].pop("merged"),
    "quarantine count under an unknown reason": lambda doc: doc["outcomes"]["deliveries"][
        "quarantine"
    ].__setitem__("lost_in_transit", 1),
    "catalogue missing a reason": lambda doc: doc["reasons"].pop("cancelled"),
}


@pytest.mark.parametrize("mutation", BROKEN.values(), ids=BROKEN.keys())
def test_broken_documents_are_rejected(
    validator: Draft202012Validator, trimmed: dict, mutation: Callable[[dict], None]
) -> None:
    doc = copy.deepcopy(trimmed)
    mutation(doc)
    assert not validator.is_valid(doc), "the schema accepted a broken document"


def test_extensions_are_accepted(validator: Draft202012Validator, trimmed: dict) -> None:
    """Later issues add keys at the top level and in `outcomes` without a schema change."""
    doc = copy.deepcopy(trimmed)
    doc["raw_counts"] = {"anything": 1}
    doc["outcomes"]["orders"] = {"count": 0}
    assert _errors(validator, doc) == []
