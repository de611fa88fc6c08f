"""Measure the two ways Great Expectations can validate a DuckDB table (docs/quality-gate.md):
SQL inside DuckDB (our route: GE's SQL engine on a persisted
DuckDB connection, customer_marts/gate/gx_duckdb.py) against loading the table into a
pandas DataFrame and validating that. Each route runs in its own process so that
its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The column checks of the raw orders suite that both routes can run.
EXPECTATIONS = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "order_id"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ordered_at"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "amount", "min_value": 0},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "status", "value_set": ["completed", "cancelled", "refunded"]},
    },
]


def make_table(path: Path, rows: int) -> None:
    """A raw.orders-shaped table of `rows` synthetic orders."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            f"""
            create table raw.orders as
            select
                'O' || lpad(i::varchar, 9, '0') as order_id,
                'C' || lpad((i % {max(rows // 5, 1)})::varchar, 8, '0') as customer_id,
                timestamp '2024-01-01' + (i % 63072000) * interval 1 second as ordered_at,
                round(10 + (i % 997) * 0.37, 2)::decimal(18, 2) as amount,
                ['completed', 'completed', 'cancelled', 'refunded'][1 + i % 4] as status
            from range({rows}) as t(i)
            """
        )


def _validate(route: str, database: str) -> dict:
    """Runs in the child process: validate with one route, return timings."""
    import logging

    logging.disable(logging.WARNING)
    started = time.perf_counter()
    import great_expectations as gx

    from customer_marts.gate import gx_duckdb

    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name="orders", expectations=EXPECTATIONS)
    if route == "sql":
        gx_duckdb.install()
        source = context.data_sources.add_sql(name="db", connection_string=f"duckdb:///{database}")
        asset = source.add_query_asset("orders", query="select * from raw.orders")
        batch = asset.add_batch_definition_whole_table("all").get_batch()
    else:
        import duckdb

        with duckdb.connect(database, read_only=True) as con:
            frame = con.execute("select * from raw.orders").df()
        source = context.data_sources.add_pandas(name="frames")
        asset = source.add_dataframe_asset("orders")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": frame}
        )
    loaded = time.perf_counter()
    result = batch.validate(suite)
    done = time.perf_counter()
    if route == "sql":
        gx_duckdb.close_all(source)
    return {
        "success": bool(result.success),
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "validate_seconds": done - loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(rows: int = 1_000_000) -> dict[str, dict]:
    """Both routes on the same `rows`-row table, each in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "gate.duckdb"
        make_table(database, rows)
        outcome = {}
        for route in ("sql", "pandas"):
            child = subprocess.run(
                [sys.executable, "-m", "bench.gate_bench", route, str(database)],
                capture_output=True,
                text=True,
                check=True,
            )
            outcome[route] = json.loads(child.stdout.strip().splitlines()[-1])
    return outcome


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(_validate(sys.argv[1], sys.argv[2])))
    else:
        print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
