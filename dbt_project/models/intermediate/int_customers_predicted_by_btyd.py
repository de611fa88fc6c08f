"""Per-customer BG/NBD + Gamma-Gamma predictions with the parameters in use.

One row per customer of int_customers_summarised_for_clv. The formulas are
customer_marts.clv.predict; this model only moves data between DuckDB and it.
Predictions are NULL when no usable parameters exist (for example, no customer has
bought twice yet).
"""

import numpy as np
import pyarrow as pa

from customer_marts import clv

PREDICTIONS = (
    "p_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "clv_12m",
)


def model(dbt, session):
    dbt.config(materialized="table")
    margin = float(dbt.config.meta_get("margin"))
    annual_discount_rate = float(dbt.config.meta_get("annual_discount_rate"))
    fit = dbt.ref("int_btyd_parameters_fitted")
    rows = fit.to_dicts()
    bg_nbd = clv.parameters_in_use(rows, clv.BG_NBD)
    gamma_gamma = clv.parameters_in_use(rows, clv.GAMMA_GAMMA)

    customers = dbt.ref("int_customers_summarised_for_clv").select(
        "customer_id, " + ", ".join(clv.INPUT_COLUMNS)
    )
    table = customers.to_arrow_table()
    x, t_x, T, m = (table.column(name).to_numpy() for name in clv.INPUT_COLUMNS)
    missing = np.full(len(x), np.nan)
    if bg_nbd is None:
        predicted = dict.fromkeys(PREDICTIONS, missing)
    else:
        predicted = clv.predict(
            bg_nbd,
            gamma_gamma or (np.nan, np.nan, np.nan),
            x,
            t_x,
            T,
            m,
            margin=margin,
            annual_discount_rate=annual_discount_rate,
        )
    columns = {"customer_id": table.column("customer_id")}
    for name in PREDICTIONS:
        values = predicted[name]
        columns[name] = pa.array(values, mask=~np.isfinite(values), type=pa.float64())
    return pa.table(columns)
