"""`dbt build` of the product marts and the first-product attribute on a hand-made
landing folder with line items; every expected value is worked out by hand in the
comments, not copied from the output."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import dbt_tests_left_out
from tests.dbt.warehouse import built_marts

pytestmark = pytest.mark.dbt_build  # a dbt build: make test only
# the marts read here and what they are built from
MARTS = "+fct_order_lines +dim_products +dim_customers +order_reconciliation"
ORDER_HEADER = [
    "order_id",
    "customer_id",
    "ordered_at",
    "amount",
    "status",
    "shipping_amount",
    "tax_amount",
    "refunded_amount",
]
ORDERS = [
    # A: a1 partially refunded: lines 20 + 55, shipping 5, refund 20 -> 60; A orders again
    ["a1", "A", "2025-01-05T10:00:00Z", "60.00", "completed", "5.00", "0", "20.00"],
    ["a2", "A", "2025-02-10T10:00:00Z", "30.00", "completed", "", "", ""],
    # B: two lines of 20.00 tie; B never orders again
    ["b1", "B", "2025-01-20T10:00:00Z", "40.00", "completed", "", "", ""],
    # C: c1's 7.90 over its line is not broken down; c2 cancelled; c3 has no lines
    ["c1", "C", "2025-02-20T10:00:00Z", "47.90", "completed", "", "", ""],
    ["c2", "C", "2025-03-01T10:00:00Z", "15.00", "cancelled", "", "", ""],
    ["c3", "C", "2025-03-20T10:00:00Z", "25.00", "completed", "", "", ""],
    # D: an order without lines
    ["d1", "D", "2025-03-03T10:00:00Z", "10.00", "completed", "", "", ""],
    # after the as-of date: ignored, its line too
    ["a9", "A", "2025-04-20T10:00:00Z", "500.00", "completed", "", "", ""],
]
LINE_HEADER = [
    "order_id",
    "line_number",
    "product_id",
    "product_name",
    "category",
    "vendor",
    "quantity",
    "unit_price",
    "line_amount",
]
LINES = [
    ["a1", "1", "mug", "Mug", "equipment", "Potter", "1", "20.00", "20.00"],
    ["a1", "2", "espresso", "Espresso", "coffee", "Roastery", "1", "55.00", "55.00"],
    ["a2", "1", "espresso", "Espresso", "coffee", "Roastery", "2", "15.00", "30.00"],
    ["b1", "1", "sencha", "Sencha", "tea", "Teahouse", "1", "20.00", "20.00"],
    ["b1", "2", "espresso", "Espresso", "coffee", "Roastery", "1", "20.00", "20.00"],
    ["c1", "1", "sencha", "Sencha", "tea", "Teahouse", "2", "20.00", "40.00"],
    ["c2", "1", "mug", "Mug", "equipment", "Potter", "1", "15.00", "15.00"],
    ["a9", "1", "espresso", "Espresso", "coffee", "Roastery", "1", "500.00", "500.00"],
    # a line of an order that was never delivered
    ["z1", "1", "espresso", "Espresso", "coffee", "Roastery", "1", "99.00", "99.00"],
]
AS_OF = date(2025, 4, 15)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    files = {
        "orders/orders.csv": (ORDER_HEADER, ORDERS),
        "order_lines/lines.csv": (LINE_HEADER, LINES),
    }
    # the subject is the marts' values, not dbt's data and unit tests: left out
    with (
        dbt_tests_left_out(),
        built_marts(tmp_path_factory.mktemp("product_marts"), AS_OF, files, select=MARTS) as con,
    ):
        yield con


def test_order_lines_carry_their_order_and_leave_out_undelivered_and_later_orders(built):
    # 7 lines on or before the as-of date; a9's line waits for its order, z1 has none
    assert built.execute(
        "select order_id, line_number, customer_id, order_date::varchar, is_first_order, "
        "status, product_id, line_amount::double from marts.fct_order_lines order by 1, 2"
    ).fetchall() == [
        ("a1", 1, "A", "2025-01-05", True, "completed", "mug", 20.0),
        ("a1", 2, "A", "2025-01-05", True, "completed", "espresso", 55.0),
        ("a2", 1, "A", "2025-02-10", False, "completed", "espresso", 30.0),
        ("b1", 1, "B", "2025-01-20", True, "completed", "sencha", 20.0),
        ("b1", 2, "B", "2025-01-20", True, "completed", "espresso", 20.0),
        ("c1", 1, "C", "2025-02-20", True, "completed", "sencha", 40.0),
        ("c2", 1, "C", "2025-03-01", False, "cancelled", "mug", 15.0),
    ]


def test_products_revenue_share_and_repeat_purchase_rate(built):
    # completed line revenue: 20 + 55 + 30 + 20 + 20 + 40 = 185 (c2 cancelled)
    # espresso: a1, a2, b1; 55 + 30 + 20 = 105 -> 105 / 185 = 56.7568 %; first orders
    #   a1 (A came back) and b1 (B did not): 1 / 2 = 50 %
    # mug: a1 only: 20 / 185 = 10.8108 %; A came back: 100 %
    # sencha: b1, c1: 60 / 185 = 32.4324 %; B did not come back, C did (c3): 50 %
    assert built.execute(
        "select product_id, category, orders, customers, units, revenue::double, "
        "revenue_share_pct, first_orders, repeat_customers, repeat_purchase_rate_pct "
        "from marts.dim_products order by 1"
    ).fetchall() == [
        ("espresso", "coffee", 3, 2, 4, 105.0, 56.7568, 2, 1, 50.0),
        ("mug", "equipment", 1, 1, 1, 20.0, 10.8108, 1, 1, 100.0),
        ("sencha", "tea", 2, 2, 3, 60.0, 32.4324, 2, 1, 50.0),
    ]


def test_first_product_is_the_largest_line_ties_to_the_first_and_empty_without_lines(built):
    # A: espresso 55 > mug 20; B: sencha and espresso tie at 20, line 1 wins;
    # C: sencha, its only line; D's first order has no lines
    assert built.execute(
        "select customer_id, first_product_id, first_product_category "
        "from marts.dim_customers order by 1"
    ).fetchall() == [
        ("A", "espresso", "coffee"),
        ("B", "sencha", "tea"),
        ("C", "sencha", "tea"),
        ("D", None, None),
    ]


def test_dim_customers_grows_by_the_two_columns_at_its_end(built):
    columns = [
        name
        for (name,) in built.execute(
            "select column_name from duckdb_columns() where schema_name = 'marts' "
            "and table_name = 'dim_customers' order by column_index"
        ).fetchall()
    ]
    assert columns[-3:] == ["latest_nps_at", "first_product_id", "first_product_category"]


def test_every_order_is_reconciled_or_has_a_reason(built):
    # a1: 20 + 55 + 5 shipping + 0 tax - 20 refunded = 60: reconciles
    # c1: 47.90 - 40.00 = 7.90, no breakdown exported; c2 cancelled 15 = 15;
    # c3 and d1 have no lines; a9 is after the as-of date
    assert built.execute(
        "select order_id, line_count, lines_amount::double, expected_amount::double, "
        "reconciliation_difference::double, reconciliation_reason "
        "from marts.order_reconciliation order by 1"
    ).fetchall() == [
        ("a1", 2, 75.0, 60.0, 0.0, "reconciles"),
        ("a2", 1, 30.0, 30.0, 0.0, "reconciles"),
        ("b1", 2, 40.0, 40.0, 0.0, "reconciles"),
        ("c1", 1, 40.0, 40.0, 7.9, "shipping, tax or discounts"),
        ("c2", 1, 15.0, 15.0, 0.0, "reconciles"),
        ("c3", 0, None, None, None, "no lines"),
        ("d1", 0, None, None, None, "no lines"),
    ]
