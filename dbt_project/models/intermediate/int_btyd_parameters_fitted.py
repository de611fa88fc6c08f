"""BG/NBD and Gamma-Gamma fitted by maximum likelihood on the run's BTYD inputs.

One row per model x parameter (customer_marts.clv.fit_rows). The fit itself is
customer_marts.clv; this model only moves data between DuckDB and it. Before the
table is replaced (dbt-duckdb builds the new table under a temporary name and swaps
it in), the previous run's rows are read through dbt.this, so a fit that does not
converge can fall back to the last converged parameters.
"""

from datetime import UTC, datetime

import pyarrow as pa

from customer_marts import clv


def previous_rows(dbt, session) -> list[dict]:
    """This model's table as the previous run left it (empty on the first run)."""
    exists = session.sql(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        params=[dbt.this.schema, dbt.this.identifier],
    ).fetchall()[0][0]
    if not exists:
        return []
    previous = session.sql(f"select * from {dbt.this}")
    rows = previous.to_dicts()
    return rows if rows and set(clv.FIT_COLUMNS) <= set(previous.columns) else []


def model(dbt, session):
    dbt.config(materialized="table")
    max_iterations = int(dbt.config.meta_get("clv_max_iterations"))
    summary = dbt.ref("int_customers_summarised_for_clv")
    as_of_date = summary.aggregate("max(as_of_date)").fetchall()[0][0]
    # In customer order: the table's row order varies with DuckDB's parallel
    # aggregation, and floating-point sums over another order end the optimiser a few
    # ulps elsewhere; sorted, a rerun fits exactly the same parameters.
    columns = ", ".join(clv.INPUT_COLUMNS)
    inputs = summary.select(f"customer_id, {columns}").order("customer_id").fetchnumpy()
    x, t_x, T, m = (inputs[name] for name in clv.INPUT_COLUMNS)
    fits = [
        clv.fit_bg_nbd(x, t_x, T, max_iterations=max_iterations),
        clv.fit_gamma_gamma(x, m, max_iterations=max_iterations),
    ]
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    rows = clv.fit_rows(fits, previous_rows(dbt, session), as_of_date, fitted_at)
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("parameter", pa.string()),
            ("value", pa.float64()),
            ("time_unit", pa.string()),
            ("log_likelihood", pa.float64()),
            ("n_customers", pa.int64()),
            ("converged", pa.bool_()),
            ("fitted_at", pa.timestamp("us")),
            ("as_of_date", pa.date32()),
            ("is_used_for_predictions", pa.bool_()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
