"""The build database: connections and the tables the pipeline itself owns.

`build.duckdb` holds four kinds of schema:
- `raw`: rows as ingested (typed, checked, deduplicated), created from the contract;
- `audit`: the run record, the file manifest, the quarantine and check results;
- `staging`, `intermediate`, `marts`: built by dbt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from customer_marts.contract import SOURCES, Column

SQL_TYPES = {
    "text": "varchar",
    "enum": "varchar",
    "timestamp": "timestamp",
    "decimal": "decimal(18, 2)",
    "integer": "integer",
}

AUDIT_TABLES = {
    "pipeline_runs": """
        run_id varchar primary key,
        airflow_run_id varchar,
        logical_date date,
        started_at timestamp,
        finished_at timestamp,
        status varchar,
        failed_step varchar,
        message varchar
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


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection in UTC that is always closed (and so checkpointed)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if they do not exist yet (idempotent)."""
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists audit")
    for name, columns in AUDIT_TABLES.items():
        con.execute(f"create table if not exists audit.{name} ({columns})")
    for source in SOURCES.values():
        columns = [f"{column.name} {column_type(column)}" for column in source.columns]
        columns += [f"{name} {kind}" for name, kind in LINEAGE_COLUMNS.items()]
        con.execute(f"create table if not exists raw.{source.name} ({', '.join(columns)})")
