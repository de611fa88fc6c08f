"""
# customer_marts_nightly

Builds the Customer Marts for one **as-of date** and publishes them to
`$WAREHOUSE_DIR/published.duckdb` only if every quality check passes.

| task | what it does |
| --- | --- |
| `start_run` | records the run in `audit.pipeline_runs` (status `running`) |
| `ingest` | loads new or changed export files from `$LANDING_DIR` into `raw` (bad rows to `audit.quarantine`) |
| `validate_raw` | Great Expectations suites on `raw` + the quarantine-share check |
| `dbt_build` | `dbt build` (models and tests) with `as_of_date` = the run's logical date |
| `validate_marts` | Great Expectations suites on `marts` |
| `publish` | copies `marts` + `audit` into a new file, atomically renamed to `published.duckdb` |

**As-of date.** The run's logical date (UTC). With the default data-interval
timetable the run that starts just after midnight on D+1 has logical date D and
uses everything up to the end of D. A manual run without a logical date uses
the day before it was triggered.

**Failure.** A failed check, an unreadable file or a failing dbt test fails the
run with a message naming the check and its failing values; such failures are
not retried. `published.duckdb` is left exactly as it was.

**Reruns and backfills.** A rerun for the same logical date rebuilds the same
marts (already ingested files are skipped by content hash). `max_active_runs=1`
because DuckDB allows one writer to `build.duckdb`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, task

DAG_ID = "customer_marts_nightly"
SCHEDULE = os.environ.get("CUSTOMER_MARTS_SCHEDULE", "@daily")
PUBLISHED = Asset("customer_marts://published")

default_args = {
    "owner": "data-engineering",
    "retries": int(os.environ.get("CUSTOMER_MARTS_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=2),
}


def _run(step: str, run: dict, *args: str):
    """Call a pipeline step; data errors fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from customer_marts import pipeline
    from customer_marts.config import Settings
    from customer_marts.logs import quiet_noisy_loggers

    quiet_noisy_loggers()
    settings = Settings.from_env()
    try:
        return getattr(pipeline, step)(settings, pipeline.RunInfo.from_dict(run), *args)
    except pipeline.DATA_ERRORS as exc:
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["customer-marts", "dbt", "duckdb", "great-expectations"],
    doc_md=__doc__,
)
def customer_marts_nightly():
    @task
    def start_run(**context) -> dict:
        from customer_marts import pipeline
        from customer_marts.config import Settings

        dag_run = context["dag_run"]
        logical = dag_run.logical_date or (dag_run.run_after - timedelta(days=1))
        as_of = logical.astimezone(pendulum.UTC).date()
        return pipeline.start_run(Settings.from_env(), as_of, dag_run.run_id).to_dict()

    @task
    def ingest(run: dict) -> dict:
        _run("ingest", run)
        return run

    @task
    def validate_raw(run: dict) -> dict:
        _run("validate", run, "raw")
        return run

    @task
    def dbt_build(run: dict) -> dict:
        _run("build", run)
        return run

    @task
    def validate_marts(run: dict) -> dict:
        _run("validate", run, "marts")
        return run

    @task(outlets=[PUBLISHED])
    def publish(run: dict) -> dict:
        return _run("publish", run)

    publish(validate_marts(dbt_build(validate_raw(ingest(start_run())))))


customer_marts_nightly()
