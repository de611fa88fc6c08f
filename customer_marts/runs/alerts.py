"""Alerts: one paragraph in the task log, sent through Airflow notifiers to every target
whose Airflow connection exists.

Two notifiers (`airflow.sdk.BaseNotifier`), both used by dags/customer_marts_nightly.py:

- `FailureNotifier`, every task's `on_failure_callback`: Airflow calls it in the task's
  process once the task has failed for good (after its last retry). The paragraph names
  the DAG, the run, the logical date, the task, the try, the error and where the log is.
- `DeadlineNotifier`, the callback of the DAG's deadline alert: the scheduler queues it
  when a run has not succeeded (so has published nothing) by CUSTOMER_MARTS_PUBLISH_DEADLINE
  after the run was queued, and the executor runs it.

The targets, each skipped with one log line when its connection does not exist:

| target | connection id | type | what it gets |
| --- | --- | --- | --- |
| webhook | `customer_marts_webhook` | `http` | the paragraph and its details as JSON (POST) |
| Slack | `customer_marts_slack` | `slackwebhook` | the paragraph (the Slack provider's notifier) |
| e-mail | `customer_marts_smtp` | `smtp` | the paragraph, to ALERT_EMAIL_TO (the SMTP provider's notifier) |

The webhook's JSON is `{"text": <the paragraph>, "kind": "failure", "dag_id", "run_id",
"logical_date", "task_id", "try_number", "error", "log_url", "log_file"}` (a deadline:
`"kind": "deadline"`, `"queued_at"`, `"deadline_time"`, `"deadline"`, `"state"` instead
of the task's details); `text` makes it readable as-is by Slack and Mattermost incoming
webhooks.

Alerting never raises: a target that fails is logged as a warning and must not hide
the task's own failure, nor keep the other targets from being tried. For the same
reason nothing here goes through `Settings.from_env()`, which raises on a malformed
pipeline setting: the alert must still go out when that is what failed the task. This
module imports only the standard library and `airflow.sdk` (the DAG file imports it
when it is parsed); the providers load when an alert is sent.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "customer_marts_webhook"
SLACK_CONN_ID = "customer_marts_slack"
SMTP_CONN_ID = "customer_marts_smtp"
EMAIL_TO_ENV = "ALERT_EMAIL_TO"
PUBLISH_DEADLINE_ENV = "CUSTOMER_MARTS_PUBLISH_DEADLINE"
DEFAULT_PUBLISH_DEADLINE = "6h"
DEFAULT_FROM_EMAIL = "customer-marts@localhost"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Alert:
    """A task that failed for good."""

    dag_id: str
    run_id: str
    logical_date: str | None
    task_id: str
    try_number: int | None
    error: str
    log_url: str | None
    log_file: str | None

    @property
    def subject(self) -> str:
        return f"Airflow DAG {self.dag_id} failed: task {self.task_id} of run {self.run_id}"

    @property
    def text(self) -> str:
        """The one-paragraph summary."""
        logical = self.logical_date or "none (manual run: as of the day before it was triggered)"
        where = ", ".join(
            part
            for part in (
                f"UI {self.log_url}" if self.log_url else "",
                f"file {self.log_file}" if self.log_file else "",
            )
            if part
        )
        return (
            f"Airflow DAG {self.dag_id} failed: task {self.task_id} (try {self.try_number}) "
            f"of run {self.run_id}, logical date {logical}. Error: {self.error.rstrip('.')}. "
            f"Log: {where or 'see the task log in the Airflow UI'}. "
            "A failed run leaves published.duckdb unchanged."
        )

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "kind": "failure", **asdict(self)}


@dataclass(frozen=True)
class MissedDeadline:
    """A run that had published nothing by its deadline."""

    dag_id: str
    run_id: str
    logical_date: str | None
    queued_at: str | None
    deadline_time: str | None
    deadline: str  # the configured delay, as written (CUSTOMER_MARTS_PUBLISH_DEADLINE)
    state: str | None

    @property
    def subject(self) -> str:
        return f"Airflow DAG {self.dag_id}: nothing published by the deadline of run {self.run_id}"

    @property
    def text(self) -> str:
        return (
            f"Airflow DAG {self.dag_id}: nothing published by {self.deadline_time} "
            f"({PUBLISH_DEADLINE_ENV}={self.deadline} after run {self.run_id} was queued at "
            f"{self.queued_at}), logical date {self.logical_date or 'none'}; the run is "
            f"{self.state or 'in an unknown state'}. published.duckdb still holds the "
            "previous version: see the run in the Airflow UI."
        )

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "kind": "deadline", **asdict(self)}


Message = Alert | MissedDeadline


def alert_from_context(context: dict[str, Any]) -> Alert:
    """Build the alert from an Airflow task context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    logical = getattr(dag_run, "logical_date", None)
    error = context.get("exception")
    message = " ".join(str(error).split()) if error is not None else "unknown error"
    if error is not None:
        # The DAG wraps data errors in AirflowFailException (no retry); name the real cause.
        kind = type(error.__cause__ or error).__name__
        message = message if message.startswith(kind) else f"{kind}: {message}"
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return Alert(
        dag_id=str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")),
        run_id=str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?")),
        logical_date=logical.isoformat() if logical is not None else None,
        task_id=str(getattr(ti, "task_id", "?")),
        try_number=getattr(ti, "try_number", None),
        error=message,
        log_url=_safe(lambda: ti.log_url) if ti is not None else None,
        log_file=_safe(lambda: _log_file(ti)) if ti is not None else None,
    )


