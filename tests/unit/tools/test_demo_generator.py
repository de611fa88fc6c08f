"""The demo generator's line items, marketing spend and channel-dependent customers,
checked on the frames and files it writes (expected values from the brief's shape, not
from the generator's output)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from customer_marts.config import DEMO_MARKER
from customer_marts.ingest.contract import MARKETING_SPEND, ORDER_LINES
from tools.demo.catalogue import PRODUCTS
from tools.demo.generator import (
    DemoSpec,
    generate,
    generate_sends,
    write_landing,
)
from tools.demo.lines import generate_lines
from tools.demo.spend import generate_spend

PAID = {"paid_search": 90.0, "social": 130.0, "affiliate": 60.0}  # the CAC each is shaped for


@pytest.fixture(scope="module")
def demo():
    """The data of `make run` (5,000 customers, seed 42)."""
    spec = DemoSpec()
    orders, _ = generate(spec)
    return spec, orders, generate_lines(spec, orders), generate_spend(spec)


def _cents(values: pd.Series) -> np.ndarray:
    return np.rint(values.to_numpy() * 100).astype(np.int64)


def _customers(orders: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per customer: the first order's channel, its largest line's category (ties to the
    lowest line number), the number of orders; from the frames, with pandas."""
    ordered = orders.sort_values(["ordered_at", "order_id"])
    first = ordered.drop_duplicates("customer_id")[["customer_id", "order_id", "channel"]]
    largest = (
        lines.sort_values(["order_id", "line_amount", "line_number"], ascending=[True, False, True])
        .drop_duplicates("order_id")[["order_id", "category"]]
        .astype({"category": str})
    )
    customers = first.merge(largest, on="order_id", how="left")
    counts = orders.groupby("customer_id").size().rename("orders").reset_index()
    return customers.merge(counts, on="customer_id")


def test_every_order_has_one_to_four_lines_that_add_up_to_its_amount(demo):
    _, orders, lines, _ = demo
    # every order, cancelled and refunded ones too, keeps its lines
    assert set(lines["order_id"]) == set(orders["order_id"])
    assert set(orders["status"]) == {"completed", "cancelled", "refunded"}
    per_order = lines.groupby("order_id")["line_number"].agg(["count", "min", "max", "nunique"])
    assert per_order["count"].between(1, 4).all()
    assert (per_order["min"] == 1).all() and (per_order["max"] == per_order["count"]).all()
    assert (per_order["nunique"] == per_order["count"]).all()
    assert per_order["count"].nunique() == 4  # each of 1, 2, 3 and 4 lines occurs
    # to the cent: the lines' amounts sum to the order's amount
    line_sums = pd.Series(_cents(lines["line_amount"])).groupby(lines["order_id"].to_numpy()).sum()
    amounts = pd.Series(_cents(orders["amount"]), index=orders["order_id"].to_numpy())
    pd.testing.assert_series_equal(line_sums.sort_index(), amounts.sort_index(), check_names=False)
    # quantity * unit_price - discount_amount = line_amount, all >= 0
    gross = lines["quantity"].to_numpy() * _cents(lines["unit_price"])
    assert (gross - _cents(lines["discount_amount"]) == _cents(lines["line_amount"])).all()
    assert (lines["quantity"] >= 1).all()
    assert (lines[["unit_price", "line_amount", "discount_amount"]] >= 0).all().all()
    assert 0.05 < (lines["discount_amount"] > 0).mean() < 0.4  # some lines are discounted
    assert not lines.duplicated(["order_id", "product_id"]).any()  # no product twice


def test_lines_come_from_the_catalogue(demo):
    _, _, lines, _ = demo
    catalogue = pd.DataFrame(
        PRODUCTS, columns=["product_id", "product_name", "category", "vendor", "price"]
    )
    assert 35 <= len(catalogue) <= 45 and catalogue["category"].nunique() == 6
    assert catalogue["product_id"].is_unique
    sold = lines[["product_id", "product_name", "category", "vendor"]].astype(str)
    joined = sold.drop_duplicates().merge(catalogue, how="left", indicator=True)
    assert (joined["_merge"] == "both").all()
    assert sold["product_id"].nunique() == len(catalogue)  # every product sells
    assert (lines["currency"] == "USD").all()


def test_the_first_order_keeps_the_acquisition_channel_and_is_completed(demo):
    """A customer's earliest order is the acquisition: a completed order through an
    acquisition channel, never one of the repeat orders' channels (direct, app)."""
    _, orders, _, _ = demo
    first = orders.sort_values(["ordered_at", "order_id"]).drop_duplicates("customer_id")
    assert len(first) == 5_000
    assert not first["channel"].isin(["direct", "app"]).any()
    assert (first["status"] == "completed").all()


