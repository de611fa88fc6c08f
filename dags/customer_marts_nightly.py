"""
# customer_marts_nightly

Builds the Customer Marts for one **as-of date** and publishes them to
`$WAREHOUSE_DIR/published.duckdb` only if every quality check passes.

| task | what it does | timeout | retries |
| --- | --- | --- | --- |
| `start_run` | records the run in `audit.pipeline_runs` (status `running`); a run left `running` whose process is gone (the step lock is free) is recorded failed in the step it was in; while another run's step works it records nothing and is retried | 10 min | 2 |
| `ingest` | loads new or changed export files from `$LANDING_DIR` into `raw` (bad rows to `audit.quarantine`) | 60 min | 2 |
| `validate_raw` | Great Expectations suites on `raw` + the quarantine-share check | 30 min | 2 |
| `dbt_build` | `dbt build` (models and data tests, unit tests in a full rebuild; results in `audit.check_results`) with `as_of_date` = the run's logical date, with `--full-refresh` when the run's `full_refresh` param is set or the build's inputs changed (recorded in `audit.build_state`); records `data_as_of`; generates the dbt docs site if its project or catalog changed | 90 min | 2 |
| `validate_marts` | Great Expectations suites on `marts` | 30 min | 2 |
| `publish` | copies `marts` + `audit` into `published-<run_id>.duckdb`, exports Parquet, atomically renames it to `published.duckdb`, swaps `docs/` and `parquet/`, prunes old versions, renders the run report | 30 min | 2 |

**Schedule.** `@daily` in UTC; `CUSTOMER_MARTS_SCHEDULE` replaces it with any cron
expression or preset (read when the DAG file is parsed). `catchup=False`: after a
pause only the latest missed day runs; a backfill fills the others. New deployments
start paused: unpause the DAG.

**What the run for logical date D reads and publishes.** With the data-interval
timetable the run for D starts just after 00:00 UTC on D+1. It ingests every file in
`$LANDING_DIR` it has not ingested before (by content hash; earlier files are already
in `build.duckdb`), builds the marts from every row dated on or before D (in the
reporting time zone; later rows wait for a later run), checks them, and publishes
`published.duckdb` with data as of D (`audit.pipeline_runs.logical_date`). A manual
run triggered without a logical date uses the day before it was triggered.

**Any as-of date.** The DAG has no `start_date`: Airflow gives a run no instance of a
task whose start date is after the run's logical date, and then marks the empty run
successful, so a start date would silently turn every run before it into a no-op.
Without one, every logical date runs every task (1997-09-30 for a 1997 order history
as much as yesterday), in `airflow dags test`, a manual trigger or a backfill. With
`catchup=False` a new deployment still schedules only the latest interval.

**Timeouts and retries.** The scheduler enforces the timeouts of the table above (a
test checks the table against the DAG). Retries (`CUSTOMER_MARTS_RETRIES`, 5 minutes
apart) are for machine errors: a lock held by another process, a killed worker, a
task past its timeout. Data errors (an unreadable file, a missing column, too many
quarantined rows, a failed check, a failing dbt test) fail the task at once with a
message naming the check and its failing values, without retries: the same input
would fail the same way. A run therefore ends within about 13.5 hours whatever
happens (the timeouts times three attempts, plus the retry delays), before the next
night's run. The limits are generous; raise `TIMEOUTS` in the DAG file if your data
is much larger.

**Failure.** Whatever fails, `published.duckdb` is left exactly as it was and the run
record says which step failed. When a task has failed for good (after its last
retry), its `on_failure_callback` (a notifier) logs a one-paragraph alert naming the
task, the run and the error, and sends it to each alert target whose Airflow
connection exists: `customer_marts_webhook` (JSON POST), `customer_marts_slack`
(Slack incoming webhook), `customer_marts_smtp` (e-mail to `ALERT_EMAIL_TO`).

**Deadline.** A run that has published nothing `CUSTOMER_MARTS_PUBLISH_DEADLINE`
(default `6h`; `off` switches it off) after it was queued (for a scheduled run, when
its data interval ended) sends a deadline alert to the same targets, whether it is
still running or has failed. The scheduler checks deadlines: a run of `airflow dags
test` has none.

**Asset.** `publish` updates the asset `customer_marts_published`
(`x-customer-marts://published`); each event's extra holds the `published_path`, the
`published_version`, the `run_id`, the `as_of_date` and the `row_counts` of every
published table, for DAGs scheduled on it.

**Full refresh.** A run rebuilds every dbt model from scratch (`dbt build
--full-refresh`) when it is asked to (the `full_refresh` param: tick it in the UI's
trigger form, or trigger with the conf `{"full_refresh": true}`; `FULL_REFRESH=1` in
the environment) and by itself when the dbt project's code, its vars or the sources
configuration differ from the last successful build's, when the as-of date is before
that build's, or when there is no earlier build. `audit.build_state` and the task log
say which and why (docs/operating.md, "Full rebuilds").

**Rerun a date.** Clear its run and the scheduler runs it again (UI: the run >
*Clear*; CLI: `airflow tasks clear customer_marts_nightly -s D -e D -y`; API:
`POST /api/v2/dags/customer_marts_nightly/dagRuns/{run_id}/clear`). After a machine
error, clearing only the failed task resumes from it, as long as no newer run has
started since (then clear the whole run: a task of an overtaken run refuses to run).
After a data error, fix the input first (deliver the corrected export under the same
file name: its rows replace the earlier ones), then clear the whole run so that
`ingest` reads it. A rerun for D rebuilds the same marts from the same files and
publishes them again.

**One run at a time.** `max_active_runs=1`: scheduled and manual runs queue and run
one after another, because every run writes the single `build.duckdb` (DuckDB allows
one writer) and publishes what it built; two runs at once would fail on the file lock
or, interleaved, check and publish each other's tables. Airflow 3 counts a
backfill's runs apart from the others (limited by the backfill's own
`max_active_runs`, default 10): always give a backfill `--max-active-runs 1`, and
start it when no nightly run is due. Should runs overlap anyway, each step holds
`$WAREHOUSE_DIR/.step.lock` while it works: a start or a step that finds another
run's step working fails naming it and is retried, a step of a run overtaken by a
newer one fails without retries (`RunSuperseded`), so two runs' data never mix, and a
run still `running` is recorded as interrupted only once no process holds the lock.
`make run` takes `$WAREHOUSE_DIR/.lock` for its whole run: a second one on the same
warehouse refuses at once, whatever its `AIRFLOW_HOME`.

**Backfill a range.** The DAG must be switched on (backfill runs wait while it is
paused): `airflow backfill create --dag-id customer_marts_nightly --from-date
2025-01-01 --to-date 2025-01-31 --max-active-runs 1` (API: `POST /api/v2/backfills`).
One run per day, both ends included, oldest first (not `--run-backwards`: the oldest
date would end up published); each publishes in turn, so afterwards
`published.duckdb` holds the last date of the range until the next nightly run.
Dates that already have a run are skipped unless `--reprocess-behavior failed` or
`completed`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
    dag,
    task,
)

# The notifiers' module imports only the standard library and airflow.sdk.
from customer_marts.runs.alerts import (
    PUBLISH_DEADLINE_ENV,
    DeadlineNotifier,
    FailureNotifier,
    parsed_by_dags_test,
    publish_deadline,
)

DAG_ID = "customer_marts_nightly"
SCHEDULE = os.environ.get("CUSTOMER_MARTS_SCHEDULE") or "@daily"
PUBLISH_DEADLINE = os.environ.get(PUBLISH_DEADLINE_ENV) or "6h"
# One identity wherever the warehouse is (its path is in each event's extra): Airflow
# activates one URI per asset name, so a URI that followed WAREHOUSE_DIR would leave
# the asset inactive, and its events unrecorded, once the folder moved.
PUBLISHED = Asset(name="customer_marts_published", uri="x-customer-marts://published")
TIMEOUTS = {
    "start_run": timedelta(minutes=10),
    "ingest": timedelta(minutes=60),
    "validate_raw": timedelta(minutes=30),
    "dbt_build": timedelta(minutes=90),
    "validate_marts": timedelta(minutes=30),
    "publish": timedelta(minutes=30),
}


# The run's params (the UI's trigger form, or the trigger's conf: {"full_refresh": true}).
PARAMS = {
    "full_refresh": Param(
        False,
        type="boolean",
        title="Full refresh",
        description=(
            "Rebuild every dbt model from scratch (dbt build --full-refresh), as "
            "FULL_REFRESH=1 does. A run also rebuilds fully by itself when the dbt "
            "project, its vars or the sources configuration changed, or the as-of date "
            "is before the last build's."
        ),
    ),
}


default_args = {
    "owner": "data-engineering",
    "retries": int(os.environ.get("CUSTOMER_MARTS_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "on_failure_callback": [FailureNotifier()],
}


def _deadline() -> DeadlineAlert | None:
    """Nothing published PUBLISH_DEADLINE after the run was queued (for a scheduled run,
    when its data interval ended): the targets get a deadline alert. A run that
    succeeds in time removes its deadline; one that fails keeps it."""
    delay = publish_deadline(PUBLISH_DEADLINE)
    if delay is None or parsed_by_dags_test():
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=delay,
        callback=SyncCallback(DeadlineNotifier, kwargs={"deadline": PUBLISH_DEADLINE}),
    )


def _run(step: str, run: dict, *args: str, **kwargs):
    """Call a pipeline step; data errors fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from customer_marts.config import Settings
    from customer_marts.logs import quiet_noisy_loggers
    from customer_marts.runs import pipeline

    quiet_noisy_loggers()
    settings = Settings.from_env()
    try:
        return getattr(pipeline, step)(settings, pipeline.RunInfo.from_dict(run), *args, **kwargs)
    except pipeline.DATA_ERRORS as exc:
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    deadline=_deadline(),
    params=PARAMS,
    tags=["customer-marts", "dbt", "duckdb", "great-expectations"],
    doc_md=__doc__,
)
def customer_marts_nightly():
    @task(execution_timeout=TIMEOUTS["start_run"])
    def start_run(**context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from customer_marts.config import Settings
        from customer_marts.runs import pipeline

        dag_run = context["dag_run"]
        logical = dag_run.logical_date or (dag_run.run_after - timedelta(days=1))
        as_of = logical.astimezone(pendulum.UTC).date()
        try:
            return pipeline.start_run(Settings.from_env(), as_of, dag_run.run_id).to_dict()
        except pipeline.DATA_ERRORS as exc:  # a damaged build.duckdb, a full disk: no retry
            raise AirflowFailException(str(exc)) from exc

    @task(execution_timeout=TIMEOUTS["ingest"])
    def ingest(run: dict) -> dict:
        _run("ingest", run)
        return run

    @task(execution_timeout=TIMEOUTS["validate_raw"])
    def validate_raw(run: dict) -> dict:
        _run("validate", run, "raw")
        return run

    @task(execution_timeout=TIMEOUTS["dbt_build"])
    def dbt_build(run: dict, **context) -> dict:
        _run("build", run, full_refresh=bool(context["params"].get("full_refresh")))
        return run

    @task(execution_timeout=TIMEOUTS["validate_marts"])
    def validate_marts(run: dict) -> dict:
        _run("validate", run, "marts")
        return run

    @task(outlets=[PUBLISHED], execution_timeout=TIMEOUTS["publish"])
    def publish(run: dict, **context) -> dict:
        from customer_marts.config import Settings
        from customer_marts.publish.versions import version_path

        counts = _run("publish", run)
        # the asset event: which version is published, as of when, and each table's rows
        settings = Settings.from_env()
        context["outlet_events"][PUBLISHED].extra = {
            "published_path": str(settings.published_db),
            "published_version": version_path(settings.warehouse_dir, run["run_id"]).name,
            "run_id": run["run_id"],
            "as_of_date": run["as_of_date"],
            "row_counts": counts,
        }
        return counts

    publish(validate_marts(dbt_build(validate_raw(ingest(start_run())))))


customer_marts_nightly()
