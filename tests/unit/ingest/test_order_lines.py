"""The optional order_lines and marketing_spend sources on real DuckDB files: the
contract's row rules with quarantine reasons, keys of several columns, a later
delivery replacing an order's earlier lines, the manifest's row conservation, and
Shopify exports read by orders and order_lines from one folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from customer_marts.config import PROJECT_ROOT, Settings
from customer_marts.gate.validate import GateFailed, validate
from customer_marts.ingest import archive, checking
from customer_marts.ingest.run import ingest
from customer_marts.ingest.sources import load
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect
from tests.conftest import write_csv

CORPUS = Path(__file__).with_name("corpus")
SALT = "order-lines-salt-for-tests-only"
LINES = [
    "order_id",
    "line_number",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "line_amount",
    "currency",
]
SPEND = ["spent_on", "channel", "campaign", "amount", "currency"]
SHOPIFY = {
    "sources": {
        "orders": {"folder": "shopify", "preset": "shopify_orders"},
        "order_lines": {"folder": "shopify", "preset": "shopify_order_lines"},
    }
}


def query(database: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def manifest(settings: Settings, source: str) -> list[tuple]:
    return query(
        settings.build_db,
        "select file_name, status, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "from audit.ingested_files where source = ? order by file_name, run_id",
        [source],
    )


def assert_conserved(database: Path, source: str) -> None:
    """Each file: read = loaded + quarantined + duplicate; raw holds exactly the
    loaded rows of each file; the quarantine holds exactly its quarantined rows."""
    files = query(
        database,
        "select file_name, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "from audit.ingested_files where source = ? and status = 'loaded'",
        [source],
    )
    for _name, read, loaded, quarantined, duplicate in files:
        assert read == loaded + quarantined + duplicate
    raw = dict(query(database, f"select _file_name, count(*) from raw.{source} group by 1"))
    assert raw == {name: loaded for name, _, loaded, _, _ in files if loaded}
    held = dict(
        query(
            database,
            "select file_name, count(*) from audit.quarantine where source = ? group by 1",
            [source],
        )
    )
    assert held == {name: quarantined for name, _, _, quarantined, _ in files if quarantined}


def test_order_lines_load_and_bad_lines_are_quarantined_naming_line_and_column(settings):
    write_csv(
        settings.landing_dir / "order_lines/lines.csv",
        LINES,
        [
            # 2: ok; an address in the free-text name is masked
            ["A1", "1", "SKU-1", "Mug for ann@example.com", "equipment", "2", "9.5", "19", "usd"],
            ["A1", "2", "SKU-2", "Beans", "coffee", "1", "", "12.00", ""],  # 3: ok
            ["A1", "0", "SKU-3", "Tea", "tea", "1", "4", "4", ""],  # 4: line 0
            ["A2", "1", "SKU-1", "Mug", "", "1.5", "9.50", "9.50", ""],  # 5: 1.5 units
            ["A2", "2", "SKU-1", "Mug", "", "-1", "9.50", "0", ""],  # 6: negative quantity
            ["A2", "3", "SKU-2", "Beans", "", "1", "12", "-12", ""],  # 7: negative amount
            ["A2", "4", "SKU-2", "Beans", "", "1", "12", "12", "EUR"],  # 8: unknown currency
            ["A2", "5", "", "Beans", "", "1", "12", "12", ""],  # 9: no product
            ["A2", "6", "SKU-2", "Beans", "", "1", "12", "ten", ""],  # 10: not a number
            ["A1", "2", "SKU-2", "Beans", "coffee", "2", "12", "24.00", ""],  # 11: wins over 3
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(
        settings.build_db,
        'select file_name, line_number, "column", reason from audit.quarantine order by 2',
    ) == [
        ("order_lines/lines.csv", 4, "line_number", "below 1"),
        ("order_lines/lines.csv", 5, "quantity", "not an integer"),
        ("order_lines/lines.csv", 6, "quantity", "negative value"),
        ("order_lines/lines.csv", 7, "line_amount", "negative value"),
        ("order_lines/lines.csv", 8, "currency", "not the reporting currency USD (no rates_file)"),
        ("order_lines/lines.csv", 9, "product_id", "missing required value"),
        ("order_lines/lines.csv", 10, "line_amount", "unparseable number"),
    ]
    assert query(
        settings.build_db,
        "select order_id, line_number, product_id, product_name, category, quantity, "
        "unit_price::varchar, line_amount::varchar, currency, _line_number "
        "from raw.order_lines order by 1, 2",
    ) == [
        ("A1", 1, "SKU-1", "Mug for <email>", "equipment", 2, "9.50", "19.00", "USD", 2),
        ("A1", 2, "SKU-2", "Beans", "coffee", 2, "12.00", "24.00", None, 11),  # the later line
    ]
    # 10 lines: 2 loaded, 7 quarantined, line 3 a duplicate of line 11
    assert manifest(settings, "order_lines") == [("order_lines/lines.csv", "loaded", 10, 2, 7, 1)]
    assert_conserved(settings.build_db, "order_lines")


def test_a_later_delivery_replaces_every_earlier_line_of_its_orders(settings):
    first = ["A1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""]
    write_csv(
        settings.landing_dir / "order_lines/2024-01-01.csv",
        LINES,
        [
            first,
            ["A1", "2", "SKU-2", "Beans", "", "1", "12", "12", ""],
            ["A1", "3", "SKU-3", "Tea", "", "1", "4", "4", ""],
            ["B1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],
            ["B1", "2", "SKU-2", "Beans", "", "1", "12", "12", ""],
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    # A1 corrected: two lines, the second changed; B1 not in the new delivery
    write_csv(
        settings.landing_dir / "order_lines/2024-01-02.csv",
        LINES,
        [first, ["A1", "2", "SKU-2", "Beans", "", "2", "12", "24", ""]],
    )
    ingest(settings.build_db, settings.landing_dir, "r2")
    assert query(
        settings.build_db,
        "select order_id, line_number, quantity, _file_name from raw.order_lines order by 1, 2",
    ) == [
        ("A1", 1, 1, "order_lines/2024-01-02.csv"),
        ("A1", 2, 2, "order_lines/2024-01-02.csv"),
        ("B1", 1, 1, "order_lines/2024-01-01.csv"),
        ("B1", 2, 1, "order_lines/2024-01-01.csv"),
    ]
    # the first file's 3 lines of A1 (line 3 too, which the new delivery lacks) are
    # now duplicates: 5 read = 2 loaded (B1) + 3 duplicate
    assert manifest(settings, "order_lines") == [
        ("order_lines/2024-01-01.csv", "loaded", 5, 2, 0, 3),
        ("order_lines/2024-01-02.csv", "loaded", 2, 2, 0, 0),
    ]
    assert_conserved(settings.build_db, "order_lines")


def test_within_one_run_the_later_file_replaces_an_orders_lines_too(settings):
    write_csv(
        settings.landing_dir / "order_lines/a.csv",
        LINES,
        [
            ["A1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],
            ["A1", "2", "SKU-2", "Beans", "", "1", "12", "12", ""],
            ["B1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],
        ],
    )
    write_csv(
        settings.landing_dir / "order_lines/b.csv",
        LINES,
        [["A1", "1", "SKU-9", "Kettle", "", "1", "30", "30", ""]],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(
        settings.build_db,
        "select order_id, line_number, product_id from raw.order_lines order by 1, 2",
    ) == [("A1", 1, "SKU-9"), ("B1", 1, "SKU-1")]
    assert manifest(settings, "order_lines") == [
        ("order_lines/a.csv", "loaded", 3, 1, 0, 2),
        ("order_lines/b.csv", "loaded", 1, 1, 0, 0),
    ]
    assert_conserved(settings.build_db, "order_lines")


def test_marketing_spend_keys_on_day_channel_and_campaign_and_quarantines_bad_rows(settings):
    write_csv(
        settings.landing_dir / "marketing_spend/spend_1.csv",
        SPEND,
        [
            ["2024-01-01", "Paid_Search", "", "100.00", "USD"],  # 2: no campaign
            ["2024-01-01", "paid_search", "brand", "40", ""],  # 3
            ["2024-01-01", "paid_search", "", "90", ""],  # 4: replaces line 2 (same key)
            ["yesterday", "social", "", "5", ""],  # 5: bad date
            ["2024-01-01", "", "", "5", ""],  # 6: no channel
            ["2024-01-01", "social", "", "-5", ""],  # 7: negative
            ["2024-01-01", "social", "", "5", "GBP"],  # 8: not the reporting currency
            ["2024-01-01", "social", "ann@example.com", "5", ""],  # 9: an e-mail
            ["2024-01-02", "social", "", "", ""],  # 10: no amount
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(
        settings.build_db,
        'select line_number, "column", reason from audit.quarantine order by 1',
    ) == [
        (5, "spent_on", "unparseable date"),
        (6, "channel", "missing required value"),
        (7, "amount", "negative value"),
        (8, "currency", "not the reporting currency USD (no rates_file)"),
        (9, "campaign", "looks like an e-mail address (never stored outside a free-text column)"),
        (10, "amount", "missing required value"),
    ]
    write_csv(
        settings.landing_dir / "marketing_spend/spend_2.csv",
        SPEND,
        [["2024-01-01T00:00:00", "paid_search", "", "95", ""]],  # corrects the campaign-less day
    )
    ingest(settings.build_db, settings.landing_dir, "r2")
    assert query(
        settings.build_db,
        "select spent_on::varchar, channel, campaign, amount::varchar, _file_name, _line_number "
        "from raw.marketing_spend order by 3 nulls first",
    ) == [
        ("2024-01-01", "paid_search", None, "95.00", "marketing_spend/spend_2.csv", 2),
        ("2024-01-01", "paid_search", "brand", "40.00", "marketing_spend/spend_1.csv", 3),
    ]
    # spend_1: 9 read = 1 loaded (brand) + 6 quarantined + 2 duplicates (lines 2, 4)
    assert manifest(settings, "marketing_spend") == [
        ("marketing_spend/spend_1.csv", "loaded", 9, 1, 6, 2),
        ("marketing_spend/spend_2.csv", "loaded", 1, 1, 0, 0),
    ]
    assert_conserved(settings.build_db, "marketing_spend")


def test_without_their_folders_the_new_sources_are_empty_tables(settings):
    write_csv(
        settings.landing_dir / "orders/o.csv",
        ["order_id", "customer_id", "ordered_at", "amount"],
        [["o1", "c1", "2024-01-01", "10"]],
    )
    summary = ingest(settings.build_db, settings.landing_dir, "r1")
    assert summary.by_source["order_lines"] == {
        "files_loaded": 0,
        "files_skipped": 0,
        "files_gone": 0,
    }
    assert query(settings.build_db, "select count(*) from raw.order_lines") == [(0,)]
    assert query(settings.build_db, "select count(*) from raw.marketing_spend") == [(0,)]
    assert query(
        settings.build_db,
        "select discount_amount, shipping_amount, tax_amount, refunded_amount from raw.orders",
    ) == [(None, None, None, None)]


def land_shopify(landing: Path) -> None:
    for name in ("shopify_orders_export.csv", "shopify_refunded_order.csv"):
        (landing / "shopify").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / name, landing / "shopify" / name)


def test_shopify_lines_land_from_the_orders_export_and_reconcile_with_the_orders(settings):
    land_shopify(settings.landing_dir)
    ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY), salt=SALT)
    lines = query(
        settings.build_db,
        "select order_id, line_number, product_id, vendor, quantity, unit_price, line_amount, "
        "currency, _line_number from raw.order_lines order by 1, 2",
    )
    mug, beans, vendor = "MUG-BL", "BEAN-1K", "Northwind Goods"
    d = Decimal
    assert lines == [
        # #1001: 3 items; file line 3 is the second half of line 2's quoted note
        ("#1001", 1, mug, vendor, 1, d("18.00"), d("18.00"), "USD", 2),
        ("#1001", 2, beans, vendor, 2, d("30.00"), d("60.00"), "USD", 4),  # 2 x 30.00
        ("#1001", 3, "FLT-100", vendor, 1, d("14.00"), d("14.00"), "USD", 5),
        ("#1002", 1, "FP-1", vendor, 1, d("40.00"), d("40.00"), "USD", 6),
        ("#1003", 1, "GR-1", vendor, 1, d("55.00"), d("55.00"), "USD", 7),
        ("#1003", 2, "MUG-RD", vendor, 1, d("20.00"), d("20.00"), "USD", 8),
        ("#1004", 1, beans, vendor, 1, d("30.00"), d("30.00"), "USD", 9),
        ("#1005", 1, mug, vendor, 1, d("18.00"), d("18.00"), "USD", 10),
        ("#1006", 1, beans, vendor, 2, d("30.00"), d("60.00"), "USD", 11),
        # no SKU: the product is its name; Currency on the order's first row only
        ("#2001", 1, "Kettle", None, 1, d("35.00"), d("35.00"), "USD", 2),
        ("#2001", 2, "Tea Sampler", None, 1, d("15.00"), d("15.00"), "USD", 3),
    ]
    orders = query(
        settings.build_db,
        "select order_id, status, amount, discount_amount, shipping_amount, tax_amount, "
        "refunded_amount from raw.orders order by 1",
    )
    # By hand from the export (Subtotal, Discount Amount, Shipping, Taxes, Total,
    # Refunded Amount): lines - discount + shipping + tax - refunds = amount, where
    # the amount nets the refund (partially refunded: completed); a fully refunded
    # or cancelled order keeps its Total as amount, its refund the whole of it.
    #   #1001: 18 + 60 + 14 = 92 - 0 + 5 + 3.68 - 0     = 100.68
    #   #1002: 40           - 0 + 5 + 0   (refunded 45) =  45.00
    #   #1003: 55 + 20 = 75 - 0 + 5 + 0   - 20          =  60.00
    #   #1004: 30           - 0 + 0 + 0   (cancelled)   =  30.00
    #   #1005: 18           - 0 + 5 + 0   (refunded 23) =  23.00
    #   #1006: 60           - 0 + 0 + 0   - 0           =  60.00
    #   #2001: 35 + 15      (empty shipping and taxes)  =  50.00 (refunded 50)
    assert orders == [
        ("#1001", "completed", d("100.68"), d("0"), d("5"), d("3.68"), d("0")),
        ("#1002", "refunded", d("45"), d("0"), d("5"), d("0"), d("45")),
        ("#1003", "completed", d("60"), d("0"), d("5"), d("0"), d("20")),
        ("#1004", "cancelled", d("30"), d("0"), d("0"), d("0"), d("0")),
        ("#1005", "cancelled", d("23"), d("0"), d("5"), d("0"), d("23")),
        ("#1006", "completed", d("60"), d("0"), d("0"), d("0"), d("0")),
        ("#2001", "refunded", d("50"), None, None, None, d("50")),
    ]
    totals: dict[str, Decimal] = {}
    for order_id, *_, line_amount, _currency, _line in lines:
        totals[order_id] = totals.get(order_id, Decimal(0)) + line_amount
    for order_id, status, amount, discount, shipping, tax, refunded in orders:
        netted = refunded if status == "completed" else 0
        parts = (discount or 0, shipping or 0, tax or 0)
        assert totals[order_id] - parts[0] + parts[1] + parts[2] - netted == amount, order_id
    # one file, two sources: a manifest row each, each conserving its own rows
    assert manifest(settings, "orders") == [
        ("shopify/shopify_orders_export.csv", "loaded", 6, 6, 0, 0),
        ("shopify/shopify_refunded_order.csv", "loaded", 1, 1, 0, 0),
    ]
    assert manifest(settings, "order_lines") == [
        ("shopify/shopify_orders_export.csv", "loaded", 9, 9, 0, 0),
        ("shopify/shopify_refunded_order.csv", "loaded", 2, 2, 0, 0),
    ]
    for source in ("orders", "order_lines"):
        assert_conserved(settings.build_db, source)
    # a rerun reads neither again
    summary = ingest(
        settings.build_db, settings.landing_dir, "r2", config=load(overrides=SHOPIFY), salt=SALT
    )
    assert summary.files_loaded == 0 and len(manifest(settings, "order_lines")) == 2


def test_a_bad_shopify_line_is_quarantined_by_order_lines_while_its_order_loads(settings):
    text = (CORPUS / "shopify_refunded_order.csv").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # the Tea Sampler line (file line 3) with a quantity of "two"
    lines[2] = lines[2].replace(",1,Tea Sampler,", ",two,Tea Sampler,")
    (settings.landing_dir / "shopify").mkdir()
    (settings.landing_dir / "shopify/refund.csv").write_text("".join(lines), encoding="utf-8")
    ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY), salt=SALT)
    assert query(
        settings.build_db,
        'select source, file_name, line_number, "column", reason from audit.quarantine',
    ) == [("order_lines", "shopify/refund.csv", 3, "quantity", "not an integer")]
    assert manifest(settings, "orders") == [("shopify/refund.csv", "loaded", 1, 1, 0, 0)]
    assert manifest(settings, "order_lines") == [("shopify/refund.csv", "loaded", 2, 1, 1, 0)]


def test_recover_rebuilds_both_sources_of_a_file_read_twice(settings, monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    shutil.copyfile(PROJECT_ROOT / "config/presets.yml", config / "presets.yml")
    (config / "sources.yml").write_text(
        "sources:\n"
        "  orders: {folder: shopify, preset: shopify_orders}\n"
        "  order_lines: {folder: shopify, preset: shopify_order_lines}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(config))
    monkeypatch.setenv("CUSTOMER_KEY_SALT", SALT)
    land_shopify(settings.landing_dir)
    archive.store_landing(settings, "r1")
    ingest(settings.build_db, settings.landing_dir, "r1")
    before = {
        table: query(settings.build_db, f"select * from raw.{table} order by all")
        for table in ("orders", "order_lines")
    }
    files = query(
        settings.build_db,
        "select source, file_name, sha256, status, rows_loaded, run_id "
        "from audit.ingested_files order by all",
    )
    assert len(files) == 4  # two files, each read by two sources
    # one archived copy per file, however many sources read it
    assert sorted(e["path"] for e in archive.read_manifest(archive.archive_dir(settings))) == [
        "shopify/shopify_orders_export.csv",
        "shopify/shopify_refunded_order.csv",
    ]
    shutil.rmtree(settings.landing_dir / "shopify")  # the files leave the landing folder
    settings.build_db.write_bytes(b"\0" * 4096)  # damaged
    outcome = archive.recover(settings)
    assert (outcome.runs, outcome.files, outcome.left_out) == (1, 2, [])
    assert outcome.rows["orders"] == 7 and outcome.rows["order_lines"] == 11
    for table, rows in before.items():
        assert query(settings.build_db, f"select * from raw.{table} order by all") == rows
    assert (
        query(
            settings.build_db,
            "select source, file_name, sha256, status, rows_loaded, run_id "
            "from audit.ingested_files order by all",
        )
        == files
    )


def test_the_quarantine_gate_names_each_source_of_a_shared_file_with_its_own_reasons(
    settings, tmp_path
):
    """A Shopify file read by orders and order_lines, over MAX_QUARANTINE_PCT in both:
    each failing row names its source and only that source's quarantine reasons."""
    text = (CORPUS / "shopify_refunded_order.csv").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].replace(",50.00,,,,2024-04-02", ",fifty,,,,2024-04-02")  # Total
    lines[2] = lines[2].replace(",1,Tea Sampler,", ",two,Tea Sampler,")  # Lineitem quantity
    (settings.landing_dir / "shopify").mkdir()
    (settings.landing_dir / "shopify/refund.csv").write_text("".join(lines), encoding="utf-8")
    folder = tmp_path / "expectations" / "raw"
    folder.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "expectations/raw/ingested_files.json", folder / "f.json")
    settings = replace(settings, expectations_dir=tmp_path / "expectations")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute(
            "insert into audit.pipeline_runs (run_id, logical_date, started_at, status) "
            "values ('r1', '2024-06-30', '2024-07-01 01:00', 'running')"
        )
    ingest(settings.build_db, settings.landing_dir, "r1", config=load(overrides=SHOPIFY), salt=SALT)
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "raw")
    failing = json.loads(str(error.value).split("failing rows: ", 1)[1].splitlines()[0])
    # orders: 1 record, quarantined (Total "fifty"); order_lines: 1 of 2 lines ("two")
    assert sorted(
        (row["source"], row["quarantined_pct"], row["top_reasons"]) for row in failing
    ) == [
        ("order_lines", 50.0, "quantity: not an integer (1)"),
        ("orders", 100.0, "amount: unparseable number (1)"),
    ]


