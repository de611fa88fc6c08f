"""Alerts and the asset under real Airflow runs, with real targets on 127.0.0.1: a
webhook and a Slack incoming webhook (HTTP servers recording each POST) and an SMTP
server (aiosmtpd), reached through Airflow connections given as AIRFLOW_CONN_*.

- A failed `airflow dags test` run sends one alert to each configured target, naming
  the task, the run and the error; a target without a connection is skipped. `dags
  test` runs the task failure callback in Airflow 3.3 (the task runner's `finalize`
  calls `on_failure_callback` whatever runs the task), so this is the notifier exactly
  as Airflow calls it. The same alert under the real scheduler is asserted in
  tests/e2e/test_scheduler.py.
- A successful run's asset event (read from the metadata database) carries the
  published version, the as-of date and the row counts that published.duckdb records.
- The deadline alert: only the scheduler checks deadlines, so a run with a 20-second
  CUSTOMER_MARTS_PUBLISH_DEADLINE runs under the real api-server, scheduler and
  dag-processor (tools/local_airflow.py, as `make airflow` starts them) and fails at
  ingest: the scheduler finds its deadline missed, the LocalExecutor runs the deadline
  notifier, and each target gets the deadline alert besides the failure alert.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.conftest import DEMO_AS_OF, run_dag, write_csv
from tests.webhook import AlertInbox, MailInbox, alert_connections

pytestmark = pytest.mark.slow

DAG_ID = "customer_marts_nightly"
MISSING = "IngestError: orders/orders_2025-12-31.csv: missing"


def bad_landing(root: Path) -> Path:
    """A landing folder whose orders file lacks required columns: ingest fails at once."""
    landing = root / "landing"
    write_csv(landing / "orders/orders_2025-12-31.csv", ["order_id", "customer_id"], [["O1", "C1"]])
    return landing


def test_failed_run_alerts_each_target_once_naming_task_run_and_error(airflow_home, tmp_path):
    with AlertInbox() as inbox, AlertInbox(status=200) as slack, MailInbox() as mail:
        targets = alert_connections(webhook=inbox, slack=slack, mail=mail)
        result = run_dag(
            airflow_home, bad_landing(tmp_path), tmp_path / "warehouse", "2025-12-30", **targets
        )
        posts, slack_posts, messages = list(inbox.posts), list(slack.posts), list(mail.messages)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # one failed task, no retries (CUSTOMER_MARTS_RETRIES=0): one alert per target
    assert len(posts) == 1, posts
    assert len(slack_posts) == 1, slack_posts
    assert len(messages) == 1, messages
    alert = posts[0]["json"]
    assert posts[0]["path"] == inbox.path
    assert alert["kind"] == "failure"
    assert alert["dag_id"] == DAG_ID
    assert alert["task_id"] == "ingest"
    assert alert["logical_date"] == "2025-12-30T00:00:00+00:00"
    assert alert["run_id"] in output
    assert alert["error"].startswith(MISSING)
    assert "ordered_at" in alert["error"] and "amount" in alert["error"]
    assert alert["log_url"].endswith("/tasks/ingest?try_number=1")
    assert alert["log_file"] is None  # `dags test` logs to its output, not to a file
    # Slack and the e-mail carry the same paragraph: task, run and error
    assert slack_posts[0]["path"] == slack.path
    assert slack_posts[0]["json"]["text"] == alert["text"]
    message = messages[0]
    assert sorted(message["rcpt_tos"]) == ["data-team@example.com", "oncall@example.com"]
    assert (
        message["subject"] == f"Airflow DAG {DAG_ID} failed: task ingest of run {alert['run_id']}"
    )
    for part in ("ingest", alert["run_id"], MISSING):
        assert part in message["body"]
    # the same paragraph is in the run's log
    assert f"ALERT {alert['text']}" in output


def test_a_target_without_connection_is_skipped(airflow_home, tmp_path):
    with AlertInbox() as inbox:
        result = run_dag(
            airflow_home,
            bad_landing(tmp_path),
            tmp_path / "warehouse",
            "2025-12-29",
            **alert_connections(webhook=inbox),
        )
        posts = list(inbox.posts)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert len(posts) == 1 and posts[0]["json"]["task_id"] == "ingest"
    for target, conn_id in (("slack", "customer_marts_slack"), ("email", "customer_marts_smtp")):
        line = f"alert target {target} skipped: no Airflow connection {conn_id}"
        assert output.count(line) == 1, output[-3000:]
    assert "Failed to send notification" not in output  # a skip is not a notifier error


@pytest.fixture(scope="module")
def successful_run(dag_rerun) -> dict:
    """One successful `dags test` run on the small demo, with a webhook target."""
    assert dag_rerun["returncode"] == 0, dag_rerun["log"]
    return dag_rerun


def test_a_successful_run_sends_no_alert(successful_run):
    assert successful_run["alerts"] == []


def test_the_asset_event_carries_version_as_of_date_and_row_counts(successful_run):
    warehouse = successful_run["warehouse"]
    published = warehouse / "published.duckdb"
    with sqlite3.connect(successful_run["home"] / "airflow.db") as db:
        rows = db.execute(
            "select asset.name, asset.uri, asset_event.extra from asset_event "
            "join asset on asset.id = asset_event.asset_id "
            "where json_extract(asset_event.extra, '$.published_path') = ?",
            (str(published),),
        ).fetchall()
    # one Airflow run, one publish (the run's own Airflow home)
    assert len(rows) == 1, rows
    name, uri, extra = rows[0]
    assert (name, uri) == ("customer_marts_published", "x-customer-marts://published")
    extra = json.loads(extra)
    # the second source: what published.duckdb itself records about this run and its tables
    with duckdb.connect(str(warehouse / "published.duckdb"), read_only=True) as con:
        # the Airflow run's (the warehouse's first run published the same data in process)
        run_id, version, as_of = con.execute(
            "select run_id, published_version, logical_date::varchar from audit.pipeline_runs "
            "where airflow_run_id is not null"
        ).fetchone()
        stamped = dict(
            con.execute(
                "select schema_name || '.' || table_name, row_count from audit.published_tables"
            ).fetchall()
        )
        # and a second method: each table counted in the published file
        counted = {
            table: con.execute(f"select count(*) from {table}").fetchone()[0] for table in stamped
        }
    assert extra["run_id"] == run_id
    assert extra["published_version"] == version == f"published-{run_id}.duckdb"
    assert (warehouse / version).is_file()
    assert extra["as_of_date"] == as_of == DEMO_AS_OF.isoformat()
    assert extra["row_counts"] == stamped == counted
    assert {"marts.dim_customers", "marts.fct_orders", "audit.pipeline_runs"} <= set(stamped)
    assert extra["row_counts"]["marts.dim_customers"] == 400  # small_demo: 400 customers


# ------------------------------------------------------------------------ the deadline


@pytest.fixture(scope="module")
def deadline_run(tmp_path_factory) -> dict:
    """A run that fails at ingest under the real components, with a 20 s deadline."""
    from tools.local_airflow import LocalAirflow, free_port

    root = tmp_path_factory.mktemp("deadline")
    landing = bad_landing(root)
    with AlertInbox() as inbox, AlertInbox(status=200) as slack, MailInbox() as mail:
        airflow = LocalAirflow.configure(
            root / "airflow_home",
            free_port(),
            LANDING_DIR=str(landing),
            WAREHOUSE_DIR=str(root / "warehouse"),
            CUSTOMER_MARTS_RETRIES="0",
            CUSTOMER_MARTS_PUBLISH_DEADLINE="20s",
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            **alert_connections(webhook=inbox, slack=slack, mail=mail),
        )
        airflow.migrate()
        with airflow:
            airflow.start()
            airflow.wait_healthy(420)
            (user, password), *_ = airflow.logins().items()
            token = httpx.post(
                f"{airflow.url}/auth/token",
                json={"username": user, "password": password},
                timeout=30,
            ).json()["access_token"]
            api = httpx.Client(
                base_url=f"{airflow.url}/api/v2",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            airflow.wait_for(
                "the DAG to be parsed",
                lambda: api.get(f"/dags/{DAG_ID}").status_code == 200,
                300,
            )
            api.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
            run_id = "api__2025-12-30__deadline"
            api.post(
                f"/dags/{DAG_ID}/dagRuns",
                json={"dag_run_id": run_id, "logical_date": "2025-12-30T00:00:00Z"},
            ).raise_for_status()
            queued_at = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["queued_at"]

            def deadline_alerts():
                return [p for p in inbox.posts if p["json"]["kind"] == "deadline"]

            airflow.wait_for("the deadline alert", deadline_alerts, 300, every=2.0)
            time.sleep(5)  # any second alert would arrive now
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
            return {
                "run_id": run_id,
                "queued_at": queued_at,
                "state": state,
                "posts": [p["json"] for p in inbox.posts],
                "slack": [p["json"] for p in slack.posts],
                "mail": list(mail.messages),
                "logs": airflow.logs(),
            }


def test_a_missed_deadline_alerts_each_target_once(deadline_run):
    run_id = deadline_run["run_id"]
    kinds = sorted(post["kind"] for post in deadline_run["posts"])
    assert kinds == ["deadline", "failure"], deadline_run[
        "logs"
    ]  # ingest failed, then the deadline
    (missed,) = [post for post in deadline_run["posts"] if post["kind"] == "deadline"]
    assert missed["run_id"] == run_id
    assert missed["dag_id"] == DAG_ID
    assert missed["deadline"] == "20s"
    assert missed["logical_date"].startswith("2025-12-30")
    # deadline = queued at + 20 s, by the scheduler's clock
    queued = _instant(deadline_run["queued_at"])
    assert abs(_instant(missed["deadline_time"]) - queued - 20) < 1.0, missed
    assert f"nothing published by {missed['deadline_time']}" in missed["text"]
    print(f"\nthe deadline alert: {missed['text']}")
    # Slack and the e-mail: the failure's paragraph and the deadline's, once each
    assert sorted(post["text"] for post in deadline_run["slack"]) == sorted(
        post["text"] for post in deadline_run["posts"]
    )
    subjects = sorted(message["subject"] for message in deadline_run["mail"])
    assert subjects == [
        f"Airflow DAG {DAG_ID} failed: task ingest of run {run_id}",
        f"Airflow DAG {DAG_ID}: nothing published by the deadline of run {run_id}",
    ]


def _instant(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
