"""Benchmarks: what a nightly run costs at 1M and 10M orders, and where the time goes.

`make bench` (`python -m bench`, bench/__main__.py) calls `run`. One invocation
1. generates the scaled demo data with the project's generator (`tools.demo`)
   and caches it under `bench/data/`;
2. runs the real DAG (`airflow dags test customer_marts_nightly <date>`, SQLite
   metadata in a fresh AIRFLOW_HOME, a fresh warehouse) at both sizes, sampling the
   resident memory of the whole process tree; then lands one more day of orders on top
   of the large history and runs the next date (the incremental run);
3. runs the same marts' SQL straight in DuckDB, without Airflow, dbt or Great
   Expectations (the floor);
4. compares our BTYD inputs (SQL) and fit with lifetimes on the same data, checking the
   results agree before timing them, and times the CLV models of a run on the small
   run's inputs: the three purchase-model fits (BG/NBD, MBG/NBD, Pareto/NBD) + Gamma-Gamma
   and the parameter-draw intervals, against the single BG/NBD + Gamma-Gamma fit;
5. writes `bench/results.json` and `BENCHMARKS.md`.

Figures under MEDIAN_BELOW seconds are medians of several runs. Benchmarks report; they
never fail a build, except when the two implementations compared disagree (a timing of
different results would be meaningless).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from customer_marts.clv import uncertainty as clv_uncertainty
from customer_marts.clv.fitting import Fit, fit_bg_nbd, fit_gamma_gamma, fit_purchase_models
from customer_marts.clv.models import BG_NBD, INPUT_COLUMNS, PURCHASE_MODELS
from customer_marts.config import DEMO_MARKER, Settings
from customer_marts.ingest.contract import SOURCES
from customer_marts.runs.schema import column_type
from customer_marts.transform.runner import run_dbt
from tools.demo.generator import DemoSpec, write_landing
from tools.local_airflow import local_airflow_env

log = logging.getLogger(__name__)

DAG_ID = "customer_marts_nightly"
# Share of completed orders followed by a survey response: about 10 % of all orders.
SURVEY_SHARE = 0.107
MEDIAN_BELOW = 10.0  # seconds: a figure under this is the median of REPEATS runs
REPEATS = 5
SAMPLE_EVERY = 0.2  # seconds between two samples of the process tree's memory
QUIET_LOAD = 1.5  # 1-minute load average under which the machine counts as quiet
QUIET_WAIT = 10 * 60  # seconds to wait for a quiet machine before running anyway
MIB = 1024 * 1024
PARAMETER_RTOL = 1e-3  # our fit and lifetimes' agree within 0.1 %

# The CLV step: every dbt model between the orders and the CLV marts (the BTYD inputs, the
# fits, the holdout check, the predictions with their intervals, the CLV marts).
CLV_MODEL = re.compile(r"clv|btyd")
# The CLV step at 10M orders before the holdout check, the three models and the intervals
# (commit 900ada8: one BG/NBD + Gamma-Gamma fit and its predictions): `clv_step` of that
# commit's CLV models on the same 10M build database, twice (7.6 and 8.8 s), alternating
# with today's on the same quiet machine.
CLV_STEP_BEFORE_10M = 8.2

# target: (figure, comparison, bound)
TARGETS = {
    "e2e_seconds_10m": ("<=", 120.0),
    "peak_rss_mb_10m": ("<=", 6144.0),
    "incremental_seconds_10m": ("<=", 30.0),
    "ratio_to_sql_floor_10m": ("<=", 3.0),
    "btyd_summary_speedup_vs_lifetimes": (">=", 5.0),
    "clv_fit_speedup_vs_lifetimes": (">=", 3.0),
    "clv_step_over_before_10m": ("<", 3.0),
}


@dataclass(frozen=True)
class Scale:
    """The sizes of one benchmark invocation."""

    name: str
    small_orders: int
    large_orders: int
    next_day_orders: int

    @property
    def labels(self) -> tuple[str, str]:
        return _label(self.small_orders), _label(self.large_orders)


SCALES = {
    "full": Scale("full", 1_000_000, 10_000_000, 15_000),
    "small": Scale("small", 50_000, 200_000, 1_500),  # to develop the benchmark itself
}


def _label(orders: int) -> str:
    return f"{orders // 1_000_000}m" if orders % 1_000_000 == 0 else f"{orders // 1_000}k"


# ---------------------------------------------------------------- data


def demo_spec(orders: int) -> DemoSpec:
    """The demo spec for about `orders` orders, five per customer (two years, seed 42)."""
    return DemoSpec.for_orders(orders, survey_share=SURVEY_SHARE)


def dataset(data_dir: Path, orders: int) -> tuple[Path, dict]:
    """The landing folder for about `orders` orders, generated once and cached.

    The cache is keyed by the spec; a folder is complete once its marker is written
    (the generator writes the marker last), so an interrupted generation starts over.
    """
    spec = demo_spec(orders)
    folder = (
        data_dir
        / f"landing-{spec.customers}c-seed{spec.seed}-s{spec.survey_share}-r{spec.repeat_rate}"
    )
    marker = folder / DEMO_MARKER
    if marker.exists():
        return folder, json.loads(marker.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    log.info("generating %s orders (%d customers) into %s", f"{orders:,}", spec.customers, folder)
    started = time.perf_counter()
    summary = write_landing(folder, spec)
    log.info("generated in %.1f s", time.perf_counter() - started)
    return folder, {**json.loads(marker.read_text()), **summary}


def write_next_day(landing: Path, info: dict, day: date, orders: int, seed: int = 7) -> int:
    """Land one more day of exports after the demo history: `orders` orders (80 % by
    existing customers, 20 % first orders of new ones) and responses to about 10 %."""
    rng = np.random.default_rng(seed)
    customers = int(info["customers"])
    new = int(orders * 0.2)
    customer = np.concatenate(
        [rng.integers(1, customers + 1, orders - new), customers + 1 + np.arange(new)]
    )
    seconds = np.sort(rng.integers(0, 86_400, orders))
    start = pd.Timestamp(day)
    frame = pd.DataFrame(
        {
            "order_id": [f"O{int(info['orders']) + i + 1:08d}" for i in range(orders)],
            "ordered_at": (start + pd.to_timedelta(seconds, "s")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer_id": [f"C{c:07d}" for c in rng.permutation(customer)],
            "amount": np.round(rng.lognormal(np.log(60), 0.5, orders), 2),
            "status": rng.choice(
                ["completed", "cancelled", "refunded"], orders, p=[0.92, 0.05, 0.03]
            ),
            "currency": "USD",
            "channel": rng.choice(["organic", "email", "direct", "app"], orders),
            "country": rng.choice(["US", "GB", "DE", "FR", "NL", "CA"], orders),
        }
    )
    (landing / "orders").mkdir(parents=True, exist_ok=True)
    frame.to_csv(landing / "orders" / f"orders_{day}.csv", index=False)
    answered = frame.sample(frac=0.1, random_state=seed).sort_index()
    responses = pd.DataFrame(
        {
            "response_id": [
                f"R{int(info['survey_responses']) + i + 1:08d}" for i in range(len(answered))
            ],
            "responded_at": answered["ordered_at"].to_numpy(),
            "customer_id": answered["customer_id"].to_numpy(),
            "nps_score": rng.integers(0, 11, len(answered)),
            "csat_score": rng.integers(1, 6, len(answered)),
            "ces_score": rng.integers(1, 8, len(answered)),
            "comment": "",
            "channel": "email",
        }
    )
    (landing / "surveys").mkdir(parents=True, exist_ok=True)
    responses.to_csv(landing / "surveys" / f"responses_{day}.csv", index=False)
    return orders


def link_tree(source: Path, destination: Path) -> None:
    """A copy of a landing folder made of hard links (symbolic links across devices):
    files can be added to it without touching the cache."""
    shutil.rmtree(destination, ignore_errors=True)
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            target.symlink_to(path.resolve())


# ---------------------------------------------------------------- measuring


def timed(function: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any, list[float]]:
    """(seconds, last result, all timings): the median of `repeats` runs when the
    first run takes under MEDIAN_BELOW seconds, else that single run."""
    timings, result = [], None
    for attempt in range(repeats):
        started = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - started)
        if attempt == 0 and timings[0] >= MEDIAN_BELOW:
            break
    return statistics.median(timings), result, timings


class MemorySampler:
    """Peak resident memory of a process and all its descendants, sampled every
    SAMPLE_EVERY seconds with psutil: the peak of the summed RSS of the tree (shared
    pages count once per process, so this errs high) and of the largest process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_total = 0
        self.peak_process = 0
        self.samples: list[tuple[float, int]] = []  # (epoch seconds, summed RSS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        """The highest summed RSS sampled between two epoch times (0 if none)."""
        return max((total for at, total in self.samples if start <= at <= end), default=0)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            sizes = []
            for process in tree:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.Error:
                    pass
            if sizes:
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes))
                self.samples.append((time.time(), sum(sizes)))
            self._stop.wait(SAMPLE_EVERY)