@pytest.mark.parametrize(
    "batch_bytes", [1, checking.BATCH_BYTES], ids=["file_by_file", "one_batch"]
)
def test_files_checked_batch_by_batch_load_as_in_one_batch(settings, monkeypatch, batch_bytes):
    # With a 1-byte batch, each file is landed, checked and dropped on its own: a later
    # file's rows still replace an earlier batch's orders and keys, and the counts,
    # the quarantine and the line numbers are those of one batch.
    monkeypatch.setattr(checking, "BATCH_BYTES", batch_bytes)
    write_csv(
        settings.landing_dir / "order_lines/a.csv",
        LINES,
        [
            ["A1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],  # 2: A1 replaced by b.csv
            ["A1", "2", "SKU-2", "Beans", "", "1", "12", "12", ""],  # 3: A1 replaced
            ["B1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],  # 4: B1 replaced
            ["A3", "1", "SKU-1", "Mug", "", "-1", "10", "10", ""],  # 5: negative quantity
            ["A4", "1", "SKU-1", "Mug", "", "1", "10", "10", "", "extra"],  # 6: malformed
        ],
    )
    write_csv(
        settings.landing_dir / "order_lines/b.csv",
        LINES,
        [
            ["A1", "1", "SKU-9", "Kettle", "", "1", "30", "30", ""],  # 2: loaded
            ["B1", "1", "SKU-1", "Mug", "", "1", "10", "10", ""],  # 3: line 4 wins
            ["B1", "1", "SKU-2", "Beans", "", "1", "12", "12", ""],  # 4: loaded
        ],
    )
    write_csv(
        settings.landing_dir / "order_lines/c.csv",
        LINES,
        [["C1", "1", "SKU-3", "Tea", "", "2", "4", "8", ""]],  # 2: loaded
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(
        settings.build_db,
        "select order_id, line_number, product_id, _file_name, _line_number "
        "from raw.order_lines order by 1, 2",
    ) == [
        ("A1", 1, "SKU-9", "order_lines/b.csv", 2),
        ("B1", 1, "SKU-2", "order_lines/b.csv", 4),
        ("C1", 1, "SKU-3", "order_lines/c.csv", 2),
    ]
    assert query(
        settings.build_db,
        "select file_name, line_number, \"column\", starts_with(reason, 'malformed CSV record') "
        "or reason = 'negative value' from audit.quarantine order by 1, 2",
    ) == [("order_lines/a.csv", 5, "quantity", True), ("order_lines/a.csv", 6, None, True)]
    # a.csv: 5 read = 0 loaded + 2 quarantined + 3 replaced (A1 twice, B1);
    # b.csv: 3 read = 2 loaded + 1 duplicate (its line 3); c.csv: 1 loaded
    assert manifest(settings, "order_lines") == [
        ("order_lines/a.csv", "loaded", 5, 0, 2, 3),
        ("order_lines/b.csv", "loaded", 3, 2, 0, 1),
        ("order_lines/c.csv", "loaded", 1, 1, 0, 0),
    ]
    assert_conserved(settings.build_db, "order_lines")
