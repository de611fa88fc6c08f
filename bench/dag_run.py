"""One real `airflow dags test` run of the nightly DAG, timed, its memory sampled and its
tasks and dbt nodes broken down."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from bench.measuring import MIB, MemorySampler
from tools.local_airflow import local_airflow_env

log = logging.getLogger(__name__)

DAG_ID = "customer_marts_nightly"


def airflow_env(home: Path, landing: Path, warehouse: Path) -> dict[str, str]:
    """The environment of an `airflow` command on SQLite metadata in `home`."""
    return local_airflow_env(
        home, CUSTOMER_MARTS_RETRIES="0", LANDING_DIR=str(landing), WAREHOUSE_DIR=str(warehouse)
    )


def airflow_command() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


@dataclass
class DagRun:
    """One measured `airflow dags test` run."""

    as_of: date
    seconds: float
    peak_rss_mb: float
    peak_process_rss_mb: float
    tasks: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    dbt_nodes: dict[str, float] = field(default_factory=dict)
    task_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    rows_read: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "peak_rss_mb": round(self.peak_rss_mb),
            "peak_process_rss_mb": round(self.peak_process_rss_mb),
            "tasks": {name: round(value, 2) for name, value in self.tasks.items()},
            "steps": {name: round(value, 2) for name, value in self.steps.items()},
            "slowest_dbt_nodes": {name: round(value, 2) for name, value in self.dbt_nodes.items()},
            "peak_rss_mb_by_task": {name: round(mb) for name, mb in self.task_peak_rss_mb.items()},
            "rows_read": self.rows_read,
        }


# A DAG run that takes longer is stuck: a full run at 10M orders takes under 10 minutes here.
RUN_TIMEOUT_SECONDS = 3600


def migrate(home: Path, landing: Path, warehouse: Path) -> float:
    """A fresh Airflow home with migrated SQLite metadata; returns the seconds it took."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(
        [airflow_command(), "db", "migrate"],
        env=airflow_env(home, landing, warehouse),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def dag_test(home: Path, landing: Path, warehouse: Path, as_of: date, log_path: Path) -> DagRun:
    """`airflow dags test customer_marts_nightly <as_of>`, timed, with its memory sampled."""
    log.info("airflow dags test %s %s (log: %s)", DAG_ID, as_of, log_path)
    with log_path.open("w") as output:
        started = time.perf_counter()
        returncode, memory = run_sampled(
            [airflow_command(), "dags", "test", DAG_ID, as_of.isoformat()],
            airflow_env(home, landing, warehouse),
            output,
        )
        seconds = time.perf_counter() - started
    if returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"the DAG run for {as_of} failed (exit {returncode}):\n{tail}")
    run = DagRun(as_of, seconds, memory.peak_total / MIB, memory.peak_process / MIB)
    windows = task_windows(home / "airflow.db")
    run.tasks = {task: end - start for task, (start, end) in windows.items()}
    run.task_peak_rss_mb = {
        task: memory.peak_between(start, end) / MIB for task, (start, end) in windows.items()
    }
    run.steps = step_durations(log_path.read_text(errors="replace"), warehouse)
    run.dbt_nodes = slowest_dbt_nodes(warehouse / "dbt" / "target" / "run_results.json")
    run.rows_read = rows_read(warehouse / "build.duckdb")
    log.info("%s: %.1f s, peak RSS %.0f MiB, tasks %s", as_of, seconds, run.peak_rss_mb, run.tasks)
    return run


def run_sampled(
    command: list[str], env: dict[str, str], output, timeout: float = RUN_TIMEOUT_SECONDS
) -> tuple[int, MemorySampler]:
    """Run `command` to its end with its memory sampled; its exit code and the sampler.
    Interrupted (Ctrl-C) or past `timeout`, its whole process group is killed before the
    exception goes on: nothing of the run is left holding the build database's lock for
    the next measurement."""
    child = subprocess.Popen(
        command,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: dbt's processes included
    )
    try:
        with MemorySampler(child.pid) as memory:
            return child.wait(timeout=timeout), memory
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            _wait_for_group(child.pid)


