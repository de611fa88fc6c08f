"""Every published mart has an enforced dbt contract: a change to a mart's columns fails
`dbt build` before the table is replaced. Real dbt runs on a copy of the project (one
mart's SQL edited) against a copy of the small demo's built warehouse."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from customer_marts.config import Settings
from customer_marts.transform.runner import run_dbt
from tests.conftest import DEMO_AS_OF, copy_warehouse

pytestmark = pytest.mark.dbt_build  # real dbt runs on a built warehouse: make test only
PROJECT = Settings.from_env().dbt_project_dir
FCT_ORDERS = Path("models", "marts", "core", "fct_orders.sql")


def project_copy(tmp_path: Path, edit: tuple[str, str] | None) -> Path:
    """The dbt project copied into tmp_path, with `old` replaced by `new` in fct_orders."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    if edit:
        old, new = edit
        sql = (copy / FCT_ORDERS).read_text()
        assert sql.count(old) == 1
        (copy / FCT_ORDERS).write_text(sql.replace(old, new))
    return copy


def build_fct_orders(published_demo: Path, tmp_path: Path, edit: tuple[str, str] | None):
    """`dbt build --select fct_orders` with the edited project on a copy of the warehouse:
    (its run result, fct_orders' columns and types afterwards)."""
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    settings = replace(
        Settings.from_env(),
        warehouse_dir=warehouse,
        dbt_project_dir=project_copy(tmp_path, edit),
    )
    _, results = run_dbt(settings, "build", DEMO_AS_OF, "--select", "fct_orders")
    model = next(
        result
        for result in json.loads(results.read_text())["results"]
        if result["unique_id"] == "model.customer_marts.fct_orders"
    )
    return model, fct_orders_columns(settings.build_db)


def fct_orders_columns(database: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where schema_name = 'marts' and table_name = 'fct_orders' order by column_index"
        ).fetchall()


@pytest.fixture(scope="module")
def demo_columns(published_demo):
    return fct_orders_columns(published_demo / "published.duckdb")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # amount is DECIMAL(18, 2) in the contract; the edit makes it a DOUBLE
        (("orders.amount,", "orders.amount::double as amount,"), "amount"),
        # cohort_month dropped from the select list
        (
            (
                "orders.customer_order_number,\n        customers.cohort_month",
                "orders.customer_order_number",
            ),
            "cohort_month",
        ),
    ],
    ids=["column_retyped", "column_dropped"],
)
def test_a_breaking_change_to_a_mart_fails_its_contract(
    published_demo, demo_columns, tmp_path, edit, named
):
    model, columns = build_fct_orders(published_demo, tmp_path, edit)
    assert model["status"] == "error"
    assert "contract" in model["message"] and named in model["message"]
    assert columns == demo_columns  # the table built before is left as it was


def test_an_empty_value_in_a_not_null_column_fails_the_mart(published_demo, demo_columns, tmp_path):
    """`amount` is a not_null constraint of fct_orders' contract: a build that leaves it
    empty fails naming the table and column, and leaves the table built before as it was."""
    model, columns = build_fct_orders(
        published_demo,
        tmp_path,
        ("orders.amount,", "nullif(orders.amount, orders.amount) as amount,"),
    )
    assert model["status"] == "error"
    message = model["message"]  # the table is written as fct_orders__dbt_tmp, then renamed
    assert "model fct_orders" in message and "NOT NULL constraint failed" in message, message
    assert ".amount" in message, message
    assert columns == demo_columns


def test_the_unchanged_mart_builds_under_its_contract(published_demo, demo_columns, tmp_path):
    """The control: the same build of the unedited project passes."""
    model, columns = build_fct_orders(published_demo, tmp_path, None)
    assert model["status"] == "success", model["message"]
    assert columns == demo_columns


def test_every_published_mart_enforces_a_contract_naming_every_column(published_demo):
    """Each table of the published marts schema is a model whose contract is enforced
    and whose yml gives every column's type as the published table has it: the declared
    name (`string`, `integer`, `decimal(18, 2)`, names both engines accept) is the
    published type in DuckDB."""
    manifest = json.loads((published_demo / "dbt" / "target" / "manifest.json").read_text())
    models = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    with duckdb.connect(str(published_demo / "published.duckdb"), read_only=True) as con:
        published = con.execute(
            "select table_name, column_name, data_type from duckdb_columns() "
            "where schema_name = 'marts' order by table_name, column_index"
        ).fetchall()
    assert {table for table, _, _ in published} == set(models)
    with duckdb.connect() as con:
        declared_types = {
            declared: con.execute(f"select typeof(cast(null as {declared}))").fetchone()[0]
            for declared in {
                column["data_type"]
                for node in models.values()
                for column in node["columns"].values()
            }
        }
    # the check below is not vacuous: DuckDB names the types as the published file does
    assert declared_types["string"] == "VARCHAR" and declared_types["integer"] == "INTEGER"
    for table, column, data_type in published:
        node = models[table]
        assert node["config"]["contract"]["enforced"], table
        assert node["language"] == "sql", table
        declared = node["columns"][column]["data_type"]
        assert declared_types[declared] == data_type, (table, column, declared)
