"""``sluice serve``: the gateway's composition root. One store, the gRPC server and the REST management API
(with ``/health/*`` and ``/metrics``) in one process, stopped together and gracefully.

Callers are authenticated by the static API tokens and, when enabled, by Kubernetes TokenReview (tokens
first); an access policy, when configured, authorizes each gRPC call and REST request
(docs/access-control.md).

It also applies the stored retention policies in the background (``sluice.retention.RetentionWorker``: each
policy at its interval and inside its window; several gateways claim each run once).

The gateway owns SIGTERM and SIGINT: on either it turns gRPC health NOT_SERVING, drains streaming calls,
gives unary calls a grace period, lets uvicorn finish in-flight HTTP requests, then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn

from sluice.connection import connect
from sluice.errors import InvalidArgumentError
from sluice.rest.application import create_app
from sluice.retention import RetentionWorker
from sluice.rpc.server import DEFAULT_GRACE_SECONDS, build_grpc_server
from sluice.rpc.tls import TlsSettings
from sluice.security.authentication import Authenticator, AuthenticatorChain
from sluice.security.policy import AccessPolicy
from sluice.security.token_review import TokenReviewAuthenticator
from sluice.security.tokens import BearerTokens

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """What ``sluice serve`` is configured with (flags or ``SLUICE_*`` variables)."""

    database_url: str
    schema_name: str = "sluice"
    grpc_address: str = "0.0.0.0:50051"
    http_address: str = "0.0.0.0:8080"
    tokens: BearerTokens | None = None
    token_review: TokenReviewAuthenticator | None = None
    """Kubernetes service-account tokens (checked after ``tokens``); closed when serving ends."""
    policy: AccessPolicy | None = None
    """Who may do what; None: every authenticated caller may do everything."""
    tls: TlsSettings | None = None
    migrate: bool = False
    grace_seconds: float = DEFAULT_GRACE_SECONDS


@dataclasses.dataclass(frozen=True)
class ServingAddresses:
    """The ports actually bound (useful when the settings asked for port 0)."""

    grpc_port: int
    http_port: int


class _EmbeddedHttpServer(uvicorn.Server):
    """uvicorn without signal handling of its own: the gateway stops both servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) into its parts; a typed error when malformed."""
    host, separator, port_text = address.rpartition(":")
    if not separator or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidArgumentError(f"address {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port_text)  # noqa: S104


def _bind_http_socket(address: str) -> socket.socket:
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


def gateway_authenticator(settings: ServeSettings) -> Authenticator | None:
    """Static tokens, TokenReview, both (tokens first), or None (authentication off)."""
    configured: list[Authenticator] = [
        authenticator for authenticator in (settings.tokens, settings.token_review) if authenticator is not None
    ]
    if len(configured) > 1:
        return AuthenticatorChain(configured)
    return configured[0] if configured else None


def _stop_event(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event | None
) -> tuple[asyncio.Event, list[signal.Signals]]:
    """``stop``, or a new event that SIGTERM and SIGINT set (with the signals handled, to remove later)."""
    if stop is not None:
        return stop, []
    stop_event = asyncio.Event()
    handled_signals = [signal.SIGTERM, signal.SIGINT]
    for signal_number in handled_signals:
        loop.add_signal_handler(signal_number, stop_event.set)
    return stop_event, handled_signals


async def serve(
    settings: ServeSettings,
    *,
    ready: Callable[[ServingAddresses], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set, or SIGTERM/SIGINT arrives when ``stop`` is not given."""
    loop = asyncio.get_running_loop()
    stop_event, handled_signals = _stop_event(loop, stop)
    authenticator = gateway_authenticator(settings)
    try:
        store = await connect(settings.database_url, schema_name=settings.schema_name, migrate=settings.migrate)
    except BaseException:
        if settings.token_review is not None:
            await settings.token_review.aclose()
        raise
    try:
        grpc_server = build_grpc_server(
            store, address=settings.grpc_address, tokens=authenticator, tls=settings.tls, policy=settings.policy
        )
        http_socket = _bind_http_socket(settings.http_address)
        http_server = _EmbeddedHttpServer(
            uvicorn.Config(
                create_app(store, tokens=authenticator, policy=settings.policy),
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=max(1, int(settings.grace_seconds)),
            )
        )
        await grpc_server.start()
        retention_worker = RetentionWorker(store)
        retention_worker.start()
        http_task = asyncio.create_task(http_server.serve(sockets=[http_socket]), name="sluice-http")
        try:
            while not http_server.started:
                if http_task.done():
                    await http_task  # raises what stopped uvicorn from starting
                    raise InvalidArgumentError("the HTTP server stopped while starting")
                await asyncio.sleep(0.02)
            addresses = ServingAddresses(grpc_port=grpc_server.port, http_port=http_socket.getsockname()[1])
            logger.info(
                "serving",
                extra={"grpc_port": addresses.grpc_port, "http_port": addresses.http_port},
            )
            if ready is not None:
                ready(addresses)
            stop_waiter = asyncio.create_task(stop_event.wait(), name="sluice-stop")
            await asyncio.wait({http_task, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            stop_waiter.cancel()
        finally:
            logger.info("stopping")
            http_server.should_exit = True
            await grpc_server.stop(settings.grace_seconds)
            await http_task
            http_socket.close()
            await retention_worker.stop()
    finally:
        for signal_number in handled_signals:
            loop.remove_signal_handler(signal_number)
        try:
            await store.close()
        finally:
            if settings.token_review is not None:
                await settings.token_review.aclose()
