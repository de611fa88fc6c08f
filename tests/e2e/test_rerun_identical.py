"""Two runs on the same files and as-of date publish identical tables, however DuckDB
schedules its threads.

The whole pipeline (ingest, gate, dbt build, gate, publish) runs twice on the demo
data, into two fresh warehouses: once with DuckDB on one thread, once on 16 (a copy
of the dbt project whose profile sets `threads`), side by side in two processes. One
thread aggregates in one fixed order; sixteen threads on this 2-core machine (shared
with the other run) interleave their partial aggregates and window partitions
differently every time, which is what used to move floating-point sums in their last
digits. Every column of every row of every table of `published.duckdb` must be equal,
and every Parquet file byte for byte; only the columns that say which run wrote a
row, and when, may differ.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DBT_TESTS_LEFT_OUT
from tests.e2e.published_tables import RUN_IDENTITY_COLUMNS, differing_columns, table_rows
from tools.demo.generator import DemoSpec, write_landing

pytestmark = pytest.mark.slow
AS_OF = date(2025, 12, 31)
THREADS = (1, 16)
PARQUET_MANIFEST = "_published.json"  # names the version; the data files are compared
# One whole run (the settings from the environment), in its own process.
RUNNER = r"""
import sys
from datetime import date
from customer_marts.runs.pipeline import run_all
from customer_marts.config import Settings

run_all(Settings.from_env(), date.fromisoformat(sys.argv[1]))  # raises unless it published
"""


def project_with_threads(destination: Path, threads: int) -> Path:
    """A copy of the dbt project whose profile runs DuckDB on `threads` threads."""
    source = Path(__file__).resolve().parents[2] / "dbt_project"
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("target", "logs"))
    profile = destination / "profiles.yml"
    text = profile.read_text()
    assert "        TimeZone: UTC\n" in text  # the profile's settings block, indented 8
    profile.write_text(
        text.replace(
            "        TimeZone: UTC\n", f"        TimeZone: UTC\n        threads: {threads}\n"
        )
    )
    return destination


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> list[Path]:
    landing = tmp_path_factory.mktemp("demo_landing")
    write_landing(landing, DemoSpec())  # the data of `make run`: 5,000 customers
    runs = []
    try:
        for threads in THREADS:
            root = tmp_path_factory.mktemp(f"threads_{threads}")
            env = {
                **os.environ,
                "LANDING_DIR": str(landing),
                "WAREHOUSE_DIR": str(root / "warehouse"),
                "DBT_PROJECT_DIR": str(project_with_threads(root / "dbt_project", threads)),
                "EXPORT_PARQUET": "true",  # the Parquet files are compared too
                # what is compared is what the models write; dbt's tests only read it
                **DBT_TESTS_LEFT_OUT,
            }
            with (root / "run.log").open("w") as log:
                child = subprocess.Popen(
                    [sys.executable, "-c", RUNNER, AS_OF.isoformat()],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            runs.append((root, child))
        for root, child in runs:
            assert child.wait(timeout=1800) == 0, (root / "run.log").read_text()[-6000:]
    finally:
        for _, child in runs:
            if child.poll() is None:
                child.kill()
                child.wait()
    return [root / "warehouse" for root, _ in runs]


def published_differences(warehouses: list[Path], schemas: tuple, stored_order: bool) -> dict:
    """{table: its differing columns} between the two runs' published files."""
    with duckdb.connect() as con:
        for index, warehouse in enumerate(warehouses):
            con.execute(f"attach '{warehouse / 'published.duckdb'}' as run_{index} (read_only)")
        first, second = (
            {
                table: rows
                for table, rows in table_rows(con, f"run_{index}", stored_order).items()
                if table.startswith(schemas)
            }
            for index in range(2)
        )
    assert sorted(first) == sorted(second)
    assert len([table for table in first if table.startswith("marts.")]) >= 14
    return {
        table: differing_columns(first[table], second[table])
        for table in first
        if first[table] != second[table]
    }


def test_two_runs_publish_identical_values_in_every_table(warehouses):
    # every row of every table, sorted: what a diff or a snapshot of the data sees. The
    # two projects differ in their profile's threads, by design, so the build state's
    # fingerprint of the project differs too, and only it.
    assert published_differences(warehouses, ("marts.", "audit."), stored_order=False) == {
        "audit.build_state": ["project_fingerprint"]
    }


def test_two_runs_store_every_mart_in_the_same_row_order(warehouses):
    # `select * from marts.<table>` without an order returns the same rows in the same
    # order (BI extracts, hashes of a query's output)
    assert published_differences(warehouses, ("marts.",), stored_order=True) == {}


def parquet_contents(path: Path) -> str | list:
    """A Parquet file's SHA-256, or, for a file with run identity columns (the fit's
    fitted_at), its other columns' rows in file order."""
    with duckdb.connect() as con:
        names = [row[0] for row in con.execute(f"describe select * from '{path}'").fetchall()]
        identity = [name for name in names if name in RUN_IDENTITY_COLUMNS]
        if not identity:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        excluded = ", ".join(f'"{name}"' for name in identity)
        return [
            tuple(map(repr, row))
            for row in con.execute(f"select * exclude ({excluded}) from '{path}'").fetchall()
        ]


def test_two_runs_export_identical_parquet_files(warehouses):
    first, second = (
        {
            path.name: parquet_contents(path)
            for path in sorted((warehouse / "parquet").iterdir())
            if path.name != PARQUET_MANIFEST
        }
        for warehouse in warehouses
    )
    assert len(first) >= 14 and sorted(first) == sorted(second)
    # byte for byte, but for clv_model_fit's fitted_at
    assert [name for name in first if isinstance(first[name], list)] == ["clv_model_fit.parquet"]
    assert {name for name in first if first[name] != second[name]} == set()
