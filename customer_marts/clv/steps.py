"""The CLV step: the five tables of the dbt project's CLV models, each computed from its
input tables by one function here, whichever engine holds the tables.

On DuckDB, each is a dbt Python model (dbt_project/models/intermediate/int_btyd_*.py,
int_customers_predicted_by_btyd.py, int_clv_sums_by_group.py) that calls its function
with the model's inputs (`DbtInputs`). dbt-spark runs Python models only on Databricks,
so on Spark the same functions run between two dbt runs, on the Spark tables
(spark/clv.py, docs/engines.md). Either way, a function reads its inputs through
`Inputs`: named tables, a few columns in a given order, and returns an Arrow table with
the model's columns.

Every read of the customers is in INPUT_ORDER, so every floating-point sum runs in one
fixed order and a rerun, on either engine, gives exactly the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv import validation as clv_validation
from customer_marts.clv.fitting import fit_gamma_gamma, fit_purchase_models
from customer_marts.clv.models import (
    BG_NBD,
    GAMMA_GAMMA,
    INPUT_COLUMNS,
    INPUT_ORDER,
    PURCHASE_MODELS,
)
from customer_marts.clv.predictions import predict
from customer_marts.clv.selection import (
    FIT_COLUMNS,
    choose_model,
    fit_rows,
    fits_from_rows,
    fitted_rows,
    model_in_use,
    parameters_in_use,
)

SUMMARY = "int_customers_summarised_for_clv"


class Inputs(Protocol):
    """The tables a CLV function reads: the models it refers to, by name."""

    def table(
        self, name: str, columns: Sequence[str] = (), *, where: str = "", order: str = ""
    ) -> pa.Table:
        """Columns of a model (all when none are named), its rows filtered by the SQL
        condition `where` and sorted by the SQL `order`, when given."""

    def value(self, name: str, expressions: str) -> tuple:
        """One row of SQL aggregates over a model, e.g. `max(as_of_date)`."""

    def previous(self) -> pa.Table | None:
        """The function's own table as the previous run left it; None on the first run."""


class DbtInputs:
    """`Inputs` of a dbt-duckdb Python model: its `dbt.ref` relations by model name (the
    model calls `dbt.ref` itself, where dbt's parser sees its dependencies) and
    `dbt.this`."""

    def __init__(self, session: Any, this: Any, relations: Mapping[str, Any]) -> None:
        self.session, self.this, self.relations = session, this, relations

    def table(self, name, columns=(), *, where="", order=""):
        relation = self.relations[name]
        if where:
            relation = relation.filter(where)
        if order:
            relation = relation.order(order)
        return relation.select(", ".join(columns) or "*").to_arrow_table()

    def value(self, name, expressions):
        return self.relations[name].aggregate(expressions).fetchall()[0]

    def previous(self):
        exists = self.session.sql(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            params=[self.this.schema, self.this.identifier],
        ).fetchall()[0][0]
        return self.session.sql(f"select * from {self.this}").to_arrow_table() if exists else None


def _numbers(table: pa.Table, *names: str) -> tuple[np.ndarray, ...]:
    return tuple(table.column(name).to_numpy().astype(float) for name in names)


