"""The incremental models on two nights of one warehouse, as the pipeline runs them (its
start_run, ingest and dbt_build steps: the run record says which build completed), then
against a full build of the same files in a fresh warehouse.

Night 1 (as of 2025-01-10) loads three order files, their line items and survey
answers; night 2 (as of 2025-01-11) brings a corrected delivery of the first order file
and its lines under the same names (c3's only order is gone), a new file that refunds
c1's first order, moves c2's only order to c4 and adds an order of c1, an answer dated
back (c1's, before c1's first completed order) and one without a customer, and nothing
for c5, whose order was delivered on night 1 but is dated 2025-01-11: the moving as-of
date alone makes it visible. Every expected row is worked out by hand in the
comments."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from customer_marts.ingest.run import ingest
from customer_marts.runs import build_state, pipeline
from customer_marts.transform.runner import run_dbt
from customer_marts.warehouse import connect
from tests.conftest import make_settings, write_csv

pytestmark = pytest.mark.dbt_build
ORDERS = ["order_id", "customer_id", "ordered_at", "amount", "status"]
LINES = ["order_id", "line_number", "product_id", "quantity", "line_amount"]
SURVEYS = ["response_id", "responded_at", "customer_id", "nps_score"]
NIGHT_1, NIGHT_2 = date(2025, 1, 10), date(2025, 1, 11)
# the incremental models and what they are built from, with only their own tests
INCREMENTAL = [
    "intermediate.int_orders_numbered",
    "intermediate.int_customers_acquired",
    "intermediate.int_customer_periods_aggregated",
    "intermediate.int_customer_dimensions",
    "marts.fct_orders",
    "marts.fct_order_lines",
    "marts.fct_survey_responses",
]
MODELS = [f"+{table.split('.')[1]}" for table in INCREMENTAL]
SELECT = ("--select", *MODELS, "--indirect-selection", "cautious")
FIRST_LINES = [["o1", 1, "p1", 1, "10"], ["o3", 1, "p3", 1, "30"], ["o4", 1, "p4", 1, "40"]]


FIRST_FILE = [
    ["o1", "c1", "2025-01-02T10:00:00Z", "10", "completed"],
    ["o2", "c1", "2025-01-05T10:00:00Z", "20", "completed"],
    ["o3", "c2", "2025-01-03T10:00:00Z", "30", "completed"],
    ["o4", "c3", "2025-01-04T10:00:00Z", "40", "completed"],
]


def land_night_1(landing):
    write_csv(landing / "orders/2025-01-09.csv", ORDERS, FIRST_FILE)
    write_csv(landing / "order_lines/2025-01-09.csv", LINES, FIRST_LINES)
    write_csv(
        landing / "surveys/2025-01-10.csv",
        SURVEYS,
        [
            ["s1", "2025-01-08T10:00:00Z", "c2", 9],
            ["s2", "2025-01-09T10:00:00Z", "", 3],
            ["s3", "2025-01-10T10:00:00Z", "c6", 10],
        ],
    )
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
    write_csv(landing / "order_lines/2025-01-09.csv", LINES, FIRST_LINES[:2])
    write_csv(
        landing / "surveys/2025-01-11.csv",
        SURVEYS,
        [["s4", "2025-01-03T10:00:00Z", "c1", 6], ["s5", "2025-01-11T10:00:00Z", "", 8]],
    )
    write_csv(
        landing / "orders/2025-01-11.csv",
        ORDERS,
        [
            ["o1", "c1", "2025-01-02T10:00:00Z", "10", "refunded"],  # status change
            ["o3", "c4", "2025-01-03T10:00:00Z", "30", "completed"],  # another customer
            ["o6", "c1", "2025-01-11T12:00:00Z", "60", "completed"],
        ],
    )


def build(settings, run) -> None:
    """The run's dbt_build step as the pipeline runs it (the refresh decided and the
    build state recorded), the dbt build limited to SELECT."""
    with pipeline.step(settings, run, "dbt_build"):
        refresh = pipeline.decide_refresh(settings, run)
        full = ("--full-refresh",) if refresh.full else ()
        code, _ = run_dbt(settings, "build", run.as_of, *SELECT, *full)
        assert code == 0, "dbt build failed: see the dbt log above"
        with connect(settings.build_db) as con:
            build_state.record_end(con, run.run_id, "success")


def night(settings, as_of: date, rerun_ingest=None) -> None:
    """One night: start, ingest, dbt_build; with `rerun_ingest`, the same run's ingest
    and build again after it has landed more (its tasks cleared in Airflow)."""
    run = pipeline.start_run(settings, as_of)
    pipeline.ingest(settings, run)
    build(settings, run)
    if rerun_ingest:
        rerun_ingest(settings.landing_dir)
        pipeline.ingest(settings, run)
        build(settings, run)
    pipeline.finish_run(settings, run, "failed", message="the test stops after dbt_build")


def correct_early_file(landing):
    """After night 2's build: o5 (c5's, delivered early) corrected to 55."""
    write_csv(
        landing / "orders/early.csv",
        ORDERS,
        [["o5", "c5", "2025-01-11T09:00:00Z", "55", "completed"]],
    )


def rows(database, table: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"select * from {table} order by all").fetchall()


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """(incremental warehouse after night 2, fresh full build of the same files)."""
    settings = make_settings(tmp_path_factory.mktemp("incremental"))
    land_night_1(settings.landing_dir)
    night(settings, NIGHT_1)
    # c6 is in no change of night 2: a mark on its built row must survive an incremental
    # night (a full one would rebuild it); taken off again before the comparisons
    with connect(settings.build_db) as con:
        [(channel,)] = con.execute(
            "select channel from marts.fct_orders where customer_id = 'c6'"
        ).fetchall()
        con.execute("update marts.fct_orders set channel = 'mark' where customer_id = 'c6'")
    land_night_2(settings.landing_dir)
    night(settings, NIGHT_2, rerun_ingest=correct_early_file)
    with connect(settings.build_db) as con:
        [(marked,)] = con.execute(
            "select channel from marts.fct_orders where customer_id = 'c6'"
        ).fetchall()
        con.execute("update marts.fct_orders set channel = ? where customer_id = 'c6'", [channel])
    assert marked == "mark"
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
        lines = con.execute(
            "select order_id, customer_id, status, is_first_order from marts.fct_order_lines "
            "order by order_id"
        ).fetchall()
        responses = con.execute(
            "select response_id, customer_id, customer_lifecycle_stage_at_response, "
            "customer_cohort_month::varchar from marts.fct_survey_responses order by 1"
        ).fetchall()
    # ingested: the corrected file's old and new rows (c1, c2, c3) and lines (c1's o1,
    # c3's o4; o3 is c4's by then), the new file's (c1, c2 whose o3 it supersedes, c4),
    # the answers (c1, no customer); dated after night 1's as-of date: c1 (o6), c5 (o5);
    # after the build, the same run's second ingest (c5's corrected o5); nothing for c6
    assert changed == [("c1",), ("c2",), ("c3",), ("c4",), ("c5",), (None,)]
    assert orders == [
        ("o1", "c1", "refunded", None, False, "2025-01-01"),
        ("o2", "c1", "completed", 1, True, "2025-01-01"),  # c1's first completed order now
        ("o3", "c4", "completed", 1, True, "2025-01-01"),  # c2 has no order left
        ("o5", "c5", "completed", 1, True, "2025-01-01"),  # visible from 2025-01-11
        ("o6", "c1", "completed", 2, False, "2025-01-01"),
        ("o7", "c6", "completed", 1, True, "2025-01-01"),  # c6 unchanged, kept as built
    ]
    # o4's line went with the corrected delivery; o3's follows its order to c4
    assert lines == [("o1", "c1", "refunded", False), ("o3", "c4", "completed", True)]
    assert responses == [
        ("s1", "c2", None, None),  # c2 has no order left
        ("s2", None, None, None),
        ("s3", "c6", "new", "2025-01-01"),  # c6's first order that day
        ("s4", "c1", None, "2025-01-01"),  # before c1's first completed order (o2)
        ("s5", None, None, None),
    ]


@pytest.mark.parametrize("table", INCREMENTAL)
def test_every_incremental_model_equals_a_full_build(nights, table):
    incremental, full = nights
    assert rows(incremental, table) == rows(full, table)
