"""A real failed DAG run (`airflow dags test`) sends its alert to a webhook on 127.0.0.1.

`airflow dags test` runs the task failure callback in Airflow 3.3 (the task
runner's `finalize` calls `on_failure_callback` whatever runs the task), so
this is the callback exactly as Airflow calls it. The same alert under the
real scheduler is asserted in tests/e2e/test_scheduler.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_dag, write_csv
from tests.webhook import AlertInbox

pytestmark = pytest.mark.slow


def test_failed_run_posts_one_alert_naming_the_task_and_the_error(
    airflow_home, tmp_path, monkeypatch
):
    landing = tmp_path / "landing"
    write_csv(landing / "orders/orders_2025-12-31.csv", ["order_id", "customer_id"], [["O1", "C1"]])
    with AlertInbox() as inbox:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", inbox.url)
        result = run_dag(airflow_home, landing, tmp_path / "warehouse", "2025-12-30")
        posts = list(inbox.posts)
    assert result.returncode != 0
    assert len(posts) == 1, posts  # one failed task, no retries (CUSTOMER_MARTS_RETRIES=0)
    alert = posts[0]["json"]
    assert posts[0]["path"] == inbox.path
    assert alert["dag_id"] == "customer_marts_nightly"
    assert alert["task_id"] == "ingest"
    assert alert["logical_date"] == "2025-12-30T00:00:00+00:00"
    assert alert["run_id"] in result.stdout + result.stderr
    assert alert["error"].startswith("IngestError: orders/orders_2025-12-31.csv: missing")
    assert "ordered_at" in alert["error"] and "amount" in alert["error"]
    assert alert["log_url"].endswith("/tasks/ingest?try_number=1")
    assert alert["log_file"] is None  # `dags test` logs to its output, not to a file
    # the same paragraph is in the run's log
    assert f"ALERT {alert['text']}" in result.stdout + result.stderr
