"""The DAG under Airflow's real processes as `make airflow` starts them, operated
through the REST API v2.

Runs `python -m tools.airflow_ui` (what `make airflow` runs) against a temporary
AIRFLOW_HOME on a free port: it migrates the SQLite metadata, starts `airflow
api-server`, `airflow scheduler` (LocalExecutor) and `airflow dag-processor` on
127.0.0.1 and prints "ready", the URL and the login once the api-server's health
endpoint says the scheduler and the dag-processor are healthy. Then the tests do
what an operator does: log in with the printed user and password (POST /auth/token),
unpause the DAG, trigger a run for a chosen logical date, poll it to the end. A
second run with a bad landing file must end `failed`, leave `published.duckdb`
byte-identical and send one failure alert to a webhook listening on 127.0.0.1. The
last test presses Ctrl-C (SIGINT to the process group, as a terminal sends it): every
process the module started must be gone and the port free.

The process management (process groups, log files, health, teardown) is
tools/local_airflow.py's `LocalAirflow`, the one `make airflow` uses.

`[scheduler] use_job_schedule = False` keeps the scheduler from creating the
`@daily` run for yesterday (wall-clock dependent) as soon as the DAG is
unpaused; the DAG keeps its real schedule, and API-triggered runs are
scheduled as usual (Airflow's documented meaning of that option).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import psutil
import pytest

from customer_marts.config import PROJECT_ROOT
from tests.conftest import (
    BIN,
    DBT_TESTS_LEFT_OUT,
    airflow_env,
    data_docs_statuses,
    file_digest,
    write_csv,
)
from tests.webhook import AlertInbox
from tools.local_airflow import COMPONENTS, free_port

pytestmark = pytest.mark.slow

DAG_ID = "customer_marts_nightly"
# the failing row of the quarantine check, as the gate's message shows it
QUARANTINED = '"file_name": "orders/orders_late.csv", "rows_read": 100, "rows_quarantined": 50'
AS_OF = "2025-12-31"
CHAIN = ["start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish"]
STARTUP_SECONDS = 420  # migrate and three components on a loaded 2-core machine
RUN_SECONDS = 900  # a full run takes ~4 min on a loaded 2-core machine
STOP_SECONDS = 60


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (relative path) and its SHA-256."""
    return {
        str(p.relative_to(root)): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


@dataclass
class Cluster:
    """`python -m tools.airflow_ui` running in its own session, and what it printed."""

    home: Path
    landing: Path
    warehouse: Path
    port: int
    health: str
    inbox: AlertInbox
    env: dict[str, str]
    code_before: dict[Path, dict[str, str]]
    ui: subprocess.Popen
    output: Path
    printed: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.printed["url"]

    def logs(self, run_id: str | None = None) -> str:
        """What the module printed, the tail of every component's log (and of a run's
        task logs), for messages."""
        parts = [f"--- make airflow ---\n{self.output.read_text()[-3000:]}"]
        parts += [
            f"--- {name} ---\n" + (self.home / f"{name}.log").read_text()[-3000:]
            for name in COMPONENTS
            if (self.home / f"{name}.log").exists()
        ]
        if run_id:
            folder = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
            parts += [
                f"--- {path.relative_to(folder)} ---\n" + path.read_text()[-4000:]
                for path in sorted(folder.rglob("*.log"))
            ]
        return "\n".join(parts)

    def check_alive(self) -> None:
        assert self.ui.poll() is None, f"make airflow exited {self.ui.returncode}\n{self.logs()}"

    def processes(self) -> list[psutil.Process]:
        """Every process the module started, its children's children included."""
        return psutil.Process(self.ui.pid).children(recursive=True)

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the module's process group; its exit status."""
        os.killpg(self.ui.pid, signal.SIGINT)
        return self.ui.wait(timeout=STOP_SECONDS)


def wait_for(what: str, probe, seconds: float, cluster: Cluster | None = None, every=1.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cluster:
            cluster.check_alive()
        result = probe()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(
        f"timed out after {seconds} s waiting for {what}\n" + (cluster.logs() if cluster else "")
    )


def ok(url: str, **kwargs) -> bool:
    try:
        return httpx.get(url, timeout=5, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False


READY = re.compile(
    r"^ready: (?P<url>\S+)\n\s+login:\s+(?P<username>\S+) / (?P<password>\S+)$", re.M
)


@pytest.fixture(scope="module")
def cluster(small_demo, tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scheduler")
    home, landing, warehouse = root / "airflow_home", root / "landing", root / "warehouse"
    shutil.copytree(small_demo, landing)
    # The dbt project and the suites from copies, to show that runs never write to them
    # (docker-compose.yml mounts them read-only).
    code = {}
    for name in ("dbt_project", "expectations"):
        code[name] = root / name
        shutil.copytree(
            PROJECT_ROOT / name,
            code[name],
            ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
        )
    port, health_port = free_port(), free_port()
    inbox = AlertInbox()
    env = airflow_env(
        home,
        LANDING_DIR=str(landing),
        WAREHOUSE_DIR=str(warehouse),
        DBT_PROJECT_DIR=str(code["dbt_project"]),
        EXPECTATIONS_DIR=str(code["expectations"]),
        # the webhook target, as an Airflow connection
        AIRFLOW_CONN_CUSTOMER_MARTS_WEBHOOK=json.dumps({"conn_type": "http", "host": inbox.url}),
        AIRFLOW_PORT=str(port),
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="True",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST="127.0.0.1",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(health_port),
        # dbt's data and unit tests left out of the runs' builds: no test here reads
        # their results (the DAG's own runs of them: tests/e2e/test_nightly_dag.py)
        **DBT_TESTS_LEFT_OUT,
    )
    for inherited in ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "AIRFLOW__API_AUTH__JWT_SECRET"):
        env.pop(inherited, None)  # the module's defaults: user admin, airflow.cfg's secret
    output = root / "make_airflow.out"
    with output.open("wb") as out:
        ui = subprocess.Popen(
            [str(BIN / "python"), "-m", "tools.airflow_ui"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own terminal-less session: SIGINT goes to it alone
        )
    cluster = Cluster(
        home=home,
        landing=landing,
        warehouse=warehouse,
        port=port,
        health=f"http://127.0.0.1:{health_port}/health",
        inbox=inbox,
        env=env,
        code_before={path: tree_digest(path) for path in code.values()},
        ui=ui,
        output=output,
    )
    try:
        ready = wait_for(
            "make airflow to print ready",
            lambda: READY.search(output.read_text()),
            STARTUP_SECONDS,
            cluster,
        )
        cluster.printed = ready.groupdict()
        wait_for("the scheduler health check", lambda: ok(cluster.health), 120, cluster)
        yield cluster
    finally:
        left = cluster.processes() if ui.poll() is None else []
        if ui.poll() is None:
            cluster.interrupt()
        for process in left:  # only if the module failed to stop them
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        inbox.close()


@dataclass
class Api:
    """The REST API v2 as an operator uses it, with a JWT from /auth/token."""

    base: str
    client: httpx.Client

    @classmethod
    def login(cls, cluster: Cluster) -> Api:
        response = httpx.post(
            f"{cluster.api}/auth/token",
            json={"username": cluster.printed["username"], "password": cluster.printed["password"]},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        token = response.json()["access_token"]
        client = httpx.Client(
            base_url=f"{cluster.api}/api/v2",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return cls(cluster.api, client)

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.client.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def trigger(self, run_id: str, logical_date: str) -> dict:
        return self.call(
            "POST",
            f"/dags/{DAG_ID}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": f"{logical_date}T00:00:00Z", "conf": {}},
        )

    def wait_until_done(self, run_id: str, cluster: Cluster) -> str:
        def finished():
            state = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return wait_for(f"run {run_id}", finished, RUN_SECONDS, cluster, every=2.0)

    def task_states(self, run_id: str) -> dict[str, str]:
        body = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}


@pytest.fixture(scope="module")
def api(cluster) -> Api:
    api = Api.login(cluster)
    # The dag-processor parses the DAG folder and stores the DAG; then the API knows it.
    wait_for(
        "the DAG to be parsed",
        lambda: api.client.get(f"/dags/{DAG_ID}").status_code == 200,
        STARTUP_SECONDS,
        cluster,
    )
    assert api.call("GET", f"/dags/{DAG_ID}")["is_paused"] is True  # new DAGs start paused
    assert api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})["is_paused"] is False
    return api


@pytest.fixture(scope="module")
def success_run(cluster, api) -> dict:
    started = time.monotonic()
    run_id = f"api__{AS_OF}__ok"
    created = api.trigger(run_id, AS_OF)
    assert created["state"] == "queued"
    state = api.wait_until_done(run_id, cluster)
    return {
        "run_id": run_id,
        "state": state,
        "seconds": time.monotonic() - started,
        "alerts": list(cluster.inbox.posts),
    }


@pytest.fixture(scope="module")
def failed_run(cluster, api, success_run) -> dict:
    published = cluster.warehouse / "published.duckdb"
    digest = file_digest(published)
    alerts_before = len(cluster.inbox.posts)
    rows = [
        [f"N{i}", "C0000001", "2025-12-30T12:00:00Z", "-5" if i % 2 else "5", "completed"]
        for i in range(100)
    ]  # half the rows carry a negative amount, as in test_nightly_dag
    write_csv(
        cluster.landing / "orders/orders_late.csv",
        ["order_id", "customer_id", "ordered_at", "amount", "status"],
        rows,
    )
    run_id = "api__2025-12-30__bad_file"
    started = time.monotonic()
    api.trigger(run_id, "2025-12-30")
    state = api.wait_until_done(run_id, cluster)
    return {
        "run_id": run_id,
        "state": state,
        "seconds": time.monotonic() - started,
        "digest_before": digest,
        "digest_after": file_digest(published),
        "alerts": cluster.inbox.posts[alerts_before:],
    }


def test_triggered_run_succeeds_through_the_api(success_run, api, cluster):
    assert success_run["state"] == "success", cluster.logs(success_run["run_id"])
    assert api.task_states(success_run["run_id"]) == dict.fromkeys(CHAIN, "success")
    run = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{success_run['run_id']}")
    assert run["logical_date"].startswith(AS_OF)
    assert run["run_type"] == "manual"
    print(f"\nsuccessful run: {success_run['seconds']:.0f} s from trigger to success")
    body = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{success_run['run_id']}/taskInstances")
    for ti in sorted(body["task_instances"], key=lambda ti: ti["start_date"]):
        print(f"  {ti['task_id']:<15} {ti['start_date'][11:19]} {ti['duration']:6.1f} s")


def test_a_successful_run_sends_no_alert(success_run, cluster):
    assert success_run["state"] == "success"
    assert success_run["alerts"] == []


def test_backfill_preview_is_one_run_per_day_both_ends_included(api, success_run):
    """What the backfill command of docs/operating.md creates (the API's dry run: no runs are made)."""

    def preview(from_date: str, to_date: str) -> list[str]:
        body = {
            "dag_id": DAG_ID,
            "from_date": f"{from_date}T00:00:00Z",
            "to_date": f"{to_date}T00:00:00Z",
            "max_active_runs": 1,
        }
        runs = api.call("POST", "/backfills/dry_run", json=body)["backfills"]
        return [run["logical_date"][:10] for run in runs]

    assert preview("2025-12-01", "2025-12-03") == ["2025-12-01", "2025-12-02", "2025-12-03"]
    # 2025-12-31 has a run (success_run): skipped unless reprocess_behavior says otherwise
    assert preview("2025-12-29", "2025-12-31") == ["2025-12-29", "2025-12-30"]


def test_the_compose_health_checks_answer_on_real_processes(cluster):
    """docker-compose.yml's checks: api-server and scheduler endpoints, the dag-processor job."""
    assert ok(f"{cluster.api}/api/v2/monitor/health")
    assert ok(cluster.health)
    check = subprocess.run(
        [str(BIN / "airflow"), "jobs", "check", "--job-type", "DagProcessorJob", "--local"],
        env=cluster.env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_published_marts_come_from_the_triggered_run(success_run, cluster):
    assert success_run["state"] == "success"
    published = cluster.warehouse / "published.duckdb"
    landed = sum(len(pd.read_csv(p)) for p in (cluster.landing / "orders").glob("*.csv"))
    with duckdb.connect(str(published), read_only=True) as con:
        runs = con.execute(
            "select airflow_run_id, logical_date::varchar, status from audit.pipeline_runs"
        ).fetchall()
        orders = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert runs == [(success_run["run_id"], AS_OF, "success")]
    assert orders == landed  # every landed order, all statuses (small_demo has no bad rows)
    assert customers == 400  # small_demo: 400 customers, each completes a first order


def test_run_with_a_bad_file_fails_and_keeps_published(failed_run, api):
    assert failed_run["state"] == "failed"
    states = api.task_states(failed_run["run_id"])
    assert states["start_run"] == states["ingest"] == "success"
    assert states["validate_raw"] == "failed"
    assert {states[t] for t in CHAIN[3:]} == {"upstream_failed"}
    assert failed_run["digest_after"] == failed_run["digest_before"]
    print(f"\nfailed run: {failed_run['seconds']:.0f} s from trigger to failed")


def strings_in(value) -> list[str]:
    """Every string in a JSON value (its objects' values and its lists' items)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


def test_the_failed_run_names_the_file_and_the_check_in_its_logs_docs_and_record(
    failed_run, cluster
):
    """Where the operator finds what failed: the run's task logs, Great Expectations'
    Data Docs and the run record in build.duckdb."""
    folder = cluster.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={failed_run['run_id']}"
    log = "\n".join(
        text
        for path in sorted(folder.rglob("*.log"))
        for line in path.read_text().splitlines()
        for text in strings_in(json.loads(line))
    )  # a task log is JSON lines: the messages are its strings, unescaped
    assert "quarantined_rows_pct" in log and QUARANTINED in log
    assert "amount: negative value (50)" in log
    # the failure is in the Data Docs, after the successful run's pass
    assert data_docs_statuses(cluster.warehouse, "audit/ingested_files")[-1] == "Failed"
    with duckdb.connect(str(cluster.warehouse / "build.duckdb"), read_only=True) as con:
        assert con.execute(
            "select status, failed_step from audit.pipeline_runs order by started_at desc limit 1"
        ).fetchone() == ("failed", "validate_raw")


def test_the_failed_tasks_log_is_served_by_the_api(failed_run, api):
    """The api-server reads task logs from AIRFLOW_HOME (no log server: --skip-serve-logs)."""
    path = f"/dags/{DAG_ID}/dagRuns/{failed_run['run_id']}/taskInstances/validate_raw/logs/1"
    body = api.call("GET", path, headers={"Accept": "application/json"})
    text = json.dumps(body["content"])
    assert "ALERT Airflow DAG customer_marts_nightly failed" in text
    assert "quarantined_rows_pct" in text and "orders/orders_late.csv" in text


def test_clearing_the_failed_run_would_resume_from_the_failed_task(failed_run, api):
    """The rerun call of docs/operating.md, as a dry run (the default): it lists what it would clear."""
    path = f"/dags/{DAG_ID}/dagRuns/{failed_run['run_id']}/clear"
    preview = api.call("POST", path, json={"only_failed": True})
    cleared = {ti["task_id"] for ti in preview["task_instances"]}
    assert cleared == {"validate_raw", "dbt_build", "validate_marts", "publish"}
    everything = api.call("POST", path, json={})
    assert {ti["task_id"] for ti in everything["task_instances"]} == set(CHAIN)
    run = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{failed_run['run_id']}")
    assert run["state"] == "failed"  # a dry run changes nothing


def test_runs_never_write_to_the_dbt_project_or_the_suites(failed_run, cluster):
    """So docker-compose.yml can mount them read-only."""
    for path, before in cluster.code_before.items():
        assert tree_digest(path) == before, path


def test_failure_sends_one_alert_naming_task_run_and_error(failed_run, cluster):
    assert len(failed_run["alerts"]) == 1, failed_run["alerts"]
    post = failed_run["alerts"][0]
    assert post["path"] == cluster.inbox.path
    alert = post["json"]
    assert alert["dag_id"] == DAG_ID
    assert alert["run_id"] == failed_run["run_id"]
    assert alert["task_id"] == "validate_raw"
    assert alert["logical_date"].startswith("2025-12-30")
    assert QUARANTINED in alert["error"]
    assert alert["log_url"].startswith(cluster.api)
    log_file = Path(alert["log_file"])
    assert log_file.is_file() and log_file.is_relative_to(cluster.home)
    assert "ALERT Airflow DAG customer_marts_nightly failed" in log_file.read_text()
    for part in (DAG_ID, failed_run["run_id"], "validate_raw", QUARANTINED):
        assert part in alert["text"]


def test_make_airflow_prints_the_url_and_the_login_airflow_generated(cluster, api):
    assert cluster.api == f"http://127.0.0.1:{cluster.port}"
    # the `api` fixture logged in with the printed password (POST /auth/token: 201);
    # it is the one the simple auth manager generated for the default user admin
    generated = cluster.home / "simple_auth_manager_passwords.json.generated"
    assert json.loads(generated.read_text()) == {"admin": cluster.printed["password"]}
    assert str(generated) in cluster.output.read_text()  # where it is kept
    refused = httpx.post(
        f"{cluster.api}/auth/token",
        json={"username": "admin", "password": cluster.printed["password"] + "x"},
        timeout=30,
    )
    assert refused.status_code == 401


def component_of(process: psutil.Process) -> str:
    """Which component a process is, by its command line (the api-server retitles
    itself `airflow api_server -- host:... port:...`)."""
    command = " ".join(process.cmdline()).replace("_", "-")
    return next((name for name in COMPONENTS if name in command), command)


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_ctrl_c_stops_every_process_and_frees_the_port(cluster):
    """Last in the module: it stops the cluster. SIGINT reaches the module alone (each
    component runs in a session of its own), so whatever stops is stopped by it."""
    cluster.check_alive()
    components = psutil.Process(cluster.ui.pid).children()
    assert sorted(map(component_of, components)) == sorted(COMPONENTS)
    started = cluster.processes()  # the components and their children (workers, ...)
    sessions = {process.pid for process in components}
    assert {os.getsid(process.pid) for process in started} == sessions

    stopping = time.monotonic()
    assert cluster.interrupt() == 0, cluster.logs()
    print(f"\nCtrl-C to exit: {time.monotonic() - stopping:.1f} s")
    assert (
        f"stopped: api-server, scheduler and dag-processor; 127.0.0.1:{cluster.port} is free"
        in (cluster.output.read_text())
    )
    assert [p.pid for p in started if not gone(p)] == []
    left_in_sessions = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in sessions and not gone(process):
                left_in_sessions.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    assert left_in_sessions == []
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the port any more
        socket.create_connection(("127.0.0.1", cluster.port), timeout=5).close()
