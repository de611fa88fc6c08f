"""The customers whose raw rows a run's ingest changed (`audit.changed_customers`).

The nightly dbt build recomputes only these customers' rows of its incremental models
(dbt_project/macros/incremental.sql; docs/incremental.md). While a source loads, inside
the ingest's transaction, every row it writes to raw, every row a corrected delivery
under the same name removes and every row a later file's row supersedes is noted with
its customer (`note`); an order line has none of its own and is noted with its order.
At the end of the load `record` writes one row per run, source and customer, with the
time it was noted (UTC): a line's customer is its order's customer once every source
has loaded. A build reflects the changes noted before it started. A re-delivery that moves
an order to another customer notes both: the row it removes and the row it writes.
A survey response without a customer is noted with a NULL customer (the dbt filter
matches NULL to NULL, so those responses are recomputed too).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from customer_marts.ingest.contract import Source
from customer_marts.ingest.sql import literal

NOTED = "changed_rows"  # a temporary table of the ingest's connection


def start(con: duckdb.DuckDBPyConnection) -> None:
    """An empty list of noted rows for this ingest."""
    con.execute(
        f"create or replace temporary table {NOTED} "
        "(source varchar, customer_id varchar, order_id varchar)"
    )


def note(con: duckdb.DuckDBPyConnection, source: Source, rows_sql: str) -> None:
    """Note the customer (or, for a row without one, the order) of each row of `rows_sql`,
    a query over rows with the source's columns."""
    if source.customer_column:
        customer, order = source.customer_column, "null"
    elif source.order_column:
        customer, order = "null", source.order_column
    else:
        return  # a source without customers (marketing spend)
    con.execute(
        f"insert into {NOTED} select distinct {literal(source.name)}, "
        f"{customer}, {order} from ({rows_sql})"
    )


def record(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Write the noted customers of run `run_id` to audit.changed_customers (in the
    ingest's transaction); return how many (run, source, customer) rows."""
    (count,) = con.execute(
        f"""
        insert into audit.changed_customers (run_id, source, customer_id, noted_at)
        select distinct ?, noted.source, coalesce(noted.customer_id, orders.customer_id), ?
        from {NOTED} as noted
        left join raw.orders as orders on noted.order_id = orders.order_id
        where noted.order_id is null or orders.customer_id is not null
        """,
        [run_id, datetime.now(UTC).replace(tzinfo=None)],
    ).fetchone()
    con.execute(f"drop table {NOTED}")
    return count