MODELS_FITTED_SCHEMA = pa.schema(
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


def models_fitted(inputs: Inputs, meta: Mapping[str, Any]) -> pa.Table:
    """int_btyd_models_fitted: BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma fitted on the
    run's BTYD inputs, one row per model x parameter."""
    max_iterations = int(meta["clv_max_iterations"])
    # The customer id only sorts: fetched, 2M ids would cost a second as Python strings.
    table = inputs.table(SUMMARY, INPUT_COLUMNS, order=INPUT_ORDER)
    x, t_x, T, m = (table.column(name).to_numpy() for name in INPUT_COLUMNS)
    fits = fit_purchase_models(PURCHASE_MODELS, x, t_x, T, max_iterations) + [
        fit_gamma_gamma(x, m, max_iterations=max_iterations)
    ]
    return pa.Table.from_pylist(fitted_rows(fits), schema=MODELS_FITTED_SCHEMA)


HOLDOUT_SCHEMA = pa.schema(
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


def holdout_validated(inputs: Inputs, meta: Mapping[str, Any]) -> pa.Table:
    """int_btyd_holdout_validated: each purchase model fitted on the calibration window,
    its predictions for the holdout window compared with what the customers did."""
    max_iterations = int(meta["clv_max_iterations"])
    holdout_days = int(meta["clv_holdout_days"])
    if holdout_days < 1:
        raise ValueError(f"dbt var clv_holdout_days must be at least 1, not {holdout_days}")
    as_of_date, history_days = inputs.value(SUMMARY, "max(as_of_date), max(t_days)")
    table = inputs.table(
        f"{SUMMARY}_holdout",
        (*INPUT_COLUMNS, "holdout_purchase_days", "holdout_revenue", "holdout_day_offsets"),
        order=INPUT_ORDER,
    )
    holdout = None
    if table.num_rows:
        x, t_x, T, m = _numbers(table, *INPUT_COLUMNS)
        purchases, revenue = _numbers(table, "holdout_purchase_days", "holdout_revenue")
        offsets = table.column("holdout_day_offsets").combine_chunks().flatten()
        holdout = clv_validation.Holdout(
            frequency=x,
            recency=t_x,
            T=T,
            monetary_value=m,
            holdout_purchases=purchases,
            holdout_revenue=revenue,
            holdout_day_offsets=np.asarray(offsets.to_numpy(), dtype=float),
        )
    rows, _ = clv_validation.validate(
        holdout, history_days, holdout_days, as_of_date, max_iterations
    )
    return pa.Table.from_pylist(rows, schema=HOLDOUT_SCHEMA)


PARAMETERS_SCHEMA = pa.schema(
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


def parameters_fitted(inputs: Inputs, meta: Mapping[str, Any]) -> pa.Table:
    """int_btyd_parameters_fitted: the fits and the purchase model the predictions use,
    the one with the lowest holdout error unless the var clv_model pins one. The previous
    run's rows let a fit that does not converge fall back to the last converged one."""
    pinned = str(meta.get("clv_model") or "").strip()
    pinned = None if pinned.lower() in ("", "none", "null") else pinned
    errors = inputs.table(
        "int_btyd_holdout_validated",
        ("model", "mae_per_customer"),
        where="check_name = 'total' and status = 'validated'",
    )
    holdout_mae = dict(
        zip(
            errors.column("model").to_pylist(),
            errors.column("mae_per_customer").to_pylist(),
            strict=True,
        )
    )
    (as_of_date,) = inputs.value(SUMMARY, "max(as_of_date)")
    fits = fits_from_rows(inputs.table("int_btyd_models_fitted").to_pylist())
    previous = inputs.previous()
    previous = (
        previous.to_pylist()
        if previous is not None and set(FIT_COLUMNS) <= set(previous.column_names)
        else []
    )
    selection = choose_model(fits, holdout_mae, pinned, model_in_use(previous))
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    rows = fit_rows(fits, previous, as_of_date, fitted_at, selection)
    return pa.Table.from_pylist(rows, schema=PARAMETERS_SCHEMA)


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


def _money(meta: Mapping[str, Any]) -> tuple[float, float, int]:
    return (
        float(meta["margin"]),
        float(meta["annual_discount_rate"]),
        int(meta["clv_interval_draws"]),
    )


def customers_predicted(inputs: Inputs, meta: Mapping[str, Any]) -> pa.Table:
    """int_customers_predicted_by_btyd: per customer, the predictions of the purchase
    model in use + Gamma-Gamma, with 90 % intervals of clv_12m and of the 365-day
    expected purchases. NULL when no usable parameters (or no covariance) exist."""
    margin, annual_discount_rate, draws = _money(meta)
    rows = inputs.table("int_btyd_parameters_fitted").to_pylist()
    in_use = model_in_use(rows) or BG_NBD
    purchase = parameters_in_use(rows, in_use)
    gamma_gamma = parameters_in_use(rows, GAMMA_GAMMA)
    # In INPUT_ORDER: every figure is the customer's own (or its distinct combination's),
    # and in this order grouping the customers into combinations needs no sort.
    table = inputs.table(SUMMARY, ("customer_id", *INPUT_COLUMNS), order=INPUT_ORDER)
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
    # group_sums, later in this process, takes the draws' terms instead of computing
    # them again.
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


GROUP_SUMS_SCHEMA = pa.schema(
    [
        ("grouping", pa.string()),
        ("cohort_month", pa.date32()),
        ("lifecycle_stage", pa.string()),
        ("is_high_value", pa.bool_()),
        ("total_clv_12m_low", pa.float64()),
        ("total_clv_12m_high", pa.float64()),
    ]
)
GROUPINGS = {"cohort": ("cohort_month",), "segment": ("lifecycle_stage", "is_high_value")}


def _with_groups(summary: pa.Table, customers: pa.Table) -> pa.Table:
    """The customers of `summary` that `customers` has, in `summary`'s order, with the
    grouping columns of `customers` beside their inputs."""
    where = pc.index_in(summary.column("customer_id"), value_set=customers.column("customer_id"))
    found = pc.is_valid(where)
    summary, where = summary.filter(found), where.filter(found)
    picked = customers.take(where)
    for name in ("cohort_month", "lifecycle_stage", "is_high_value"):
        summary = summary.append_column(name, picked.column(name))
    return summary


def group_sums(inputs: Inputs, meta: Mapping[str, Any]) -> pa.Table:
    """int_clv_sums_by_group: 90 % intervals of the summed clv_12m of every acquisition
    cohort and every segment (lifecycle stage x high value) of dim_customers, from the
    same seeded parameter draws as the customers' intervals."""
    margin, annual_discount_rate, draws = _money(meta)
    rows = inputs.table("int_btyd_parameters_fitted").to_pylist()
    # In INPUT_ORDER, as the fit reads them: each group's spend is summed in that order.
    table = _with_groups(
        inputs.table(SUMMARY, ("customer_id", *INPUT_COLUMNS), order=INPUT_ORDER),
        inputs.table(
            "dim_customers", ("customer_id", "cohort_month", "lifecycle_stage", "is_high_value")
        ),
    )
    x, t_x, T, m = _numbers(table, *INPUT_COLUMNS)
    keys, codes = {}, {}
    for grouping, dimensions in GROUPINGS.items():
        codes[grouping] = clv_uncertainty.group_numbers(*(table.column(d) for d in dimensions))
        _, first = np.unique(codes[grouping], return_index=True)  # a customer of each group
        named = (table.column(d).take(first).to_pylist() for d in dimensions)
        keys[grouping] = list(zip(*named, strict=True))
    bands = clv_uncertainty.from_fit_rows(
        rows,
        x,
        t_x,
        T,
        m,
        margin,
        annual_discount_rate,
        draws=draws,
        groups=codes,
        customers=False,
    )
    out = []
    level = clv_uncertainty.LEVEL
    for grouping, distinct in keys.items():
        if bands is None or grouping not in bands.group_sums:
            low = high = np.full(len(distinct), np.nan)
        else:
            low, high = np.quantile(
                bands.group_sums[grouping], [(1 - level) / 2, (1 + level) / 2], axis=0
            )
        for value, lo, hi in zip(distinct, low, high, strict=True):
            named = dict(zip(GROUPINGS[grouping], value, strict=True))
            out.append(
                {
                    "grouping": grouping,
                    "cohort_month": named.get("cohort_month"),
                    "lifecycle_stage": named.get("lifecycle_stage"),
                    "is_high_value": named.get("is_high_value"),
                    "total_clv_12m_low": float(lo) if np.isfinite(lo) else None,
                    "total_clv_12m_high": float(hi) if np.isfinite(hi) else None,
                }
            )
    return pa.Table.from_pylist(out, schema=GROUP_SUMS_SCHEMA)


# The CLV models, in an order in which each comes after the models it reads.
STEPS = {
    "int_btyd_models_fitted": models_fitted,
    "int_btyd_holdout_validated": holdout_validated,
    "int_btyd_parameters_fitted": parameters_fitted,
    "int_customers_predicted_by_btyd": customers_predicted,
    "int_clv_sums_by_group": group_sums,
}
