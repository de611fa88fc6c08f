"""The dbt project on Apache Spark (dbt-spark in session mode, Spark in local mode) builds
the same marts as DuckDB from the same raw tables (docs/engines.md).

The small demo's pipeline run (`published_demo`, DuckDB) gives both the raw tables and
the reference: its raw tables are copied into a Spark warehouse, and spark/build.py
builds every model on Spark in one process: the SQL models through dbt-spark, the CLV
models (dbt Python models on DuckDB, which dbt-spark runs only on Databricks) through
the same customer_marts.clv.steps functions on the Spark tables. Each published mart,
exported from Spark as Parquet, must equal the published DuckDB table: the same columns
in the same order with the same types, the same rows, numbers within 1e-9 relative (the
CLV fit's parameters within 1e-6), all but the fit's clock time (`fitted_at`). Skipped
without Java 17 or the Spark environment (`make spark-venv`)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from customer_marts.config import Settings
from spark.environment import REPOSITORY, SPARK_BIN, missing, spark_env
from tests.conftest import DEMO_AS_OF

PROJECT = Settings.from_env().dbt_project_dir


pytestmark = [
    pytest.mark.slow,  # a Spark session, dbt runs and the CLV step on Spark
    pytest.mark.dbt_build,
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]


def spark_command(root: Path, *command: str) -> str:
    """Run a command of the Spark environment on the Spark warehouse under `root`;
    its output (failing the test with it when the command fails)."""
    env = spark_env(root / "spark", root / "warehouse", DEMO_AS_OF, SPARK_DRIVER_MEMORY="2g")
    done = subprocess.run(
        command, cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def spark_marts(published_demo: Path, tmp_path_factory) -> Path:
    """The marts built on Spark, one Parquet file per table."""
    root = tmp_path_factory.mktemp("spark")
    (root / "warehouse").mkdir()
    out = root / "marts"
    built = spark_command(
        root,
        str(SPARK_BIN / "python"),
        "-m",
        "spark.build",
        "--build-db",
        str(published_demo / "build.duckdb"),
        "--out",
        str(out),
        "--target-path",
        str(root / "dbt" / "target"),
        "--log-path",
        str(root / "dbt" / "logs"),
    )
    seconds = json.loads(built.strip().splitlines()[-1])
    assert {"load_raw", "dbt", "clv", "export"} <= set(seconds), built
    return out


def published_marts(published_demo: Path) -> dict[str, list[tuple[str, str]]]:
    """Every published mart: its columns and their DuckDB types, in order."""
    with duckdb.connect(str(published_demo / "published.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, data_type from duckdb_columns() "
            "where schema_name = 'marts' order by table_name, column_index"
        ).fetchall()
    marts: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        marts.setdefault(table, []).append((column, data_type))
    return marts


# The fit's wall-clock time differs from run to run; the CLV fit's parameters (and what
# derives from them) may differ within the optimiser's tolerance.
CLOCK_COLUMNS = {"fitted_at"}
FIT_TABLES = {"clv_model_fit"}


def same_value(expected, actual, rel_tol: float = 1e-9) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=0.0) or (
            math.isnan(expected) and math.isnan(actual)
        )
    return expected == actual


def test_every_sql_model_builds_on_spark_and_every_mart_equals_duckdbs(published_demo, spark_marts):
    marts = published_marts(published_demo)
    assert {path.stem for path in spark_marts.glob("*.parquet")} == set(marts)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"attach '{published_demo / 'published.duckdb'}' as published (read_only)")
    compared = 0
    for table, columns in sorted(marts.items()):
        parquet = spark_marts / f"{table}.parquet"
        spark_columns = con.execute(
            f"select column_name, column_type from (describe select * from '{parquet}')"
        ).fetchall()
        # Spark's TIMESTAMP is an instant: Parquet marks it UTC-adjusted, DuckDB reads
        # it as TIMESTAMP WITH TIME ZONE; in UTC it is the published local timestamp.
        spark_types = [
            (name, "TIMESTAMP" if kind == "TIMESTAMP WITH TIME ZONE" else kind)
            for name, kind in spark_columns
        ]
        assert spark_types == columns, table
        names = [name for name, _ in columns]
        exact_first = [
            name for name, kind in columns if kind != "DOUBLE" and name not in CLOCK_COLUMNS
        ] + [name for name, kind in columns if kind == "DOUBLE"]
        select = ", ".join(
            f"cast({name} as timestamp) as {name}" if kind == "TIMESTAMP" else name
            for name, kind in columns
        )
        order = ", ".join(f"{name} nulls first" for name in exact_first)
        expected = con.execute(
            f"select {', '.join(names)} from published.marts.{table} order by {order}"
        ).fetchall()
        actual = con.execute(f"select {select} from '{parquet}' order by {order}").fetchall()
        assert len(actual) == len(expected), table
        rel_tol = 1e-6 if table in FIT_TABLES else 1e-9
        for number, (want, got) in enumerate(zip(expected, actual, strict=True)):
            for name, left, right in zip(names, want, got, strict=True):
                if name in CLOCK_COLUMNS:
                    assert (left is None) == (right is None), (table, number, name)
                    continue
                assert same_value(left, right, rel_tol), (table, number, name, left, right)
        compared += len(expected)
    # the comparison is not vacuous: the demo's marts have rows
    assert compared > 10_000


# What a BI tool on the Spark engine does (docs/engines.md, "Reading the marts through
# the Thrift server"): a HiveServer2 client, PyHive here, queries the marts.
PYHIVE_QUERY = """
import sys
from pyhive import hive
cursor = hive.connect(host="127.0.0.1", port=int(sys.argv[1]), username="bi").cursor()
cursor.execute("select count(*), sum(new_customers) from marts.kpis_by_period")
print(*cursor.fetchone())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_bi_client_reads_the_marts_through_the_spark_thrift_server(
    published_demo, spark_marts, tmp_path
):
    root = spark_marts.parent  # the Spark warehouse and metastore the build left
    port = free_port()
    env = spark_env(root / "spark", root / "warehouse", DEMO_AS_OF, SPARK_DRIVER_MEMORY="2g")
    # spark-submit finds Spark's home through the `python3` on PATH: the Spark environment's
    env["PATH"] = f"{SPARK_BIN}{os.pathsep}{env['PATH']}"
    server_settings = subprocess.run(
        [
            str(SPARK_BIN / "python"),
            "-c",
            "from spark.tables import spark_settings as s; "
            "print('\\n'.join(f'{k}={v}' for k, v in s().items()))",
        ],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    command = [
        str(SPARK_BIN / "spark-submit"),
        "--class",
        "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
    ]
    for setting in server_settings:
        command += ["--conf", setting]
    command += [
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "--hiveconf",
        "hive.server2.thrift.bind.host=127.0.0.1",
        "spark-internal",
    ]
    with (tmp_path / "thrift.log").open("w") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, (tmp_path / "thrift.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Thrift server did not listen in 180 s"
            time.sleep(1)
        shown = subprocess.run(
            [str(SPARK_BIN / "python"), "-c", PYHIVE_QUERY, str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert shown.returncode == 0, shown.stderr[-3000:]
        rows, customers = (int(value) for value in shown.stdout.split())
    finally:
        server.terminate()
        server.wait(timeout=60)
    with duckdb.connect(str(published_demo / "published.duckdb"), read_only=True) as con:
        expected = con.execute(
            "select count(*), sum(new_customers) from marts.kpis_by_period"
        ).fetchone()
    assert (rows, customers) == expected and rows > 0
