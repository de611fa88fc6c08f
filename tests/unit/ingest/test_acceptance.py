"""Ingestion acceptance, through the real pipeline (`pipeline.run_all`: ingest,
Great Expectations gate, dbt build, publish) on the small generated demo:
- a run after one new daily file ingests only that file;
- 0.5 % bad rows in that file: the run succeeds and the rows are in audit.quarantine;
- a later file lacking `amount` fails the run by name and leaves published.duckdb
  byte-identical."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from customer_marts.ingest.run import IngestError
from customer_marts.runs.pipeline import run_all
from tests.conftest import (
    copy_warehouse,
    dbt_tests_left_out,
    file_digest,
    make_settings,
    write_csv,
)

pytestmark = pytest.mark.slow

HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]
NEW_DAY = date(2026, 1, 1)  # the day after the demo data's last day
BAD_LINE = 101  # line 101 of the new file: the 100th of its 200 rows


def published(settings, sql: str, params=None):
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def settings(small_demo, published_demo, tmp_path_factory):
    """The demo's two years, ingested, built and published by an earlier run (a copy of
    the session's published_demo warehouse, on a copy of its landing files)."""
    settings = make_settings(tmp_path_factory.mktemp("ingest_acceptance"))
    shutil.copytree(small_demo, settings.landing_dir, dirs_exist_ok=True)
    copy_warehouse(published_demo, settings.warehouse_dir)
    return settings


@pytest.fixture(scope="module")
def earlier_run(settings) -> str:
    [(run_id,)] = published(settings, "select run_id from audit.pipeline_runs")
    return run_id


@pytest.fixture(scope="module")
def daily_run(settings, earlier_run):
    """One new daily file of 200 orders by existing customers, one with a negative amount:
    the next night (its subject is ingestion: dbt's data and unit tests are left out)."""
    rows = [
        [f"N{i:05d}", f"C{i % 50 + 1:07d}", f"{NEW_DAY}T{i % 24:02d}:15:00Z", "42.50", "completed"]
        for i in range(200)
    ]
    rows[BAD_LINE - 2][3] = "-42.50"  # the header is line 1, row i is line i + 2
    write_csv(settings.landing_dir / f"orders/orders_{NEW_DAY}.csv", HEADER, rows)
    with dbt_tests_left_out():
        return run_all(settings, NEW_DAY)


def test_a_run_after_one_new_daily_file_ingests_only_that_file(settings, earlier_run, daily_run):
    assert published(
        settings,
        "select source, file_name, status, rows_read, rows_loaded, rows_quarantined, "
        "rows_duplicate from audit.ingested_files where run_id = ?",
        [daily_run.run_id],
    ) == [("orders", f"orders/orders_{NEW_DAY}.csv", "loaded", 200, 199, 1, 0)]
    # every other file was ingested by the earlier run only
    assert published(
        settings, "select distinct run_id from audit.ingested_files order by 1"
    ) == sorted([(earlier_run,), (daily_run.run_id,)])


def test_half_a_percent_bad_rows_run_to_success_with_the_rows_in_quarantine(settings, daily_run):
    assert published(
        settings, "select status from audit.pipeline_runs where run_id = ?", [daily_run.run_id]
    ) == [("success",)]
    assert published(
        settings,
        'select file_name, line_number, "column", reason, raw_record like \'%"-42.50"%\' '
        "from audit.quarantine where run_id = ?",
        [daily_run.run_id],
    ) == [(f"orders/orders_{NEW_DAY}.csv", BAD_LINE, "amount", "negative value", True)]
    # the 199 good orders reached the marts, the bad one did not
    assert published(
        settings, "select count(*) from marts.fct_orders where order_id like 'N%'"
    ) == [(199,)]


def test_a_file_lacking_amount_fails_by_name_and_keeps_the_published_file(settings, daily_run):
    before = file_digest(settings.published_db)
    write_csv(
        settings.landing_dir / "orders/orders_2026-01-02.csv",
        ["order_id", "customer_id", "ordered_at", "status"],
        [["X1", "C0000001", "2026-01-02T10:00:00Z", "completed"]],
    )
    with pytest.raises(IngestError) as failure:
        run_all(settings, date(2026, 1, 2))
    message = str(failure.value)
    assert "orders/orders_2026-01-02.csv" in message
    assert "missing required column(s) amount" in message
    assert "columns found: order_id, customer_id, ordered_at, status" in message
    assert file_digest(settings.published_db) == before