# ---------------------------------------------------------------- the real DAG run


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
        child = subprocess.Popen(
            [airflow_command(), "dags", "test", DAG_ID, as_of.isoformat()],
            env=airflow_env(home, landing, warehouse),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        with MemorySampler(child.pid) as memory:
            returncode = child.wait()
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


def _logged_at(text: str, marker: str) -> datetime | None:
    for line in text.splitlines():
        if marker in line and (match := LOG_TIME.match(line)):
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
    first_node = _logged_at(text, " of ")
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


# ---------------------------------------------------------------- the SQL floor


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
    copy of the run's raw tables (untimed); then every model of the run's manifest is
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


# ---------------------------------------------------------------- against lifetimes


@contextmanager
def _quiet_lifetimes() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources, pandas deprecations
        yield


def completed_orders(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The completed orders the BTYD inputs are computed from, as lifetimes takes them."""
    return con.execute(
        "select customer_id, order_date::timestamp as order_date, amount::double as amount "
        "from intermediate.int_orders_numbered where is_completed"
    ).df()


def lifetimes_summary(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    with _quiet_lifetimes():
        from lifetimes.utils import summary_data_from_transaction_data

        return summary_data_from_transaction_data(
            orders,
            "customer_id",
            "order_date",
            monetary_value_col="amount",
            observation_period_end=pd.Timestamp(as_of),
            freq="D",
        )


def compare_summaries(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Raise unless our BTYD inputs equal lifetimes' summary: the same customers,
    frequency, recency and T exactly, monetary value within 1e-9 (relative)."""
    ours = ours.set_index("customer_id").sort_index()
    theirs = theirs.sort_index()
    if list(ours.index) != list(theirs.index):
        raise AssertionError(f"customers differ: {len(ours)} ours, {len(theirs)} lifetimes")
    for mine, other in (("frequency", "frequency"), ("recency_days", "recency"), ("t_days", "T")):
        differ = int((ours[mine].to_numpy(float) != theirs[other].to_numpy(float)).sum())
        if differ:
            raise AssertionError(f"{mine} differs from lifetimes' {other} for {differ} customers")
    money = ours["monetary_value"].to_numpy(float)
    expected = theirs["monetary_value"].to_numpy(float)
    worst = float(np.max(np.abs(money - expected) / np.maximum(np.abs(expected), 1e-12)))
    if worst > 1e-9:
        raise AssertionError(f"monetary_value differs from lifetimes' by up to {worst:.2e}")
    return {"customers": len(ours), "monetary_max_rel_diff": worst}


BTYD_COLUMNS = ", ".join(("customer_id", *INPUT_COLUMNS))


def btyd_summary_vs_lifetimes(build_db: Path, target: Path, as_of: date) -> dict[str, Any]:
    """Our SQL BTYD inputs against lifetimes' summary_data_from_transaction_data, both from
    the same completed orders held in memory (a DuckDB table; a DataFrame), compared
    before they are timed.

    Ours is `int_customers_summarised_for_clv`'s compiled SQL, asked for the columns
    lifetimes computes (customer, frequency, recency, T, monetary value; DuckDB drops
    the model's other aggregates), fetched as a DataFrame as lifetimes returns one.
    """
    node = next(n for n in dbt_models(target) if n["name"] == "int_customers_summarised_for_clv")
    sql = f"select {BTYD_COLUMNS} from ({compiled_code(target, node)})"
    with duckdb.connect(str(build_db), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        orders = completed_orders(con)
        seconds_ours, summary, runs_ours = timed(lambda: con.execute(sql).df())
    seconds_theirs, expected, runs_theirs = timed(lambda: lifetimes_summary(orders, as_of))
    agreement = compare_summaries(summary, expected)
    return {
        "orders": len(orders),
        **agreement,
        "ours_seconds": seconds_ours,
        "lifetimes_seconds": seconds_theirs,
        "speedup": seconds_theirs / seconds_ours,
        "ours_runs": len(runs_ours),
        "lifetimes_runs": len(runs_theirs),
    }


def btyd_inputs(build_db: Path) -> tuple[np.ndarray, ...]:
    """(frequency, recency, T, monetary value) of the run's customers, as floats."""
    with duckdb.connect(str(build_db), read_only=True) as con:
        data = con.execute(
            "select frequency, recency_days, t_days, monetary_value "
            "from intermediate.int_customers_summarised_for_clv"
        ).fetchnumpy()
    return tuple(np.asarray(data[name], float) for name in data)


def lifetimes_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray):
    """lifetimes' BetaGeoFitter and GammaGammaFitter on the same day-level inputs.

    On the raw amounts (a mean spend of ~60) lifetimes' Gamma-Gamma fit stops with a
    ConvergenceError (BFGS precision loss, as docs/clv.md notes), so it
    gets the amounts divided by their mean, as ours rescales internally; p and q do not
    change with the unit of money and its scale v is multiplied back.
    """
    with _quiet_lifetimes():
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        repeat = x > 0
        unit = float(m[repeat].mean())
        spend = GammaGammaFitter().fit(x[repeat], m[repeat] / unit)
        spend.params_["v"] *= unit
        return BetaGeoFitter().fit(x, t_x, T), spend


def our_fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray) -> tuple[Fit, ...]:
    return fit_bg_nbd(x, t_x, T), fit_gamma_gamma(x, m)


def compare_fits(ours: tuple[Fit, ...], theirs: tuple) -> float:
    """The largest relative difference between our parameters and lifetimes'; raise if
    it exceeds PARAMETER_RTOL (or a fit did not converge)."""
    worst = 0.0
    for fit, fitter in zip(ours, theirs, strict=True):
        if not fit.converged:
            raise AssertionError(f"our {fit.model} fit did not converge: {fit.message}")
        mine = np.array(fit.values())
        other = fitter.params_.to_numpy(float)
        worst = max(worst, float(np.max(np.abs(mine - other) / np.abs(other))))
    if worst > PARAMETER_RTOL:
        raise AssertionError(f"parameters differ from lifetimes' by up to {worst:.2e}")
    return worst


def clv_fit_vs_lifetimes(build_db: Path) -> dict[str, Any]:
    """Our BG/NBD + Gamma-Gamma fit against lifetimes' fitters on the same inputs."""
    x, t_x, T, m = btyd_inputs(build_db)
    seconds_ours, fits, runs_ours = timed(lambda: our_fit(x, t_x, T, m))
    seconds_theirs, fitters, runs_theirs = timed(lambda: lifetimes_fit(x, t_x, T, m), repeats=3)
    worst = compare_fits(fits, fitters)
    return {
        "customers": len(x),
        "parameters_max_rel_diff": worst,
        "ours_seconds": seconds_ours,
        "lifetimes_seconds": seconds_theirs,
        "speedup": seconds_theirs / seconds_ours,
        "ours_runs": len(runs_ours),
        "lifetimes_runs": len(runs_theirs),
    }


def clv_models_timing(build_db: Path) -> dict[str, Any]:
    """The CLV models a run fits and propagates, timed on one run's inputs (each figure
    the median of several runs when short): the single BG/NBD + Gamma-Gamma fit (what a
    run fitted before there were three models), the three purchase models + Gamma-Gamma
    (a run fits them twice: on all history and on the calibration window), and the 90 %
    intervals of the customers and of groups (every customer in one of eight groups)."""
    x, t_x, T, m = btyd_inputs(build_db)
    single, _, _ = timed(lambda: our_fit(x, t_x, T, m))
    three, fits, _ = timed(
        lambda: fit_purchase_models(PURCHASE_MODELS, x, t_x, T) + [fit_gamma_gamma(x, m)]
    )
    bg, spend = fits[0], fits[-1]
    if not (bg.converged and spend.converged):
        raise AssertionError("the BG/NBD or Gamma-Gamma fit did not converge")
    arguments = (
        BG_NBD,
        (bg.values(), bg.log_covariance),
        (spend.values(), spend.log_covariance),
        x,
        t_x,
        T,
        m,
    )
    customers, _, _ = timed(lambda: clv_uncertainty.propagate(*arguments))
    groups, _, _ = timed(
        lambda: clv_uncertainty.propagate(
            *arguments, groups={"group": (np.arange(len(x)) % 8)}, customers=False
        )
    )
    return {
        "customers": len(x),
        "draws": clv_uncertainty.DRAWS,
        "single_fit_seconds": single,
        "three_fits_seconds": three,
        "customer_intervals_seconds": customers,
        "group_intervals_seconds": groups,
        "converged": {fit.model: fit.converged for fit in fits},
        # a run: both fits of every model (all history, calibration) and both intervals
        "run_over_single_fit": (2 * three + customers + groups) / single,
    }


# ---------------------------------------------------------------- machine


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float = QUIET_LOAD, wait: float = QUIET_WAIT, poll: float = 30.0):
    """Wait until the 1-minute load average is under `limit` (at most `wait` seconds).
    Returns (load average at the end of the wait, whether it was quiet, seconds waited)."""
    started = time.monotonic()
    while True:
        load = load_average()
        waited = time.monotonic() - started
        if load < limit:
            return load, True, waited
        if waited >= wait:
            log.warning("load average still %.2f after %.0f s: running anyway", load, waited)
            return load, False, waited
        log.info("load average %.2f >= %.2f: waiting for a quiet machine", load, limit)
        time.sleep(poll)


