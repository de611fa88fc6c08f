"""What `make run` says: one run's own outcome, the published marts, and whether the
run really did everything (a run in which a task did not run is not a success).

A run is verified from two sources that must agree: Airflow's task instances of the
DAG run (every task of the DAG ran and succeeded) and the run record in the build
database (`audit.pipeline_runs`, found by the Airflow run id: status `success`, a
published version that is the one published now, every step in `completed_steps`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from customer_marts.config import Settings
from customer_marts.publish.files import DOCS_DIR, PARQUET_DIR
from customer_marts.publish.versions import current_version
from customer_marts.report.page import REPORT_DIR
from customer_marts.runs import fallback
from customer_marts.runs.pipeline import STEPS
from customer_marts.warehouse import connect

DAG_ID = "customer_marts_nightly"
TASKS = ("start_run", *STEPS)
RECORD_COLUMNS = (
    "run_id, logical_date, status, failed_step, message, rows_ingested, rows_quarantined, "
    "checks_passed, checks_warned, checks_failed, published_version, completed_steps"
)


def _metadata_rows(env: dict[str, str], query: str, **parameters: object) -> list[dict]:
    """The rows of a query on Airflow's metadata database, the one `env` names
    (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN): read in this process, with SQLAlchemy (an
    Airflow dependency), instead of starting an `airflow` command for it (~4 s each)."""
    import sqlalchemy

    connection = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if not connection:
        raise RuntimeError("the environment names no Airflow metadata database")
    engine = sqlalchemy.create_engine(connection)
    try:
        with engine.connect() as con:
            result = con.execute(sqlalchemy.text(query), parameters)
            return [dict(row._mapping) for row in result]
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        raise RuntimeError(f"Airflow's metadata database could not be read: {reason}") from exc
    finally:
        engine.dispose()


def _utc(value: datetime | str | None) -> datetime | None:
    """A metadata timestamp as an aware UTC datetime (SQLite keeps them as naive UTC text)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def find_airflow_run(
    env: dict[str, str], as_of: date, launched: datetime, candidates: set[str] = frozenset()
) -> str | None:
    """The id of the DAG run for `as_of` (its logical date is that day's midnight in
    UTC, as `airflow dags test` gives it) created at or after `launched` (a
    timezone-aware time), preferring one of `candidates`; None if Airflow recorded none."""
    midnight = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    runs = [
        run
        for run in _metadata_rows(
            env,
            "select run_id, logical_date, run_after from dag_run where dag_id = :dag_id",
            dag_id=DAG_ID,
        )
        if _utc(run["logical_date"]) == midnight and _utc(run["run_after"]) >= launched
    ]
    runs.sort(key=lambda run: (run["run_id"] in candidates, _utc(run["run_after"])))
    return runs[-1]["run_id"] if runs else None


def airflow_task_states(env: dict[str, str], airflow_run_id: str) -> dict[str, str]:
    """Each task instance's state in the DAG run (a task that did not run has none)."""
    states = _metadata_rows(
        env,
        "select task_id, state from task_instance where dag_id = :dag_id and run_id = :run_id",
        dag_id=DAG_ID,
        run_id=airflow_run_id,
    )
    return {state["task_id"]: state["state"] or "none" for state in states}


def run_records(settings: Settings, airflow_run_id: str | None) -> list[dict]:
    """The run records of a DAG run, newest first (clearing start_run makes another)."""
    if airflow_run_id is None or not settings.build_db.exists():
        return []
    with connect(settings.build_db, read_only=True) as con:
        cursor = con.execute(
            f"select {RECORD_COLUMNS} from audit.pipeline_runs where airflow_run_id = ? "
            "order by started_at desc",
            [airflow_run_id],
        )
        names = [column[0] for column in cursor.description]
        records = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for record in records:  # a failure the full disk kept out of the build database
        outcome = fallback.read(fallback.path_of(settings.warehouse_dir, record["run_id"]))
        if record["status"] == "running" and outcome:
            record.update({key: outcome[key] for key in ("status", "failed_step", "message")})
    return records


def recorded_airflow_runs(settings: Settings) -> set[str]:
    """The Airflow run ids in the build database's run record."""
    if not settings.build_db.exists():
        return set()
    with connect(settings.build_db, read_only=True) as con:
        rows = con.execute("select distinct airflow_run_id from audit.pipeline_runs").fetchall()
    return {run_id for (run_id,) in rows if run_id}


