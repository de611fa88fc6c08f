"""Retention by segment, revenue retention and new vs returning revenue: a real `dbt build`
of the retention and KPI marts on a hand-made landing folder (every expected value worked
out by hand in the comments) and on the small demo (each dimension adds up to overall)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import DEMO_AS_OF
from tests.dbt.warehouse import built_marts

pytestmark = pytest.mark.dbt_build  # a whole dbt build: make test only

MARTS = "+retention_by_period +cohort_retention +kpis_by_period"
HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status", "channel", "country"]
ORDERS = [
    # A: referral, US; Jan cohort; buys in Jan, Feb and Apr
    ["a1", "A", "2025-01-05T10:00:00Z", "100", "completed", "referral", "US"],
    ["a2", "A", "2025-02-10T10:00:00Z", "50", "completed", "email", "US"],
    ["a3", "A", "2025-04-02T10:00:00Z", "20", "completed", "email", "US"],
    # B: social, US; Jan cohort; one order
    ["b1", "B", "2025-01-20T10:00:00Z", "10", "completed", "social", "US"],
    # C: the cancelled first order does not count: acquired by referral in DE in Feb
    ["c1", "C", "2025-02-03T10:00:00Z", "99", "cancelled", "social", "FR"],
    ["c2", "C", "2025-02-20T10:00:00Z", "60", "completed", "referral", "DE"],
    # E: no channel and no country on the first order; Mar cohort; two orders in March
    ["e1", "E", "2025-03-10T10:00:00Z", "40", "completed", "", ""],
    ["e2", "E", "2025-03-25T10:00:00Z", "40", "completed", "email", "NL"],
]
RESPONSES = [
    # A: a promoter first (10), a detractor later: A's first NPS category is promoter
    ["s1", "2025-01-10T10:00:00Z", "A", "10", ""],
    ["s2", "2025-03-01T10:00:00Z", "A", "3", ""],
    # B answered CSAT only: no NPS answer
    ["s3", "2025-01-25T10:00:00Z", "B", "", "4"],
    # C: passive
    ["s4", "2025-03-05T10:00:00Z", "C", "7", ""],
]
AS_OF = date(2025, 4, 15)
# A 30-day churn window, so that four months show customers lost and reactivated.
VARS = {"churn_window_days": 30, "min_retention_customers": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    files = {
        "orders/orders.csv": (HEADER, ORDERS),
        "surveys/responses.csv": (
            ["response_id", "responded_at", "customer_id", "nps_score", "csat_score"],
            RESPONSES,
        ),
    }
    root = tmp_path_factory.mktemp("retention_dimensions")
    with built_marts(root, AS_OF, files, select=MARTS, extra_vars=VARS) as con:
        yield con


@pytest.fixture(scope="module")
def demo(small_demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("retention_dimensions_demo")
    with built_marts(root, DEMO_AS_OF, landing=small_demo, select=MARTS) as con:
        yield con


RETENTION_COLUMNS = (
    "customers_start, customers_end, new_customers, reactivated_customers, "
    "retained_customers, lost_customers, retention_rate_pct"
)


def monthly_retention(con, dimension: str) -> list[tuple]:
    return con.execute(
        f"select dimension_value, period_start::varchar, {RETENTION_COLUMNS}, is_reportable "
        "from marts.retention_by_period where grain = 'month' and dimension = ? order by 1, 2",
        [dimension],
    ).fetchall()


# Active at the start of day b = a completed order on one of the 30 days before b:
#   A  Jan 5 -> 6 Jan..4 Feb, Feb 10 -> 11 Feb..12 Mar, Apr 2 -> 3 Apr..2 May
#   B  Jan 20 -> 21 Jan..19 Feb;  C  Feb 20 -> 21 Feb..22 Mar;  E  Mar 25 -> 26 Mar..24 Apr
# Active on 1 Feb {A, B}, 1 Mar {A, C}, 1 Apr {E}, 16 Apr (the end of the as-of date) {A, E}.


def test_overall_monthly_retention(built):
    assert monthly_retention(built, "overall") == [
        # Jan: S = 0, E = {A, B}, both new
        ("all", "2025-01-01", 0, 2, 2, 0, 0, 0, None, False),
        # Feb: S {A, B}, E {A, C}: C new, A retained, B lost -> 1 / 2 = 50 %
        ("all", "2025-02-01", 2, 2, 1, 0, 1, 1, 50.0, True),
        # Mar: S {A, C}, E {E}: E new, nobody retained, A and C lost -> 0 %
        ("all", "2025-03-01", 2, 1, 1, 0, 0, 2, 0.0, True),
        # Apr (to the 15th): S {E}, E {A, E}: A comes back (reactivated), E retained -> 100 %
        # S = 1 < min_retention_customers (2): not reportable
        ("all", "2025-04-01", 1, 2, 0, 1, 1, 0, 100.0, False),
    ]


def test_monthly_retention_by_acquisition_channel(built):
    # A and C referral, B social; E's first order has no channel: (unknown). E's and A's
    # later orders through email do not move them: the first order's channel counts.
    assert monthly_retention(built, "acquisition_channel") == [
        # E: new in March, retained in April
        ("(unknown)", "2025-03-01", 0, 1, 1, 0, 0, 0, None, False),
        ("(unknown)", "2025-04-01", 1, 1, 0, 0, 1, 0, 100.0, False),
        # A new in Jan; Feb: C new, A retained; Mar: A and C lost; Apr: A reactivated
        ("referral", "2025-01-01", 0, 1, 1, 0, 0, 0, None, False),
        ("referral", "2025-02-01", 1, 2, 1, 0, 1, 0, 100.0, False),
        ("referral", "2025-03-01", 2, 0, 0, 0, 0, 2, 0.0, True),
        ("referral", "2025-04-01", 0, 1, 0, 1, 0, 0, None, False),
        # B new in Jan, lost in Feb, nobody after
        ("social", "2025-01-01", 0, 1, 1, 0, 0, 0, None, False),
        ("social", "2025-02-01", 1, 0, 0, 0, 0, 1, 0.0, False),
        ("social", "2025-03-01", 0, 0, 0, 0, 0, 0, None, False),
        ("social", "2025-04-01", 0, 0, 0, 0, 0, 0, None, False),
    ]


def cohorts(con, dimension: str) -> list[tuple]:
    return con.execute(
        "select dimension_value, cohort_start::varchar, period_number, cohort_size, "
        "active_customers, revenue::double, revenue_retention_pct, is_reportable "
        "from marts.cohort_retention where grain = 'month' and dimension = ? order by 1, 2, 3",
        [dimension],
    ).fetchall()


def test_monthly_cohorts_with_revenue_retention(built):
    assert cohorts(built, "overall") == [
        # Jan {A, B}: 100 + 10 = 110 in Jan; Feb A's 50 -> 50 / 110 = 45.4545 %; Mar
        # nothing; Apr A's 20 -> 20 / 110 = 18.1818 %. Size 2: reportable
        ("all", "2025-01-01", 0, 2, 2, 110.0, 100.0, True),
        ("all", "2025-01-01", 1, 2, 1, 50.0, 45.4545, True),
        ("all", "2025-01-01", 2, 2, 0, 0.0, 0.0, True),
        ("all", "2025-01-01", 3, 2, 1, 20.0, 18.1818, True),
        # Feb {C}: 60, then nothing
        ("all", "2025-02-01", 0, 1, 1, 60.0, 100.0, False),
        ("all", "2025-02-01", 1, 1, 0, 0.0, 0.0, False),
        ("all", "2025-02-01", 2, 1, 0, 0.0, 0.0, False),
        # Mar {E}: 40 + 40, then nothing
        ("all", "2025-03-01", 0, 1, 1, 80.0, 100.0, False),
        ("all", "2025-03-01", 1, 1, 0, 0.0, 0.0, False),
    ]
    by_country = cohorts(built, "country")
    # A and B are US: the US Jan cohort is the whole Jan cohort; C is DE (the cancelled
    # order's FR does not count); E's first order has no country
    assert [row for row in by_country if row[2] == 0] == [
        ("(unknown)", "2025-03-01", 0, 1, 1, 80.0, 100.0, False),
        ("DE", "2025-02-01", 0, 1, 1, 60.0, 100.0, False),
        ("US", "2025-01-01", 0, 2, 2, 110.0, 100.0, True),
    ]
    referral_jan = [
        row
        for row in cohorts(built, "acquisition_channel")
        if row[:2] == ("referral", "2025-01-01")
    ]
    # A alone: 100, 50 (50 %), 0, 20 (20 %)
    assert [(row[4], row[5], row[6]) for row in referral_jan] == [
        (1, 100.0, 100.0),
        (1, 50.0, 50.0),
        (0, 0.0, 0.0),
        (1, 20.0, 20.0),
    ]


def test_first_nps_category_is_the_first_scored_answer(built):
    sizes = built.execute(
        "select dimension_value, cohort_start::varchar, cohort_size from marts.cohort_retention "
        "where grain = 'month' and dimension = 'first_nps_category' and period_number = 0 "
        "order by 1, 2"
    ).fetchall()
    # A promoter (10 before 3); B answered CSAT only and E never: (no response); C passive
    assert sizes == [
        ("(no response)", "2025-01-01", 1),
        ("(no response)", "2025-03-01", 1),
        ("passive", "2025-02-01", 1),
        ("promoter", "2025-01-01", 1),
    ]
    # no line items landed: every customer's first product category is unknown
    assert built.execute(
        "select distinct dimension_value from marts.cohort_retention "
        "where dimension = 'first_product_category'"
    ).fetchall() == [("(unknown)",)]


def test_weekly_cohorts_are_overall_only(built):
    assert built.execute(
        "select grain, list(distinct dimension order by dimension) from marts.cohort_retention "
        "group by grain order by grain"
    ).fetchall() == [
        (
            "month",
            [
                "acquisition_channel",
                "country",
                "first_nps_category",
                "first_product_category",
                "overall",
            ],
        ),
        (
            "quarter",
            [
                "acquisition_channel",
                "country",
                "first_nps_category",
                "first_product_category",
                "overall",
            ],
        ),
        ("week", ["overall"]),
    ]


def test_new_vs_returning_revenue_and_aov(built):
    rows = built.execute(
        "select period_start::varchar, new_customers, returning_customers, "
        "new_customer_orders, new_customer_revenue::double, new_customer_aov::double, "
        "returning_customer_orders, returning_customer_revenue::double, "
        "returning_customer_aov::double, returning_aov_premium_pct "
        "from marts.kpis_by_period where grain = 'month' order by 1"
    ).fetchall()
    assert rows == [
        # Jan: A (100) and B (10) new: 110 over 2 orders, AOV 55; nobody returning
        ("2025-01-01", 2, 0, 2, 110.0, 55.0, 0, 0.0, None, None),
        # Feb: C new (60, one order), A returning (50): 50 / 60 - 1 = -16.6667 %
        ("2025-02-01", 1, 1, 1, 60.0, 60.0, 1, 50.0, 50.0, -16.6667),
        # Mar: E new, two orders of 40: AOV 40; nobody returning
        ("2025-03-01", 1, 0, 2, 80.0, 40.0, 0, 0.0, None, None),
        # Apr: A returning (20); nobody new
        ("2025-04-01", 0, 1, 0, 0.0, None, 1, 20.0, 20.0, None),
    ]


# ---------------------------------------------------------------- each dimension adds up


COUNTS = (
    "customers_start",
    "customers_end",
    "new_customers",
    "reactivated_customers",
    "retained_customers",
    "lost_customers",
)
COHORT_COUNTS = ("cohort_size", "active_customers", "orders", "revenue")


def differences_from_overall(con, mart: str, keys: tuple[str, ...], counts: tuple[str, ...]):
    """Rows where a dimension's values do not add up to the overall row (a left join from
    overall, so a period missing from a dimension shows up too)."""
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({column}) as {column}" for column in counts)
    differs = " or ".join(
        f"coalesce(segments.{column}, 0) <> overall.{column}" for column in counts
    )
    on = " and ".join(f"segments.{key} = overall.{key}" for key in keys)
    return con.execute(
        f"""
        with
        dimensions as (select distinct dimension from marts.{mart} where dimension <> 'overall'),
        segments as (
            select dimension, {key_list}, {sums} from marts.{mart}
            where dimension <> 'overall' group by dimension, {key_list}
        ),
        overall as (
            select dimensions.dimension, {key_list}, {", ".join(counts)}
            from marts.{mart} cross join dimensions
            where marts.{mart}.dimension = 'overall'
        )
        select overall.*
        from overall
        left join segments on segments.dimension = overall.dimension and {on}
        where {differs} or segments.dimension is null
        """
    ).fetchall()


def test_each_dimension_adds_up_to_overall_in_retention_by_period(built, demo):
    for con in (built, demo):
        assert (
            differences_from_overall(con, "retention_by_period", ("grain", "period_start"), COUNTS)
            == []
        )
    dimensions = demo.execute(
        "select dimension, count(distinct dimension_value) from marts.retention_by_period "
        "group by dimension order by dimension"
    ).fetchall()
    # the demo has several values in every dimension but first_product_category (no lines yet
    # or one category per customer: at least one value)
    assert [name for name, _ in dimensions] == [
        "acquisition_channel",
        "country",
        "first_nps_category",
        "first_product_category",
        "overall",
    ]
    assert all(
        values > 1 for name, values in dimensions if name in ("acquisition_channel", "country")
    )


def test_each_dimension_adds_up_to_overall_in_cohort_retention(built, demo):
    keys = ("grain", "cohort_start", "period_number")
    for con in (built, demo):
        # weeks are overall only: compare the grains that are broken down
        assert [
            row
            for row in differences_from_overall(con, "cohort_retention", keys, COHORT_COUNTS)
            if row[1] != "week"  # (dimension, grain, ...)
        ] == []
