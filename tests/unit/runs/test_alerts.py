"""Alert notifiers against real servers on 127.0.0.1: a webhook and a Slack incoming
webhook (HTTP servers recording each POST) and an SMTP server (aiosmtpd), reached
through Airflow connections given as AIRFLOW_CONN_* variables, the way Airflow's
environment-variable secrets backend reads them. Delivered, skipped, never raising.

The task context here is a plain stand-in with the attributes Airflow's task
context has (ti, dag_run, exception); real Airflow contexts are exercised by
tests/e2e/test_alerts.py (`airflow dags test`, the scheduler's deadline) and
tests/e2e/test_scheduler.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import airflow.configuration  # noqa: F401 (Airflow sets up logging on import: before caplog)
import pytest
from airflow.sdk import BaseNotifier, Connection

from customer_marts.runs import alerts
from tests.webhook import AlertInbox, MailInbox, alert_connections

RUN_ID = "scheduled__2025-12-31T00:00:00+00:00"
CONN_VARS = (
    "AIRFLOW_CONN_CUSTOMER_MARTS_WEBHOOK",
    "AIRFLOW_CONN_CUSTOMER_MARTS_SLACK",
    "AIRFLOW_CONN_CUSTOMER_MARTS_SMTP",
    "ALERT_EMAIL_TO",
)


def context(logical_date=datetime(2025, 12, 31, tzinfo=UTC), error=None) -> dict:
    ti = SimpleNamespace(
        dag_id="customer_marts_nightly",
        run_id=RUN_ID,
        task_id="validate_raw",
        try_number=3,
        map_index=-1,
        log_url="http://airflow.example/dags/customer_marts_nightly/runs/r/tasks/validate_raw",
    )
    dag_run = SimpleNamespace(dag_id=ti.dag_id, run_id=ti.run_id, logical_date=logical_date)
    return {"ti": ti, "dag_run": dag_run, "exception": error or ValueError("boom")}


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    """No alert target unless a test defines its connection."""
    for name in CONN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def inbox():
    with AlertInbox() as server:
        yield server


@pytest.fixture
def slack():
    with AlertInbox(status=200) as server:  # Slack answers 200 "ok"
        yield server


@pytest.fixture
def mail():
    with MailInbox() as server:
        yield server


def connect(monkeypatch, **targets) -> None:
    for name, value in alert_connections(**targets).items():
        monkeypatch.setenv(name, value)


def notify(ctx: dict) -> None:
    """Call the notifier as Airflow's task runner does: the instance, with the context."""
    notifier = alerts.FailureNotifier()
    assert isinstance(notifier, BaseNotifier)
    notifier(ctx)


def test_a_failure_goes_to_every_target_once_naming_task_run_and_error(
    inbox, slack, mail, monkeypatch, caplog
):
    connect(monkeypatch, webhook=inbox, slack=slack, mail=mail)
    error = RuntimeError("suite raw.orders failed:\n  amount >= 0: 50 rows\n  (first: -5)")
    with caplog.at_level(logging.INFO, logger="customer_marts.runs.alerts"):
        notify(context(error=error))
    # the webhook: the JSON payload
    assert len(inbox.posts) == 1
    post = inbox.posts[0]
    assert post["path"] == inbox.path
    assert post["content_type"] == "application/json"
    body = post["json"]
    assert body["kind"] == "failure"
    assert body["dag_id"] == "customer_marts_nightly"
    assert body["run_id"] == RUN_ID
    assert body["logical_date"] == "2025-12-31T00:00:00+00:00"
    assert body["task_id"] == "validate_raw"
    assert body["try_number"] == 3
    # one paragraph: the multi-line message is folded onto one line, the cause named
    assert (
        body["error"] == "RuntimeError: suite raw.orders failed: amount >= 0: 50 rows (first: -5)"
    )
    paragraph = body["text"]
    assert "\n" not in paragraph
    for detail in ("customer_marts_nightly", "validate_raw", RUN_ID, "2025-12-31", "try 3"):
        assert detail in paragraph
    assert body["error"] in paragraph and body["log_url"] in paragraph
    # Slack: the same paragraph, as the incoming webhook's text, on the connection's path
    assert len(slack.posts) == 1
    assert slack.posts[0]["path"] == slack.path
    assert slack.posts[0]["json"]["text"] == paragraph
    # e-mail: one message to both recipients of ALERT_EMAIL_TO, from the connection's sender
    assert len(mail.messages) == 1
    message = mail.messages[0]
    assert message["mail_from"] == "airflow@example.com"
    assert sorted(message["rcpt_tos"]) == ["data-team@example.com", "oncall@example.com"]
    assert message["subject"] == (
        f"Airflow DAG customer_marts_nightly failed: task validate_raw of run {RUN_ID}"
    )
    assert "amount &gt;= 0: 50 rows" in message["body"]  # the paragraph, HTML-escaped
    assert RUN_ID in message["body"] and "validate_raw" in message["body"]
    logged = [r.getMessage() for r in caplog.records]
    assert f"ALERT {paragraph}" in logged
    # the webhook paths are secrets: the log names the hosts only
    assert not any(inbox.path in line or slack.path in line for line in logged)
    assert any(line.startswith("alert delivered to http://127.0.0.1:") for line in logged)
    assert "alert delivered to Slack (connection customer_marts_slack)" in logged
    assert "alert e-mailed to 2 recipient(s) (connection customer_marts_smtp)" in logged


