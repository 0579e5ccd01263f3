"""A stand-in for the EC2 instance metadata service, as a real HTTP server on a free local port.

It answers what :mod:`runtime.aws.spot_notice` asks, the IMDSv2 way:

- ``PUT /latest/api/token`` (with the ``X-aws-ec2-metadata-token-ttl-seconds`` header): a session token;
- ``GET /latest/meta-data/spot/instance-action`` (with that token in ``X-aws-ec2-metadata-token``): 404
  until :meth:`FakeImds.announce_interruption` is called, then 200 with
  ``{"action": "terminate", "time": ...}``; 401 without a valid token.

Anything else is 404. Point a process at it with ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` =
:attr:`FakeImds.endpoint`; :func:`running_fake_imds` starts it and stops it, its thread joined, on the
way out.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATH = "/latest/api/token"
NOTICE_PATH = "/latest/meta-data/spot/instance-action"


class FakeImds:
    """The fake metadata service's state: its token, the notice (once announced) and the polls seen."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.token = secrets.token_hex(16)
        self._notice: dict[str, str] | None = None
        self._polls = 0
        self._failures = 0
        self._changed = threading.Condition()

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` requests for the notice with a server error (a busy instance)."""
        with self._changed:
            self._failures = count

    def announce_interruption(self) -> dict[str, str]:
        """From now on, answer the notice path with a termination two minutes from now; return it."""
        when = datetime.now(UTC) + timedelta(minutes=2)
        with self._changed:
            self._notice = {"action": "terminate", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
            return dict(self._notice)

    @property
    def polls(self) -> int:
        """Requests for the notice answered so far (with or without one)."""
        with self._changed:
            return self._polls

    def wait_for_polls(self, count: int, timeout: float = 10) -> None:
        """Wait until ``count`` requests for the notice have been answered; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._polls < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{self._polls} of {count} polls for the notice within {timeout} s"
                self._changed.wait(left)

    def _answer_poll(self) -> dict[str, str] | int | None:
        """The notice, None for none yet, or the status of an error to answer with."""
        with self._changed:
            self._polls += 1
            self._changed.notify_all()
            if self._failures:
                self._failures -= 1
                return 500
            return self._notice


def _handler(imds: FakeImds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path != TOKEN_PATH:
                self._reply(404)
            elif "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
                self._reply(400)
            else:
                self._reply(200, imds.token.encode(), "text/plain")

        def do_GET(self) -> None:
            if self.path != NOTICE_PATH:
                self._reply(404)
            elif self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                self._reply(401)
            elif (notice := imds._answer_poll()) is None:
                self._reply(404)
            elif isinstance(notice, int):
                self._reply(notice)
            else:
                self._reply(200, json.dumps(notice).encode(), "application/json")

        def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: no line on stderr per request."""

    return Handler


@contextmanager
def running_fake_imds() -> Iterator[FakeImds]:
    """A fake metadata service on 127.0.0.1, a free port; shut down and its thread joined on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    imds = FakeImds(f"http://127.0.0.1:{server.server_port}")
    server.RequestHandlerClass = _handler(imds)
    server.daemon_threads = False  # server_close() joins the request threads
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-imds")
    thread.start()
    try:
        yield imds
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unreachable_endpoint() -> str:
    """An http address on 127.0.0.1 where nothing listens (a port just freed): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    return f"http://{host}:{port}"
