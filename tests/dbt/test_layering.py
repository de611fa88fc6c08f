"""The dbt project's layering, read from the manifest of a real `dbt parse`: the sources
are named like their schemas, a mart built from another mart names that edge in its
description, the customer's first order and cohorts come from one model, and no check
is both a dbt test and a Great Expectations expectation."""

from __future__ import annotations

import json
from datetime import date

import pytest

from customer_marts.config import PROJECT_ROOT
from customer_marts.transform.runner import run_dbt
from tests.conftest import make_settings

MARKER = "Built from marts:"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("layering"))
    target = settings.warehouse_dir / "dbt" / "target"
    code, _ = run_dbt(settings, "parse", date(2025, 1, 1), target_path=target)
    assert code == 0
    return json.loads((target / "manifest.json").read_text())


def models(manifest) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def layer(node) -> str:
    return node["fqn"][1]  # staging, intermediate or marts


def test_the_sources_are_named_like_their_schemas_and_staging_models_after_raw(manifest):
    sources = {(s["source_name"], s["schema"]) for s in manifest["sources"].values()}
    assert sources == {("raw", "raw"), ("audit", "audit")}
    staging = {name for name, node in models(manifest).items() if layer(node) == "staging"}
    assert staging == {
        "stg_raw__orders",
        "stg_raw__survey_responses",
        "stg_raw__survey_sends",
        "stg_raw__order_lines",
        "stg_raw__marketing_spend",
    }
    for name in staging:
        assert models(manifest)[name]["original_file_path"].startswith("models/staging/raw/")


def test_every_model_built_from_a_mart_names_that_mart_in_its_description(manifest):
    nodes = models(manifest)
    unnamed = []
    for name, node in nodes.items():
        parents = {
            manifest["nodes"][parent]["name"]
            for parent in node["depends_on"]["nodes"]
            if parent.startswith("model.") and layer(manifest["nodes"][parent]) == "marts"
        }
        built_from = node["description"].partition(MARKER)[2]
        unnamed += [f"{name} <- {parent}" for parent in parents if f"`{parent}`" not in built_from]
    assert unnamed == []


def test_first_orders_and_cohorts_come_from_one_customer_grain_model(manifest):
    nodes = models(manifest)
    acquired = "model.customer_marts.int_customers_acquired"
    users = {name for name, node in nodes.items() if acquired in node["depends_on"]["nodes"]}
    assert {
        "int_customer_periods_aggregated",
        "int_periods_retention_counted_by_dimension",
        "int_customer_dimensions",
        "int_customers_summarised_for_clv",
        "int_customers_summarised_for_clv_holdout",
        "fct_orders",
        "fct_survey_responses",
        "dim_customers",
    } <= users
    # the cohort month is no longer an order-grain column computed beside the numbering
    assert "cohort_month" not in nodes["int_orders_numbered"]["columns"]
    # the same fact has the same name in the intermediate models
    for name in ("int_customers_summarised_for_clv", "int_customers_summarised_for_clv_holdout"):
        assert "first_order_date" in nodes[name]["columns"], name
        assert "first_purchase_date" not in nodes[name]["columns"], name


def dbt_checks(manifest) -> set[tuple[str, str, str]]:
    """(model, column or '', kind) of every dbt test on a model and every not_null
    constraint of a model's contract."""
    kinds = {"unique": "unique", "not_null": "not_null", "accepted_values": "in_set"}
    kinds |= {"within_range": "between", "expression_is_true": "identity"}
    checks = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or "test_metadata" not in node:
            continue
        kind = kinds.get(node["test_metadata"]["name"])
        if kind == "in_set":  # one enumeration; another value set is another check
            kind += ":" + ",".join(sorted(node["test_metadata"]["kwargs"]["values"]))
        model = node.get("attached_node") or ""
        if kind and model.startswith("model."):
            name = manifest["nodes"][model]["name"]
            checks.add((name, node.get("column_name") or "", kind))
    for name, node in models(manifest).items():
        for column in node["columns"].values():
            if any(c["type"] == "not_null" for c in column.get("constraints", [])):
                checks.add((name, column["name"], "not_null"))
    return checks


GE_KINDS = {
    "expect_column_values_to_be_unique": "unique",
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_in_set": "in_set",
    "expect_column_values_to_be_between": "between",
}


def ge_checks() -> set[tuple[str, str, str]]:
    checks = set()
    for path in (PROJECT_ROOT / "expectations").rglob("*.json"):
        suite = json.loads(path.read_text())
        table = suite["meta"]["table"].split(".")[1]
        for expectation in suite["expectations"]:
            kind = GE_KINDS.get(expectation["type"])
            if kind == "in_set":
                kind += ":" + ",".join(sorted(map(str, expectation["kwargs"]["value_set"])))
            if kind:
                checks.add((table, expectation["kwargs"]["column"], kind))
    return checks


def test_no_check_is_both_a_dbt_test_and_an_expectation(manifest):
    # raw.<table> is what stg_raw__<table> reads: the same column checked twice
    staged = {"stg_raw__orders": "orders", "stg_raw__survey_responses": "surveys"}
    staged["stg_raw__survey_sends"] = "survey_sends"
    staged["stg_raw__order_lines"] = "order_lines"
    staged["stg_raw__marketing_spend"] = "marketing_spend"
    dbt = {(staged.get(model, model), column, kind) for model, column, kind in dbt_checks(manifest)}
    assert sorted(dbt & ge_checks()) == []
    # the split: keys and accepted values are dbt's, value ranges Great Expectations'
    ge = ge_checks()
    # (not_null and in_set stay in GE only as warnings a data owner decides on)
    assert {(t, c, kind) for t, c, kind in ge if kind != "between"} == {
        ("clv_model_fit", "converged", "in_set:True"),
        ("clv_validation", "status", "in_set:validated"),
        ("customer_clv", "clv_12m", "not_null"),
    }
    ranged = {model for model, _, kind in dbt_checks(manifest) if kind == "between"}
    assert all(models(manifest)[m]["fqn"][1] != "marts" for m in ranged), ranged