def missed_deadline_from_context(context: dict[str, Any], deadline: str) -> MissedDeadline:
    """Build the deadline alert from the context the scheduler gives a deadline callback:
    `{"dag_run": <the run as the REST API shows it>, "deadline": {"deadline_time": ...}}`."""
    run = context.get("dag_run") or {}
    missed = context.get("deadline") or {}

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    return MissedDeadline(
        dag_id=str(run.get("dag_id") or "?"),
        run_id=str(run.get("dag_run_id") or run.get("run_id") or "?"),
        logical_date=text(run.get("logical_date")),
        queued_at=text(run.get("queued_at")),
        deadline_time=text(missed.get("deadline_time")),
        deadline=deadline,
        state=text(run.get("state")),
    )


def _safe(get) -> Any:
    try:
        return get()
    except Exception:  # a missing detail must not stop the alert
        return None


def _log_file(ti) -> str | None:
    """The task log's path (from Airflow's `[logging]` settings), if the file exists.

    Under `airflow dags test` there is none: the log goes to the command's output."""
    import jinja2
    from airflow.configuration import conf

    folder = conf.get("logging", "base_log_folder")
    relative = jinja2.Template(conf.get("logging", "log_filename_template")).render(
        ti=ti, try_number=ti.try_number
    )
    path = os.path.join(folder, relative)
    return path if os.path.isfile(path) else None


# ------------------------------------------------------------------------ the deadline


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def publish_deadline(raw: str | None) -> timedelta | None:
    """CUSTOMER_MARTS_PUBLISH_DEADLINE as a delay: `6h`, `90m`, `1h30m`, `45s`, `1d`;
    `off` (or `0`) switches the deadline alert off; unset or empty: 6 hours."""
    text = (raw or DEFAULT_PUBLISH_DEADLINE).strip().lower().replace(" ", "")
    if text in ("off", "0"):
        return None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(
            f"{PUBLISH_DEADLINE_ENV}={raw!r} is not a delay such as 6h, 90m, 1h30m, 45s, 1d, or off"
        )
    seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{PUBLISH_DEADLINE_ENV}={raw!r} must be longer than 0 (or off)")
    return timedelta(seconds=seconds)


def parsed_by_dags_test(argv: list[str] | None = None) -> bool:
    """Whether this process is `airflow dags test` (which parses the DAG file itself).

    It has no scheduler, so no deadline would be checked anyway; and in Airflow 3.3.2
    `dags test` fails after a successful run of a DAG that has a deadline
    (https://github.com/apache/airflow/issues/73428), so the DAG leaves it out there."""
    args = sys.argv if argv is None else argv
    return args[1:3] == ["dags", "test"]


# ------------------------------------------------------------------------ the targets


def _connection(conn_id: str):
    """The Airflow connection `conn_id` (environment, secrets backend or metadata DB), or
    None when it is not defined."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def _timeout(conn) -> float:
    """The connection's `timeout` extra (seconds), else DEFAULT_TIMEOUT_SECONDS."""
    raw = conn.extra_dejson.get("timeout")
    try:
        return float(raw) if raw not in (None, "") else DEFAULT_TIMEOUT_SECONDS
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_SECONDS


def webhook_url(conn) -> str:
    """The URL of the webhook connection: its Host when that holds a whole URL (what the
    UI form suggests), else `<type>://<host>[:<port>]/<schema>`, which is how Airflow
    reads a connection given as a URI (`http://host:port/path` puts the path in schema)."""
    host = (conn.host or "").strip()
    if "://" in host:
        return host
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
    port = f":{conn.port}" if conn.port else ""
    path = (conn.schema or "").lstrip("/")
    return f"{scheme}://{host}{port}/{path}" if host else ""


