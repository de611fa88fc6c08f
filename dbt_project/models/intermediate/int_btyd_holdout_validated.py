"""The holdout validation of the purchase models (customer_marts.clv.validation): each
model fitted on the calibration window of int_customers_summarised_for_clv_holdout,
its predictions for the holdout window compared with what the customers did.

One row per model x check x bucket (the checks and buckets of
customer_marts.clv.validation); one row per model saying why when the validation is
skipped (history shorter than twice the holdout) or a calibration fit did not converge.
This model only moves data between DuckDB and customer_marts.
"""

import numpy as np
import pyarrow as pa

from customer_marts.clv import validation as clv_validation
from customer_marts.clv.models import INPUT_COLUMNS, INPUT_ORDER

SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("check_name", pa.string()),
        ("bucket", pa.string()),
        ("bucket_order", pa.int64()),
        ("customers", pa.int64()),
        ("actual_repeat_purchases", pa.float64()),
        ("predicted_repeat_purchases", pa.float64()),
        ("actual_revenue", pa.float64()),
        ("predicted_revenue", pa.float64()),
        ("mae_per_customer", pa.float64()),
        ("correlation", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("calibration_end_date", pa.date32()),
        ("holdout_days", pa.int64()),
        ("as_of_date", pa.date32()),
    ]
)


def model(dbt, session):
    dbt.config(materialized="table")
    max_iterations = int(dbt.config.meta_get("clv_max_iterations"))
    holdout_days = int(dbt.config.meta_get("clv_holdout_days"))
    if holdout_days < 1:
        raise ValueError(f"dbt var clv_holdout_days must be at least 1, not {holdout_days}")
    summary = dbt.ref("int_customers_summarised_for_clv")
    as_of_date, history_days = summary.aggregate("max(as_of_date), max(t_days)").fetchall()[0]
    # In INPUT_ORDER, as the production fit reads its inputs: reruns fit identically.
    columns = ", ".join(INPUT_COLUMNS)
    table = (
        dbt.ref("int_customers_summarised_for_clv_holdout")
        .order(INPUT_ORDER)
        .select(f"{columns}, holdout_purchase_days, holdout_revenue, holdout_day_offsets")
        .to_arrow_table()
    )
    holdout = None
    if table.num_rows:
        x, t_x, T, m = (table.column(name).to_numpy().astype(float) for name in INPUT_COLUMNS)
        offsets = table.column("holdout_day_offsets").combine_chunks().flatten()
        holdout = clv_validation.Holdout(
            frequency=x,
            recency=t_x,
            T=T,
            monetary_value=m,
            holdout_purchases=table.column("holdout_purchase_days").to_numpy().astype(float),
            holdout_revenue=table.column("holdout_revenue").to_numpy().astype(float),
            holdout_day_offsets=np.asarray(offsets.to_numpy(), dtype=float),
        )
    rows, _ = clv_validation.validate(
        holdout, history_days, holdout_days, as_of_date, max_iterations
    )
    return pa.Table.from_pylist(rows, schema=SCHEMA)
