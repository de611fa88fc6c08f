"""The CLV marts through the pipeline: landing CSV files -> ingest -> `dbt build`
(the second run: the whole pipeline, gate and publish included).

The demo orders plus hand-made customers are built twice for the same as-of date:
run 1 with the default vars, run 2 with `clv_lifetime_years` = 5 (the seed's formula
example) and `clv_max_iterations` = 1 (a fit that cannot converge). Expected values
are worked out by hand in the comments or computed by a second method: lifetimes
0.11.3 (summaries, fits and predictions written independently of ours) and pandas
straight from the landing files.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from customer_marts.ingest import ingest
from customer_marts.pipeline import run_all
from customer_marts.quality import run_suites
from customer_marts.transform import build
from tests.conftest import make_settings, write_csv

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

AS_OF = date(2025, 12, 31)
HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]
SEED_START = date(2025, 1, 10)
HAND_MADE = [
    # The seed's example: 20 purchases of 500 in the year to the as-of date, every 18
    # days from 2025-01-10 to 2025-12-18 (= 2025-01-10 + 19 x 18 days).
    *[
        [f"s{k}", "seed_20x500", f"{SEED_START + timedelta(days=18 * k)}T12:00:00Z", "500"]
        + ["completed"]
        for k in range(20)
    ],
    # Two orders on one day are one purchase day; a cancelled order is no purchase.
    ["m1", "same_day", "2025-03-01T10:00:00Z", "100", "completed"],
    ["m2", "same_day", "2025-03-01T15:00:00Z", "50", "completed"],
    ["m3", "same_day", "2025-06-01T09:00:00Z", "80", "completed"],
    ["m4", "same_day", "2025-07-01T09:00:00Z", "999", "cancelled"],
    # after the as-of date: ignored
    ["m5", "same_day", "2026-01-02T09:00:00Z", "70", "completed"],
]
PREDICTIONS = "customer_id, p_alive, expected_purchases_365d, clv_12m"


def snapshot(con: duckdb.DuckDBPyConnection, with_inputs: bool = True) -> dict:
    """The CLV marts (and, from the build database, the BTYD inputs)."""
    inputs = "select * from intermediate.int_customers_summarised_for_clv order by customer_id"
    return {
        "clv": con.execute("select * from marts.customer_clv order by customer_id").df(),
        "fit": con.execute("select * from marts.clv_model_fit order by all").df(),
        "inputs": con.execute(inputs).df() if with_inputs else None,
        "year_churn": con.execute(
            "select churn_rate_pct from marts.retention_by_period where grain = 'year' "
            "and is_complete and churn_rate_pct is not null order by period_start desc limit 1"
        ).fetchone()[0],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_demo):
    settings = make_settings(tmp_path_factory.mktemp("clv"))
    shutil.copytree(small_demo, settings.landing_dir, dirs_exist_ok=True)
    write_csv(settings.landing_dir / "orders/hand_made.csv", HEADER, HAND_MADE)
    ingest(settings.build_db, settings.landing_dir, "test")
    build(settings, AS_OF)
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        first = snapshot(con)
    # the second run goes through the gate to publish: the published marts are read
    run_all(settings, AS_OF, extra_vars={"clv_lifetime_years": 5, "clv_max_iterations": 1})
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        second = snapshot(con, with_inputs=False)
    return settings, first, second


def customer(frame: pd.DataFrame, customer_id: str) -> pd.Series:
    return frame.set_index("customer_id").loc[customer_id]


def landed_completed_orders(landing) -> pd.DataFrame:
    orders = pd.concat(pd.read_csv(path) for path in sorted((landing / "orders").glob("*.csv")))
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True).dt.tz_localize(None)
    return orders[
        (orders["status"] == "completed")
        & (orders["ordered_at"] < pd.Timestamp(AS_OF + timedelta(days=1)))
    ]


def test_btyd_inputs_equal_lifetimes_summary_of_the_landing_files(runs):
    settings, first, _ = runs
    expected = summary_data_from_transaction_data(
        landed_completed_orders(settings.landing_dir),
        "customer_id",
        "ordered_at",
        monetary_value_col="amount",
        observation_period_end=pd.Timestamp(AS_OF),
        freq="D",
    ).sort_index()
    actual = first["inputs"].set_index("customer_id").sort_index()
    assert list(actual.index) == list(expected.index)
    for ours, theirs in [
        ("frequency", "frequency"),
        ("recency_days", "recency"),
        ("t_days", "T"),
    ]:
        np.testing.assert_array_equal(actual[ours].to_numpy(float), expected[theirs].to_numpy())
    np.testing.assert_allclose(
        actual["monetary_value"].to_numpy(float), expected["monetary_value"], rtol=1e-12
    )


def test_hand_made_btyd_inputs(runs):
    _, first, _ = runs
    same_day = customer(first["inputs"], "same_day")
    # purchase days 2025-03-01 (100 + 50) and 2025-06-01 (80): x = 1, t_x = 92 days,
    # T = 2025-03-01 .. 2025-12-31 = 305 days, monetary = the repeat day's 80
    assert (same_day.frequency, same_day.recency_days, same_day.t_days) == (1, 92, 305)
    assert float(same_day.monetary_value) == 80.0
    assert (same_day.completed_orders, float(same_day.historic_revenue)) == (3, 230.0)
    seed = customer(first["inputs"], "seed_20x500")
    # 20 purchase days: x = 19, t_x = 19 x 18 = 342, T = 2025-01-10 .. 2025-12-31 = 355
    assert (seed.frequency, seed.recency_days, seed.t_days) == (19, 342, 355)
    assert float(seed.monetary_value) == 500.0


def test_seed_formula_example_through_the_pipeline(runs):
    _, _, second = runs
    seed = customer(second["clv"], "seed_20x500")
    # 20 purchases a year x 500 x 5 years (clv_lifetime_years) = 50 000
    assert seed.purchases_per_year == 20
    assert seed.expected_lifetime_years == 5.0
    assert seed.clv_simple == pytest.approx(50_000.0, rel=1e-12)
    # annual value 20 x 500 = 10 000; the rule of 20: 200 000; all of it is history
    assert float(seed.annual_value) == 10_000.0
    assert float(seed.clv_rule_of_20) == 200_000.0
    assert float(seed.historic_clv) == 10_000.0


def test_default_lifetime_is_one_over_the_latest_complete_years_churn(runs):
    _, first, _ = runs
    churn_pct = first["year_churn"]  # 2025, from retention_by_period
    lifetime = min(10.0, 100.0 / churn_pct)
    assert first["clv"]["expected_lifetime_years"].unique().tolist() == [
        pytest.approx(lifetime, rel=1e-12)
    ]
    seed = customer(first["clv"], "seed_20x500")
    assert seed.clv_simple == pytest.approx(20 * 500 * lifetime, rel=1e-12)
    # a customer without a purchase in the last 365 days has no simple CLV left
    idle = first["clv"][first["clv"]["purchases_per_year"] == 0]
    assert len(idle) and (idle["clv_simple"] == 0).all() and (idle["annual_value"] == 0).all()


def test_published_fit_matches_lifetimes_on_the_published_inputs(runs):
    _, first, _ = runs
    fit = first["fit"]
    assert len(fit) == 7 and fit["converged"].all() and fit["is_used_for_predictions"].all()
    assert set(fit["time_unit"]) == {"day"} and set(fit["as_of_date"].astype(str)) == {"2025-12-31"}
    inputs = first["inputs"]
    x, t_x, T, m = (
        inputs[c].to_numpy(float) for c in ("frequency", "recency_days", "t_days", "monetary_value")
    )
    params = fit.set_index("parameter")["value"]
    theirs = BetaGeoFitter().fit(x, t_x, T)
    np.testing.assert_allclose(params[["r", "alpha", "a", "b"]], theirs.params_, rtol=1e-3)
    repeat = x > 0
    spend = GammaGammaFitter().fit(x[repeat], m[repeat])
    np.testing.assert_allclose(params[["p", "q", "gamma"]], spend.params_, rtol=1e-3)
    assert fit.set_index("model")["n_customers"].to_dict() == {
        "bg_nbd": len(x),
        "gamma_gamma": int(repeat.sum()),
    }


def test_published_predictions_equal_lifetimes_formulas_with_the_published_parameters(runs):
    _, first, _ = runs
    params = first["fit"].set_index("parameter")["value"]
    bg = BetaGeoFitter()
    bg.params_ = params[["r", "alpha", "a", "b"]]
    spend = GammaGammaFitter()
    spend.params_ = params[["p", "q", "gamma"]].rename({"gamma": "v"})
    clv = first["clv"]
    x, t_x, T, m = (
        clv[c].to_numpy(float) for c in ("frequency", "recency_days", "t_days", "monetary_value")
    )
    np.testing.assert_allclose(clv["p_alive"], bg.conditional_probability_alive(x, t_x, T))
    for days in (30, 90, 365):
        np.testing.assert_allclose(
            clv[f"expected_purchases_{days}d"],
            bg.conditional_expected_number_of_purchases_up_to_time(days, x, t_x, T),
            rtol=1e-6,
        )
    aov = np.asarray(spend.conditional_expected_average_profit(x, m))
    np.testing.assert_allclose(clv["expected_avg_order_value"], aov, rtol=1e-9)
    # clv_12m: months of 365/12 days, discounted by (1 + 0.10 / 12)^m, margin 1.0
    expected, previous = np.zeros(len(x)), np.zeros(len(x))
    for month in range(1, 13):
        cumulative = bg.conditional_expected_number_of_purchases_up_to_time(
            month * 365 / 12, x, t_x, T
        )
        expected += (cumulative - previous) / (1 + 0.10 / 12) ** month
        previous = cumulative
    np.testing.assert_allclose(clv["clv_12m"], expected * aov, rtol=1e-6)
    assert (clv["clv_12m"] >= 0).all() and clv["p_alive"].between(0, 1).all()
    assert clv["clv_percentile"].max() == 100.0 and clv["clv_percentile"].min() == 0.0


def test_non_convergence_keeps_the_previous_converged_parameters(runs):
    _, first, second = runs
    fit = second["fit"]
    # this run's two non-converged fits (not used) + run 1's converged rows (used)
    assert len(fit) == 14
    failed = fit[~fit["converged"]]
    kept = fit[fit["converged"]]
    assert len(failed) == 7 and not failed["is_used_for_predictions"].any()
    assert kept["is_used_for_predictions"].all()
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), first["fit"])
    assert (failed["fitted_at"] > kept["fitted_at"].max()).all()
    # same data, same parameters: the same predictions
    pd.testing.assert_frame_equal(
        second["clv"][PREDICTIONS.split(", ")], first["clv"][PREDICTIONS.split(", ")]
    )


def test_quality_gate_warns_on_non_convergence_and_passes_the_values(runs):
    settings, _, _ = runs
    results = [
        result
        for result in run_suites(settings, "marts", AS_OF, "test")
        if result.suite in ("marts.customer_clv", "marts.clv_model_fit")
    ]
    statuses = {(result.suite, result.check): result.status for result in results}
    assert statuses.pop(
        ("marts.clv_model_fit", "expect_column_values_to_be_in_set(converged)")
    ) == ("warned")
    assert statuses and set(statuses.values()) == {"passed"}, statuses
