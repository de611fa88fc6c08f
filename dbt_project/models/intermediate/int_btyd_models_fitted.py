"""BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma fitted by maximum likelihood on the run's
BTYD inputs (customer_marts.clv.fitting), one row per model x parameter
(customer_marts.clv.selection.fitted_rows).

It does not wait for the holdout check: the holdout errors only choose which of these
fits the predictions use, and int_btyd_parameters_fitted makes that choice once both
are built. This model only moves data between DuckDB and customer_marts.
"""

import pyarrow as pa

from customer_marts.clv.fitting import fit_gamma_gamma, fit_purchase_models
from customer_marts.clv.models import INPUT_COLUMNS, INPUT_ORDER, PURCHASE_MODELS
from customer_marts.clv.selection import fitted_rows

SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("parameter", pa.string()),
        ("value", pa.float64()),
        ("log_likelihood", pa.float64()),
        ("n_customers", pa.int64()),
        ("converged", pa.bool_()),
        ("iterations", pa.int64()),
        ("message", pa.string()),
        ("gradient_norm", pa.float64()),
        ("log_covariance", pa.list_(pa.float64())),
    ]
)


def model(dbt, session):
    dbt.config(materialized="table")
    max_iterations = int(dbt.config.meta_get("clv_max_iterations"))
    # In INPUT_ORDER: the table's row order varies with DuckDB's parallel aggregation,
    # and floating-point sums over another order end the optimiser a few ulps elsewhere;
    # sorted, a rerun fits exactly the same parameters. The customer id only sorts:
    # fetched, 2M ids would cost a second as Python strings.
    inputs = (
        dbt.ref("int_customers_summarised_for_clv")
        .order(INPUT_ORDER)
        .select(", ".join(INPUT_COLUMNS))
        .fetchnumpy()
    )
    x, t_x, T, m = (inputs[name] for name in INPUT_COLUMNS)
    fits = fit_purchase_models(PURCHASE_MODELS, x, t_x, T, max_iterations) + [
        fit_gamma_gamma(x, m, max_iterations=max_iterations)
    ]
    return pa.Table.from_pylist(fitted_rows(fits), schema=SCHEMA)
