"""The Great Expectations gate on real DuckDB tables with the project's own suites: a
failing check raises GateFailed naming the check and its failing values, warnings are
recorded without blocking, and run parameters (freshness, volume) reach the suites."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import replace
from datetime import date

import duckdb
import pytest

from customer_marts.config import PROJECT_ROOT
from customer_marts.gate.suites import substitute
from customer_marts.gate.validate import GateFailed, run_suites, validate
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect
from tests.conftest import data_docs_statuses

AS_OF = date(2025, 6, 30)


def use_suites(settings, tmp_path, *names: str):
    """Settings whose expectations folder holds only the named suites of the project."""
    folder = tmp_path / "expectations"
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / "expectations" / name, target)
    return replace(settings, expectations_dir=folder)


def record_run(con, run_id: str, status: str = "running", started: str = "2025-07-01 01:00"):
    con.execute(
        "insert into audit.pipeline_runs (run_id, logical_date, started_at, status) "
        "values (?, ?, ?, ?)",
        [run_id, AS_OF, started, status],
    )


def statuses(settings, suite: str) -> dict[str, str]:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return dict(
            con.execute(
                'select "check", status from audit.check_results where suite = ?', [suite]
            ).fetchall()
        )


def test_substitute_keeps_types_of_whole_parameters_and_formats_the_rest():
    spec = {"kwargs": {"min_value": "${n}", "query": "x < '${day}'", "other": ["${n}", 3]}}
    assert substitute(spec, {"n": 5, "day": "2025-01-01"}) == {
        "kwargs": {"min_value": 5, "query": "x < '2025-01-01'", "other": [5, 3]}
    }


def test_failing_mart_checks_block_with_check_names_and_values(settings, tmp_path):
    settings = use_suites(settings, tmp_path, "marts/cohort_retention.json")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
        con.execute("create schema marts")
        # one customer, but the monthly cohort sizes add up to 2, and one cell is 150 %
        con.execute(
            "create table marts.cohort_retention as select 'month' as grain, "
            "'overall' as dimension, date '2025-01-01' as cohort_start, "
            "unnest([0, 1]) as period_number, 1 as cohort_size, "
            "unnest([100.0, 150.0]) as retention_pct, 100.0 as revenue_retention_pct "
            "union all select 'month', 'overall', date '2025-02-01', 0, 1, 100.0, 100.0"
        )
        con.execute("create table marts.dim_customers as select 'c1' as customer_id")
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "marts")
    message = str(error.value)
    assert "marts.cohort_retention: expect_column_values_to_be_between(retention_pct)" in message
    assert "1 of 3 rows unexpected" in message and 'failing values: ["150.0"]' in message
    assert "cohort_sizes_sum_to_customers" in message
    assert '"customers_in_cohorts": 2' in message  # the failing row of the query check
    checks = statuses(settings, "marts.cohort_retention")
    assert checks["expect_column_values_to_be_between(retention_pct)"] == "failed"
    assert checks["expect_column_values_to_be_between(cohort_size)"] == "passed"
    assert checks["table_not_empty"] == "passed"
    assert (settings.warehouse_dir / "quality" / "index.html").exists()  # Data Docs built


def _raw_orders(con, newest: str, rows: int = 10):
    con.execute(
        "insert into raw.orders (order_id, customer_id, ordered_at, amount, status) "
        "select 'o' || i, 'c', ?::timestamp - (i * interval 1 hour), 10, 'completed' "
        "from range(?) t(i)",
        [newest, rows],
    )


def test_stale_orders_fail_freshness(settings, tmp_path):
    settings = use_suites(settings, tmp_path, "raw/orders.json")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
        # newest order 2025-06-20, ten days before the as-of date (FRESHNESS_DAYS = 3);
        # an order after the as-of date does not make the data fresh
        _raw_orders(con, "2025-06-20 12:00")
        con.execute(
            "insert into raw.orders (order_id, customer_id, ordered_at, amount, status) "
            "values ('future', 'c', '2025-07-05 10:00', 1, 'completed')"
        )
    with pytest.raises(GateFailed, match="raw.orders: freshness") as error:
        validate(settings, "r1", "raw")
    # what a person needs: the newest order, the as-of date, the limit and its variable
    # (2025-06-20 to 2025-06-30: 10 days), not the number of failing rows
    explained = (
        "raw.orders: freshness: the newest order on or before the as-of date 2025-06-30 is "
        "from 2025-06-20 12:00:00 (10 days old); FRESHNESS_DAYS allows at most 3 days"
    )
    assert explained in str(error.value)
    assert "observed" not in str(error.value)
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        recorded = con.execute(
            "select details from audit.check_results where \"check\" = 'freshness'"
        ).fetchone()[0]
    assert recorded == explained.removeprefix("raw.orders: freshness: ")


def test_freshness_names_the_configured_limit_and_a_missing_newest_order(settings, tmp_path):
    settings = replace(use_suites(settings, tmp_path, "raw/orders.json"), freshness_days=7)
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
        # the only order is after the as-of date: there is no newest order to show
        _raw_orders(con, "2025-07-05 10:00", rows=1)
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "raw")
    assert (
        "raw.orders: freshness: the newest order on or before the as-of date 2025-06-30 is "
        "from none (no order on or before it); FRESHNESS_DAYS allows at most 7 days"
    ) in str(error.value)


def test_line_items_of_an_order_no_delivery_holds_warn_in_the_raw_gate(settings, tmp_path):
    settings = use_suites(settings, tmp_path, "raw/order_lines.json")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
        _raw_orders(con, "2025-06-29 12:00", rows=1)  # order o0 only
        con.execute(
            "insert into raw.order_lines (order_id, line_number, product_id, quantity, "
            "line_amount) values ('o0', 1, 'p', 1, 10), ('ghost', 1, 'p', 1, 5), "
            "('ghost', 2, 'p', 2, 6)"
        )
    results = validate(settings, "r1", "raw")  # a warning: it does not raise
    orphans = [r for r in results if r.check == "lines_without_order"]
    # the two lines of 'ghost', an order in no delivery of orders
    assert [(r.status, r.observed_value) for r in orphans] == [("warned", "2")]


def test_stale_survey_responses_warn_saying_how_stale(settings, tmp_path):
    settings = use_suites(settings, tmp_path, "raw/surveys.json")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
        # newest response 2025-06-01 09:30: 29 days before the as-of date 2025-06-30
        con.execute(
            "insert into raw.surveys (response_id, responded_at, nps_score) "
            "values ('s1', '2025-06-01 09:30', 9), ('s2', '2025-05-20 10:00', 3)"
        )
    results = validate(settings, "r1", "raw")  # a warning: it does not raise
    freshness = [r for r in results if r.check == "freshness"]
    assert [r.status for r in freshness] == ["warned"]
    assert freshness[0].describe() == (
        "raw.surveys: freshness: the newest survey response on or before the as-of date "
        "2025-06-30 is from 2025-06-01 09:30:00 (29 days old); FRESHNESS_DAYS allows at most "
        "3 days"
    )


def test_volume_change_beyond_tolerance_warns_but_does_not_block(settings, tmp_path):
    settings = use_suites(settings, tmp_path, "raw/orders.json")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r0", status="success", started="2025-06-30 01:00")
        _raw_orders(con, "2025-06-30 12:00", rows=100)
    validate(settings, "r0", "raw")  # first run: no previous count, no bounds
    assert statuses(settings, "raw.orders")["volume_vs_previous_run"] == "passed"
    with connect(settings.build_db) as con:
        record_run(con, "r1")
        con.execute("delete from raw.orders where order_id not in ('o0', 'o1', 'o2')")
    results = validate(settings, "r1", "raw")  # 3 rows against 100 (tolerance 50 %)
    volume = [r for r in results if r.check == "volume_vs_previous_run"]
    assert [(r.status, r.observed_value) for r in volume] == [("warned", "3")]
    # this count, the previous one, the tolerance and its variable: 100 -/+ 50 % allows
    # int(50.0) = 50 to int(150.0) + 1 = 151 rows
    explained = (
        "3 rows; the previous successful run had 100, and VOLUME_TOLERANCE_PCT = 50.0 % "
        "allows 50 to 151"
    )
    assert volume[0].describe() == f"raw.orders: volume_vs_previous_run: {explained}"
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        recorded = con.execute(
            "select observed_value, details from audit.check_results "
            "where run_id = 'r1' and \"check\" = 'volume_vs_previous_run'"
        ).fetchone()
    assert json.loads(recorded[0]) == 3  # the next run's bounds are taken from it
    assert recorded[1] == explained


def test_quarantine_share_over_the_limit_fails_in_ge_and_data_docs(settings, tmp_path):
    """MAX_QUARANTINE_PCT (1 % here) per file of this run: 50 of 100 rows fail the gate
    with the file, the share and the top reasons; 1 of 100 does not; older runs and
    skipped files do not count. The failure is in GE's Data Docs."""
    settings = use_suites(settings, tmp_path, "raw/ingested_files.json")
    files = [  # file, rows read, rows quarantined, status, run
        ("orders/bad.csv", 100, 50, "loaded", "r1"),
        ("orders/fine.csv", 100, 1, "loaded", "r1"),
        ("orders/old.csv", 100, 90, "loaded", "r0"),
        ("orders/again.csv", 0, 0, "skipped", "r1"),
    ]
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
    validate(settings, "r1", "raw")  # nothing ingested yet: passes
    assert statuses(settings, "audit.ingested_files") == {"quarantined_rows_pct": "passed"}
    with connect(settings.build_db) as con:
        for name, read, quarantined, status, run in files:
            con.execute(
                "insert into audit.ingested_files (source, file_name, rows_read, "
                "rows_quarantined, status, run_id) values ('orders', ?, ?, ?, ?, ?)",
                [name, read, quarantined, status, run],
            )
            con.execute(
                'insert into audit.quarantine (source, file_name, line_number, "column", '
                "reason, run_id) select 'orders', ?, i + 2, "
                "case when i < 30 then 'amount' else 'ordered_at' end, "
                "case when i < 30 then 'negative value' else 'not a timestamp' end, ? "
                "from range(?) t(i)",
                [name, run, quarantined],
            )
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "raw")
    message = str(error.value)
    assert "audit.ingested_files: quarantined_rows_pct" in message
    failing = json.loads(message.split("failing rows: ", 1)[1].splitlines()[0])
    assert failing == [
        {
            "source": "orders",
            "file_name": "orders/bad.csv",
            "rows_read": 100,
            "rows_quarantined": 50,
            "quarantined_pct": 50.0,
            "limit_pct": 1.0,
            "limit_set_by": "MAX_QUARANTINE_PCT",
            "top_reasons": "amount: negative value (30), ordered_at: not a timestamp (20)",
        }
    ]
    # the second validation of the run replaced the first one's results
    assert statuses(settings, "audit.ingested_files") == {"quarantined_rows_pct": "failed"}
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        recorded = con.execute("select count(*) from audit.check_results").fetchall()
    assert recorded == [(1,)]
    assert data_docs_statuses(settings.warehouse_dir, "audit/ingested_files") == [
        "Succeeded",
        "Failed",
    ]