def test_missing_connections_are_skipped_with_one_line_each(inbox, monkeypatch, caplog):
    connect(monkeypatch, webhook=inbox)  # no Slack, no SMTP connection
    with caplog.at_level(logging.INFO, logger="customer_marts.runs.alerts"):
        results = alerts.deliver(alerts.alert_from_context(context()), context())
    assert results == {"webhook": True, "slack": None, "email": None}
    assert len(inbox.posts) == 1
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert [r.getMessage() for r in skipped] == [
        "alert target slack skipped: no Airflow connection customer_marts_slack",
        "alert target email skipped: no Airflow connection customer_marts_smtp",
    ]
    assert all(r.levelno == logging.INFO for r in skipped)  # not an error


def test_without_any_connection_the_alert_is_logged_only(caplog):
    with caplog.at_level(logging.ERROR, logger="customer_marts.runs.alerts"):
        notify(context(logical_date=None))
    (message,) = [r.getMessage() for r in caplog.records]
    assert "logical date none (manual run" in message


def test_a_failing_target_does_not_stop_the_others(inbox, mail, monkeypatch, caplog):
    with AlertInbox(status=500) as broken_slack:
        connect(monkeypatch, webhook=inbox, slack=broken_slack, mail=mail)
        results = alerts.deliver(alerts.alert_from_context(context()), context())
        assert len(broken_slack.posts) >= 1  # it was tried
    assert results == {"webhook": True, "slack": False, "email": True}
    assert len(inbox.posts) == 1 and len(mail.messages) == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("alert target slack (connection customer_marts_slack) failed:")
    assert broken_slack.path not in warning


def test_slack_takes_a_sub_second_timeout_of_its_connection(slack, monkeypatch):
    """The Slack client counts whole seconds: a timeout extra of 0.5 s still sends."""
    body = {"conn_type": "slackwebhook", "password": slack.url, "extra": {"timeout": "0.5"}}
    monkeypatch.setenv("AIRFLOW_CONN_CUSTOMER_MARTS_SLACK", json.dumps(body))
    results = alerts.deliver(alerts.alert_from_context(context()), context())
    assert results["slack"] is True and len(slack.posts) == 1


def test_an_unreachable_smtp_server_is_logged_not_raised(monkeypatch, caplog):
    with MailInbox() as mail:
        connect(monkeypatch, mail=mail)
    # the server is stopped: nothing listens on its port any more
    results = alerts.deliver(alerts.alert_from_context(context()), context())
    assert results["email"] is False
    assert any("alert target email" in r.getMessage() for r in caplog.records)


def test_smtp_connection_without_recipients_is_reported(mail, monkeypatch, caplog):
    connect(monkeypatch, mail=mail)
    monkeypatch.setenv("ALERT_EMAIL_TO", " ; ")
    results = alerts.deliver(alerts.alert_from_context(context()), context())
    assert results["email"] is False and mail.messages == []
    assert any("ALERT_EMAIL_TO names no recipient" in r.getMessage() for r in caplog.records)


def test_an_error_with_template_syntax_is_sent_as_it_is(slack, mail, monkeypatch):
    """The paragraph goes out verbatim: never rendered as a Jinja template."""
    connect(monkeypatch, slack=slack, mail=mail)
    notify(context(error=ValueError("column {{ amount }} is {% bad %}")))
    assert "column {{ amount }} is {% bad %}" in slack.posts[0]["json"]["text"]
    assert "column {{ amount }} is {% bad %}" in mail.messages[0]["body"]


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


def test_long_errors_are_cut_to_a_readable_size():
    alert = alerts.alert_from_context(context(error=ValueError("x" * 10_000)))
    assert len(alert.error) == alerts.MAX_ERROR_CHARS
    assert alert.error.endswith("...")


