"""BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma fitted by maximum likelihood on the run's
BTYD inputs, one row per model x parameter (customer_marts.clv.steps.models_fitted).

It does not wait for the holdout check: the holdout errors only choose which of these
fits the predictions use, and int_btyd_parameters_fitted makes that choice once both
are built.

The computation is customer_marts.clv.steps, shared with the Spark engine (which runs it
outside dbt, spark/clv.py); this model only hands it its inputs.
"""

from customer_marts.clv.steps import DbtInputs, models_fitted


def model(dbt, session):
    dbt.config(materialized="table")
    meta = {
        "clv_max_iterations": dbt.config.meta_get("clv_max_iterations"),
    }
    tables = {
        "int_customers_summarised_for_clv": dbt.ref("int_customers_summarised_for_clv"),
    }
    return models_fitted(DbtInputs(session, dbt.this, tables), meta)