def machine_info() -> dict[str, Any]:
    import importlib.metadata as metadata

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    memory = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = re.search(r"MemTotal:\s+(\d+)", meminfo.read_text())
        memory = int(kib.group(1)) * 1024 if kib else 0
    versions = {}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "apache-airflow", "great_expectations"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(memory / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


# ---------------------------------------------------------------- the whole benchmark


@dataclass
class Context:
    root: Path  # bench/
    data_dir: Path  # bench/data (cached datasets, run folders)
    results_path: Path
    markdown_path: Path
    scale: Scale
    wait: bool = True
    keep_runs: bool = False  # keep the run folders (logs, warehouses) for profiling


def _full_run(context: Context, orders: int) -> dict[str, Any]:
    """The full run from an empty warehouse and a fresh Airflow home."""
    label = _label(orders)
    cached, info = dataset(context.data_dir, orders)
    workdir = context.data_dir / "runs" / label
    landing, warehouse, home = workdir / "landing", workdir / "warehouse", workdir / "airflow"
    shutil.rmtree(warehouse, ignore_errors=True)
    link_tree(cached, landing)
    migrate_seconds = migrate(home, landing, warehouse)
    as_of = date.fromisoformat(info["last_date"])
    full = dag_test(home, landing, warehouse, as_of, workdir / f"dag-{as_of}.log")
    return {
        "orders": int(info["orders"]),
        "customers": int(info["customers"]),
        "survey_responses": int(info["survey_responses"]),
        "survey_sends": int(info["survey_sends"]),
        "files": int(info["order_files"] + info["survey_files"] + info["send_files"]),
        "airflow_db_migrate_seconds": round(migrate_seconds, 2),
        "full": full.figures(),
        "ingest_rows_per_second": full.rows_read / full.tasks["ingest"],
        "info": info,
        "workdir": workdir,
        "home": home,
        "warehouse": warehouse,
        "landing": landing,
        "as_of": as_of,
    }


def clv_step(runs: dict[str, Any]) -> dict[str, Any]:
    """The CLV step alone: `dbt run` of the models CLV_MODEL names on a full run's build
    database as of its as-of date (dbt's own elapsed time, without its start-up), and
    each model's seconds."""
    warehouse = runs["warehouse"]
    target = warehouse / "dbt" / "target"
    names = [node["name"] for node in dbt_models(target) if CLV_MODEL.search(node["name"])]
    settings = Settings.from_env()
    settings = replace(settings, landing_dir=runs["landing"], warehouse_dir=warehouse)
    step_target = runs["workdir"] / "clv_step"
    code, results = run_dbt(
        settings, "run", runs["as_of"], "--select", *names, target_path=step_target
    )
    if code != 0:
        raise RuntimeError(f"dbt run of the CLV step failed (exit {code}); see the log")
    run_results = json.loads(results.read_text())
    return {
        "seconds": round(float(run_results["elapsed_time"]), 2),
        "models": {
            node["unique_id"].split(".")[-1]: round(float(node["execution_time"]), 2)
            for node in run_results["results"]
        },
    }


def _incremental_run(runs: dict[str, Any], orders: int) -> None:
    """One more day of orders landed on top of a full run's history, then its run."""
    day = runs["as_of"] + timedelta(days=1)
    write_next_day(runs["landing"], runs["info"], day, orders)
    runs["next_day_orders"] = orders
    log_path = runs["workdir"] / f"dag-{day}.log"
    runs["incremental"] = dag_test(
        runs["home"], runs["landing"], runs["warehouse"], day, log_path
    ).figures()


def run(context: Context) -> dict[str, Any]:
    """Run every measurement of `context.scale`; write results.json and BENCHMARKS.md."""
    started = datetime.now(UTC)
    small, large = context.scale.labels
    load_before = load_average()
    quiet = None
    if context.wait:
        # generate first (it does not need a quiet machine), then wait
        dataset(context.data_dir, context.scale.small_orders)
        dataset(context.data_dir, context.scale.large_orders)
        load_at_start, quiet, waited = wait_for_quiet()
    else:
        load_at_start, waited = load_before, 0.0
    machine = {
        **machine_info(),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_before_wait": round(load_before, 2),
        "waited_for_quiet_seconds": round(waited),
        "quiet_at_start": quiet,
        "memory_sampling": f"psutil, process tree RSS summed, every {SAMPLE_EVERY} s",
    }
    clock = time.perf_counter()

    small_runs = _full_run(context, context.scale.small_orders)
    target = small_runs["warehouse"] / "dbt" / "target"
    build_db = small_runs["warehouse"] / "build.duckdb"
    btyd = btyd_summary_vs_lifetimes(build_db, target, small_runs["as_of"])
    fit = clv_fit_vs_lifetimes(build_db)
    models = clv_models_timing(build_db)
    if not context.keep_runs:
        shutil.rmtree(small_runs["workdir"], ignore_errors=True)

    large_runs = _full_run(context, context.scale.large_orders)
    floor = sql_floor(  # on the full run's raw tables and manifest
        large_runs["warehouse"] / "build.duckdb",
        large_runs["warehouse"] / "dbt" / "target",
        large_runs["landing"],
        large_runs["workdir"] / "floor",
    )
    large_runs["clv_step"] = clv_step(large_runs)
    _incremental_run(large_runs, context.scale.next_day_orders)
    if not context.keep_runs:
        shutil.rmtree(large_runs["workdir"], ignore_errors=True)

    full_large, full_small = large_runs["full"], small_runs["full"]
    peak = max(full_large["peak_rss_mb"], large_runs["incremental"]["peak_rss_mb"])
    results = {
        f"e2e_seconds_{small}": full_small["seconds"],
        f"e2e_seconds_{large}": full_large["seconds"],
        f"incremental_seconds_{large}": large_runs["incremental"]["seconds"],
        f"peak_rss_mb_{large}": peak,
        f"sql_floor_seconds_{large}": round(floor["seconds"], 2),
        f"ratio_to_sql_floor_{large}": round(full_large["seconds"] / floor["seconds"], 2),
        "btyd_summary_speedup_vs_lifetimes": round(btyd["speedup"], 2),
        "clv_fit_speedup_vs_lifetimes": round(fit["speedup"], 2),
        f"clv_three_fits_seconds_{small}": round(models["three_fits_seconds"], 2),
        f"clv_intervals_seconds_{small}": round(
            models["customer_intervals_seconds"] + models["group_intervals_seconds"], 2
        ),
        f"clv_models_over_single_fit_{small}": round(models["run_over_single_fit"], 2),
        f"clv_step_seconds_{large}": large_runs["clv_step"]["seconds"],
        "ingest_rows_per_second": round(large_runs["ingest_rows_per_second"]),
        f"e2e_scaling_{large}_over_{small}": round(
            full_large["seconds"] / full_small["seconds"], 2
        ),
        f"orders_ratio_{large}_over_{small}": round(large_runs["orders"] / small_runs["orders"], 2),
    }
    if large == "10m":  # the step before was measured at 10M orders only
        results["clv_step_over_before_10m"] = round(
            large_runs["clv_step"]["seconds"] / CLV_STEP_BEFORE_10M, 2
        )
    details = {
        small: _public(small_runs),
        large: _public(large_runs),
        "sql_floor": _rounded(floor),
        "btyd_summary_vs_lifetimes": _rounded(btyd),
        "clv_fit_vs_lifetimes": _rounded(fit),
        "clv_models": _rounded(models),
        "bench_seconds": round(time.perf_counter() - clock, 1),
    }
    document = {
        **results,
        "targets": {key: {"comparison": op, "bound": bound} for key, (op, bound) in TARGETS.items()}
        if context.scale.name == "full"
        else {},
        "details": details,
        "machine": machine,
        "scale": context.scale.name,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
    }
    context.results_path.parent.mkdir(parents=True, exist_ok=True)
    context.results_path.write_text(json.dumps(document, indent=2) + "\n")
    render(document, context.markdown_path)
    log.info("results in %s and %s", context.results_path, context.markdown_path)
    return document


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    hidden = {"workdir", "home", "warehouse", "landing", "as_of", "info"}
    return _rounded({key: value for key, value in figures.items() if key not in hidden})


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, float):
        return float(f"{value:.3g}") if abs(value) < 1 else round(value, 2)
    return value


