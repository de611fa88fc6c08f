"""The run record (`audit.pipeline_runs`, docs/run-record.md) and the stamp of each
published file (`audit.published_tables`): every write of a run's row is here, and the
steps (customer_marts/runs/pipeline.py) call these with their connection.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from customer_marts.runs import fallback
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

PUBLISHED_TABLES = "audit.published_tables"


def insert_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    airflow_run_id: str | None,
    as_of: date,
    started: datetime,
) -> None:
    """A new run, status `running`."""
    con.execute(
        "insert into audit.pipeline_runs (run_id, airflow_run_id, logical_date, started_at, "
        "status) values (?, ?, ?, ?, 'running')",
        [run_id, airflow_run_id, as_of, started],
    )


def running_runs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None]]:
    """(run_id, failed_step) of the runs recorded as `running`."""
    return con.execute(
        "select run_id, failed_step from audit.pipeline_runs where status = 'running'"
    ).fetchall()


def enter_step(con: duckdb.DuckDBPyConnection, run_id: str, name: str) -> None:
    """Record `name` as the step the run is in (its failed_step until it completes)."""
    con.execute(
        "update audit.pipeline_runs set status = 'running', failed_step = ?, "
        "finished_at = null, message = null where run_id = ?",
        [name, run_id],
    )


def complete_step(con: duckdb.DuckDBPyConnection, run_id: str, name: str) -> None:
    """Add `name` to the run's completed_steps (once, in the order steps complete)."""
    con.execute(
        "update audit.pipeline_runs set completed_steps = case "
        "when list_contains(string_split(coalesce(completed_steps, ''), ','), $name) "
        "then completed_steps else concat_ws(',', nullif(completed_steps, ''), $name) end "
        "where run_id = $run_id",
        {"name": name, "run_id": run_id},
    )


# The newest event date of each mart that has one; data_as_of is the latest of them.
DATA_AS_OF_COLUMNS = {
    "marts.fct_orders": "order_date",
    "marts.fct_survey_responses": "response_date",
}

# Sets a run's row and check counts from the audit tables (`{where}` picks the runs).
RECORD_COUNTS = """
    update audit.pipeline_runs as runs set
        rows_ingested = (
            select coalesce(sum(files.rows_loaded), 0) from audit.ingested_files as files
            where files.run_id = runs.run_id
        ),
        rows_quarantined = (
            select coalesce(sum(files.rows_quarantined), 0) from audit.ingested_files as files
            where files.run_id = runs.run_id
        ),
        checks_passed = (
            select count(*) from audit.check_results as checks
            where checks.run_id = runs.run_id and checks.status = 'passed'
        ),
        checks_warned = (
            select count(*) from audit.check_results as checks
            where checks.run_id = runs.run_id and checks.status = 'warned'
        ),
        checks_failed = (
            select count(*) from audit.check_results as checks
            where checks.run_id = runs.run_id and checks.status = 'failed'
        )
    where {where}
"""


def record_outcome(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    finished_at: datetime,
    failed_step: str | None = None,
    message: str | None = None,
    published_version: str | None = None,
) -> None:
    """Write a run's outcome and its row and check counts into `audit.pipeline_runs`."""
    con.execute(
        "update audit.pipeline_runs set status = ?, finished_at = ?, failed_step = ?, "
        "message = ?, published_version = ? where run_id = ?",
        [status, finished_at, failed_step, message, published_version, run_id],
    )
    con.execute(RECORD_COUNTS.format(where="run_id = ?"), [run_id])


def record_fallback_outcomes(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Record the outcomes that only a fallback file holds (the disk was full), and
    delete the fallback files of runs whose outcome is in the build database."""
    for run_id, (path, outcome) in fallback.pending(warehouse_dir).items():
        row = con.execute(
            "select status from audit.pipeline_runs where run_id = ?", [run_id]
        ).fetchone()
        if row and row[0] == "running" and outcome:
            log.warning("recording the failure of run %s from %s", run_id, path.name)
            message = f"{outcome['message']} (recorded from {path.name} by the next run)"
            when = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
            record_outcome(con, run_id, "failed", when, outcome["failed_step"], message)
        elif row and row[0] == "running":
            continue  # reserved by a run that has not finished (or was killed)
        path.unlink(missing_ok=True)


def data_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The newest event date present in the marts (DATA_AS_OF_COLUMNS)."""
    existing = {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
    }
    parts = [
        f"select max({column})::date as newest from {table}"
        for table, column in DATA_AS_OF_COLUMNS.items()
        if table in existing
    ]
    if not parts:
        return None
    return con.execute(f"select max(newest) from ({' union all '.join(parts)})").fetchone()[0]


def record_data_as_of(con: duckdb.DuckDBPyConnection, run_id: str) -> date | None:
    """Record the newest event date of the marts as the run's data_as_of."""
    newest = data_as_of(con)
    con.execute("update audit.pipeline_runs set data_as_of = ? where run_id = ?", [newest, run_id])
    return newest


def stamp_published_tables(
    con: duckdb.DuckDBPyConnection, catalog: str, row_counts: dict[str, int], run_id: str
) -> None:
    """Write `catalog`'s audit.published_tables: one row per table it holds
    (`schema.table` -> row count), with the run id of the version."""
    con.execute(
        f"create or replace table {catalog}.{PUBLISHED_TABLES} (schema_name varchar, "
        "table_name varchar, row_count bigint, run_id varchar)"
    )
    con.executemany(
        f"insert into {catalog}.{PUBLISHED_TABLES} values (?, ?, ?, ?)",
        [[*name.split("."), count, run_id] for name, count in row_counts.items()],
    )


def latest_logical_date(build_db: Path) -> date | None:
    """The as-of date of the latest recorded run (None without a build or a run)."""
    if not build_db.exists():
        return None
    with connect(build_db, read_only=True) as con:
        try:
            found = con.execute("select max(logical_date) from audit.pipeline_runs").fetchone()
        except duckdb.CatalogException:  # no run recorded yet
            return None
    return found[0] if found else None


def copy_history(con: duckdb.DuckDBPyConnection, catalog: str, tables: tuple[str, ...]) -> None:
    """Copy the rows of `catalog`'s audit `tables` (the run history of a published file)
    into this database's, in the columns the older file has."""
    for table in tables:
        columns = [
            row[0]
            for row in con.execute(
                "select column_name from duckdb_columns() where database_name = ? "
                "and schema_name = 'audit' and table_name = ?",
                [catalog, table],
            ).fetchall()
        ]
        if columns:
            names = ", ".join(f'"{name}"' for name in columns)
            con.execute(
                f"insert into audit.{table} ({names}) select {names} from {catalog}.audit.{table}"
            )
