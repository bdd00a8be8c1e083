"""A real HTTP server for sink tests: it records every request and answers with a status chosen per
request (by a function of the request), on 127.0.0.1 and a free port, in a background thread."""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.formats.json import JSONFormat


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def cloud_event(self) -> BaseCloudEvent:
        """The request parsed back as a binary-mode CloudEvent."""
        return from_binary(HTTPMessage(headers=self.headers, body=self.body), JSONFormat())

    @property
    def event_id(self) -> str:
        return self.headers["ce-id"]


StatusChooser = Callable[["ReceivedRequest"], int]


class Receiver:
    """What the server saw; ``choose_status`` decides each answer (200 by default)."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.choose_status: StatusChooser = lambda request: 200
        self.url = ""
        self._lock = threading.Lock()

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def accepted(self) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self.requests if 200 <= request.status < 300]

    def wait_for_accepted(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests got a 2xx answer."""
        return self._wait(self.accepted, count, timeout, "accepted")

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests arrived, whatever the answer."""
        return self._wait(self.all_requests, count, timeout, "received")

    def all_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    @staticmethod
    def _wait(
        current: Callable[[], list[ReceivedRequest]], count: int, timeout: float, what: str
    ) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = current()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"the sink {what} {len(current())} requests, expected {count}")


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            pending = ReceivedRequest("POST", self.path, headers, body, 0)
            status = receiver.choose_status(pending)
            receiver.record(dataclasses.replace(pending, status=status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sink-receiver", daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
