"""`make run` tells the truth about what ran, with real processes and real Airflow.

One real run covers the slow tests: `customer-marts run` (what `make run` runs)
builds a 1997 order history (the CDNOW years; the DAG used to have a 2024 start
date, and a run dated before it had no tasks and was marked successful), and while
it runs a second `customer-marts run` on the same warehouse, with another AIRFLOW_HOME,
must refuse at once. The Airflow metadata and the run record it leaves are then
tampered with (on copies) to check that make run's verification reports a run in
which a task did not run as failed. The LANDING_DIR checks need no Airflow run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from customer_marts.cli.run import prepare_landing
from customer_marts.config import DEMO_MARKER, Settings
from customer_marts.runs.summary import find_airflow_run, verify_run
from tests.conftest import DBT_TESTS_LEFT_OUT, airflow_env, make_settings, write_csv

COMMAND = [sys.executable, "-m", "customer_marts", "run"]  # = .venv/bin/customer-marts run
AS_OF = date(1997, 9, 30)
DAG_ID = "customer_marts_nightly"
TASKS = ("start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish")
STEPS = "ingest,validate_raw,dbt_build,validate_marts,publish"
ORDER_HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]
SURVEY_HEADER = ["response_id", "customer_id", "responded_at", "nps_score", "csat_score"]


@dataclass
class History:
    orders_by_as_of: int  # orders dated on or before AS_OF
    customers_by_as_of: int


def cdnow_history(landing: Path, customers: int = 120, seed: int = 1997) -> History:
    """A CDNOW-like history: every customer's first purchase in the first quarter of
    1997, repeat purchases 5 to 80 days apart until AS_OF, one order after it (which
    waits for a later run), and survey responses after a fifth of the orders."""
    rng = random.Random(seed)
    orders, responses = [], []
    for number in range(customers):
        customer = f"C{number:04d}"
        day = date(1997, 1, 1) + timedelta(days=rng.randrange(90))
        while day <= AS_OF:
            amount = f"{rng.randrange(500, 9000) / 100:.2f}"
            orders.append([f"O{len(orders):05d}", customer, f"{day}T10:00:00Z", amount])
            if rng.random() < 0.2:
                score = [rng.randrange(11), rng.randrange(1, 6)]
                responses.append([f"R{len(responses):05d}", customer, f"{day}T20:00:00Z", *score])
            day += timedelta(days=rng.randrange(5, 80))
    # the newest orders are on the as-of date and the day before (the freshness gate)
    orders += [["O_last_1", "C0000", f"{AS_OF - timedelta(days=1)}T12:00:00Z", "10.00"]]
    orders += [["O_last_2", "C0001", f"{AS_OF}T12:00:00Z", "12.00"]]
    by_as_of = len(orders)
    buyers = {order[1] for order in orders}
    orders += [["O_later", "C0002", f"{AS_OF + timedelta(days=5)}T12:00:00Z", "9.00"]]
    rows = [[*order, "completed"] for order in orders]
    write_csv(landing / "orders" / "cdnow_1997.csv", ORDER_HEADER, rows)
    write_csv(landing / "surveys" / "responses_1997.csv", SURVEY_HEADER, responses)
    return History(orders_by_as_of=by_as_of, customers_by_as_of=len(buyers))


def airflow_json(env: dict[str, str], *command: str) -> list[dict]:
    """The answer of an `airflow ... -o json` command: Airflow's own word on its runs,
    a second reader beside make run's, which reads the metadata database in-process."""
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run(
        [airflow, *command, "-o", "json"], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("[")))


def nightly_env(home: Path, landing: Path, warehouse: Path) -> dict[str, str]:
    """make run's environment here; the subject is what it reports, not dbt's tests."""
    return airflow_env(
        home,
        LANDING_DIR=str(landing),
        WAREHOUSE_DIR=str(warehouse),
        RUN_DATE=AS_OF.isoformat(),
        **DBT_TESTS_LEFT_OUT,
    )


@dataclass
class TwoRuns:
    history: History
    landing: Path
    warehouse: Path
    first_pid: int
    first_returncode: int
    first_output: str
    first_overlapped: bool  # still running when the second had finished
    second: subprocess.CompletedProcess
    second_seconds: float
    second_home: Path
    earlier_log: Path


EARLIER_LOG_TEXT = "the log of an earlier run for the same as-of date\n"


