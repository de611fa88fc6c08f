"""The SQL floor: the marts' compiled SQL straight in DuckDB, without Airflow, dbt or
Great Expectations, on the raw tables loaded with one typed read per source."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb

from customer_marts.ingest.contract import SOURCES
from customer_marts.runs.schema import column_type

log = logging.getLogger(__name__)


def dbt_models(target: Path) -> list[dict]:
    """The models of a dbt target's manifest in dependency order."""
    manifest = json.loads((target / "manifest.json").read_text())
    models = {
        uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"
    }
    ordered: list[dict] = []
    done: set[str] = set()

    def visit(uid: str) -> None:
        if uid in done:
            return
        done.add(uid)
        for parent in models[uid]["depends_on"]["nodes"]:
            if parent in models:
                visit(parent)
        ordered.append(models[uid])

    for uid in sorted(models):
        visit(uid)
    return ordered


def run_record_sources(target: Path) -> list[tuple[str, str]]:
    """The (schema, table) of every source outside `raw` that the models read: the run
    record's tables that tell the incremental models what the last build saw."""
    manifest = json.loads((target / "manifest.json").read_text())
    return sorted(
        {
            (node["schema"], node["identifier"])
            for node in manifest["sources"].values()
            if node["schema"] != "raw"
        }
    )


def compiled_code(target: Path, node: dict) -> str:
    code = node.get("compiled_code")
    if code:
        return code
    path = target / "compiled" / node["package_name"] / node["original_file_path"]
    return path.read_text()


def run_model(con: duckdb.DuckDBPyConnection, target: Path, node: dict) -> None:
    """Build one model as dbt-duckdb would, without dbt: a SQL model as `create view` or
    `create table ... as` its compiled SQL; a Python model by executing its compiled code
    (the model plus dbt's `dbtObj` shim) and storing the Arrow table it returns."""
    relation = node["relation_name"]
    code = compiled_code(target, node)
    if node["language"] == "python":
        namespace: dict[str, Any] = {}
        exec(compile(code, node["original_file_path"], "exec"), namespace)  # noqa: S102
        with con.cursor() as session:  # its own cursor: a model may leave a result open
            session.execute("set TimeZone = 'UTC'")
            result = namespace["model"](namespace["dbtObj"](session.table), session)
        con.register("_bench_model_result", result)
        con.execute(f"create or replace table {relation} as select * from _bench_model_result")
        con.unregister("_bench_model_result")
        return
    kind = "view" if node["config"]["materialized"] == "view" else "table"
    con.execute(f"create or replace {kind} {relation} as {code}")


def floor_load(landing: Path, database: Path) -> tuple[float, int]:
    """The floor of ingestion: each source's CSV files read into a table with one typed
    `read_csv` (no hashing, checks, quarantine or manifest). Returns (seconds, rows)."""
    database.unlink(missing_ok=True)
    rows = 0
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        for source in SOURCES.values():
            paths = sorted((landing / source.folder).glob("*.csv"))
            if not paths:
                continue
            with paths[0].open() as handle:
                header = handle.readline().strip().split(",")
            files = landing / source.folder / "*.csv"
            kinds = {column.name: column_type(column) for column in source.columns}
            columns = ", ".join(f"'{name}': '{kinds.get(name, 'varchar')}'" for name in header)
            con.execute(
                f"create table {source.name} as select *, filename as _file_name "
                f"from read_csv('{files}', header = true, columns = {{{columns}}}, "
                "auto_detect = false, delim = ',', quote = '\"', escape = '\"', filename = true)"
            )
            rows += con.execute(f"select count(*) from {source.name}").fetchone()[0]
    return time.perf_counter() - started, rows


def sql_floor(build_db: Path, target: Path, landing: Path, workdir: Path) -> dict[str, Any]:
    """The same marts built straight in DuckDB, on the pipeline's raw tables.

    A fresh database named like the build database (the compiled SQL names it) gets a
    copy of the run's raw tables and empty run-record tables, as the pipeline's first
    build saw them (untimed); then every model of the run's manifest is
    built in dependency order in one connection (timed, SQL and Python models apart).
    The floor adds the typed CSV load of the same files (`floor_load`). Every table's
    row count is compared with the pipeline's before the figure is reported.
    """
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    database = workdir / build_db.name
    models = dbt_models(target)
    timings: dict[str, float] = {}
    with duckdb.connect(str(database)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{build_db}' as pipeline (read_only)")
        raw_tables = con.execute(
            "select table_name from duckdb_tables() where database_name = 'pipeline' "
            "and schema_name = 'raw'"
        ).fetchall()
        con.execute("create schema raw")
        for (table,) in raw_tables:
            con.execute(f"create table raw.{table} as select * from pipeline.raw.{table}")
        for schema, table in run_record_sources(target):
            # empty, as before the pipeline's first build: every customer is new to it
            con.execute(f"create schema if not exists {schema}")
            con.execute(
                f"create table {schema}.{table} as select * from pipeline.{schema}.{table} limit 0"
            )
        con.execute("detach pipeline")  # the models see this database only
        for schema in sorted({node["schema"] for node in models}):
            con.execute(f"create schema if not exists {schema}")
        con.execute("checkpoint")
        for node in models:
            started = time.perf_counter()
            run_model(con, target, node)
            timings[node["name"]] = time.perf_counter() - started
        con.execute("checkpoint")
        con.execute(f"attach '{build_db}' as pipeline (read_only)")
        mismatches = []
        for node in models:
            if node["config"]["materialized"] == "view":
                continue
            ours = con.execute(f"select count(*) from {node['relation_name']}").fetchone()[0]
            relation = node["relation_name"].replace(f'"{database.stem}".', "pipeline.", 1)
            theirs = con.execute(f"select count(*) from {relation}").fetchone()[0]
            if ours != theirs:
                mismatches.append(f"{node['name']}: {ours} rows, pipeline {theirs}")
    if mismatches:
        raise RuntimeError("the SQL floor built different tables: " + "; ".join(mismatches))
    load_seconds, load_rows = floor_load(landing, workdir / "load.duckdb")
    python = {node["name"] for node in models if node["language"] == "python"}
    sql_seconds = sum(seconds for name, seconds in timings.items() if name not in python)
    python_seconds = sum(timings[name] for name in python)
    slowest = sorted(timings.items(), key=lambda item: -item[1])[:8]
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "seconds": load_seconds + sql_seconds + python_seconds,
        "load_seconds": load_seconds,
        "load_rows": load_rows,
        "sql_models_seconds": sql_seconds,
        "python_models_seconds": python_seconds,
        "models": len(models),
        "slowest_models": {name: round(seconds, 2) for name, seconds in slowest},
    }
