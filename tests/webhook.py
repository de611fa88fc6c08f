"""Real servers on 127.0.0.1 recording the alerts sent to them: HTTP (webhook, Slack), SMTP."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class AlertInbox:
    """Listens on a free loopback port; `url` has a secret path, as real webhooks do.

    `status` is the HTTP status it answers with; `delay` makes it answer late.
    """

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.posts: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                inbox.posts.append(
                    {
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "json": json.loads(body),
                    }
                )
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.path = f"/hooks/{secrets.token_hex(8)}"
        self.url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> AlertInbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MailInbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, in a thread) that records each message:
    envelope sender and recipients, and the parsed message."""

    def __init__(self) -> None:
        import socket
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
                message = message_from_bytes(envelope.content, policy=policy.default)
                body = message.get_body(preferencelist=("html", "plain"))
                inbox.messages.append(
                    {
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": list(envelope.rcpt_tos),
                        "subject": str(message["Subject"]),
                        "to": str(message["To"]),
                        "body": body.get_content() if body is not None else "",
                    }
                )
                return "250 Message accepted for delivery"

        with socket.socket() as sock:  # a free port (the controller needs one to check it)
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()

    def __enter__(self) -> MailInbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def alert_connections(
    webhook: AlertInbox | None = None,
    slack: AlertInbox | None = None,
    mail: MailInbox | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment that defines the alert targets' Airflow connections (AIRFLOW_CONN_*):
    the webhook in URI form, Slack and SMTP in JSON form, as docs/operating.md shows them."""
    env: dict[str, str] = {}
    if webhook is not None:
        env["AIRFLOW_CONN_CUSTOMER_MARTS_WEBHOOK"] = webhook.url
    if slack is not None:
        env["AIRFLOW_CONN_CUSTOMER_MARTS_SLACK"] = json.dumps(
            {"conn_type": "slackwebhook", "password": slack.url}
        )
    if mail is not None:
        env["AIRFLOW_CONN_CUSTOMER_MARTS_SMTP"] = json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": mail.port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "airflow@example.com",
                    "timeout": 10,
                    "retry_limit": 0,
                },
            }
        )
        env["ALERT_EMAIL_TO"] = "oncall@example.com, data-team@example.com"
    return {**env, **extra}
