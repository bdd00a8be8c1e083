"""The demo's HTTP sink: a tiny local endpoint that accepts CloudEvents (binary content mode) and prints them.

It stands in for the email service the end-to-end example's ConsumerGroup delivers to. Every POST is
answered 204; the CloudEvent id, type, subject (``<partition>/<offset>``) and body are recorded and, for the
first few events, printed, so the user sees what a worker sends.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CloudEventSink", "ReceivedCloudEvent"]

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ReceivedCloudEvent:
    """What the sink saw of one POST."""

    event_id: str
    event_type: str
    subject: str
    consumer_group: str
    body: str


class CloudEventSink:
    """Serve on 127.0.0.1 (a free port), or on ``host`` (a real node's bridge gateway, so pods reach it), in a
    background thread; ``stop()`` shuts it down."""

    def __init__(
        self, *, on_event: Callable[[ReceivedCloudEvent], None] | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._on_event = on_event
        self._host = host
        self._lock = threading.Lock()
        self._received: list[ReceivedCloudEvent] = []
        self._server = http.server.ThreadingHTTPServer((host, 0), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}/events"

    @property
    def received(self) -> list[ReceivedCloudEvent]:
        with self._lock:
            return list(self._received)

    def distinct_event_count(self) -> int:
        """How many different CloudEvent ids arrived (a redelivery after a crash repeats an id)."""
        with self._lock:
            return len({event.event_id for event in self._received})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def _record(self, event: ReceivedCloudEvent) -> None:
        with self._lock:
            self._received.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        sink = self

        class CloudEventHandler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                sink._record(
                    ReceivedCloudEvent(
                        event_id=self.headers.get("ce-id") or "",
                        event_type=self.headers.get("ce-type") or "",
                        subject=self.headers.get("ce-subject") or "",
                        consumer_group=self.headers.get("ce-sluicegroup") or "",
                        body=body,
                    )
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *arguments: Any) -> None:
                return

        return CloudEventHandler
