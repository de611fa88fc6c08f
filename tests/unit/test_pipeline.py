"""The pipeline's run discipline on a real build database: a run overtaken by a newer
run stops with a clear, non-retryable error, and dbt test results become checks."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from customer_marts import pipeline
from customer_marts.transform import DbtOutcome, check_results


def test_a_step_of_an_overtaken_run_is_refused_and_the_newer_run_goes_on(settings):
    older = pipeline.start_run(settings, date(2025, 6, 1))
    newer = pipeline.start_run(settings, date(2025, 6, 2))
    with pytest.raises(pipeline.RunSuperseded) as error:
        with pipeline.step(settings, older, "ingest"):
            pytest.fail("the step body must not run")
    message = str(error.value)
    assert newer.run_id in message and "--max-active-runs 1" in message
    assert isinstance(error.value, pipeline.DATA_ERRORS)  # never retried
    with pipeline.step(settings, newer, "ingest"):
        pass
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        runs = dict(con.execute("select run_id, status from audit.pipeline_runs").fetchall())
    # the newer run's start recorded the older one as interrupted; the older one's
    # refused step did not bring it back to `running`
    assert runs == {older.run_id: "failed", newer.run_id: "running"}


def test_dbt_test_results_become_checks_of_layer_dbt():
    outcome = DbtOutcome(success=False)
    outcome.results = [
        {"unique_id": "model.customer_marts.dim_customers", "status": "success", "failures": None},
        {
            "unique_id": "test.customer_marts.not_null_dim_customers_customer_id.5f1a",
            "status": "pass",
            "failures": 0,
        },
        {
            "unique_id": "test.customer_marts.within_range_kpis_by_period_nps.9c2b",
            "status": "warn",
            "failures": 2,
            "details": "Got 2 results, configured to warn if != 0",
        },
        {
            "unique_id": "unit_test.customer_marts.nps_by_period.nps_is_30",
            "status": "fail",
            "failures": 1,
            "details": "actual differs from expected",
        },
        {"unique_id": "test.customer_marts.unique_x.1", "status": "skipped", "failures": None},
    ]
    checks = [
        (c.layer, c.suite, c.check, c.status, c.observed_value) for c in check_results(outcome)
    ]
    assert checks == [
        ("dbt", "dbt data tests", "not_null_dim_customers_customer_id", "passed", "0"),
        ("dbt", "dbt data tests", "within_range_kpis_by_period_nps", "warned", "2"),
        ("dbt", "dbt unit tests", "nps_by_period.nps_is_30", "failed", "1"),
    ]