# ---------------------------------------------------------------- BENCHMARKS.md

NOTES_START, NOTES_END = "<!-- notes: kept when the file is regenerated -->", "<!-- /notes -->"
FIGURES = {
    "e2e_seconds": "Full nightly run from an empty warehouse (`airflow dags test`), s",
    "incremental_seconds": "Nightly run after one more day (~15k orders) lands, s",
    "peak_rss_mb": "Peak resident memory of the run, all processes, MiB",
    "sql_floor_seconds": "Same marts straight in DuckDB (the floor), s",
    "ratio_to_sql_floor": "Full run / floor",
    "btyd_summary_speedup_vs_lifetimes": "BTYD inputs: our SQL vs lifetimes' summary, x faster",
    "clv_fit_speedup_vs_lifetimes": "BG/NBD + Gamma-Gamma fit: ours vs lifetimes, x faster",
    "clv_three_fits_seconds": "CLV: BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma fits, s",
    "clv_intervals_seconds": "CLV: 90 % intervals (customers and groups), s",
    "clv_models_over_single_fit": "CLV: a run's fits and intervals / the single BG/NBD fit",
    "clv_step_seconds": "CLV step alone (`dbt run` of its models on the full run's build), s",
    "clv_step_over_before": "CLV step / the same step before the holdout, models and intervals",
    "ingest_rows_per_second": "CSV ingest throughput (ingest task), rows/s",
    "e2e_scaling": "Scaling of the full run (time ratio)",
    "orders_ratio": "Orders ratio of the two sizes",
}


