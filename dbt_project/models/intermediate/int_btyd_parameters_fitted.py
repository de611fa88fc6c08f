"""The fits of int_btyd_models_fitted (BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma) and
the purchase model the predictions use: the one with the lowest holdout error in
int_btyd_holdout_validated, unless the dbt var clv_model pins one
(customer_marts.clv.steps.parameters_fitted).

One row per model x parameter. Before the table is replaced (dbt-duckdb builds the new
table under a temporary name and swaps it in), the previous run's rows are read through
dbt.this, so a fit that does not converge can fall back to the last converged parameters.

The computation is customer_marts.clv.steps, shared with the Spark engine (which runs it
outside dbt, spark/clv.py); this model only hands it its inputs.
"""

from customer_marts.clv.steps import DbtInputs, parameters_fitted


def model(dbt, session):
    dbt.config(materialized="table")
    meta = {
        "clv_model": dbt.config.meta_get("clv_model"),
    }
    tables = {
        "int_btyd_holdout_validated": dbt.ref("int_btyd_holdout_validated"),
        "int_customers_summarised_for_clv": dbt.ref("int_customers_summarised_for_clv"),
        "int_btyd_models_fitted": dbt.ref("int_btyd_models_fitted"),
    }
    return parameters_fitted(DbtInputs(session, dbt.this, tables), meta)
