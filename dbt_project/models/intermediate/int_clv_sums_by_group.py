"""90 % intervals of the summed clv_12m of every acquisition cohort and every segment
(lifecycle stage x high value) of dim_customers: per parameter draw, the group's sum of
its customers' clv_12m; the interval is the 5th to 95th percentile of those sums
(customer_marts.clv.steps.group_sums, the same seeded draws as the customers' intervals).

One row per grouping x group; clv_by_cohort and clv_by_segment join it.

The computation is customer_marts.clv.steps, shared with the Spark engine (which runs it
outside dbt, spark/clv.py); this model only hands it its inputs.
"""

from customer_marts.clv.steps import DbtInputs, group_sums


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
        "dim_customers": dbt.ref("dim_customers"),
    }
    return group_sums(DbtInputs(session, dbt.this, tables), meta)
