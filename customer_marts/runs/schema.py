"""The build database's own tables: `audit` (the run record, the file manifest, the
quarantine, check results) and `raw` (one table per source of the contract, plus the
lineage columns). dbt builds the other schemas.
"""

from __future__ import annotations

import duckdb

from customer_marts.ingest.contract import SOURCES, Column
from customer_marts.warehouse import add_missing_columns

SQL_TYPES = {
    "text": "varchar",
    "enum": "varchar",
    "currency": "varchar",
    "timestamp": "timestamp",
    "date": "date",
    "decimal": "decimal(18, 2)",
    "integer": "integer",
}

AUDIT_TABLES = {
    # One row per run (docs/run-record.md). While a run is in progress its status is
    # `running` and failed_step names the step it is in, so a run killed mid-way is
    # recorded as failed in that step by the next run's start (pipeline.start_run).
    "pipeline_runs": """
        run_id varchar primary key,
        logical_date date,
        data_as_of date,
        started_at timestamp,
        finished_at timestamp,
        status varchar,
        failed_step varchar,
        message varchar,
        rows_ingested bigint,
        rows_quarantined bigint,
        checks_passed integer,
        checks_warned integer,
        checks_failed integer,
        published_version varchar,
        airflow_run_id varchar,
        completed_steps varchar
    """,
    "ingested_files": """
        source varchar,
        file_name varchar,
        sha256 varchar,
        rows_read bigint,
        rows_loaded bigint,
        rows_quarantined bigint,
        rows_duplicate bigint,
        status varchar,
        extra_columns varchar,
        message varchar,
        run_id varchar,
        loaded_at timestamp
    """,
    "quarantine": """
        source varchar,
        file_name varchar,
        line_number bigint,
        "column" varchar,
        reason varchar,
        raw_record varchar,
        run_id varchar
    """,
    # The customers whose raw rows each run's ingest wrote or removed, per source
    # (customer_marts/runs/changes.py): what the incremental dbt models recompute.
    # customer_id is NULL for survey responses without a customer.
    "changed_customers": """
        run_id varchar,
        source varchar,
        customer_id varchar,
        noted_at timestamp
    """,
    # One row per run whose dbt build started: its inputs' fingerprints, as-of date,
    # whether it rebuilt every model and why (customer_marts/runs/build_state.py).
    "build_state": """
        run_id varchar,
        as_of_date date,
        started_at timestamp,
        finished_at timestamp,
        status varchar,
        full_refresh boolean,
        refresh_reason varchar,
        project_fingerprint varchar,
        sources_fingerprint varchar,
        dbt_vars varchar
    """,
    "check_results": """
        run_id varchar,
        layer varchar,
        suite varchar,
        "check" varchar,
        status varchar,
        observed_value varchar,
        details varchar
    """,
}

# Columns ingestion adds to every raw row, to trace it back to its file.
LINEAGE_COLUMNS = {
    "_file_name": "varchar",
    "_line_number": "bigint",
    "_run_id": "varchar",
}


def column_type(column: Column) -> str:
    return SQL_TYPES[column.kind]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if they do not exist yet (idempotent).

    An audit table created by an older version of the pipeline gains the columns
    it lacks, so an existing build.duckdb keeps working after an upgrade.
    """
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists audit")
    for name, columns in AUDIT_TABLES.items():
        con.execute(f"create table if not exists audit.{name} ({columns})")
        add_missing_columns(con, "audit", name, columns)
    for source in SOURCES.values():
        columns = [f"{column.name} {column_type(column)}" for column in source.columns]
        columns += [f"{name} {kind}" for name, kind in LINEAGE_COLUMNS.items()]
        con.execute(f"create table if not exists raw.{source.name} ({', '.join(columns)})")
        add_missing_columns(con, "raw", source.name, ", ".join(columns))
