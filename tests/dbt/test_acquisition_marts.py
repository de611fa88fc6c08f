"""The acquisition marts (CAC by channel, LTV:CAC and payback by channel cohort, value lost
to churn) on a hand-made landing folder with a marketing-spend export: a real ingest and
`dbt build`. Every expected value is worked out by hand in the comments (as of
2025-12-31, churn window 180 days, margin 1.0), not copied from the output."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.dbt.test_semantic_layer import analyst, mf_query, number  # noqa: F401 (a fixture)
from tests.dbt.warehouse import built_marts

pytestmark = pytest.mark.dbt_build  # a whole dbt build: make test only

AS_OF = date(2025, 12, 31)
MARTS = "+ltv_cac_by_channel +payback_by_channel +churn_value_by_period +retention_by_period"
ORDERS = [
    # P1, P2: paid search in January; P1 buys again in March (the channel of a later
    # order does not move the acquisition)
    ["p1a", "P1", "2025-01-06T10:00:00Z", "100", "completed", "paid_search"],
    ["p1b", "P1", "2025-03-10T10:00:00Z", "200", "completed", "email"],
    ["p2a", "P2", "2025-01-25T10:00:00Z", "40", "completed", "paid_search"],
    # P3: a cancelled first order in January; acquired by paid search in February
    ["p3x", "P3", "2025-01-28T10:00:00Z", "999", "cancelled", "paid_search"],
    ["p3a", "P3", "2025-02-10T10:00:00Z", "30", "completed", "paid_search"],
    # O1: organic in January, no spend; N1: no channel, February
    ["o1a", "O1", "2025-01-15T10:00:00Z", "50", "completed", "organic"],
    ["n1a", "N1", "2025-02-01T10:00:00Z", "20", "completed", ""],
]
SPEND = [
    # two campaigns on one day both count
    ["2025-01-05", "paid_search", "brand", "100"],
    ["2025-01-05", "paid_search", "generic", "50"],
    ["2025-01-20", "paid_search", "generic", "150"],
    # display buys nobody
    ["2025-01-10", "display", "", "80"],
    ["2025-02-03", "paid_search", "generic", "60"],
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    files = {
        "orders/orders.csv": (
            ["order_id", "customer_id", "ordered_at", "amount", "status", "channel"],
            ORDERS,
        ),
        "marketing_spend/spend.csv": (["spent_on", "channel", "campaign", "amount"], SPEND),
    }
    # a fixed expected lifetime: no complete year has customers at its start here
    with built_marts(
        tmp_path_factory.mktemp("acquisition_marts"),
        AS_OF,
        files,
        select=MARTS,
        extra_vars={"clv_lifetime_years": 2},
    ) as con:
        yield con


def test_cac_by_channel_and_period(built):
    rows = built.execute(
        "select grain, period_start::varchar, channel, spend, new_customers, cac, "
        "is_spend_known from marts.cac_by_channel where grain in ('month', 'quarter') "
        "order by 1, 2, 3"
    ).fetchall()
    assert rows == [
        # January: paid search 100 + 50 + 150 = 300 for P1, P2 -> 150; display 80 for
        # nobody -> NULL; organic O1 without spend -> 0
        ("month", "2025-01-01", "display", Decimal("80.00"), 0, None, True),
        ("month", "2025-01-01", "organic", Decimal("0.00"), 1, Decimal("0.00"), True),
        ("month", "2025-01-01", "paid_search", Decimal("300.00"), 2, Decimal("150.00"), True),
        # February: N1 has no channel -> (unknown), spend 0, CAC NULL; paid search 60 / P3
        ("month", "2025-02-01", "(unknown)", Decimal("0.00"), 1, None, True),
        ("month", "2025-02-01", "paid_search", Decimal("60.00"), 1, Decimal("60.00"), True),
        # Q1: paid search 360 / 3 = 120
        ("quarter", "2025-01-01", "(unknown)", Decimal("0.00"), 1, None, True),
        ("quarter", "2025-01-01", "display", Decimal("80.00"), 0, None, True),
        ("quarter", "2025-01-01", "organic", Decimal("0.00"), 1, Decimal("0.00"), True),
        ("quarter", "2025-01-01", "paid_search", Decimal("360.00"), 3, Decimal("120.00"), True),
    ]
    # every customer is acquired once per grain: 5 customers
    assert built.execute(
        "select grain, sum(new_customers) from marts.cac_by_channel group by 1 order by 1"
    ).fetchall() == [("month", 5), ("quarter", 5), ("year", 5)]


def test_ltv_cac_and_payback_by_channel_cohort(built):
    rows = built.execute(
        "select channel, cohort_month::varchar, new_customers, cac, avg_historic_clv, "
        "historic_ltv_cac_ratio, payback_months from marts.ltv_cac_by_channel order by 2, 1"
    ).fetchall()
    assert rows == [
        ("display", "2025-01-01", 0, None, None, None, None),
        # O1: CAC 0, paid back in its first month; no ratio
        ("organic", "2025-01-01", 1, Decimal("0.00"), Decimal("50.00"), None, 0),
        # P1 + P2: 100 + 200 + 40 = 340 to date, 170 per customer / CAC 150 = 1.133333;
        # cumulative margin January 140 < 300 spent, February 140, March 340 >= 300 -> 2
        ("paid_search", "2025-01-01", 2, Decimal("150.00"), Decimal("170.00"), 1.133333, 2),
        # N1: no channel, no CAC
        ("(unknown)", "2025-02-01", 1, None, Decimal("20.00"), None, None),
        # P3: 30 / 60 = 0.5: not paid back
        ("paid_search", "2025-02-01", 1, Decimal("60.00"), Decimal("30.00"), 0.5, None),
    ]


def test_payback_by_channel_pools_its_cohorts(built):
    rows = built.execute(
        "select channel, cohorts, new_customers, spend, cac, payback_months "
        "from marts.payback_by_channel order by 1"
    ).fetchall()
    assert rows == [
        # organic: no spend, paid back at once
        ("organic", 1, 1, Decimal("0.00"), Decimal("0.00"), 0),
        # paid search, January (P1, P2; 300) and February (P3; 60) cohorts: month 0
        # 140 + 30 = 170 < 360; month 1 the same; month 2 170 + 200 = 370 >= 360 -> 2;
        # CAC 360 / 3 = 120. display (no customer) and (unknown) (no spend) have no CAC.
        ("paid_search", 2, 3, Decimal("360.00"), Decimal("120.00"), 2),
    ]


def test_value_lost_to_churn_by_period(built):
    rows = built.execute(
        "select grain, period_start::varchar, lost_customers, lost_annual_value, lost_clv "
        "from marts.churn_value_by_period where lost_customers > 0 order by 1, 2"
    ).fetchall()
    assert rows == [
        # last purchases + 180 days: O1 15 Jan -> 14 Jul, P2 25 Jan -> 24 Jul, N1 1 Feb ->
        # 31 Jul (July: 50 + 40 + 20 = 110 a year, x 2 years = 220); P3 10 Feb -> 9 Aug
        # (30 -> 60); P1 10 Mar -> 6 Sep (100 + 200 in the year to 10 March -> 600)
        ("month", "2025-07-01", 3, Decimal("110.00"), Decimal("220.00")),
        ("month", "2025-08-01", 1, Decimal("30.00"), Decimal("60.00")),
        ("month", "2025-09-01", 1, Decimal("300.00"), Decimal("600.00")),
        # Q3: all five; the year 2025 loses nobody: nobody was active on 1 January
        ("quarter", "2025-07-01", 5, Decimal("440.00"), Decimal("880.00")),
    ]
    # The same counts as retention_by_period's, period by period (a second method), is
    # the data test churn_value_lost_customers_equal_retention: it ran in the build above.


def test_semantic_layer_cac_and_ltv_cac_equal_the_marts(analyst):  # noqa: F811 (the fixture)
    """`mf query` on the small demo's published file: cac by channel and quarter is the
    quarter rows' cac of cac_by_channel and their monthly spend over their monthly new
    customers (a second method); ltv_cac_historic by channel cohort is the mart's ratio."""
    *_, con = analyst
    rows = mf_query(
        analyst, "--metrics", "cac", "--group-by", "metric_time__quarter,channel_period__channel"
    )
    metric = {
        (row["metric_time__quarter"][:10], row["channel_period__channel"]): number(row["cac"])
        for row in rows
    }
    quarters = con.execute(
        "select period_start::varchar, channel, cac::double from marts.cac_by_channel "
        "where grain = 'quarter' and channel != '(unknown)' and is_spend_known"
    ).fetchall()
    assert quarters and any(cac for *_, cac in quarters)
    months = dict(
        con.execute(
            "select (date_trunc('quarter', period_start)::date::varchar, channel), "
            "sum(spend) / nullif(sum(new_customers), 0) from marts.cac_by_channel "
            "where grain = 'month' and channel != '(unknown)' and is_spend_known group by all"
        ).fetchall()
    )
    for quarter, channel, cac in quarters:
        got = metric[(quarter, channel)]
        if cac is None:
            assert got is None, (quarter, channel)
        else:
            assert round(got, 2) == pytest.approx(cac, abs=1e-9), (quarter, channel)
            assert got == pytest.approx(float(months[(quarter, channel)]), abs=1e-6)
    rows = mf_query(
        analyst,
        "--metrics",
        "ltv_cac_historic",
        "--group-by",
        "metric_time__month,channel_cohort__channel",
    )
    metric = {
        (row["metric_time__month"][:10], row["channel_cohort__channel"]): number(
            row["ltv_cac_historic"]
        )
        for row in rows
    }
    cohorts = con.execute(
        "select cohort_month::varchar, channel, historic_ltv_cac_ratio "
        "from marts.ltv_cac_by_channel where cac > 0"
    ).fetchall()
    assert cohorts
    for month, channel, ratio in cohorts:
        assert metric[(month, channel)] == pytest.approx(ratio, abs=1e-6), (month, channel)
