"""The pipeline's run discipline on a real build database: a run overtaken by a newer
run stops with a clear, non-retryable error, and dbt test results become checks."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import pytest

from customer_marts.runs import pipeline
from customer_marts.transform.runner import DbtOutcome, check_results


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


# A run whose `ingest` step is working (sleeping) in another process.
LIVE_STEP = """
import time
from datetime import date
from customer_marts.runs import pipeline
from customer_marts.config import Settings
settings = Settings.from_env()
run = pipeline.start_run(settings, date(2025, 6, 1))
with pipeline.step(settings, run, "ingest"):
    print(run.run_id, flush=True)
    time.sleep(600)
"""


def records(settings) -> dict[str, tuple]:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        rows = con.execute(
            "select run_id, status, failed_step, message from audit.pipeline_runs"
        ).fetchall()
    return {run_id: rest for run_id, *rest in rows}


def test_a_live_run_is_never_recorded_as_interrupted(settings):
    """A start while another run's step works records nothing and is retried; once that
    process is gone (kill -9), the next start records the run as interrupted."""
    child = subprocess.Popen(
        [sys.executable, "-c", LIVE_STEP], stdout=subprocess.PIPE, text=True
    )  # the settings fixture put LANDING_DIR and WAREHOUSE_DIR in the environment
    try:
        live = child.stdout.readline().strip()
        assert live, "the live run did not start"
        with pytest.raises(pipeline.RunInProgress) as refused:
            pipeline.start_run(settings, date(2025, 6, 2))
        assert live in str(refused.value) and "step ingest" in str(refused.value)
        assert not isinstance(refused.value, pipeline.DATA_ERRORS)  # retried: it ends
        assert records(settings) == {live: ["running", "ingest", None]}
        # a step of another run is refused the same way while it works
        other = pipeline.RunInfo("20000101T000000000000Z", "2025-06-02")
        with pytest.raises(pipeline.RunInProgress):
            with pipeline.step(settings, other, "validate_raw"):
                pytest.fail("the step body must not run")
    finally:
        child.kill()
        child.wait()
    newer = pipeline.start_run(settings, date(2025, 6, 2))
    runs = records(settings)
    assert runs[newer.run_id] == ["running", None, None]
    status, step, message = runs[live]
    assert (status, step) == ("failed", "ingest")
    assert message.startswith("interrupted in step ingest") and newer.run_id in message


def test_the_record_lists_the_steps_that_completed_in_order(settings):
    run = pipeline.start_run(settings, date(2025, 6, 1))
    for name in ("ingest", "validate_raw", "ingest"):  # a step run twice counts once
        with pipeline.step(settings, run, name):
            pass
    with pytest.raises(RuntimeError):
        with pipeline.step(settings, run, "dbt_build"):
            raise RuntimeError("dbt failed")
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        record = con.execute(
            "select status, failed_step, completed_steps from audit.pipeline_runs"
        ).fetchone()
    assert record == ("failed", "dbt_build", "ingest,validate_raw")


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
