"""The CLV step on Spark: the functions of customer_marts.clv.steps, the same that the dbt
Python models call on DuckDB, run on the Spark tables (docs/engines.md).

dbt-spark runs Python models only on Databricks, so the Spark build (spark/build.py)
runs each CLV model between dbt runs: after the SQL models it reads, before those that
read it. Each CLV model's inputs are read from Spark as Arrow,
in the order the function asks for, and its output replaces the model's Spark table.
The models' settings (their `meta`, the dbt vars they name) come from dbt's manifest,
as dbt hands them to the Python models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from customer_marts.clv.steps import STEPS
from spark.tables import spark_timestamps

log = logging.getLogger(__name__)


def relation(node: Mapping[str, Any]) -> str:
    """A manifest node's Spark table, `schema.name`."""
    return f"{node['schema']}.{node['alias']}"


def _naive(table: pa.Table) -> pa.Table:
    """Spark's TIMESTAMP arrives in Arrow as UTC instants; the functions, as on DuckDB,
    take UTC timestamps without a zone."""
    fields = [
        pa.field(field.name, pa.timestamp("us"))
        if pa.types.is_timestamp(field.type) and field.type.tz
        else field
        for field in table.schema
    ]
    return table.cast(pa.schema(fields))


class SparkInputs:
    """`Inputs` (customer_marts.clv.steps) of one CLV model, read from Spark tables."""

    def __init__(self, spark: Any, nodes: Mapping[str, Mapping[str, Any]], this: str) -> None:
        self.spark, self.nodes, self.this = spark, nodes, this

    def table(self, name, columns=(), *, where="", order=""):
        query = f"select {', '.join(columns) or '*'} from {relation(self.nodes[name])}"
        query += f" where {where}" if where else ""
        query += f" order by {order}" if order else ""
        return _naive(self.spark.sql(query).toArrow())

    def value(self, name, expressions):
        return tuple(
            self.spark.sql(f"select {expressions} from {relation(self.nodes[name])}").first()
        )

    def previous(self):
        if not self.spark.catalog.tableExists(self.this):
            return None
        return _naive(self.spark.table(self.this).toArrow())


def model_nodes(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The dbt project's models, by name, from its manifest; refuses a project whose
    Python models are not the CLV step's (customer_marts.clv.steps.STEPS), which only
    this step can build on Spark."""
    nodes = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    python = {name for name, node in nodes.items() if node["language"] == "python"}
    if python != set(STEPS):
        raise RuntimeError(
            f"the dbt project's Python models {sorted(python)} are not the CLV step's "
            f"{sorted(STEPS)} (customer_marts.clv.steps.STEPS)"
        )
    return nodes


def run_step(spark: Any, nodes: Mapping[str, Mapping[str, Any]], name: str) -> None:
    """Build one CLV model's Spark table from its inputs."""
    started = time.monotonic()
    node = nodes[name]
    table = STEPS[name](SparkInputs(spark, nodes, relation(node)), node["config"].get("meta", {}))
    frame = spark_timestamps(spark.createDataFrame(table))
    spark.sql(f"create database if not exists {node['schema']}")
    frame.write.mode("overwrite").format("parquet").saveAsTable(relation(node))
    log.info("%s: %d rows in %.1f s", relation(node), table.num_rows, time.monotonic() - started)
