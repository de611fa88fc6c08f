"""The build database: connections and the tables the pipeline itself owns.

`build.duckdb` holds four kinds of schema:
- `raw`: rows as ingested (typed, checked, deduplicated), created from the contract;
- `audit`: the run record, the file manifest, the quarantine and check results;
- `staging`, `intermediate`, `marts`: built by dbt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from customer_marts.contract import SOURCES, Column

SQL_TYPES = {
    "text": "varchar",
    "enum": "varchar",
    "currency": "varchar",
    "timestamp": "timestamp",
    "decimal": "decimal(18, 2)",
    "integer": "integer",
}

AUDIT_TABLES = {
    # One row per run (README, "Run record"). While a run is in progress its status is
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
        airflow_run_id varchar
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


def split_columns(definition: str) -> list[tuple[str, str]]:
    """(name, type) pairs of a column list such as AUDIT_TABLES' values.

    Commas inside parentheses (`decimal(18, 2)`) do not split; constraints such as
    `primary key` are dropped from the type.
    """
    parts, depth, current = [], 0, ""
    for char in definition:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    columns = []
    for part in filter(None, (part.strip() for part in parts)):
        name, _, kind = part.partition(" ")
        columns.append((name, kind.lower().replace("primary key", "").strip()))
    return columns


def add_missing_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: str
) -> None:
    """Add the columns a table created by an older version lacks (new ones come last)."""
    existing = {
        row[0].lower()
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    for name, kind in split_columns(columns):
        if name.strip('"').lower() not in existing:
            con.execute(f"alter table {schema}.{table} add column if not exists {name} {kind}")


FAILING_ROWS_SHOWN = 5


def failing_rows(path: Path, sql: str) -> str:
    """The first rows a failed check's query returns, for its error message:
    `failing rows: [{...}, ...]` (JSON), or why they could not be read."""
    try:
        with connect(path, read_only=True) as con:
            rows = con.sql(f"select * from ({sql}) limit {FAILING_ROWS_SHOWN}").to_dicts()
    except duckdb.Error as exc:
        return f"failing rows not available: {exc}"
    return f"failing rows: {json.dumps(rows, default=str)}"


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
