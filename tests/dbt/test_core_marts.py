"""`dbt build` on a hand-made landing folder; every expected value is worked out by
hand in the comments, not copied from the output."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import dbt_tests_left_out
from tests.dbt.warehouse import built_marts

pytestmark = pytest.mark.dbt_build  # a dbt build: make test only
# the marts read here and what they are built from
MARTS = "+cohort_retention +dim_customers +fct_orders"
HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]
ORDERS = [
    # A: Jan cohort; buys in Jan, Feb, (cancelled in Mar), Apr
    ["a1", "A", "2025-01-05T10:00:00Z", "100", "completed"],
    ["a2", "A", "2025-02-10T10:00:00Z", "50", "completed"],
    ["a3", "A", "2025-03-01T10:00:00Z", "30", "cancelled"],
    ["a4", "A", "2025-04-02T10:00:00Z", "20", "completed"],
    # B: Jan cohort; a refunded order in Mar does not make B active
    ["b1", "B", "2025-01-20T10:00:00Z", "10", "completed"],
    ["b2", "B", "2025-03-15T10:00:00Z", "40", "refunded"],
    # C: first order cancelled, so C's cohort is Feb (first completed order)
    ["c1", "C", "2025-02-03T10:00:00Z", "99", "cancelled"],
    ["c2", "C", "2025-02-20T10:00:00Z", "60", "completed"],
    # D: never completed an order: not a customer
    ["d1", "D", "2025-03-03T10:00:00Z", "15", "cancelled"],
    # after the as-of date: ignored
    ["a5", "A", "2025-04-20T10:00:00Z", "500", "completed"],
]
AS_OF = date(2025, 4, 15)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    files = {"orders/orders.csv": (HEADER, ORDERS)}
    # the subject is the marts' values, not dbt's data and unit tests: left out
    with (
        dbt_tests_left_out(),
        built_marts(tmp_path_factory.mktemp("core_marts"), AS_OF, files, select=MARTS) as con,
    ):
        yield con


def test_monthly_cohort_triangle(built):
    rows = built.execute(
        "select cohort_start::varchar, period_number, cohort_size, active_customers, "
        "retention_pct, orders, revenue::double, cumulative_revenue_per_customer, is_complete "
        "from marts.cohort_retention where grain = 'month' and dimension = 'overall' "
        "order by 1, 2"
    ).fetchall()
    assert rows == [
        # Jan cohort {A, B}: Jan both; Feb A; Mar nobody (cancel/refund); Apr A (incomplete)
        ("2025-01-01", 0, 2, 2, 100.0, 2, 110.0, 55.0, True),
        ("2025-01-01", 1, 2, 1, 50.0, 1, 50.0, 80.0, True),
        ("2025-01-01", 2, 2, 0, 0.0, 0, 0.0, 80.0, True),
        ("2025-01-01", 3, 2, 1, 50.0, 1, 20.0, 90.0, False),
        # Feb cohort {C}
        ("2025-02-01", 0, 1, 1, 100.0, 1, 60.0, 60.0, True),
        ("2025-02-01", 1, 1, 0, 0.0, 0, 0.0, 60.0, True),
        ("2025-02-01", 2, 1, 0, 0.0, 0, 0.0, 60.0, False),
    ]


def test_quarterly_cohorts_sum_to_customers(built):
    # all three customers were acquired in Q1 2025; Q2 has only A's April order
    assert built.execute(
        "select cohort_start::varchar, period_number, cohort_size, active_customers "
        "from marts.cohort_retention where grain = 'quarter' and dimension = 'overall' "
        "order by 1, 2"
    ).fetchall() == [("2025-01-01", 0, 3, 3), ("2025-01-01", 1, 3, 1)]


def test_dim_customers(built):
    assert built.execute(
        "select customer_id, first_order_at::varchar, cohort_month::varchar, "
        "last_order_at::varchar, completed_orders, historic_revenue::double "
        "from marts.dim_customers order by 1"
    ).fetchall() == [
        ("A", "2025-01-05 10:00:00", "2025-01-01", "2025-04-02 10:00:00", 3, 170.0),
        ("B", "2025-01-20 10:00:00", "2025-01-01", "2025-01-20 10:00:00", 1, 10.0),
        ("C", "2025-02-20 10:00:00", "2025-02-01", "2025-02-20 10:00:00", 1, 60.0),
    ]


def test_fct_orders_numbers_completed_orders_only(built):
    assert built.execute(
        "select order_id, is_first_order, customer_order_number, cohort_month::varchar "
        "from marts.fct_orders order by 1"
    ).fetchall() == [
        ("a1", True, 1, "2025-01-01"),
        ("a2", False, 2, "2025-01-01"),
        ("a3", False, None, "2025-01-01"),
        ("a4", False, 3, "2025-01-01"),
        ("b1", True, 1, "2025-01-01"),
        ("b2", False, None, "2025-01-01"),
        ("c1", False, None, "2025-02-01"),
        ("c2", True, 1, "2025-02-01"),
        ("d1", False, None, None),
    ]
