"""Failure alerts against real HTTP servers on 127.0.0.1: delivered, and never raising.

The task context here is a plain stand-in with the attributes Airflow's task
context has (ti, dag_run, exception); real Airflow contexts are exercised by
tests/e2e/test_alerts.py (`airflow dags test`) and tests/e2e/test_scheduler.py.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import airflow.configuration  # noqa: F401 (Airflow sets up logging on import: before caplog)
import pytest

from customer_marts.runs import alerts
from tests.webhook import AlertInbox


def context(logical_date=datetime(2025, 12, 31, tzinfo=UTC), error=None) -> dict:
    ti = SimpleNamespace(
        dag_id="customer_marts_nightly",
        run_id="scheduled__2025-12-31T00:00:00+00:00",
        task_id="validate_raw",
        try_number=3,
        map_index=-1,
        log_url="http://airflow.example/dags/customer_marts_nightly/runs/r/tasks/validate_raw",
    )
    dag_run = SimpleNamespace(dag_id=ti.dag_id, run_id=ti.run_id, logical_date=logical_date)
    return {"ti": ti, "dag_run": dag_run, "exception": error or ValueError("boom")}


@pytest.fixture
def inbox():
    with AlertInbox() as server:
        yield server


def test_callback_posts_one_paragraph_with_every_detail(inbox, monkeypatch, caplog):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", inbox.url)
    error = RuntimeError("suite raw.orders failed:\n  amount >= 0: 50 rows\n  (first: -5)")
    with caplog.at_level(logging.INFO, logger="customer_marts.runs.alerts"):
        alerts.on_failure_callback(context(error=error))
    assert len(inbox.posts) == 1
    post = inbox.posts[0]
    assert post["path"] == inbox.path
    assert post["content_type"] == "application/json"
    body = post["json"]
    assert body["dag_id"] == "customer_marts_nightly"
    assert body["run_id"] == "scheduled__2025-12-31T00:00:00+00:00"
    assert body["logical_date"] == "2025-12-31T00:00:00+00:00"
    assert body["task_id"] == "validate_raw"
    assert body["try_number"] == 3
    # one paragraph: the multi-line message is folded onto one line, the cause named
    assert (
        body["error"] == "RuntimeError: suite raw.orders failed: amount >= 0: 50 rows (first: -5)"
    )
    assert "\n" not in body["text"]
    for detail in ("customer_marts_nightly", "validate_raw", body["run_id"], "2025-12-31", "try 3"):
        assert detail in body["text"]
    assert body["error"] in body["text"] and body["log_url"] in body["text"]
    logged = [r.getMessage() for r in caplog.records]
    assert f"ALERT {body['text']}" in logged
    # the webhook path is a secret: the log names the host only
    assert not any(inbox.path in message for message in logged)
    assert any(message.startswith("alert delivered to http://127.0.0.1:") for message in logged)


def test_the_cause_of_airflows_fail_exception_is_named():
    """The DAG wraps data errors in AirflowFailException; the alert names the real error."""

    class GateFailed(Exception):
        pass

    try:
        try:
            raise GateFailed("quarantined_rows_pct: 50 > 1")
        except GateFailed as exc:
            raise RuntimeError(str(exc)) from exc  # stands in for AirflowFailException
    except RuntimeError as wrapped:
        alert = alerts.alert_from_context(context(error=wrapped))
    assert alert.error == "GateFailed: quarantined_rows_pct: 50 > 1"


def test_without_webhook_url_the_alert_is_logged_only(inbox, monkeypatch, caplog):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    with caplog.at_level(logging.INFO, logger="customer_marts.runs.alerts"):
        alerts.on_failure_callback(context(logical_date=None))
    assert inbox.posts == []
    (message,) = [r.getMessage() for r in caplog.records]
    assert "logical date none (manual run" in message


def test_long_errors_are_cut_to_a_readable_size():
    alert = alerts.alert_from_context(context(error=ValueError("x" * 10_000)))
    assert len(alert.error) == alerts.MAX_ERROR_CHARS
    assert alert.error.endswith("...")


def test_an_error_answer_is_logged_not_raised(monkeypatch, caplog):
    with AlertInbox(status=500) as failing:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", failing.url)
        alerts.on_failure_callback(context())
        assert len(failing.posts) == 1  # it was tried
    assert any("answered HTTP 500" in r.getMessage() for r in caplog.records)


def test_an_unreachable_webhook_is_logged_not_raised(caplog):
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert alerts.post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"}, timeout=5) is False
    assert any("unreachable" in r.getMessage() for r in caplog.records)


def test_a_slow_webhook_is_abandoned_after_the_timeout(caplog):
    with AlertInbox(delay=3) as slow:
        started = time.monotonic()
        delivered = alerts.post_json(slow.url, {"text": "x"}, timeout=0.5)
        elapsed = time.monotonic() - started
    assert delivered is False
    assert elapsed < 2.5  # gave up at the timeout, did not wait for the 3 s answer
    assert any("unreachable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "not a url"])
def test_only_http_urls_are_called(url, caplog):
    assert alerts.post_json(url, {"text": "x"}, timeout=1) is False
    assert any("must be an http(s) URL" in r.getMessage() for r in caplog.records)


def test_a_broken_context_still_produces_an_alert_and_never_raises(caplog):
    with caplog.at_level(logging.ERROR, logger="customer_marts.runs.alerts"):
        alerts.on_failure_callback({})
    assert any(r.getMessage().startswith("ALERT Airflow DAG ?") for r in caplog.records)


def test_webhook_timeout_comes_from_env(monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_TIMEOUT", "2.5")
    assert alerts.webhook_timeout() == 2.5
    monkeypatch.setenv("ALERT_WEBHOOK_TIMEOUT", "soon")
    assert alerts.webhook_timeout() == alerts.DEFAULT_TIMEOUT_SECONDS
