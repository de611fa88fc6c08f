"""Failure alerts: one paragraph in the task log and, optionally, a JSON webhook.

`on_failure_callback` is the DAG's task failure callback (Airflow calls it in
the task's process once the task has failed for good, i.e. after its last
retry). It logs a one-paragraph summary (DAG, run, logical date, task, error,
where the log is) and, when `ALERT_WEBHOOK_URL` is set, POSTs it as JSON:

    {"text": "<the paragraph>", "dag_id": ..., "run_id": ..., "logical_date": ...,
     "task_id": ..., "try_number": ..., "error": ..., "log_url": ..., "log_file": ...}

`text` makes the payload readable as-is by Slack and Mattermost incoming
webhooks. Alerting never raises: a broken webhook is logged as a warning and
must not hide the task's own failure. For the same reason the two settings
(`ALERT_WEBHOOK_URL`, `ALERT_WEBHOOK_TIMEOUT`) are read here rather than through
`Settings.from_env()`, which raises on a malformed pipeline setting: the alert
must still go out when that is what failed the task.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_URL_ENV = "ALERT_WEBHOOK_URL"
WEBHOOK_TIMEOUT_ENV = "ALERT_WEBHOOK_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Alert:
    dag_id: str
    run_id: str
    logical_date: str | None
    task_id: str
    try_number: int | None
    error: str
    log_url: str | None
    log_file: str | None

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
        return {"text": self.text, **asdict(self)}


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


def post_json(url: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST `payload` as JSON; True on a 2xx answer. Never raises."""
    from urllib.error import HTTPError
    from urllib.parse import urlsplit
    from urllib.request import Request, urlopen

    parts = urlsplit(url)
    target = f"{parts.scheme}://{parts.netloc}"  # never log the path: it often holds a token
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("%s must be an http(s) URL; not sending the alert", WEBHOOK_URL_ENV)
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


def webhook_timeout() -> float:
    raw = os.environ.get(WEBHOOK_TIMEOUT_ENV)
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS


def on_failure_callback(context: dict[str, Any]) -> None:
    """Log the failure summary; POST it to ALERT_WEBHOOK_URL when set. Never raises."""
    try:
        alert = alert_from_context(context)
        log.error("ALERT %s", alert.text)
        url = os.environ.get(WEBHOOK_URL_ENV)
        if url:
            post_json(url, alert.payload(), webhook_timeout())
    except Exception:
        log.exception("could not build or send the failure alert")