def test_a_check_that_cannot_be_evaluated_fails_with_its_error(settings, tmp_path):
    folder = tmp_path / "expectations" / "raw"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text(
        json.dumps(
            {
                "name": "raw.orders",
                "meta": {"table": "raw.orders"},
                "expectations": [
                    {
                        "type": "unexpected_rows_expectation",
                        "kwargs": {"unexpected_rows_query": "select no_such_column from {batch}"},
                        "meta": {"check": "broken_query"},
                    }
                ],
            }
        )
    )
    settings = replace(settings, expectations_dir=tmp_path / "expectations")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        record_run(con, "r1")
    with pytest.raises(GateFailed) as error:
        validate(settings, "r1", "raw")
    assert "raw.orders: broken_query; error: " in str(error.value)
    assert "no_such_column" in str(error.value)


def tiny_suite(name: str, min_rows: int) -> dict:
    return {
        "name": f"marts.{name}",
        "meta": {"table": "marts.tiny"},
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": min_rows}}
        ],
    }


def test_a_gate_renders_the_data_docs_index_once_and_only_changed_suite_pages(
    settings, tmp_path, monkeypatch
):
    """Data Docs after each gate: one page per validation, the index once (not once per
    suite, each time reading every stored result), and a suite's page only when the
    suite changed or has none."""
    from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

    index_builds = []
    build_index = DefaultSiteIndexBuilder.build

    def counted(self, *args, **kwargs):  # GE's own index build, counted
        index_builds.append(self.site_name)
        return build_index(self, *args, **kwargs)

    monkeypatch.setattr(DefaultSiteIndexBuilder, "build", counted)
    folder = tmp_path / "expectations" / "marts"
    folder.mkdir(parents=True)

    def write_suites(a_min_rows: int) -> None:
        for name, min_rows in (("tiny_a", a_min_rows), ("tiny_b", 1)):
            (folder / f"{name}.json").write_text(json.dumps(tiny_suite(name, min_rows)))

    write_suites(1)
    settings = replace(settings, expectations_dir=tmp_path / "expectations")
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute("create schema marts")
        con.execute("create table marts.tiny as select range as id from range(3)")
    quality = settings.warehouse_dir / "quality"
    pages = {name: quality / "expectations" / "marts" / f"tiny_{name}.html" for name in "ab"}

    def written() -> dict[str, int]:
        return {name: page.stat().st_mtime_ns for name, page in pages.items()}

    def validation_pages() -> int:
        return len(list((quality / "validations").rglob("*.html")))

    run_suites(settings, "marts", AS_OF, "r1")
    assert index_builds == ["quality"]  # two suites, one index
    assert validation_pages() == 2
    first = written()
    time.sleep(0.01)
    run_suites(settings, "marts", AS_OF, "r2")  # the same suites
    assert index_builds == ["quality"] * 2
    assert validation_pages() == 4
    assert written() == first  # neither suite page was rendered again
    write_suites(3)  # tiny_a now needs 3 rows: its page changes, tiny_b's does not
    time.sleep(0.01)
    run_suites(settings, "marts", AS_OF, "r3")
    third = written()
    assert third["a"] != first["a"] and third["b"] == first["b"]
    text = " ".join(re.sub(r"<[^>]+>", " ", pages["a"].read_text()).split())
    assert "greater than or equal to 3 rows" in text
    index = (quality / "index.html").read_text()
    linked = set(re.findall(r"validations/marts/tiny_a/__none__/([0-9T.Z]+)/", index))
    assert len(linked) == 3  # every gate's page of tiny_a is in the index