def test_a_webhook_error_answer_is_logged_not_raised(monkeypatch, caplog):
    with AlertInbox(status=500) as failing:
        connect(monkeypatch, webhook=failing)
        notify(context())
        assert len(failing.posts) == 1  # it was tried
    assert any("answered HTTP 500" in r.getMessage() for r in caplog.records)


def test_an_unreachable_webhook_is_logged_not_raised(caplog):
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert alerts.post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"}, timeout=5) is False
    assert any("unreachable" in r.getMessage() for r in caplog.records)


def test_a_slow_webhook_is_abandoned_after_the_connections_timeout(monkeypatch, caplog):
    with AlertInbox(delay=3) as slow:
        # the URI form's query string is the connection's extra: {"timeout": "0.5"}
        monkeypatch.setenv("AIRFLOW_CONN_CUSTOMER_MARTS_WEBHOOK", f"{slow.url}?timeout=0.5")
        started = time.monotonic()
        results = alerts.deliver(alerts.alert_from_context(context()), context())
        elapsed = time.monotonic() - started
    assert results["webhook"] is False
    assert elapsed < 2.5  # gave up at the timeout, did not wait for the 3 s answer
    assert any("unreachable" in r.getMessage() for r in caplog.records)


def test_webhook_timeout_defaults_to_ten_seconds():
    assert alerts._timeout(Connection(conn_id="x", conn_type="http")) == 10.0
    bad = Connection(conn_id="x", conn_type="http", extra=json.dumps({"timeout": "soon"}))
    assert alerts._timeout(bad) == alerts.DEFAULT_TIMEOUT_SECONDS
    assert (
        alerts._timeout(Connection(conn_id="x", conn_type="http", extra='{"timeout": 2.5}')) == 2.5
    )


@pytest.mark.parametrize(
    ("connection", "url"),
    [
        # URI form: the path is the connection's schema
        (
            Connection.from_uri("http://127.0.0.1:8000/hooks/abc", conn_id="w"),
            "http://127.0.0.1:8000/hooks/abc",
        ),
        (
            Connection.from_uri("https://hooks.example.com/services/T1/B2", conn_id="w"),
            "https://hooks.example.com/services/T1/B2",
        ),
        # the UI's form: the whole URL in Host
        (
            Connection(conn_id="w", conn_type="http", host="https://chat.example.com/hooks/x1"),
            "https://chat.example.com/hooks/x1",
        ),
        (
            Connection(conn_id="w", conn_type="http", host="h.example", port=81),
            "http://h.example:81/",
        ),
        (Connection(conn_id="w", conn_type="http"), ""),
    ],
)
def test_webhook_url_from_the_connection(connection, url):
    assert alerts.webhook_url(connection) == url


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "not a url", ""])
def test_only_http_urls_are_called(url, caplog):
    assert alerts.post_json(url, {"text": "x"}, timeout=1) is False
    assert any("must give an http(s) URL" in r.getMessage() for r in caplog.records)


def test_a_broken_context_still_produces_an_alert_and_never_raises(caplog):
    with caplog.at_level(logging.ERROR, logger="customer_marts.runs.alerts"):
        notify({})
    assert any(r.getMessage().startswith("ALERT Airflow DAG ?") for r in caplog.records)


# ------------------------------------------------------------------------ the deadline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, timedelta(hours=6)),
        ("", timedelta(hours=6)),
        ("6h", timedelta(hours=6)),
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(minutes=90)),
        (" 1D ", timedelta(days=1)),
        ("45s", timedelta(seconds=45)),
        ("0.5h", timedelta(minutes=30)),
        ("off", None),
        ("0", None),
    ],
)
def test_publish_deadline_is_a_delay(raw, expected):
    assert alerts.publish_deadline(raw) == expected


@pytest.mark.parametrize("raw", ["6", "six hours", "6h-", "h", "-1h", "0h"])
def test_a_malformed_publish_deadline_is_refused_by_name(raw):
    with pytest.raises(ValueError, match="CUSTOMER_MARTS_PUBLISH_DEADLINE"):
        alerts.publish_deadline(raw)


def deadline_context() -> dict:
    """What the scheduler gives a deadline callback (airflow.models.deadline.handle_miss):
    the run as the REST API shows it, and the deadline."""
    return {
        "dag_run": {
            "dag_run_id": "manual__2025-12-30",
            "dag_id": "customer_marts_nightly",
            "logical_date": "2025-12-30T00:00:00Z",
            "queued_at": "2025-12-31T00:00:05Z",
            "state": "running",
        },
        "deadline": {"id": "0199", "deadline_time": "2025-12-31T06:00:05Z"},
    }


