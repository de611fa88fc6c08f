"""The customer-analysis marts of one real pipeline run on the small demo, recomputed
from the landing files with pandas, independently of the SQL: monthly retention by
acquisition channel (brute force: the set of active customers at every month boundary,
as in test_nightly_dag) and the CAC table (spend per channel and month from the
marketing-spend files / new customers per channel and month from the orders files).
Expected values come from pandas, never from the marts.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from tests.dbt.test_retention_dimensions import COUNTS
from tests.e2e.test_nightly_dag import AS_OF, completed_orders, pandas_monthly_retention

pytestmark = pytest.mark.slow

WINDOW_DAYS = 180  # the churn window (var churn_window_days, docs/metrics.md)


def acquisition(orders: pd.DataFrame) -> pd.DataFrame:
    """Per customer: the first completed order's day and channel (earliest, ties to the
    lowest order id)."""
    first = orders.sort_values(["customer_id", "at", "order_id"]).groupby("customer_id").head(1)
    return first.set_index("customer_id")[["day", "channel"]]


def pandas_retention_by_channel(landing) -> pd.DataFrame:
    """Monthly retention per acquisition channel (customers without one: (unknown))."""
    return pandas_monthly_retention(
        landing,
        WINDOW_DAYS,
        segment_of=lambda orders: acquisition(orders)["channel"].fillna("(unknown)"),
    )


def pandas_monthly_cac(landing) -> pd.DataFrame:
    spend = pd.concat(
        pd.read_csv(path) for path in sorted((landing / "marketing_spend").glob("*.csv"))
    )
    assert set(spend["currency"]) == {"USD"}
    spend["period_start"] = pd.to_datetime(spend["spent_on"]).dt.to_period("M").dt.start_time
    spend = spend[pd.to_datetime(spend["spent_on"]) <= pd.Timestamp(AS_OF)]
    spent = spend.groupby(["period_start", "channel"])["amount"].sum()
    customers = acquisition(completed_orders(landing))
    customers["period_start"] = customers["day"].dt.to_period("M").dt.start_time
    customers["channel"] = customers["channel"].fillna("(unknown)")
    acquired = customers.groupby(["period_start", "channel"]).size()
    table = pd.concat([spent.rename("spend"), acquired.rename("new_customers")], axis=1)
    table["new_customers"] = table["new_customers"].fillna(0).astype(int)
    table["spend"] = table["spend"].fillna(0.0)
    table["cac"] = table["spend"] / table["new_customers"].where(table["new_customers"] > 0)
    # customers without a channel: no spend can be theirs, so no CAC (docs: cac)
    table.loc[table.index.get_level_values("channel") == "(unknown)", "cac"] = None
    table = table.reset_index()
    # spend is known in the months the export covers (is_spend_known); others are left out
    covered = table["period_start"].between(
        spend["period_start"].min(), spend["period_start"].max()
    )
    table = table[covered].copy()
    table["period_start"] = table["period_start"].dt.date
    return table


@pytest.fixture(scope="module")
def published(published_demo):
    with duckdb.connect(str(published_demo / "published.duckdb"), read_only=True) as con:
        retention = con.sql(
            "select * exclude (dimension) from marts.retention_by_period "
            "where grain = 'month' and dimension = 'acquisition_channel'"
        ).df()
        cac = con.sql("select * from marts.cac_by_channel where grain = 'month'").df()
    for frame in (retention, cac):
        frame["period_start"] = frame["period_start"].dt.date
    return retention, cac


def test_retention_by_acquisition_channel_matches_a_brute_force_pandas_computation(
    published, small_demo
):
    retention, _ = published
    expected = pandas_retention_by_channel(small_demo)
    # a channel-month the mart has no row for must have nobody in it
    merged = expected.merge(
        retention, on=["period_start", "dimension_value"], how="outer", suffixes=("", "_mart")
    )
    missing = merged[merged["customers_start_mart"].isna()]
    assert (missing[list(COUNTS)].sum(axis=1) == 0).all(), missing[
        ["period_start", "dimension_value"]
    ]
    assert merged["customers_start"].notna().all(), "the mart has a channel-month pandas has not"
    both = merged[merged["customers_start_mart"].notna()]
    assert len(both) > 50 and both["dimension_value"].nunique() >= 5
    for column in COUNTS:
        assert (both[column] == both[f"{column}_mart"].astype(int)).all(), column
    rates = both[both["retention_rate_pct"].notna()]
    assert (
        rates["retention_rate_pct"] - rates["retention_rate_pct_mart"].astype(float)
    ).abs().max() < 0.01
    assert both.loc[both["retention_rate_pct"].isna(), "retention_rate_pct_mart"].isna().all()


def test_referral_customers_stay_longer_than_paid_social_ones(published):
    # the demo is shaped so (design): a fact of the data, read from the mart's own counts
    retention, _ = published
    totals = retention.groupby("dimension_value")[["customers_start", "retained_customers"]].sum()
    rate = totals["retained_customers"] / totals["customers_start"]
    assert rate["referral"] > rate["social"]


def test_cac_table_matches_spend_and_new_customers_from_the_landing_files(published, small_demo):
    _, cac = published
    expected = pandas_monthly_cac(small_demo)
    known = cac[cac["is_spend_known"]]
    merged = expected.merge(
        known, on=["period_start", "channel"], how="outer", suffixes=("", "_mart"), indicator=True
    )
    assert (merged["_merge"] == "both").all(), merged.loc[
        merged["_merge"] != "both", ["period_start", "channel", "_merge"]
    ]
    assert (merged["new_customers"] == merged["new_customers_mart"]).all()
    assert (merged["spend"] - merged["spend_mart"].astype(float)).abs().max() < 0.005
    with_cac = merged[merged["cac"].notna()]
    # the mart rounds to the cent: at most half a cent off (and float noise)
    assert (with_cac["cac"] - with_cac["cac_mart"].astype(float)).abs().max() <= 0.005 + 1e-9
    assert merged.loc[merged["cac"].isna(), "cac_mart"].isna().all()
    # shown, not dropped: a channel with spend and no customer in some month
    assert ((merged["spend"] > 0) & (merged["new_customers"] == 0)).any()