def _wait_for_group(group: int, timeout: float = 10.0) -> None:
    """Until no process of a killed process group is left (SIGKILL is delivered, not
    waited for: on a loaded machine a grandchild can outlive the child for a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def task_windows(metadata: Path) -> dict[str, tuple[float, float]]:
    """(start, end) epoch seconds of each task of the latest DAG run (task instances)."""
    with sqlite3.connect(metadata) as con:
        rows = con.execute(
            """
            select task_id, start_date, end_date from task_instance
            where run_id = (select run_id from dag_run order by id desc limit 1)
            order by start_date
            """
        ).fetchall()
    return {task: (_epoch(start), _epoch(end)) for task, start, end in rows if start and end}


def _epoch(text: str) -> float:
    """Epoch seconds of a timestamp as Airflow stores it in SQLite (UTC)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+)Z")


# dbt's line for the start of its first node ("dbt | 06:16:26  1 of 407 START ..."); a
# bare " of " also matches the ingest's progress ("reading orders: 12 of 731 file(s)").
FIRST_DBT_NODE = re.compile(r"dbt \| \d{2}:\d{2}:\d{2}\s+1 of \d+ START ")


def _logged_at(text: str, marker: str | re.Pattern) -> datetime | None:
    for line in text.splitlines():
        found = marker.search(line) if isinstance(marker, re.Pattern) else marker in line
        if found and (match := LOG_TIME.match(line)):
            return datetime.fromisoformat(match.group(1))
    return None


def step_durations(text: str, warehouse: Path) -> dict[str, float]:
    """The dbt_build task split up: dbt build's own elapsed time (run_results.json), the
    time before its first node (dbt's start-up and parse) and `dbt docs generate`."""
    steps: dict[str, float] = {}
    results = warehouse / "dbt" / "target" / "run_results.json"
    if results.exists():
        run_results = json.loads(results.read_text())
        steps["dbt_build_elapsed"] = float(run_results["elapsed_time"])
        by_type: dict[str, float] = {}
        for node in run_results["results"]:
            kind = node["unique_id"].split(".")[0]
            by_type[kind] = by_type.get(kind, 0.0) + float(node["execution_time"])
        for kind, seconds in by_type.items():
            steps[f"dbt_{kind}_seconds_summed"] = seconds
    build_started = _logged_at(text, "step dbt_build started")
    dbt_called = _logged_at(text, "dbt build --project-dir")
    first_node = _logged_at(text, FIRST_DBT_NODE)
    docs_started = _logged_at(text, "dbt docs generate --project-dir")
    docs_done = _logged_at(text, "dbt docs site generated")
    if dbt_called and first_node:
        steps["dbt_startup_before_first_node"] = (first_node - dbt_called).total_seconds()
    if build_started and dbt_called:
        steps["before_dbt"] = (dbt_called - build_started).total_seconds()
    if docs_started and docs_done:
        steps["dbt_docs_generate"] = (docs_done - docs_started).total_seconds()
    return steps


def slowest_dbt_nodes(results: Path, count: int = 12) -> dict[str, float]:
    """The slowest nodes of a dbt build: `<resource type> <name>` -> seconds."""
    if not results.exists():
        return {}
    nodes = json.loads(results.read_text())["results"]
    nodes.sort(key=lambda node: -float(node["execution_time"]))
    slowest = {}
    for node in nodes[:count]:
        kind, _, name = node["unique_id"].split(".", 2)
        slowest[f"{kind} {re.sub(r'[.][0-9a-f]{10}$', '', name)}"] = float(node["execution_time"])
    return slowest


def rows_read(build_db: Path) -> int:
    """Rows read by the latest run's ingest (all sources)."""
    with duckdb.connect(str(build_db), read_only=True) as con:
        return int(
            con.execute(
                "select coalesce(sum(rows_read), 0) from audit.ingested_files where run_id = "
                "(select run_id from audit.pipeline_runs order by started_at desc limit 1)"
            ).fetchone()[0]
        )
