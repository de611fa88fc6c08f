"""The behaviour marts (lifecycle, RFM, segments, KPIs, period retention) on hand-made
order histories. Every expected value is worked out by hand in the comments (dates
counted with the as-of date 2025-03-31, churn window 180 days, at risk from 90 days,
new for 30 days), not copied from the output."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from customer_marts.ingest.run import ingest
from customer_marts.runs import pipeline
from customer_marts.transform.runner import build
from tests.conftest import dbt_tests_left_out, make_settings, write_csv

pytestmark = pytest.mark.dbt_build  # a whole dbt build: make test only
HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]
AS_OF = date(2025, 3, 31)

LIFECYCLE_ORDERS = [
    # last order 2024-10-02: 180 days before the as-of date -> churned (>= 180);
    # churned_at = last order + 180 days = 2025-03-31 12:00
    ["ce1", "churn_edge", "2024-06-01T12:00:00Z", "100", "completed"],
    ["ce2", "churn_edge", "2024-10-02T12:00:00Z", "50", "completed"],
    # last order 2024-10-03: 179 days -> still active, at risk (>= 90)
    ["re1", "risk_edge", "2024-10-03T12:00:00Z", "40", "completed"],
    # last order 2024-12-31: 90 days -> at risk
    ["r91", "risk_90", "2024-12-31T12:00:00Z", "30", "completed"],
    # last order 2025-01-01: 89 days -> active
    ["a1", "active_89", "2024-05-01T12:00:00Z", "20", "completed"],
    ["a2", "active_89", "2025-01-01T12:00:00Z", "25", "completed"],
    # first order 2025-03-02: 29 days -> new (< 30)
    ["n1", "new_29", "2025-03-02T12:00:00Z", "500", "completed"],
    # first order 2025-03-01: 30 days -> no longer new: active
    ["o1", "old_30", "2025-03-01T12:00:00Z", "10", "completed"],
    # 811 days since its only order; churned_at = 2023-01-10 + 180 days = 2023-07-09
    ["b1", "big_churned", "2023-01-10T12:00:00Z", "2000", "completed"],
    # only a cancelled order: not a customer
    ["x1", "cancelled_only", "2025-03-10T12:00:00Z", "99", "cancelled"],
    # 03:30 UTC on 1 March is 22:30 on 28 February in New York
    ["tz1", "tz", "2025-03-01T03:30:00Z", "7", "completed"],
]


# 23:00 on 28 February in New York (UTC-5) is 04:00 on 1 March in UTC.
RESPONSES = [["s1", "2025-02-28T23:00:00-05:00", "new_29", "9"]]


def _build(root, extra_vars=None):
    settings = make_settings(root)
    write_csv(settings.landing_dir / "orders/orders.csv", HEADER, LIFECYCLE_ORDERS)
    write_csv(
        settings.landing_dir / "surveys/responses.csv",
        ["response_id", "responded_at", "customer_id", "nps_score"],
        RESPONSES,
    )
    ingest(settings.build_db, settings.landing_dir, "test")
    build(settings, AS_OF, extra_vars=extra_vars)
    return duckdb.connect(str(settings.build_db), read_only=True)


@pytest.fixture(scope="module")
def utc(tmp_path_factory):
    con = _build(tmp_path_factory.mktemp("lifecycle_utc"))
    yield con
    con.close()


@pytest.fixture(scope="module")
def new_york(tmp_path_factory):
    # the same rows as `utc`, whose build runs dbt's tests on them: here only the models
    with dbt_tests_left_out():
        con = _build(
            tmp_path_factory.mktemp("lifecycle_ny"), {"reporting_timezone": "America/New_York"}
        )
    yield con
    con.close()


def test_lifecycle_stages_and_churn_dates(utc):
    rows = utc.execute(
        "select customer_id, days_since_last_order, lifecycle_stage, churned_at::varchar "
        "from marts.dim_customers order by customer_id"
    ).fetchall()
    assert rows == [
        ("active_89", 89, "active", None),
        ("big_churned", 811, "churned", "2023-07-09 12:00:00"),
        ("churn_edge", 180, "churned", "2025-03-31 12:00:00"),
        ("new_29", 29, "new", None),
        ("old_30", 30, "active", None),
        ("risk_90", 90, "at_risk", None),
        ("risk_edge", 179, "at_risk", None),
        ("tz", 30, "active", None),
    ]


def test_high_value_is_the_top_fifth_of_customers_who_have_not_churned(utc):
    # not churned: new_29 500, active_89 45, risk_edge 40, risk_90 30, old_30 10, tz 7;
    # percent rank (rank - 1) / 5 < 0.2 holds for new_29 only. big_churned spent the
    # most but has churned.
    flagged = utc.execute(
        "select customer_id from marts.dim_customers where is_high_value"
    ).fetchall()
    assert flagged == [("new_29",)]


def test_rfm_scores(utc):
    # 8 customers, score = 1 + floor(5 x (rank - 1) / 7), ties share the lowest rank.
    # recency (most days first): big 811 r1 ->1, churn_edge 180 r2 ->1, risk_edge 179
    #   r3 ->2, risk_90 90 r4 ->3, active_89 89 r5 ->3, old_30 & tz 30 r6 ->4, new_29 r8 ->5
    # frequency: six customers with 1 order r1 ->1; churn_edge, active_89 (2) r7 ->5
    # monetary: tz 7 ->1, old_30 10 ->1, risk_90 30 ->2, risk_edge 40 ->3, active_89 45
    #   ->3, churn_edge 150 ->4, new_29 500 ->5, big 2000 ->5
    segments = dict(
        utc.execute("select customer_id, rfm_segment from marts.dim_customers").fetchall()
    )
    assert segments == {
        "big_churned": "115",
        "churn_edge": "154",
        "risk_edge": "213",
        "risk_90": "312",
        "active_89": "353",
        "old_30": "411",
        "tz": "411",
        "new_29": "515",
    }


def test_segment_summary_adds_up(utc):
    assert utc.execute(
        "select lifecycle_stage, is_high_value, customers, share_of_customers_pct, "
        "historic_revenue::double from marts.segment_summary order by 1, 2"
    ).fetchall() == [
        ("active", False, 3, 37.5, 45.0 + 10 + 7),  # active_89, old_30, tz
        ("at_risk", False, 2, 25.0, 70.0),  # risk_edge, risk_90
        ("churned", False, 2, 25.0, 2150.0),  # churn_edge, big_churned
        ("new", True, 1, 12.5, 500.0),
    ]


def test_monthly_kpis(utc):
    row = utc.execute(
        "select purchasing_customers, new_customers, orders, revenue::double, aov, "
        "purchase_frequency, referral_rate_pct, repeat_purchase_rate_pct, is_complete "
        "from marts.kpis_by_period where grain = 'month' and period_start = '2025-03-01'"
    ).fetchone()
    # March 2025: old_30 (10), tz (7, 03:30 UTC on 1 March), new_29 (500); the
    # cancelled order does not count. No channel in the export -> referral rate empty.
    # Repeat rate to date: churn_edge and active_89 of 8 customers have 2 orders.
    # AOV 517 / 3 = 172.333... is money: published in cents.
    assert row == (3, 3, 3, 517.0, Decimal("172.33"), 1.0, None, 25.0, True)


def test_reporting_timezone_moves_an_order_near_midnight(utc, new_york):
    def order(con):
        return con.execute(
            "select order_date::varchar, cohort_month::varchar from marts.fct_orders "
            "where order_id = 'tz1'"
        ).fetchone()

    assert order(utc) == ("2025-03-01", "2025-03-01")
    assert order(new_york) == ("2025-02-28", "2025-02-01")
    revenue = "select revenue::double from marts.kpis_by_period where grain = 'month' and period_start = ?"
    assert new_york.execute(revenue, ["2025-02-01"]).fetchone() == (7.0,)
    assert new_york.execute(revenue, ["2025-03-01"]).fetchone() == (510.0,)
    assert utc.execute(revenue, ["2025-02-01"]).fetchone() == (0.0,)
    # a survey answer is placed the same way: late on 28 February in New York is
    # March in UTC, February in New York's reporting time zone
    response = "select response_date::varchar from marts.fct_survey_responses"
    assert utc.execute(response).fetchone() == ("2025-03-01",)
    assert new_york.execute(response).fetchone() == ("2025-02-28",)
    nps_month = (
        "select period_start::varchar, responses from marts.nps_by_period "
        "where grain = 'month' and dimension = 'overall'"
    )
    assert utc.execute(nps_month).fetchall() == [("2025-03-01", 1)]
    assert new_york.execute(nps_month).fetchall() == [("2025-02-01", 1)]
    # stored timestamps stay in UTC whatever the reporting time zone
    assert new_york.execute(
        "select ordered_at::varchar from marts.fct_orders where order_id = 'tz1'"
    ).fetchone() == ("2025-03-01 03:30:00",)


# ---------------------------------------------------------------- worked examples


def _example_orders(year: int, lost: int, kept: int, new: int, prefix: str) -> list[list]:
    """A retention worked example for March of `year`, as order histories.

    `lost` customers last bought on 15 September of the year before: active from the
    16th for 180 days, so on 1 March but not on 1 April. `kept` customers bought on
    10 February: active on both days. `new` customers first bought on 20 March.
    """
    rows = []
    for group, count, day in (
        ("lost", lost, f"{year - 1}-09-15"),
        ("kept", kept, f"{year}-02-10"),
        ("new", new, f"{year}-03-20"),
    ):
        for i in range(count):
            customer = f"{prefix}_{group}_{i}"
            rows.append([f"{customer}_o", customer, f"{day}T12:00:00Z", "20", "completed"])
    return rows


@pytest.fixture(scope="module")
def published_examples(tmp_path_factory):
    """Both worked examples of docs/metrics.md through the whole pipeline: landing files ->
    ingest -> GE raw -> dbt build -> GE marts -> publish. They do not overlap: the 2024 example's
    customers are inactive long before September 2024."""
    # The examples' last orders are days before the as-of date: not a nightly feed.
    settings = replace(make_settings(tmp_path_factory.mktemp("worked_examples")), freshness_days=30)
    write_csv(
        settings.landing_dir / "orders/orders.csv",
        HEADER,
        _example_orders(2024, lost=1, kept=19, new=5, prefix="a")
        + _example_orders(2025, lost=13, kept=31, new=12, prefix="b"),
    )
    write_csv(
        settings.landing_dir / "surveys/responses.csv",
        ["response_id", "responded_at", "customer_id", "nps_score"],
        [["s1", "2025-03-21T09:00:00Z", "b_new_0", "9"]],
    )
    with dbt_tests_left_out():  # the subject is the published values, not dbt's tests
        pipeline.run_all(settings, AS_OF)
    con = duckdb.connect(str(settings.published_db), read_only=True)
    yield con
    con.close()


@pytest.mark.slow
def test_worked_examples_hold_in_the_published_marts(published_examples):
    query = (
        "select customers_start, new_customers, lost_customers, customers_end, "
        "round(retention_rate_pct, 2), round(churn_rate_pct, 2) "
        "from marts.retention_by_period "
        "where grain = 'month' and dimension = 'overall' and period_start = ?"
    )
    # S = 20, 5 new, 1 lost -> E = 24, retention (24 - 5) / 20 = 95 %, churn 5 %
    assert published_examples.execute(query, ["2024-03-01"]).fetchone() == (
        20,
        5,
        1,
        24,
        95.0,
        5.0,
    )
    # S = 44, 12 new, 13 lost -> E = 43, retention 31 / 44 = 70.45 %, churn 29.55 %
    assert published_examples.execute(query, ["2025-03-01"]).fetchone() == (
        44,
        12,
        13,
        43,
        70.45,
        29.55,
    )
    # kpis_by_period carries the same rates
    assert published_examples.execute(
        "select round(retention_rate_pct, 2), round(churn_rate_pct, 2) from marts.kpis_by_period "
        "where grain = 'month' and period_start = '2025-03-01'"
    ).fetchone() == (70.45, 29.55)
