"""90 % intervals of the summed clv_12m of every acquisition cohort and every segment
(lifecycle stage x high value) of dim_customers: per parameter draw, the group's sum of
its customers' clv_12m; the interval is the 5th to 95th percentile of those sums
(customer_marts.clv.uncertainty, the same seeded draws as the customers' intervals).

One row per grouping x group; clv_by_cohort and clv_by_segment join it. This model only
moves data between DuckDB and customer_marts.
"""

import numpy as np
import pyarrow as pa

from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv.models import INPUT_COLUMNS, INPUT_ORDER

SCHEMA = pa.schema(
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


def model(dbt, session):
    dbt.config(materialized="table")
    margin = float(dbt.config.meta_get("margin"))
    annual_discount_rate = float(dbt.config.meta_get("annual_discount_rate"))
    draws = int(dbt.config.meta_get("clv_interval_draws"))
    rows = dbt.ref("int_btyd_parameters_fitted").to_dicts()
    inputs = dbt.ref("int_customers_summarised_for_clv").set_alias("inputs")
    customers = dbt.ref("dim_customers").set_alias("customers")
    # In INPUT_ORDER, as the fit reads them: each group's spend is summed in that order.
    table = (
        inputs.join(customers, "inputs.customer_id = customers.customer_id")
        .select(
            "inputs.customer_id as customer_id, "
            + ", ".join(f"inputs.{name} as {name}" for name in INPUT_COLUMNS)
            + ", customers.cohort_month, customers.lifecycle_stage, customers.is_high_value"
        )
        .order(INPUT_ORDER)
        .to_arrow_table()
    )
    x, t_x, T, m = (table.column(name).to_numpy().astype(float) for name in INPUT_COLUMNS)
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
    return pa.Table.from_pylist(out, schema=SCHEMA)