@pytest.fixture(scope="module")
def two_runs(airflow_home, tmp_path_factory) -> TwoRuns:
    root = tmp_path_factory.mktemp("run_truth")
    landing, warehouse = root / "landing", root / "warehouse"
    history = cdnow_history(landing)
    # what make run used to truncate: the log file named after the as-of date only
    earlier_log = warehouse / "logs" / f"run_{AS_OF}.log"
    earlier_log.parent.mkdir(parents=True)
    earlier_log.write_text(EARLIER_LOG_TEXT)
    lock = warehouse / ".lock"
    with (root / "first.out").open("w") as out:
        first = subprocess.Popen(
            COMMAND,
            env=nightly_env(airflow_home, landing, warehouse),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while f"pid {first.pid}" not in (lock.read_text() if lock.exists() else ""):
            assert first.poll() is None, (root / "first.out").read_text()
            assert time.monotonic() < deadline, "the first run never took the warehouse lock"
            time.sleep(0.2)
        second_home = root / "other_airflow_home"
        started = time.monotonic()
        second = subprocess.run(
            COMMAND,
            env=nightly_env(second_home, landing, warehouse),
            capture_output=True,
            text=True,
            timeout=120,
        )
        second_seconds = time.monotonic() - started
        overlapped = first.poll() is None
        first.wait(timeout=900)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    return TwoRuns(
        history=history,
        landing=landing,
        warehouse=warehouse,
        first_pid=first.pid,
        first_returncode=first.returncode,
        first_output=(root / "first.out").read_text(),
        first_overlapped=overlapped,
        second=second,
        second_seconds=second_seconds,
        second_home=second_home,
        earlier_log=earlier_log,
    )


def build_records(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
        return con.execute(
            "select airflow_run_id, logical_date, status, failed_step, message, "
            "published_version, completed_steps from audit.pipeline_runs"
        ).fetchall()


@pytest.mark.slow
def test_a_1997_as_of_date_publishes_its_marts_through_airflow(two_runs, airflow_home):
    assert two_runs.first_returncode == 0, two_runs.first_output[-3000:]
    assert "The run succeeded" in two_runs.first_output
    with duckdb.connect(str(two_runs.warehouse / "published.duckdb"), read_only=True) as con:
        orders = con.execute("select count(*), max(order_date) from marts.fct_orders").fetchone()
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
        published = con.execute(
            "select logical_date, status, data_as_of from audit.pipeline_runs"
        ).fetchall()
    # every order up to the as-of date, the one after it left for a later run
    assert orders == (two_runs.history.orders_by_as_of, AS_OF)
    assert customers == two_runs.history.customers_by_as_of
    assert published == [(AS_OF, "success", AS_OF)]
    # and Airflow ran every task of that run
    [(airflow_run_id, *_)] = build_records(two_runs.warehouse)
    env = airflow_env(airflow_home)
    runs = airflow_json(env, "dags", "list-runs", DAG_ID, "-s", str(AS_OF), "-e", str(AS_OF))
    assert [(run["run_id"], run["state"]) for run in runs] == [(airflow_run_id, "success")]
    states = airflow_json(env, "tasks", "states-for-dag-run", DAG_ID, airflow_run_id)
    assert {state["task_id"]: state["state"] for state in states} == dict.fromkeys(TASKS, "success")


@pytest.mark.slow
def test_a_second_run_on_the_same_warehouse_refuses_at_once(two_runs):
    second = two_runs.second
    output = second.stdout + second.stderr
    assert second.returncode != 0, output
    assert two_runs.first_overlapped and two_runs.second_seconds < 20
    assert str(two_runs.warehouse / ".lock") in output
    assert f"pid {two_runs.first_pid}" in output
    # refused before doing anything: its Airflow home was never initialised
    assert not (two_runs.second_home / "airflow.db").exists()
    # and it says nothing of the other run's state
    for other_state in ("RUNNING", "SUCCESS", "succeeded", "published:", "quality verdict"):
        assert other_state not in output


@pytest.mark.slow
def test_each_run_keeps_its_own_log_and_record(two_runs):
    # the earlier run's log of the same as-of date is untouched
    assert two_runs.earlier_log.read_text() == EARLIER_LOG_TEXT
    logs = sorted((two_runs.warehouse / "logs").glob("*.log"))
    [own_log] = [log for log in logs if log != two_runs.earlier_log]  # none by the refused run
    assert f"the full log is {own_log}" in two_runs.first_output
    # one record, the first run's, never marked interrupted by the refused run
    [(airflow_run_id, as_of, status, failed_step, message, version, steps)] = build_records(
        two_runs.warehouse
    )
    assert (as_of, status, failed_step, message, steps) == (AS_OF, "success", None, None, STEPS)
    assert version.startswith("published-")
    log_text = own_log.read_text()
    assert airflow_run_id in log_text and airflow_run_id in two_runs.first_output
    assert two_runs.second.stdout.splitlines()[0] not in log_text


@pytest.mark.slow
def test_make_run_reports_a_run_in_which_a_task_did_not_run_as_failed(
    two_runs, airflow_home, tmp_path, monkeypatch
):
    """make run's verification on copies of the real metadata DB and warehouse. It reads
    the metadata database in its own process: it starts no `airflow` command."""
    home = tmp_path / "airflow_home"
    home.mkdir()
    shutil.copy(airflow_home / "airflow.db", home / "airflow.db")
    env = airflow_env(home)
    warehouse = tmp_path / "warehouse"
    # `cp -a` keeps published.duckdb a hard link of its version
    subprocess.run(["cp", "-a", str(two_runs.warehouse), str(warehouse)], check=True)
    settings = make_settings(tmp_path)
    assert settings.warehouse_dir == warehouse
    [(airflow_run_id, *_)] = build_records(warehouse)
    [listed] = airflow_json(env, "dags", "list-runs", DAG_ID, "-s", str(AS_OF), "-e", str(AS_OF))
    run_after = datetime.fromisoformat(listed["run_after"])

    def no_process(args, *_, **__):
        raise AssertionError(f"the verification started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    # the run is found by its as-of date and by being created at or after the launch
    assert find_airflow_run(env, AS_OF, run_after) == airflow_run_id
    assert find_airflow_run(env, AS_OF, run_after + timedelta(microseconds=1)) is None
    assert find_airflow_run(env, AS_OF - timedelta(days=1), run_after) is None
    assert verify_run(settings, env, airflow_run_id) == []  # the real run as it ran

    def tamper_metadata(sql: str) -> None:
        with sqlite3.connect(home / "airflow.db") as con:
            con.execute(sql, [DAG_ID, airflow_run_id])

    # Airflow never ran validate_marts (as a task with a later start_date is not run)
    tamper_metadata(
        "delete from task_instance where dag_id = ? and run_id = ? and task_id = 'validate_marts'"
    )
    [problem] = verify_run(settings, env, airflow_run_id)
    assert "validate_marts" in problem and "did not run" in problem
    # the run record does not show the last three steps as completed
    with duckdb.connect(str(settings.build_db)) as con:
        con.execute("update audit.pipeline_runs set completed_steps = 'ingest,validate_raw'")
    problems = verify_run(settings, env, airflow_run_id)
    assert len(problems) == 2
    assert all(step in problems[1] for step in ("dbt_build", "validate_marts", "publish"))
    # the run of the old start_date bug: no task at all, and so no run record either
    tamper_metadata("delete from task_instance where dag_id = ? and run_id = ?")
    with duckdb.connect(str(settings.build_db)) as con:
        con.execute("delete from audit.pipeline_runs")
    problems = verify_run(settings, env, airflow_run_id)
    assert [task for task in TASKS if any(f"task {task} " in p for p in problems)] == list(TASKS)
    assert any("no run record" in problem for problem in problems)


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`customer-marts run` in its own process group, killed whole if it outlives the timeout."""
    child = subprocess.Popen(
        [*COMMAND, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"customer-marts run did not stop at once: {output[-2000:]}")
    return subprocess.CompletedProcess(child.args, child.returncode, output)


def test_a_misspelt_landing_dir_is_an_error_naming_it_and_gets_no_demo(tmp_path):
    home = tmp_path / "airflow_home"
    for landing, says in (
        (tmp_path / "landng", "does not exist"),
        (tmp_path / "empty", "is empty"),
    ):
        if says == "is empty":
            (landing / "orders").mkdir(parents=True)
        env = airflow_env(home, LANDING_DIR=str(landing), WAREHOUSE_DIR=str(tmp_path / "wh"))
        result = run_script(env)
        assert result.returncode != 0, result.stdout
        assert f"LANDING_DIR {landing} {says}" in result.stdout
        assert "make demo" in result.stdout
        # nothing written: no demo data, no Airflow home, no warehouse database
        assert [*landing.rglob("*")] == ([landing / "orders"] if says == "is empty" else [])
        assert not (home / "airflow.db").exists()
        assert not (tmp_path / "wh" / "build.duckdb").exists()


def test_only_the_default_landing_folder_is_filled_without_asking(monkeypatch):
    monkeypatch.delenv("LANDING_DIR", raising=False)
    assert Settings.from_env().landing_is_default
    monkeypatch.setenv("LANDING_DIR", "data/landing")  # the same folder, relative
    assert Settings.from_env().landing_is_default
    monkeypatch.setenv("LANDING_DIR", "data/landin")
    assert not Settings.from_env().landing_is_default


def test_make_demo_fills_any_empty_landing_dir_but_never_one_with_other_files(tmp_path):
    settings = make_settings(tmp_path / "try")
    shutil.rmtree(settings.landing_dir)  # a folder that does not exist yet
    prepare_landing(settings, demo=True)
    assert (settings.landing_dir / DEMO_MARKER).exists()
    # 2024-01-01 to 2025-12-31: one orders file a day (731 days, 2024 is a leap year)
    assert len(list((settings.landing_dir / "orders").glob("*.csv"))) == 731
    prepare_landing(settings, demo=False)  # holds data now: a plain run is fine
    real = make_settings(tmp_path / "real")
    write_csv(real.landing_dir / "orders" / "export.csv", ORDER_HEADER, [])
    with pytest.raises(SystemExit) as refused:
        prepare_landing(real, demo=True)
    assert str(real.landing_dir) in str(refused.value)
    assert not (real.landing_dir / DEMO_MARKER).exists()
