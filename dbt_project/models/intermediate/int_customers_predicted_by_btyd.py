"""Per-customer predictions of the purchase model in use (BG/NBD, MBG/NBD or Pareto/NBD)
+ Gamma-Gamma, with 90 % intervals of clv_12m and the 365-day expected purchases
(customer_marts.clv.steps.customers_predicted).

One row per customer of int_customers_summarised_for_clv. Predictions are NULL when no
usable parameters exist (for example, no customer has bought twice yet); intervals are
NULL when the fit's covariance is unknown.

The computation is customer_marts.clv.steps, shared with the Spark engine (which runs it
outside dbt, spark/clv.py); this model only hands it its inputs.
"""

from customer_marts.clv.steps import DbtInputs, customers_predicted


def model(dbt, session):
    dbt.config(materialized="table")
    meta = {
        "margin": dbt.config.meta_get("margin"),
        "annual_discount_rate": dbt.config.meta_get("annual_discount_rate"),
        "clv_interval_draws": dbt.config.meta_get("clv_interval_draws"),
    }
    tables = {
        "int_btyd_parameters_fitted": dbt.ref("int_btyd_parameters_fitted"),
        "int_customers_summarised_for_clv": dbt.ref("int_customers_summarised_for_clv"),
    }
    return customers_predicted(DbtInputs(session, dbt.this, tables), meta)
