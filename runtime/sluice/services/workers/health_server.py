"""A tiny HTTP server for probes and scraping: ``/health/live``, ``/health/ready`` and ``/metrics``.

It speaks just enough HTTP/1.1 for kubelet probes and Prometheus (GET, one request per
connection) on asyncio streams, so it shares the worker's event loop and signal handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

logger = logging.getLogger(__name__)

MAX_REQUEST_HEAD_BYTES = 8192
REQUEST_TIMEOUT_SECONDS = 5.0
ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]


class HealthServer:
    """Serves the three endpoints on ``host:port`` (port 0 picks a free one; see ``port``)."""

    def __init__(self, *, host: str, port: int, readiness: ReadinessCheck) -> None:
        self.host = host
        self.requested_port = port
        self.readiness = readiness
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port it listens on (after ``start``)."""
        if self._server is None:
            return self.requested_port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        logger.info("health and metrics endpoint listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_SECONDS)
            status, content_type, body = await self._answer(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        response_head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            writer.write(response_head.encode("ascii") + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        if path == "/health/live":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/health/ready":
            ready, reason = await self.readiness()
            status = "200 OK" if ready else "503 Service Unavailable"
            return status, "text/plain", (reason + "\n").encode()
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        return "404 Not Found", "text/plain", b"not found\n"
