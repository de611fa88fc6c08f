"""The incremental models on two nights of one warehouse, as the pipeline runs them (its
start_run, ingest and dbt_build steps: the run record says which build completed), then
against a full build of the same files in a fresh warehouse.

Night 1 (as of 2025-01-10) loads three order files; night 2 (as of 2025-01-11) brings a
corrected delivery of one of them under the same name (c3's only order is gone), a new
file that refunds c1's first order, moves c2's only order to c4 and adds an order of
c1, and nothing for c5, whose order was delivered on night 1 but is dated 2025-01-11:
the moving as-of date alone makes it visible. Every expected row is worked out by hand
in the comments."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from customer_marts.ingest.run import ingest
from customer_marts.runs import pipeline
from customer_marts.transform.runner import run_dbt
from tests.conftest import make_settings, write_csv

pytestmark = pytest.mark.dbt_build
ORDERS = ["order_id", "customer_id", "ordered_at", "amount", "status"]
NIGHT_1, NIGHT_2 = date(2025, 1, 10), date(2025, 1, 11)
# the incremental models and what they are built from, with only their own tests
SELECT = ("--select", "+fct_orders", "--indirect-selection", "cautious")
INCREMENTAL = ["intermediate.int_orders_numbered", "marts.fct_orders"]


FIRST_FILE = [
    ["o1", "c1", "2025-01-02T10:00:00Z", "10", "completed"],
    ["o2", "c1", "2025-01-05T10:00:00Z", "20", "completed"],
    ["o3", "c2", "2025-01-03T10:00:00Z", "30", "completed"],
    ["o4", "c3", "2025-01-04T10:00:00Z", "40", "completed"],
]


def land_night_1(landing):
    write_csv(landing / "orders/2025-01-09.csv", ORDERS, FIRST_FILE)
    write_csv(
        landing / "orders/2025-01-10.csv",
        ORDERS,
        [["o7", "c6", "2025-01-10T08:00:00Z", "70", "completed"]],
    )
    # delivered early: dated after night 1's as-of date, untouched on night 2
    write_csv(
        landing / "orders/early.csv",
        ORDERS,
        [["o5", "c5", "2025-01-11T09:00:00Z", "50", "completed"]],
    )


def land_night_2(landing):
    # the corrected delivery under the same name: o4 (c3's only order) is gone
    write_csv(landing / "orders/2025-01-09.csv", ORDERS, FIRST_FILE[:3])
    write_csv(
        landing / "orders/2025-01-11.csv",
        ORDERS,
        [
            ["o1", "c1", "2025-01-02T10:00:00Z", "10", "refunded"],  # status change
            ["o3", "c4", "2025-01-03T10:00:00Z", "30", "completed"],  # another customer
            ["o6", "c1", "2025-01-11T12:00:00Z", "60", "completed"],
        ],
    )


def night(settings, as_of: date) -> None:
    """One night as the pipeline runs it, the dbt build limited to SELECT."""
    run = pipeline.start_run(settings, as_of)
    pipeline.ingest(settings, run)
    with pipeline.step(settings, run, "dbt_build"):
        code, _ = run_dbt(settings, "build", as_of, *SELECT)
        assert code == 0, "dbt build failed: see the dbt log above"
    pipeline.finish_run(settings, run, "failed", message="the test stops after dbt_build")


def rows(database, table: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"select * from {table} order by all").fetchall()


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """(incremental warehouse after night 2, fresh full build of the same files)."""
    settings = make_settings(tmp_path_factory.mktemp("incremental"))
    land_night_1(settings.landing_dir)
    night(settings, NIGHT_1)
    land_night_2(settings.landing_dir)
    night(settings, NIGHT_2)
    reference = make_settings(tmp_path_factory.mktemp("full"))
    shutil.rmtree(reference.landing_dir)
    shutil.copytree(settings.landing_dir, reference.landing_dir)
    ingest(reference.build_db, reference.landing_dir, "reference")
    code, _ = run_dbt(reference, "build", NIGHT_2, *SELECT, "--full-refresh")
    assert code == 0
    return settings.build_db, reference.build_db


def test_night_2_recomputes_the_changed_customers(nights):
    incremental, _ = nights
    with duckdb.connect(str(incremental), read_only=True) as con:
        changed = con.execute(
            "select customer_id from intermediate.int_customers_changed order by 1"
        ).fetchall()
        orders = con.execute(
            "select order_id, customer_id, status, customer_order_number, is_first_order, "
            "cohort_month::varchar from marts.fct_orders order by order_id"
        ).fetchall()
    # ingested: the corrected file's old and new rows (c1, c2, c3), the new file's (c1,
    # c2 whose o3 it supersedes, c4); dated after night 1's as-of date: c1 (o6), c5 (o5)
    assert changed == [("c1",), ("c2",), ("c3",), ("c4",), ("c5",)]
    assert orders == [
        ("o1", "c1", "refunded", None, False, "2025-01-01"),
        ("o2", "c1", "completed", 1, True, "2025-01-01"),  # c1's first completed order now
        ("o3", "c4", "completed", 1, True, "2025-01-01"),  # c2 has no order left
        ("o5", "c5", "completed", 1, True, "2025-01-01"),  # visible from 2025-01-11
        ("o6", "c1", "completed", 2, False, "2025-01-01"),
        ("o7", "c6", "completed", 1, True, "2025-01-01"),  # c6 unchanged, kept as built
    ]


@pytest.mark.parametrize("table", INCREMENTAL)
def test_every_incremental_model_equals_a_full_build(nights, table):
    incremental, full = nights
    assert rows(incremental, table) == rows(full, table)