def post_json(url: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST `payload` as JSON; True on a 2xx answer. Never raises."""
    from urllib.error import HTTPError
    from urllib.parse import urlsplit
    from urllib.request import Request, urlopen

    parts = urlsplit(url)
    target = f"{parts.scheme}://{parts.netloc}"  # never log the path: it often holds a token
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning(
            "connection %s must give an http(s) URL; not sending the alert", WEBHOOK_CONN_ID
        )
        return False
    request = Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "customer-marts-alerts"},
        method="POST",
    )
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            status = response.status
    except HTTPError as exc:
        log.warning("alert webhook %s answered HTTP %s; alert not delivered", target, exc.code)
        return False
    except Exception as exc:  # network errors, timeouts, TLS: alerting must never raise
        log.warning("alert webhook %s unreachable (%s); alert not delivered", target, exc)
        return False
    if not 200 <= status < 300:
        log.warning("alert webhook %s answered HTTP %s; alert not delivered", target, status)
        return False
    log.info("alert delivered to %s", target)
    return True


def _send_webhook(conn, message: Message, context: dict) -> bool:
    return post_json(webhook_url(conn), message.payload(), _timeout(conn))


def _send_slack(conn, message: Message, context: dict) -> bool:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # notify() rather than calling the notifier: the text is sent as it is, never
    # rendered as a Jinja template (an error message may hold "{{").
    SlackWebhookNotifier(
        slack_webhook_conn_id=SLACK_CONN_ID,
        text=message.text,
        timeout=max(1, round(_timeout(conn))),  # whole seconds for the Slack client
    ).notify(context)
    log.info("alert delivered to Slack (connection %s)", SLACK_CONN_ID)
    return True


def email_recipients() -> list[str]:
    """ALERT_EMAIL_TO: addresses separated by commas or semicolons."""
    raw = os.environ.get(EMAIL_TO_ENV) or ""
    return [address.strip() for address in re.split(r"[,;]", raw) if address.strip()]


def _send_email(conn, message: Message, context: dict) -> bool:
    recipients = email_recipients()
    if not recipients:
        log.warning(
            "alert e-mail not sent: connection %s exists but %s names no recipient",
            SMTP_CONN_ID,
            EMAIL_TO_ENV,
        )
        return False
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=recipients,
        from_email=conn.extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL,
        subject=message.subject,
        html_content=f"<p>{html.escape(message.text)}</p>",
        smtp_conn_id=SMTP_CONN_ID,
    ).notify(context)
    log.info("alert e-mailed to %d recipient(s) (connection %s)", len(recipients), SMTP_CONN_ID)
    return True


Sender = Callable[[Any, Message, dict], bool]
TARGETS: tuple[tuple[str, str, Sender], ...] = (
    ("webhook", WEBHOOK_CONN_ID, _send_webhook),
    ("slack", SLACK_CONN_ID, _send_slack),
    ("email", SMTP_CONN_ID, _send_email),
)


def deliver(message: Message, context: dict) -> dict[str, bool | None]:
    """Send `message` to every target; per target True (sent), False (failed, logged) or
    None (its connection does not exist: skipped with one log line). Never raises."""
    results: dict[str, bool | None] = {}
    for name, conn_id, send in TARGETS:
        try:
            conn = _connection(conn_id)
            if conn is None:
                log.info("alert target %s skipped: no Airflow connection %s", name, conn_id)
                results[name] = None
                continue
            results[name] = send(conn, message, context)
        except Exception as exc:  # a broken target must not stop the others, nor raise
            reason = " ".join(str(exc).split())[:500]
            log.warning(
                "alert target %s (connection %s) failed: %s: %s; alert not delivered",
                name,
                conn_id,
                type(exc).__name__,
                reason,
            )
            results[name] = False
    return results


class FailureNotifier(BaseNotifier):
    """`on_failure_callback`: log the failure's paragraph and send it to every target."""

    def notify(self, context) -> None:
        try:
            alert = alert_from_context(context)
            log.error("ALERT %s", alert.text)
            deliver(alert, context)
        except Exception:
            log.exception("could not build or send the failure alert")


class DeadlineNotifier(BaseNotifier):
    """The deadline alert's callback: the run had published nothing by its deadline.

    The executor builds it with the callback's kwargs and the scheduler's context, then
    calls it with that context (`airflow.sdk.SyncCallback`)."""

    def __init__(self, deadline: str = DEFAULT_PUBLISH_DEADLINE, context=None) -> None:
        super().__init__(context)
        self.deadline = deadline

    def notify(self, context) -> None:
        try:
            missed = missed_deadline_from_context(context or self.context, self.deadline)
            log.error("ALERT %s", missed.text)
            deliver(missed, context or self.context)
        except Exception:
            log.exception("could not build or send the deadline alert")
