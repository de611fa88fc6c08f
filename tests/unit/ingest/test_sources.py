"""Source configuration (sources.yml, presets.yml), the customer-key salt, and the demo's
survey_sends export."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from customer_marts.config import DEMO_MARKER, PROJECT_ROOT
from customer_marts.ingest.plan import NOT_DEMO
from customer_marts.ingest.run import IngestError, ingest
from customer_marts.ingest.sources import SourceConfigError, load, sources_file
from customer_marts.runs.pipeline import DATA_ERRORS
from tests.conftest import write_csv
from tools.demo.generator import DemoSpec, generate, generate_sends

SHOPIFY = {"sources": {"orders": {"preset": "shopify_orders"}}}


def query(settings, sql):
    import duckdb

    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_packaged_config_declares_the_five_sources_with_defaults():
    config = load()
    assert list(config.sources) == [
        "orders",
        "surveys",
        "survey_sends",
        "order_lines",
        "marketing_spend",
    ]
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


def test_required_may_be_one_name_like_glob():
    # validate-config accepts one string for `required` as for `glob`: so does the load
    one = load(overrides={"sources": {"orders": {"required": "channel"}}})
    listed = load(overrides={"sources": {"orders": {"required": ["channel"]}}})
    assert one.sources["orders"].required_extra == ("channel",)
    assert one.sources["orders"] == listed.sources["orders"]


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
        # wrong YAML types: a clear error, not a TypeError from deep inside
        ({"sources": {"orders": {"glob": 5}}}, "sources.orders: glob must be a file pattern"),
        ({"sources": {"orders": {"glob": []}}}, "not an empty list"),
        ({"sources": {"orders": {"columns": ["Total"]}}}, "columns must map export column"),
        ({"sources": {"orders": {"derive": "x"}}}, "derive must map column names to SQL"),
        ({"sources": {"orders": {"required": 5}}}, "required must be a column name or a list"),
    ],
)
def test_config_mistakes_are_named(overrides, message):
    with pytest.raises(SourceConfigError) as error:
        load(overrides=overrides)
    assert message in str(error.value) and str(sources_file()) in str(error.value)


def site_config(folder: Path, sources: str) -> Path:
    """A configuration folder: the given sources.yml and the project's presets.yml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sources.yml").write_text(sources)
    shutil.copy(PROJECT_ROOT / "config" / "presets.yml", folder / "presets.yml")
    return folder


def test_the_configuration_folder_is_the_projects_config_by_default(monkeypatch):
    monkeypatch.delenv("CUSTOMER_MARTS_CONFIG_DIR", raising=False)
    assert sources_file() == PROJECT_ROOT / "config" / "sources.yml"
    assert not list((PROJECT_ROOT / "customer_marts").rglob("*.yml"))  # none in the package


def test_a_config_mistake_fails_ingestion_with_an_ingest_error(settings, monkeypatch, tmp_path):
    folder = site_config(tmp_path / "site", "sources:\n  orders:\n    delimeter: ';'\n")
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(folder))
    with pytest.raises(IngestError, match="source configuration: .*unknown key") as error:
        ingest(settings.build_db, settings.landing_dir, "r1")
    assert str(folder / "sources.yml") in str(error.value)


def test_the_sources_come_from_customer_marts_config_dir(settings, monkeypatch, tmp_path):
    """A Shopify export is read with the preset named in the user's folder, no code change."""
    monkeypatch.setenv("CUSTOMER_KEY_SALT", "from-the-environment")
    folder = site_config(tmp_path / "site", "sources:\n  orders:\n    preset: shopify_orders\n")
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(folder))
    shopify_order(settings, "a@example.com")
    ingest(settings.build_db, settings.landing_dir, "r1")
    expected = hashlib.sha256(b"from-the-environmenta@example.com").hexdigest()
    assert query(settings, "select customer_id from raw.orders") == [(expected,)]


def test_a_configuration_folder_without_presets_is_named(monkeypatch, tmp_path):
    (tmp_path / "sources.yml").write_text("sources: {}\n")
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(tmp_path))
    with pytest.raises(SourceConfigError, match=f"{tmp_path / 'presets.yml'}: cannot be read"):
        load()


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


def test_real_emails_beside_the_demo_data_are_not_keyed_with_a_public_salt(settings, monkeypatch):
    """The demo data keys customers by id; an e-mail export dropped beside it (the demo
    marker present) still needs a real CUSTOMER_KEY_SALT, and nothing is loaded."""
    monkeypatch.delenv("CUSTOMER_KEY_SALT", raising=False)
    shopify_order(settings, "a@example.com")
    (settings.landing_dir / DEMO_MARKER).write_text('{"last_date": "2025-12-31"}')
    with pytest.raises(IngestError, match="CUSTOMER_KEY_SALT is not set") as error:
        ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY))
    assert isinstance(error.value, DATA_ERRORS)  # fails at once, no retry
    assert query(settings, "select count(*) from raw.orders") == [(0,)]
    assert query(settings, "select file_name, status from audit.ingested_files") == [
        ("orders/export.csv", "failed")
    ]


@pytest.mark.parametrize(
    ("salt", "message"),
    [
        ("short-salt", "too short (10 characters; at least 16"),
        ("customer-marts-demo-salt", "a published or trivial value"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "a published or trivial value"),
    ],
)
def test_a_weak_salt_is_refused(settings, monkeypatch, salt, message):
    monkeypatch.setenv("CUSTOMER_KEY_SALT", salt)
    shopify_order(settings, "a@example.com")
    with pytest.raises(IngestError, match=r"customer_key: email\) but CUSTOMER_KEY_SALT") as error:
        ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY))
    assert message in str(error.value) and salt not in str(error.value)
    assert query(settings, "select count(*) from raw.orders") == [(0,)]


def test_a_weak_salt_is_harmless_when_no_source_keys_by_email(settings, monkeypatch):
    monkeypatch.setenv("CUSTOMER_KEY_SALT", "short")
    write_csv(
        settings.landing_dir / "orders/a.csv",
        ["order_id", "customer_id", "ordered_at", "amount"],
        [["o1", "c1", "2025-01-01T10:00:00Z", "1"]],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(settings, "select order_id from raw.orders") == [("o1",)]


def test_files_beside_the_demo_data_that_the_demo_did_not_write_are_named(settings, small_demo):
    """The marker lists the demo's files with their SHA-256; a real export among them
    is loaded but its manifest row (and the log) say it is not demo data."""
    import shutil

    shutil.copytree(small_demo, settings.landing_dir, dirs_exist_ok=True)
    demo_names = {path.relative_to(small_demo).as_posix() for path in small_demo.rglob("*.csv")}
    real = write_csv(
        settings.landing_dir / "orders/real_export.csv",
        ["order_id", "customer_id", "ordered_at", "amount"],
        [["X1", "c1", "2025-01-01T10:00:00Z", "1"]],
    )
    # a demo file changed after it was written is no longer the demo's either
    changed = sorted((settings.landing_dir / "orders").glob("orders_*.csv"))[0]
    changed.write_text(changed.read_text() + "X2,c1,2024-01-01T10:00:00Z,2\n")
    ingest(settings.build_db, settings.landing_dir, "r1")
    noted = query(
        settings,
        f"select file_name from audit.ingested_files where contains(message, '{NOT_DEMO}') "
        "order by 1",
    )
    assert noted == [(f"orders/{changed.name}",), ("orders/real_export.csv",)]
    assert real.name not in {name.split("/")[-1] for name in demo_names}
    (loaded,) = query(settings, "select count(*) from audit.ingested_files")
    assert loaded == (len(demo_names) + 1,)


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