def _clv_models_lines(models: dict[str, Any] | None, size: str) -> list[str]:
    if not models:
        return []
    return [
        "## CLV models",
        "",
        f"On the {size} run's BTYD inputs ({models['customers']:,} customers), "
        f"{models['draws']} parameter draws; figures under {MEDIAN_BELOW:g} s are medians.",
        "",
        "| | s |",
        "| --- | ---: |",
        f"| BG/NBD + Gamma-Gamma fit (one model) | {_number(models['single_fit_seconds'])} |",
        f"| BG/NBD, MBG/NBD, Pareto/NBD + Gamma-Gamma fits | "
        f"{_number(models['three_fits_seconds'])} |",
        f"| intervals of every customer | {_number(models['customer_intervals_seconds'])} |",
        f"| intervals of group sums | {_number(models['group_intervals_seconds'])} |",
        f"| a run (fits twice: all history and calibration; both intervals) / one fit | "
        f"{models['run_over_single_fit']:.1f}x |",
        "",
    ]


def _figure_name(key: str) -> str:
    for prefix, text in FIGURES.items():
        if key.startswith(prefix):
            suffix = key[len(prefix) :].lstrip("_")
            return f"{text}" + (f" ({suffix.replace('_', ' ')})" if suffix else "")
    return key


def _verdict(key: str, value: float, targets: dict) -> tuple[str, str]:
    if key not in targets:
        return "", ""
    op, bound = targets[key]["comparison"], targets[key]["bound"]
    met = value <= bound if op == "<=" else value >= bound
    return f"{op} {bound:g}", "met" if met else "**missed**"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _shares(tasks: dict[str, float], total: float) -> str:
    ranked = sorted(tasks.items(), key=lambda item: -item[1])
    return ", ".join(
        f"`{name}` {seconds:.0f} s ({100 * seconds / total:.0f} %)" for name, seconds in ranked
    )


