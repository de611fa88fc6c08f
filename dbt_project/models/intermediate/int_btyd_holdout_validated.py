"""The holdout validation of the purchase models (customer_marts.clv.steps.holdout_validated):
each model fitted on the calibration window of int_customers_summarised_for_clv_holdout,
its predictions for the holdout window compared with what the customers did.

One row per model x check x bucket (the checks and buckets of
customer_marts.clv.validation); one row per model saying why when the validation is
skipped (history shorter than twice the holdout) or a calibration fit did not converge.

The computation is customer_marts.clv.steps, shared with the Spark engine (which runs it
outside dbt, spark/clv.py); this model only hands it its inputs.
"""

from customer_marts.clv.steps import DbtInputs, holdout_validated


def model(dbt, session):
    dbt.config(materialized="table")
    meta = {
        "clv_max_iterations": dbt.config.meta_get("clv_max_iterations"),
        "clv_holdout_days": dbt.config.meta_get("clv_holdout_days"),
    }
    tables = {
        "int_customers_summarised_for_clv": dbt.ref("int_customers_summarised_for_clv"),
        "int_customers_summarised_for_clv_holdout": dbt.ref(
            "int_customers_summarised_for_clv_holdout"
        ),
    }
    return holdout_validated(DbtInputs(session, dbt.this, tables), meta)
