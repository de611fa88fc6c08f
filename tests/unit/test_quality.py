"""The Great Expectations gate on real DuckDB tables: a failing expectation raises
GateFailed naming the check and its failing values, and is recorded."""

from __future__ import annotations

import duckdb
import pytest

from customer_marts.quality import GateFailed, validate
from customer_marts.warehouse import connect, ensure_schema


def test_failing_mart_expectation_blocks_with_check_and_values(settings):
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute("create schema marts")
        con.execute(
            "create table marts.cohort_retention as select 'month' as grain, "
            "1 as cohort_size, unnest([50.0, 150.0]) as retention_pct"
        )
        con.execute("create table marts.fct_orders as select 1.0 as amount")
        con.execute(
            "create table marts.dim_customers as "
            "select 1 as completed_orders, 1.0 as historic_revenue"
        )
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "marts")
    message = str(error.value)
    assert "marts.cohort_retention: expect_column_values_to_be_between(retention_pct)" in message
    assert "1 of 2 rows unexpected" in message and 'failing values: ["150.0"]' in message
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        statuses = dict(
            con.execute(
                'select "check", status from audit.check_results where suite = '
                "'marts.cohort_retention'"
            ).fetchall()
        )
    assert statuses["expect_column_values_to_be_between(retention_pct)"] == "failed"
    assert statuses["expect_column_values_to_be_between(cohort_size)"] == "passed"
    assert (settings.warehouse_dir / "quality" / "index.html").exists()  # Data Docs built