def test_channel_and_first_category_shift_how_long_customers_stay(demo):
    _, orders, lines, _ = demo
    customers = _customers(orders, lines)
    by_channel = customers.groupby("channel")["orders"].mean()
    # referral and e-mail customers come back more than organic ones, paid social less
    assert by_channel["referral"] > 1.2 * by_channel["organic"]
    assert by_channel["email"] > 1.2 * by_channel["organic"]
    assert by_channel["social"] < 0.8 * by_channel["organic"]
    repeat = customers.assign(repeat=customers["orders"] > 1).groupby("category")["repeat"].mean()
    assert repeat["subscriptions"] > repeat["gifts"] + 0.1
    assert customers["category"].nunique() == 6 and customers["category"].notna().all()


def test_spend_gives_each_paid_channel_its_cac(demo):
    spec, orders, lines, spend = demo
    assert list(spend.columns) == MARKETING_SPEND.column_names
    assert not spend.duplicated(["spent_on", "channel", "campaign"]).any()
    assert (spend["amount"] >= 0).all() and (spend["currency"] == "USD").all()
    days = pd.date_range(spec.start, spec.end).strftime("%Y-%m-%d")
    assert set(spend["spent_on"]) == set(days)
    # organic, e-mail and referral customers cost nothing
    assert set(spend["channel"]) == {*PAID, "display"}
    new_customers = _customers(orders, lines).groupby("channel").size()
    spent = spend.groupby("channel")["amount"].sum()
    for channel, cac in PAID.items():
        assert spent[channel] / new_customers[channel] == pytest.approx(cac, rel=0.12)
        assert (spend.loc[spend["channel"] == channel].groupby("spent_on").size() >= 1).all()
    # display spends and brings (almost) nobody: its CAC is a multiple of the others'
    display = new_customers.get("display", 0)
    assert display <= 0.005 * new_customers.sum()
    assert spent["display"] > 10 * max(PAID.values()) * max(display, 1)


def test_lines_and_spend_leave_the_other_data_as_it_was():
    """Lines and spend draw from their own streams: generating them changes nothing in
    the orders, responses or sends, and they are the same every time."""
    spec = DemoSpec(customers=300, seed=11)
    orders, responses = generate(spec)
    sends = generate_sends(spec, orders)
    before = orders.copy(deep=True)
    lines = generate_lines(spec, orders)
    spend = generate_spend(spec)
    pd.testing.assert_frame_equal(orders, before)
    again_orders, again_responses = generate(spec)
    pd.testing.assert_frame_equal(again_orders, orders)
    pd.testing.assert_frame_equal(again_responses, responses)
    pd.testing.assert_frame_equal(generate_sends(spec, orders), sends)
    pd.testing.assert_frame_equal(generate_lines(spec, orders), lines)
    pd.testing.assert_frame_equal(generate_spend(spec), spend)


def test_five_orders_per_customer_for_a_size():
    spec = DemoSpec.for_orders(100_000)
    orders, _ = generate(spec)
    assert len(orders) / spec.customers == pytest.approx(5, rel=0.04)


def test_line_and_spend_files_follow_the_orders_layout(tmp_path):
    spec = DemoSpec(customers=60, seed=5)
    summary = write_landing(tmp_path, spec)
    orders, _ = generate(spec)
    lines = generate_lines(spec, orders)
    marker = json.loads((tmp_path / DEMO_MARKER).read_text())
    line_files = sorted((tmp_path / "order_lines").glob("*.csv"))
    order_files = sorted((tmp_path / "orders").glob("*.csv"))
    # one lines file per orders file, of the same day, holding that day's orders' lines
    assert [path.name.removeprefix("order_lines_") for path in line_files] == [
        path.name.removeprefix("orders_") for path in order_files
    ]
    for lines_file, orders_file in zip(line_files, order_files, strict=True):
        day_lines = pd.read_csv(lines_file, dtype={"order_id": str})
        day_orders = pd.read_csv(orders_file, dtype={"order_id": str})
        assert list(day_lines.columns) == ORDER_LINES.column_names  # the landing contract's
        assert set(day_lines["order_id"]) == set(day_orders["order_id"])
    read_back = pd.concat(pd.read_csv(path) for path in line_files)
    assert len(read_back) == len(lines) == summary["order_lines"]
    assert read_back["line_amount"].sum() == pytest.approx(orders["amount"].sum(), abs=0.005)
    # spend: one file per month, every day's rows
    spend_files = sorted((tmp_path / "marketing_spend").glob("*.csv"))
    assert [path.name for path in spend_files][:2] == ["spend_2024-01.csv", "spend_2024-02.csv"]
    assert len(spend_files) == 24 == summary["spend_files"]
    spend = pd.concat(pd.read_csv(path) for path in spend_files)
    assert spend["spent_on"].nunique() == 731  # 2024 is a leap year
    assert (spend["spent_on"].str[:7] == spend_files[0].stem[6:]).sum() == 31 * 6
    listed = {name.split("/")[0] for name in marker["files"]}
    assert listed == {"orders", "surveys", "survey_sends", "order_lines", "marketing_spend"}
    assert sum(name.startswith("order_lines/") for name in marker["files"]) == len(line_files)