def verify_run(settings: Settings, env: dict[str, str], airflow_run_id: str) -> list[str]:
    """What says the DAG run did not do everything; empty for a run that truly succeeded."""
    problems = []
    states = airflow_task_states(env, airflow_run_id)
    for task in TASKS:
        state = states.get(task)
        if state is None:
            problems.append(f"task {task} did not run (Airflow has no instance of it)")
        elif state != "success":
            problems.append(f"task {task} ended {state}")
    records = run_records(settings, airflow_run_id)
    if not records:
        problems.append(
            f"no run record for Airflow run {airflow_run_id} in {settings.build_db} "
            "(audit.pipeline_runs): start_run did not record it"
        )
        return problems
    record = records[0]
    if record["status"] != "success":
        problems.append(
            f"run {record['run_id']} is recorded {record['status']}"
            + (f" in step {record['failed_step']}" if record["failed_step"] else "")
        )
    completed = (record["completed_steps"] or "").split(",")
    missing = [name for name in STEPS if name not in completed]
    if missing:
        problems.append(
            f"run {record['run_id']}'s record does not show step(s) {', '.join(missing)} "
            "as completed"
        )
    version = record["published_version"]
    current = current_version(settings.warehouse_dir, settings.published_db)
    if not version:
        problems.append(f"run {record['run_id']} is recorded without a published version")
    elif current is None or current.name != version:
        problems.append(
            f"{settings.published_db} is not run {record['run_id']}'s version {version}"
        )
    return problems


def describe_run(settings: Settings, airflow_run_id: str | None) -> list[str]:
    """This run's own outcome, counts and quality verdict, from its run record."""
    if airflow_run_id is None:
        return ["this run: Airflow recorded no DAG run"]
    records = run_records(settings, airflow_run_id)
    if not records:
        return [f"this run: Airflow run {airflow_run_id} left no run record"]
    run = records[0]
    passed, warned, failed = (
        run[name] or 0 for name in ("checks_passed", "checks_warned", "checks_failed")
    )
    lines = [
        f"this run: {run['run_id']} (as of {run['logical_date']}; Airflow run "
        f"{airflow_run_id}): {run['status'].upper()}",
        "quality verdict: "
        + (
            "FAILED"
            if failed or run["status"] == "failed"
            else ("PASSED" if run["status"] == "success" else "NOT REACHED")
        )
        + f" ({passed} passed, {warned} warned, {failed} failed checks)",
        f"rows ingested: {run['rows_ingested'] or 0:,}, "
        f"quarantined: {run['rows_quarantined'] or 0:,}",
    ]
    if run["status"] == "failed":
        lines.append(f"failed step: {run['failed_step']}\n{run['message']}")
    return lines


def describe_published(settings: Settings, airflow_run_id: str | None) -> str:
    """This run's outcome (never another run's), then what is published now."""
    return "\n".join([*describe_run(settings, airflow_run_id), *published_lines(settings)])


def published_lines(settings: Settings) -> list[str]:
    """What is published now: its version, as-of date, marts and their row counts, and
    where the Parquet export, the run report and the dbt docs site are."""
    lines = []
    published = settings.published_db
    if not published.exists():
        return [f"nothing published yet at {published}"]
    with connect(published, read_only=True) as con:
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where schema_name = 'marts' order by 1"
        ).fetchall()
        counts = [
            (name, con.execute(f"select count(*) from {name}").fetchone()[0]) for (name,) in tables
        ]
        version = current_version(settings.warehouse_dir, published)
        record = con.execute(
            "select logical_date, data_as_of from audit.pipeline_runs "
            "where status = 'success' order by started_at desc limit 1"
        ).fetchone()
    logical_date, as_of = record or (None, None)
    lines.append(
        f"published: {published} (version {version.name if version else '?'}; "
        f"as-of date {logical_date}, newest data {as_of})"
    )
    lines += [f"  {name:<32} {count:>10,} rows" for name, count in counts]
    parquet = settings.warehouse_dir / PARQUET_DIR
    if parquet.exists():
        lines.append(f"parquet export: {parquet}/<table>.parquet")
    report = settings.warehouse_dir / REPORT_DIR / "index.html"
    if report.exists():
        lines.append(f"run report: {report}")
    docs = settings.warehouse_dir / DOCS_DIR
    if (docs / "index.html").exists():
        lines.append(
            f"dbt docs site: {docs}/index.html (serve it: make docs; "
            f"offline: {docs}/static_index.html)"
        )
    return lines