def test_a_missed_deadline_goes_to_every_target(inbox, slack, mail, monkeypatch, caplog):
    connect(monkeypatch, webhook=inbox, slack=slack, mail=mail)
    # as the executor calls it: built with the callback's kwargs and the context, then called
    notifier = alerts.DeadlineNotifier(deadline="6h", context=deadline_context())
    with caplog.at_level(logging.ERROR, logger="customer_marts.runs.alerts"):
        notifier(deadline_context())
    (body,) = [post["json"] for post in inbox.posts]
    assert body["kind"] == "deadline"
    assert (body["run_id"], body["deadline"], body["state"]) == (
        "manual__2025-12-30",
        "6h",
        "running",
    )
    assert body["deadline_time"] == "2025-12-31T06:00:05Z"
    for part in ("nothing published by 2025-12-31T06:00:05Z", "manual__2025-12-30", "=6h"):
        assert part in body["text"]
    assert slack.posts[0]["json"]["text"] == body["text"]
    assert mail.messages[0]["subject"] == (
        "Airflow DAG customer_marts_nightly: nothing published by the deadline of run "
        "manual__2025-12-30"
    )
    assert f"ALERT {body['text']}" in [r.getMessage() for r in caplog.records]


def test_the_alerts_module_loads_nothing_heavy():
    """The DAG file imports it when it is parsed."""
    code = (
        "import sys, airflow.sdk; before = set(sys.modules); import customer_marts.runs.alerts; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = {"duckdb", "dbt", "great_expectations", "pandas", "customer_marts.runs.pipeline"}
    assert not loaded & heavy
    assert not any(name.startswith("airflow.providers") for name in loaded)


DAG_PROBE = """
import json, sys
sys.argv = {argv!r}
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={folder!r})
dag = bag.dags.get("customer_marts_nightly")
alerts = [] if dag is None or dag.deadline is None else list(dag.deadline)
print(json.dumps({{
    "errors": [str(error) for error in bag.import_errors.values()],
    "deadlines": [
        {{
            "reference": type(alert.reference).__name__,
            "seconds": alert.interval.total_seconds(),
            "callback": type(alert.callback).__name__,
            "path": alert.callback.path,
            "kwargs": alert.callback.kwargs,
        }}
        for alert in alerts
    ],
}}))
"""


def dag_deadlines(argv: list[str], **env: str) -> dict:
    """The DAG's deadline alerts (and import errors) as a process with `argv` parses it."""
    from customer_marts.config import PROJECT_ROOT

    code = DAG_PROBE.format(argv=argv, folder=str(PROJECT_ROOT / "dags"))
    environment = {k: v for k, v in os.environ.items() if k != "CUSTOMER_MARTS_PUBLISH_DEADLINE"}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**environment, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_dags_deadline_calls_the_notifier_when_nothing_is_published_in_time():
    parsed = dag_deadlines(["airflow", "scheduler"])
    assert parsed == {
        "errors": [],
        "deadlines": [
            {
                "reference": "DagRunQueuedAtDeadline",
                "seconds": 6 * 3600,  # the default, 6h
                "callback": "SyncCallback",
                "path": "customer_marts.runs.alerts.DeadlineNotifier",
                "kwargs": {"deadline": "6h"},
            }
        ],
    }
    shorter = dag_deadlines(["airflow", "dag-processor"], CUSTOMER_MARTS_PUBLISH_DEADLINE="90m")
    assert shorter["deadlines"][0]["seconds"] == 90 * 60


def test_no_deadline_when_switched_off_or_under_dags_test():
    off = dag_deadlines(["airflow", "scheduler"], CUSTOMER_MARTS_PUBLISH_DEADLINE="off")
    assert off == {"errors": [], "deadlines": []}
    dags_test = dag_deadlines(["airflow", "dags", "test", "customer_marts_nightly", "2025-12-31"])
    assert dags_test == {"errors": [], "deadlines": []}


def test_a_malformed_deadline_is_an_import_error_naming_it():
    parsed = dag_deadlines(["airflow", "scheduler"], CUSTOMER_MARTS_PUBLISH_DEADLINE="soon")
    assert parsed["deadlines"] == []
    (error,) = parsed["errors"]
    assert "CUSTOMER_MARTS_PUBLISH_DEADLINE='soon' is not a delay" in error


def test_parsed_by_dags_test():
    assert alerts.parsed_by_dags_test(["/venv/bin/airflow", "dags", "test", "d", "2025-12-31"])
    assert not alerts.parsed_by_dags_test(["/venv/bin/airflow", "dags", "list"])
    assert not alerts.parsed_by_dags_test(["/venv/bin/airflow", "scheduler"])