def render(document: dict[str, Any], path: Path) -> None:
    """Write BENCHMARKS.md from a results document, keeping the hand-written notes."""
    notes = "Findings and fixes: none recorded yet."
    if path.exists():
        text = path.read_text()
        if NOTES_START in text and NOTES_END in text:
            notes = text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip()
    details, machine, targets = document["details"], document["machine"], document["targets"]
    sizes = [key for key in details if key[0].isdigit()]
    small, large = sizes
    lines = [
        "# Benchmarks",
        "",
        f"Measured {document['date']} by `make bench` (scale `{document['scale']}`); "
        "figures from `bench/results.json`. This file is regenerated by every run; the notes "
        "section is kept.",
        "",
        "## Figures",
        "",
        "| figure | value | target | |",
        "| --- | ---: | ---: | --- |",
    ]
    for key, value in document.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            target, verdict = _verdict(key, float(value), targets)
            lines.append(
                f"| {_figure_name(key)} `{key}` | {_number(value)} | {target} | {verdict} |"
            )
    lines += ["", "## Data", "", "| | " + " | ".join(sizes) + " |", "| --- | ---: | ---: |"]
    for key in ("orders", "customers", "survey_responses", "survey_sends", "files"):
        lines.append(
            f"| {key.replace('_', ' ')} | "
            + " | ".join(_number(details[s][key]) for s in sizes)
            + " |"
        )
    lines.append(
        f"| next day's orders (incremental run) | | {_number(details[large]['next_day_orders'])} |"
    )
    runs = {
        f"full {small}": details[small]["full"],
        f"full {large}": details[large]["full"],
        f"incremental {large}": details[large]["incremental"],
    }
    lines += [
        "",
        "## Where the time goes",
        "",
        "Seconds per task (Airflow's task-instance durations; the wall time also holds "
        "`airflow dags test`'s own start-up and scheduling between tasks), then the "
        "`dbt_build` task split up (dbt's run_results.json and the task log's timestamps).",
        "",
        "| | " + " | ".join(runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
        "| **wall time** | " + " | ".join(_number(run["seconds"]) for run in runs.values()) + " |",
    ]

    def row(label: str, pick: Callable[[dict[str, Any]], Any]) -> str:
        return f"| {label} | " + " | ".join(_number(pick(run)) for run in runs.values()) + " |"

    full = runs[f"full {large}"]
    lines += [row(task, lambda run, t=task: run["tasks"].get(t, 0.0)) for task in full["tasks"]]
    lines += [
        row(f"dbt: {step.replace('_', ' ')}", lambda run, s=step: run["steps"].get(s, 0.0))
        for step in full["steps"]
    ]
    lines.append(row("peak RSS, MiB (tree)", lambda run: run["peak_rss_mb"]))
    lines.append(row("peak RSS, MiB (largest process)", lambda run: run["peak_process_rss_mb"]))
    lines += [
        row(
            f"peak RSS during {task}, MiB", lambda run, t=task: run["peak_rss_mb_by_task"].get(t, 0)
        )
        for task in full.get("peak_rss_mb_by_task", {})
    ]
    lines += [
        "",
        f"**What dominates** the full {large} run ({full['seconds']:.0f} s): "
        + _shares(full["tasks"], full["seconds"])
        + ".",
        "",
        f"Slowest dbt nodes of the full {large} run (seconds, each on one of dbt's 2 threads):",
        "",
    ]
    lines += [f"- {name}: {seconds:.1f}" for name, seconds in full["slowest_dbt_nodes"].items()]
    floor = details["sql_floor"]
    lines += [
        "",
        "## The SQL floor",
        "",
        f"The {large} run's compiled models ({floor['models']}) executed in dependency order in one "
        "DuckDB connection, without Airflow, dbt or Great Expectations, on a copy of the run's "
        "raw tables: SQL models as `create view` / `create table as` their compiled SQL, the "
        "two Python models (the CLV fit and predictions) by running their compiled code. Every "
        "table's row count is checked against the pipeline's. Added to it: the typed CSV load "
        "of the same files with one `read_csv` per source (the floor of ingestion).",
        "",
        "| part | seconds |",
        "| --- | ---: |",
        f"| CSV load (`read_csv`, {floor['load_rows']:,} rows) | {_number(floor['load_seconds'])} |",
        f"| SQL models | {_number(floor['sql_models_seconds'])} |",
        f"| Python models (CLV fit, predictions) | {_number(floor['python_models_seconds'])} |",
        f"| **floor** | {_number(floor['seconds'])} |",
        "",
        "Slowest models in the floor: "
        + ", ".join(
            f"`{name}` {seconds:.1f} s" for name, seconds in floor["slowest_models"].items()
        )
        + ".",
    ]
    btyd, fit = details["btyd_summary_vs_lifetimes"], details["clv_fit_vs_lifetimes"]
    lines += [
        "",
        "## Against lifetimes",
        "",
        f"On the {small} run's data. Figures under {MEDIAN_BELOW:g} s are medians of up to "
        f"{REPEATS} runs.",
        "",
        "| | ours, s | lifetimes 0.11.3, s | speed-up | agreement |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| BTYD inputs from {btyd['orders']:,} completed orders ({btyd['customers']:,} "
        f"customers) | {_number(btyd['ours_seconds'])} | {_number(btyd['lifetimes_seconds'])} "
        f"| {btyd['speedup']:.1f}x | frequency, recency, T equal; monetary value within "
        f"{btyd['monetary_max_rel_diff']:.0e} |",
        f"| BG/NBD + Gamma-Gamma fit ({fit['customers']:,} customers) "
        f"| {_number(fit['ours_seconds'])} | {_number(fit['lifetimes_seconds'])} "
        f"| {fit['speedup']:.1f}x | parameters within {fit['parameters_max_rel_diff']:.0e} "
        "(relative) |",
        "",
        "Ours: `int_customers_summarised_for_clv`'s compiled SQL in DuckDB on the run's "
        "`int_orders_numbered` (2 threads), asked for the columns lifetimes computes and "
        "fetched as a DataFrame; `customer_marts.clv.fitting.fit_bg_nbd` + `fit_gamma_gamma`. "
        "lifetimes (one thread): `summary_data_from_transaction_data(freq='D')` on the same "
        "completed orders already in a DataFrame; `BetaGeoFitter().fit` + "
        "`GammaGammaFitter().fit` on the same day-level inputs (its Gamma-Gamma fit gets the "
        "amounts divided by their mean: on the raw amounts it stops with a ConvergenceError "
        "at this size; v is scaled back).",
        "",
        *_clv_models_lines(details.get("clv_models"), small),
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in machine.items()]
    if machine.get("quiet_at_start") is False:
        lines += [
            "",
            f"**The machine was not quiet**: the 1-minute load average was still "
            f"{machine['load_average_1m_at_start']} after waiting "
            f"{machine['waited_for_quiet_seconds']} s; other work shared the 2 cores, so "
            "the times are longer than on an idle machine.",
        ]
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        "make run        # optional: the demo pipeline once (installs the venv)",
        f"make bench      # {details['bench_seconds'] / 60:.0f} min of measuring here, plus about 2 "
        "min of data generation on the first run",
        'make bench BENCH_ARGS="--scale small --no-wait"   # 50k / 200k orders: try it out',
        "```",
        "",
        "The data (generated by `tools.demo`, seed 42, two years of daily files, "
        "five orders per customer, survey responses to "
        f"{SURVEY_SHARE:.1%} of completed orders) is cached under `bench/data/` (git-ignored) "
        "and reused; delete it to regenerate. Each DAG run gets a fresh warehouse and a fresh "
        "`AIRFLOW_HOME` with SQLite metadata (`airflow db migrate` is not timed). `make bench` "
        f"waits up to {QUIET_WAIT // 60} minutes for the 1-minute load average to fall under "
        f"{QUIET_LOAD} before measuring (`--no-wait` skips that) and records it. Peak memory: "
        f"{machine.get('memory_sampling', '')}; the figure is the higher of the full and the "
        "incremental run.",
        "",
        "## Notes",
        "",
        NOTES_START,
        notes,
        NOTES_END,
        "",
    ]
    path.write_text("\n".join(lines))
