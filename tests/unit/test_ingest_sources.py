"""Source configuration (sources.yml, presets.yml), the customer-key salt, and the demo's
survey_sends export."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from customer_marts.config import DEMO_MARKER
from customer_marts.demo import DemoSpec, generate, generate_sends
from customer_marts.ingest import DEMO_CUSTOMER_KEY_SALT, IngestError, ingest
from customer_marts.sources import CONFIG_PATH, SourceConfigError, load
from tests.conftest import write_csv

SHOPIFY = {"sources": {"orders": {"preset": "shopify_orders"}}}


def query(settings, sql):
    import duckdb

    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_packaged_config_declares_the_three_sources_with_defaults():
    config = load()
    assert list(config.sources) == ["orders", "surveys", "survey_sends"]
    orders = config.sources["orders"]
    assert (orders.folder, orders.format, orders.delimiter, orders.timezone) == (
        "orders",
        "auto",
        None,
        "UTC",
    )
    assert orders.globs == ("*.csv", "*.csv.gz", "*.parquet")
    assert config.reporting_currency == "USD" and config.rates_file is None


def test_a_preset_applies_and_the_source_keys_win():
    config = load(overrides={"sources": {"orders": {"preset": "shopify_orders", "folder": "shop"}}})
    orders = config.sources["orders"]
    assert (orders.folder, orders.collapse, orders.customer_key) == ("shop", True, "email")
    assert ("name", "order_id") in orders.columns and ("total", "amount") in orders.columns
    # the hashed e-mail replaces customer_id among the columns a file must have
    assert orders.required_targets == [
        "order_id",
        "ordered_at",
        "amount",
        "email",
        "financial_status",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sources": {"orders": {"delimeter": ";"}}}, "unknown key(s) delimeter"),
        ({"sources": {"refunds": {}}}, "unknown source(s) refunds"),
        ({"sources": {"orders": {"preset": "woocommerce"}}}, "unknown preset 'woocommerce'"),
        ({"sources": {"orders": {"preset": "nps_tool"}}}, "maps the surveys contract"),
        ({"sources": {"orders": {"timezone": "Mars/Olympus"}}}, "not an IANA time zone"),
        ({"sources": {"orders": {"format": "xlsx"}}}, "format 'xlsx'"),
        ({"sources": {"orders": {"columns": {"Total": "Amount"}}}}, "not a lower_snake name"),
        ({"sources": {"orders": {"derive": {"revenue": "1"}}}}, "'revenue' is not a column"),
        ({"reporting_currency": "dollars"}, "not an ISO code"),
    ],
)
def test_config_mistakes_are_named(overrides, message):
    with pytest.raises(SourceConfigError) as error:
        load(overrides=overrides)
    assert message in str(error.value) and str(CONFIG_PATH) in str(error.value)


def test_a_config_mistake_fails_ingestion_with_an_ingest_error(settings, monkeypatch, tmp_path):
    mistaken = tmp_path / "sources.yml"
    mistaken.write_text("sources:\n  orders:\n    delimeter: ';'\n")
    monkeypatch.setattr("customer_marts.sources.CONFIG_PATH", mistaken)
    with pytest.raises(IngestError, match="source configuration: .*unknown key"):
        ingest(settings.build_db, settings.landing_dir, "r1")


def shopify_order(settings, email: str) -> Path:
    return write_csv(
        settings.landing_dir / "orders/export.csv",
        ["Name", "Email", "Created at", "Total", "Financial Status"],
        [["#1", email, "2025-01-01 10:00:00 +0000", "10.00", "paid"]],
    )


def test_an_email_key_without_a_salt_fails_and_says_how_to_fix_it(settings, monkeypatch):
    monkeypatch.delenv("CUSTOMER_KEY_SALT", raising=False)
    shopify_order(settings, "a@example.com")
    with pytest.raises(IngestError, match="CUSTOMER_KEY_SALT is not set"):
        ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY))


def test_the_salt_comes_from_customer_key_salt(settings, monkeypatch):
    monkeypatch.setenv("CUSTOMER_KEY_SALT", "from-the-environment")
    shopify_order(settings, " A@Example.com")
    ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY))
    expected = hashlib.sha256(b"from-the-environmenta@example.com").hexdigest()
    assert query(settings, "select customer_id from raw.orders") == [(expected,)]


def test_the_demo_salt_serves_the_demo_data_only(settings, monkeypatch):
    monkeypatch.delenv("CUSTOMER_KEY_SALT", raising=False)
    shopify_order(settings, "a@example.com")
    (settings.landing_dir / DEMO_MARKER).write_text('{"last_date": "2025-12-31"}')
    ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY))
    expected = hashlib.sha256((DEMO_CUSTOMER_KEY_SALT + "a@example.com").encode()).hexdigest()
    assert query(settings, "select customer_id from raw.orders") == [(expected,)]


@pytest.fixture(scope="module")
def demo():
    spec = DemoSpec(customers=400, seed=7)
    orders, responses = generate(spec)
    return spec, orders, responses, generate_sends(spec, orders)


def test_demo_sends_precede_every_response_and_a_third_is_answered(demo):
    spec, _, responses, sends = demo
    assert sends["send_id"].is_unique and sends["sent_at"].is_monotonic_increasing
    # every response has an earlier send to the same customer (a one-to-one match:
    # the n-th response of a customer comes after at least n sends to them)
    paired = pd.merge_asof(
        responses.sort_values("responded_at"),
        sends.rename(columns={"sent_at": "responded_at"})[["responded_at", "customer_id"]].assign(
            has_send=True
        ),
        on="responded_at",
        by="customer_id",
    )
    assert paired["has_send"].fillna(False).all()
    sent_by_customer = sends["customer_id"].value_counts()
    answered_by_customer = responses["customer_id"].value_counts()
    assert (answered_by_customer <= sent_by_customer.reindex(answered_by_customer.index)).all()
    assert 0.30 <= len(responses) / len(sends) <= 0.40
    assert sends["sent_at"].max() < pd.Timestamp(spec.end) + pd.Timedelta(days=1)


def test_demo_sends_leave_the_orders_untouched_and_are_deterministic():
    """generate_sends reads the orders (to re-draw generate()'s sample of answered
    orders) without changing them, and gives the same sends every time."""
    spec = DemoSpec(customers=400, seed=7)
    orders, _ = generate(spec)
    before = orders.copy(deep=True)
    sends = generate_sends(spec, orders)
    pd.testing.assert_frame_equal(orders, before)
    pd.testing.assert_frame_equal(sends, generate_sends(spec, orders))
