"""A real HTTP server on 127.0.0.1 that records the JSON POSTed to it (alert webhooks)."""

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
