"""Shared fixtures: real DuckDB files, real dbt, real GE, real Airflow runs."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from customer_marts.config import Settings
from tools.demo.generator import DemoSpec, write_landing
from tools.local_airflow import local_airflow_env

BIN = Path(sys.executable).parent
DEMO_AS_OF = date(2025, 12, 31)  # the small demo's last day


# The longest test files, longest first (`pytest --durations`, 2 cores): each takes
# minutes of real Airflow processes, Superset or repeated pipeline runs (the replay:
# twenty nights, each a nightly build and a rebuild from scratch).
LONGEST_FILES = (
    "tests/e2e/test_incremental_replay.py",
    "tests/e2e/test_scheduler.py",
    "tests/spark/test_dbt_on_spark.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_superset.py",
    "tests/e2e/test_publish_safety.py",
    "tests/e2e/test_nightly_dag.py",
    "tests/e2e/test_alerts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The costliest test files first: LONGEST_FILES, then files with Airflow runs,
    browsers or large data (`slow`), then whole dbt builds, each file's tests in their own
    order. `make test` hands whole files to its workers in this order, so the long files
    start at once and the short ones fill the gaps at the end, instead of one long file
    running alone while the other worker idles."""

    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    def cost(item: pytest.Item) -> int:
        if item.get_closest_marker("slow"):
            return 2
        return 1 if item.get_closest_marker("dbt_build") else 0

    rank: dict[str, tuple[int, int]] = {}
    for item in items:
        name = file_of(item)
        first = LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)
        rank[name] = min(rank.get(name, (first, 0)), (first, -cost(item)))
    items.sort(key=lambda item: rank[file_of(item)])  # stable: a file's tests keep their order


# dbt's data and unit tests left out of a run (a dbt environment variable the runner
# honours): for runs whose subject is not what those tests check. They read rows and
# write none, so the marts are the same; the shared published_demo run, tests/dbt and
# the runs that meet a failing check keep them. About a third of a demo run's CPU.
DBT_TESTS_LEFT_OUT = {"DBT_EXCLUDE_RESOURCE_TYPES": "test unit_test"}
# Only the unit tests (they test the SQL, not the data): for a run whose data tests'
# results are read.
DBT_UNIT_TESTS_LEFT_OUT = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}


@contextmanager
def dbt_tests_left_out(left_out: dict[str, str] = DBT_TESTS_LEFT_OUT) -> Iterator[None]:
    """The runs in this block (in this process or its children) leave dbt's data and
    unit tests out (`left_out`: DBT_TESTS_LEFT_OUT or DBT_UNIT_TESTS_LEFT_OUT)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in left_out.items():
            env.setenv(name, value)
        yield


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_settings(root: Path) -> Settings:
    """Settings for a landing folder and warehouse under `root` (no environment needed)."""
    (root / "landing").mkdir(parents=True, exist_ok=True)
    defaults = Settings.from_env()
    return Settings(
        landing_dir=root / "landing",
        warehouse_dir=root / "warehouse",
        dbt_project_dir=defaults.dbt_project_dir,
        expectations_dir=defaults.expectations_dir,
        max_quarantine_pct=1.0,
        keep_versions=7,
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at an empty landing folder and warehouse under tmp_path."""
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.delenv("RUN_DATE", raising=False)
    (tmp_path / "landing").mkdir()
    return Settings.from_env()


def shared_by_workers(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """A folder `make` fills once per test session, read only afterwards: under
    pytest-xdist (`make test`) the first worker to ask makes it in the session's
    temporary folder while the other waits on its lock, then both read the same files,
    instead of each worker making its own (a pipeline run, an Airflow migration)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-<n>: this session's, shared by its workers
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with (root / f"shared-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated landing folder (400 customers, two years), shared read-only."""
    return shared_by_workers(
        tmp_path_factory,
        "small_demo",
        lambda landing: write_landing(landing, DemoSpec(customers=400, seed=7)),
    )


@pytest.fixture(scope="session")
def published_demo(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse of one pipeline run (`run_all`: ingest, gate, dbt build, gate,
    publish, in the process of the worker that makes it) on the small demo as of
    DEMO_AS_OF, shared read-only by the tests that only read what a run publishes; a
    test that writes works on a `copy_warehouse` of it."""
    from customer_marts.runs.pipeline import run_all

    def run(root: Path) -> None:
        run_all(replace(make_settings(root), landing_dir=small_demo), DEMO_AS_OF)

    return shared_by_workers(tmp_path_factory, "published_demo", run) / "warehouse"


def copy_warehouse(source: Path, destination: Path) -> Path:
    """A copy of a warehouse folder as it is on disk (`cp -a`: published.duckdb stays a
    hard link of its published-<run>.duckdb version)."""
    subprocess.run(["cp", "-a", str(source), str(destination)], check=True)
    return destination


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with SQLite metadata for this worker."""
    return migrated_airflow_home(tmp_path_factory.mktemp("airflow_home"), tmp_path_factory)


def migrated_airflow_home(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`home` with a copy of the metadata database `airflow db migrate` made once for
    the session (airflow.cfg, which names its home, is written afresh by the first
    command)."""

    def migrate(template: Path) -> None:
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=airflow_env(template),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    template = shared_by_workers(tmp_path_factory, "airflow_home", migrate)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template / "airflow.db", home / "airflow.db")
    return home


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """A local Airflow environment whose tasks fail without retries (unless overridden)."""
    return local_airflow_env(home, **{"CUSTOMER_MARTS_RETRIES": "0", **extra})


def run_dag(
    home: Path, landing: Path, warehouse: Path, run_date: str, **extra: str
) -> subprocess.CompletedProcess:
    """`airflow dags test customer_marts_nightly RUN_DATE` on the given folders (and
    `extra` environment)."""
    env = airflow_env(home, LANDING_DIR=str(landing), WAREHOUSE_DIR=str(warehouse), **extra)
    return subprocess.run(
        [str(BIN / "airflow"), "dags", "test", "customer_marts_nightly", run_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def data_docs_statuses(warehouse_dir, suite_path: str) -> list[str]:
    """The status of each Data Docs validation page of a suite, oldest first."""
    folder = warehouse_dir / "quality" / "validations" / suite_path
    pages = sorted(folder.glob("*/*/*.html"), key=lambda page: page.parent.name)
    statuses = []
    for page in pages:
        text = re.sub(r"<[^>]+>", " ", page.read_text())
        statuses.append(re.search(r"Status:\s+(\w+)", text).group(1))
    return statuses
