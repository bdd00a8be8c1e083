"""One HTTP listener of the gateway: a bound socket and uvicorn serving an ASGI app on it, over TLS when
configured (the gRPC certificate settings; a client CA makes it mutual TLS).

uvicorn's own signal handling is off: the gateway stops every listener together. Stopping lets in-flight
requests finish for up to the grace period (uvicorn then cancels them).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from sluice.core.errors import InvalidArgumentError
from sluice.rpc.tls import TlsSettings

STARTUP_POLL_SECONDS = 0.02


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) into its parts; a typed error when malformed."""
    host, separator, port_text = address.rpartition(":")
    if not separator or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidArgumentError(f"address {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port_text)  # noqa: S104


def bind_socket(address: str) -> socket.socket:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise InvalidArgumentError(f"cannot listen on {address!r}: {error}") from error
    listener.listen(128)
    listener.setblocking(False)
    return listener


def tls_options(tls: TlsSettings | None) -> dict[str, Any]:
    """uvicorn's TLS settings for ``tls`` (none: plain HTTP)."""
    if tls is None:
        return {}
    return {
        "ssl_certfile": str(tls.certificate_chain),
        "ssl_keyfile": str(tls.private_key),
        "ssl_ca_certs": str(tls.client_ca) if tls.client_ca is not None else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if tls.client_ca is not None else ssl.CERT_NONE,
    }


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    """``app`` served on ``address`` (bound at construction, so port 0 is known at once)."""

    def __init__(self, app: ASGIApp, *, address: str, tls: TlsSettings | None, grace_seconds: float, name: str) -> None:
        self.name = name
        self._socket = bind_socket(address)
        self._server = _EmbeddedServer(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=max(1, round(grace_seconds)),
                **tls_options(tls),
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Serve, returning once uvicorn accepts connections (or raising what stopped it)."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name=f"sluice-{self.name}")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise InvalidArgumentError(f"the {self.name} server stopped while starting")
            await asyncio.sleep(STARTUP_POLL_SECONDS)

    @property
    def stopped(self) -> asyncio.Task[None] | None:
        """The serving task (done when uvicorn stopped by itself), None before ``start``."""
        return self._task

    def begin_stopping(self) -> None:
        self._server.should_exit = True

    async def wait_stopped(self) -> None:
        try:
            if self._task is not None:
                await self._task
        finally:
            self._socket.close()

    def close_socket(self) -> None:
        """Release the socket of a listener that never started."""
        self._socket.close()
