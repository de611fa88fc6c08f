"""audit.changed_customers on real ingests: every customer whose raw rows a run wrote or
removed, per source: new rows, a re-delivery that moves an order to another customer
(both), a corrected file under the same name (the customers of the rows it drops), an
order line through its order's customer, a response without a customer; nothing for a
run that loads nothing."""

from __future__ import annotations

import duckdb

from customer_marts.ingest.run import ingest
from tests.conftest import write_csv

ORDERS = ["order_id", "customer_id", "ordered_at", "amount", "status"]
LINES = ["order_id", "line_number", "product_id", "quantity", "line_amount"]
SURVEYS = ["response_id", "responded_at", "customer_id", "nps_score"]
SENDS = ["send_id", "customer_id", "sent_at"]


def changed(settings, run_id: str) -> set[tuple[str, str | None]]:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        rows = con.execute(
            "select source, customer_id from audit.changed_customers where run_id = ?",
            [run_id],
        ).fetchall()
    assert len(rows) == len(set(rows))  # one row per run, source and customer
    return set(rows)


def test_every_customer_whose_rows_change_is_recorded_once_per_run_and_source(settings):
    landing = settings.landing_dir
    write_csv(
        landing / "orders/a.csv",
        ORDERS,
        [
            ["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"],
            ["o2", "c2", "2025-01-01T11:00:00Z", "20", "completed"],
            ["o3", "c2", "2025-01-01T12:00:00Z", "5", "cancelled"],
        ],
    )
    # o9 is not delivered: its line has no customer yet
    write_csv(
        landing / "order_lines/l1.csv", LINES, [["o1", 1, "p", 1, "10"], ["o9", 1, "p", 1, "3"]]
    )
    write_csv(
        landing / "surveys/s1.csv",
        SURVEYS,
        [["s1", "2025-01-02T10:00:00Z", "c3", 9], ["s2", "2025-01-02T11:00:00Z", "", 3]],
    )
    write_csv(landing / "survey_sends/d1.csv", SENDS, [["d1", "c6", "2025-01-01T09:00:00Z"]])
    summary = ingest(settings.build_db, landing, "r1")
    expected = {
        ("orders", "c1"),
        ("orders", "c2"),
        ("order_lines", "c1"),
        ("surveys", "c3"),
        ("surveys", None),
        ("survey_sends", "c6"),
    }
    assert changed(settings, "r1") == expected
    assert summary.customers_changed == len(expected)

    # b.csv moves o2 from c2 to c4 (both change) and brings a line of o2: c4's now
    write_csv(
        landing / "orders/b.csv", ORDERS, [["o2", "c4", "2025-01-01T11:00:00Z", "20", "completed"]]
    )
    write_csv(landing / "order_lines/l2.csv", LINES, [["o2", 1, "p", 2, "20"]])
    ingest(settings.build_db, landing, "r2")
    assert changed(settings, "r2") == {("orders", "c2"), ("orders", "c4"), ("order_lines", "c4")}

    # a.csv corrected under its name: o1 and o3 are gone (c1 and c2 change), o5 is new;
    # a.csv's o2 was superseded by b.csv already, so c4 does not change
    write_csv(
        landing / "orders/a.csv", ORDERS, [["o5", "c5", "2025-01-03T10:00:00Z", "7", "completed"]]
    )
    ingest(settings.build_db, landing, "r3")
    assert changed(settings, "r3") == {("orders", "c1"), ("orders", "c2"), ("orders", "c5")}

    # nothing new: nothing changes
    assert ingest(settings.build_db, landing, "r4").customers_changed == 0
    assert changed(settings, "r4") == set()
