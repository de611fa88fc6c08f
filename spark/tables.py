"""Tables between a DuckDB build database and the dbt project's Spark target (docs/engines.md).

Until ingest lands the raw tables in Spark itself, this copies them (and any other
tables named) from a DuckDB build database into the Spark warehouse of the `spark`
target of dbt_project/profiles.yml, through Parquet, and writes Spark tables back out
as Parquet files. It runs in the Spark environment (`make spark-venv`: pyspark, dbt-spark
and duckdb), never in the pipeline's:

    .venv-spark/bin/python -m spark.tables load --build-db data/warehouse/build.duckdb
    .venv-spark/bin/python -m spark.tables export --schema marts --out /tmp/marts

The Spark session has the settings of the profile's `spark` target (its master,
warehouse and metastore folders, time zone), read from profiles.yml, so both open the
same catalog. The embedded metastore takes one process at a time: run this before or
after dbt, not during.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import jinja2
import yaml

PROFILES = Path(__file__).resolve().parent.parent / "dbt_project" / "profiles.yml"


def spark_settings() -> dict[str, str]:
    """The `spark` target's session settings (server_side_parameters of profiles.yml),
    rendered with this process's environment as dbt renders them."""

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise KeyError(f"{PROFILES}: env var {name} is required and not set")
        return default

    rendered = jinja2.Template(PROFILES.read_text()).render(env_var=env_var)
    target = yaml.safe_load(rendered)["customer_marts"]["outputs"]["spark"]
    return {str(key): str(value) for key, value in target["server_side_parameters"].items()}


def spark_session():
    """A Spark session on the `spark` target's catalog (with Hive support, as dbt-spark's
    session mode opens it)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_settings().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_timestamps(frame):
    """A Spark DataFrame with its TIMESTAMP_NTZ columns (UTC without a zone, as DuckDB
    and Arrow hand them over) cast to Spark's TIMESTAMP, the type the models' contracts
    name: the session's time zone is UTC, so the values do not move."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType

    return frame.select(
        *(
            F.col(field.name).cast("timestamp").alias(field.name)
            if isinstance(field.dataType, TimestampNTZType)
            else F.col(field.name)
            for field in frame.schema.fields
        )
    )


def duckdb_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The base tables of a schema of a DuckDB database, by name."""
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


def load(build_db: Path, tables: list[str]) -> dict[str, int]:
    """Copy DuckDB tables (`schema.table`, or `schema.*` for all of a schema's tables)
    into Spark tables of the same names, replacing them; returns each table's rows.

    DuckDB's TIMESTAMP (UTC, without a zone) arrives in Parquet as a local timestamp,
    which Spark reads as TIMESTAMP_NTZ; it is cast to Spark's TIMESTAMP
    (`spark_timestamps`)."""
    con = duckdb.connect(str(build_db), read_only=True)
    exchange = Path(tempfile.mkdtemp(prefix="spark_tables_"))
    try:
        names = []
        for name in tables:
            schema, _, table = name.partition(".")
            names += (
                [f"{schema}.{t}" for t in duckdb_tables(con, schema)] if table == "*" else [name]
            )
        files = {}
        for name in names:
            files[name] = exchange / f"{name}.parquet"
            con.execute(f"copy {name} to '{files[name]}' (format parquet)")
        con.close()
        spark = spark_session()
        counts = {}
        for name, path in files.items():
            frame = spark_timestamps(spark.read.parquet(str(path)))
            spark.sql(f"create database if not exists {name.split('.')[0]}")
            frame.write.mode("overwrite").format("parquet").saveAsTable(name)
            counts[name] = spark.table(name).count()
        return counts
    finally:
        shutil.rmtree(exchange, ignore_errors=True)


def export(schema: str, out: Path) -> list[str]:
    """Write every table of a Spark database as one Parquet file, `out/<table>.parquet`;
    returns the tables' names."""
    spark = spark_session()
    out.mkdir(parents=True, exist_ok=True)
    names = [
        row.tableName
        for row in spark.sql(f"show tables in {schema}").collect()
        if not row.isTemporary
    ]
    for name in names:
        parts = out / f"{name}.parts"
        spark.table(f"{schema}.{name}").coalesce(1).write.mode("overwrite").parquet(str(parts))
        (part,) = parts.glob("part-*.parquet")
        part.replace(out / f"{name}.parquet")
        shutil.rmtree(parts)
    return sorted(names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spark.tables", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    loading = commands.add_parser("load", help="copy DuckDB tables into Spark tables")
    loading.add_argument("--build-db", type=Path, required=True)
    loading.add_argument(
        "tables", nargs="*", default=["raw.*"], help="schema.table or schema.* (default raw.*)"
    )
    exporting = commands.add_parser("export", help="write a Spark database's tables as Parquet")
    exporting.add_argument("--schema", default="marts")
    exporting.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "load":
        for name, rows in load(args.build_db, args.tables).items():
            print(f"{name}: {rows} rows")
    else:
        for name in export(args.schema, args.out):
            print(f"{args.schema}.{name} -> {args.out / name}.parquet")


if __name__ == "__main__":
    main()
