"""The fits of int_btyd_models_fitted (BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma) and
the purchase model the predictions use: the one with the lowest holdout error in
int_btyd_holdout_validated, unless the dbt var clv_model pins one.

One row per model x parameter (customer_marts.clv.selection.fit_rows). The fits and the
choice are customer_marts.clv; this model only moves data between DuckDB and it. Before the
table is replaced (dbt-duckdb builds the new table under a temporary name and swaps
it in), the previous run's rows are read through dbt.this, so a fit that does not
converge can fall back to the last converged parameters.
"""

from datetime import UTC, datetime

import pyarrow as pa

from customer_marts.clv.selection import (
    FIT_COLUMNS,
    choose_model,
    fit_rows,
    fits_from_rows,
    model_in_use,
)


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
    return rows if rows and set(FIT_COLUMNS) <= set(previous.columns) else []


def model(dbt, session):
    dbt.config(materialized="table")
    pinned = str(dbt.config.meta_get("clv_model") or "").strip()
    pinned = None if pinned.lower() in ("", "none", "null") else pinned
    holdout_mae = {
        model: mae
        for model, mae in dbt.ref("int_btyd_holdout_validated")
        .filter("check_name = 'total' and status = 'validated'")
        .select("model, mae_per_customer")
        .fetchall()
    }
    summary = dbt.ref("int_customers_summarised_for_clv")
    as_of_date = summary.aggregate("max(as_of_date)").fetchall()[0][0]
    fits = fits_from_rows(dbt.ref("int_btyd_models_fitted").to_dicts())
    previous = previous_rows(dbt, session)
    selection = choose_model(fits, holdout_mae, pinned, model_in_use(previous))
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    rows = fit_rows(fits, previous, as_of_date, fitted_at, selection)
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
            ("std_error", pa.float64()),
            ("ci_low_95", pa.float64()),
            ("ci_high_95", pa.float64()),
            ("aic", pa.float64()),
            ("bic", pa.float64()),
            ("holdout_mae_per_customer", pa.float64()),
            ("is_selected_model", pa.bool_()),
            ("selection_reason", pa.string()),
            ("log_covariance", pa.list_(pa.float64())),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
