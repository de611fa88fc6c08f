"""Per-customer predictions of the purchase model in use (BG/NBD, MBG/NBD or Pareto/NBD)
+ Gamma-Gamma, with 90 % intervals of clv_12m and the 365-day expected purchases.

One row per customer of int_customers_summarised_for_clv. The formulas are
customer_marts.clv.predictions.predict and customer_marts.clv.uncertainty (parameter draws, seeded);
this model only moves data between DuckDB and them. Predictions are NULL when no usable
parameters exist (for example, no customer has bought twice yet); intervals are NULL
when the fit's covariance is unknown.
"""

import numpy as np
import pyarrow as pa

from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv.models import BG_NBD, GAMMA_GAMMA, INPUT_COLUMNS, INPUT_ORDER
from customer_marts.clv.predictions import predict
from customer_marts.clv.selection import model_in_use, parameters_in_use

PREDICTIONS = (
    "p_alive",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_avg_order_value",
    "clv_12m",
)
INTERVALS = (
    "expected_purchases_365d_low",
    "expected_purchases_365d_high",
    "clv_12m_low",
    "clv_12m_high",
)


def model(dbt, session):
    dbt.config(materialized="table")
    margin = float(dbt.config.meta_get("margin"))
    annual_discount_rate = float(dbt.config.meta_get("annual_discount_rate"))
    draws = int(dbt.config.meta_get("clv_interval_draws"))
    fit = dbt.ref("int_btyd_parameters_fitted")
    rows = fit.to_dicts()
    in_use = model_in_use(rows) or BG_NBD
    purchase = parameters_in_use(rows, in_use)
    gamma_gamma = parameters_in_use(rows, GAMMA_GAMMA)

    # In INPUT_ORDER: every figure is the customer's own (or its distinct combination's),
    # and in this order grouping the customers into combinations needs no sort.
    customers = (
        dbt.ref("int_customers_summarised_for_clv")
        .order(INPUT_ORDER)
        .select("customer_id, " + ", ".join(INPUT_COLUMNS))
    )
    table = customers.to_arrow_table()
    x, t_x, T, m = (table.column(name).to_numpy() for name in INPUT_COLUMNS)
    missing = np.full(len(x), np.nan)
    if purchase is None:
        predicted = dict.fromkeys(PREDICTIONS, missing)
    else:
        predicted = predict(
            purchase,
            gamma_gamma or (np.nan, np.nan, np.nan),
            x,
            t_x,
            T,
            m,
            margin=margin,
            annual_discount_rate=annual_discount_rate,
            model=in_use,
        )
    # int_clv_sums_by_group, later in this dbt process, takes the draws' terms instead of
    # computing them again.
    bands = clv_uncertainty.from_fit_rows(
        rows, x, t_x, T, m, margin, annual_discount_rate, draws=draws, keep_terms=True
    )
    for figure in ("expected_purchases_365d", "clv_12m"):
        low, high = (
            (missing, missing)
            if bands is None
            else (getattr(bands, f"{figure}_low"), getattr(bands, f"{figure}_high"))
        )
        predicted[f"{figure}_low"], predicted[f"{figure}_high"] = clv_uncertainty.contain(
            low, high, predicted[figure]
        )
    columns = {"customer_id": table.column("customer_id")}
    for name in PREDICTIONS + INTERVALS:
        values = predicted[name]
        columns[name] = pa.array(values, mask=~np.isfinite(values), type=pa.float64())
    return pa.table(columns)
