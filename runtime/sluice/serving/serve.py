"""``sluice serve``: the gateway's composition root. One store, the gRPC server and the REST management API
(with ``/health/*`` and ``/metrics``) in one process, stopped together and gracefully.

Callers are authenticated by the static API tokens and, when enabled, by Kubernetes TokenReview (tokens
first); an access policy, when configured, authorizes each gRPC call and REST request
(docs/access-control.md). With TLS settings, gRPC and REST are both served over TLS (mutual TLS with a
client CA); ``health_address`` adds a plain-HTTP port that serves only ``/health/*`` for probes.

It starts whatever the database does: while the store cannot be opened (the database unreachable,
starting, or its schema not migrated) the listeners are up, ``/health/live`` answers, ``/health/ready``
answers 503 with the reason, gRPC health is NOT_SERVING and every API call is refused as unavailable; the
store is retried with backoff and the API is served as soon as it opens (``serving.database_wait``). It also
applies the stored retention policies in the background (``sluice.services.retention.RetentionWorker``).

The gateway owns SIGTERM and SIGINT: on either it turns gRPC health NOT_SERVING, drains streaming calls,
gives unary calls and HTTP requests the grace period, then stops the background workers and closes the
store. Every step has a time limit, so stopping takes at most ``grace_seconds + close_seconds`` (plus a
moment) even when the database keeps connections open and never answers (``serving.shutdown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sluice.connection import connect
from sluice.console import LagHistory, LagSampler
from sluice.observability.lag_refresher import LagRefresher
from sluice.rest.application import create_app
from sluice.rest.waiting_app import create_waiting_app
from sluice.rpc.server import DEFAULT_GRACE_SECONDS, SluiceGrpcServer, build_grpc_server
from sluice.rpc.tls import TlsSettings
from sluice.security.authentication import Authenticator, AuthenticatorChain
from sluice.security.policy import AccessPolicy
from sluice.security.token_review import TokenReviewAuthenticator
from sluice.security.tokens import BearerTokens
from sluice.services.group_commit import AppendBatcher
from sluice.services.retention import RetentionWorker
from sluice.serving.database_wait import DatabaseWait
from sluice.serving.grpc_health import WaitingGrpcServer, mirror_readiness
from sluice.serving.http_apps import AppSwitch, HealthOnly
from sluice.serving.http_server import HttpListener, split_address
from sluice.serving.shutdown import ShutdownBudget, close_store, within
from sluice.store import EventStore

__all__ = ["ServeSettings", "ServingAddresses", "gateway_authenticator", "serve", "split_address"]

logger = logging.getLogger(__name__)

DEFAULT_CLOSE_SECONDS = 5.0
QUICK_START_SECONDS = 2.0
"""How long start-up waits for the store before serving the waiting answers meanwhile."""


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """What ``sluice serve`` is configured with (flags or ``SLUICE_*`` variables)."""

    database_url: str
    schema_name: str = "sluice"
    grpc_address: str = "0.0.0.0:50051"
    http_address: str = "0.0.0.0:8080"
    health_address: str | None = None
    """A plain-HTTP listener serving only ``/health/*`` (for probes when ``tls`` is set); None: none."""
    tokens: BearerTokens | None = None
    token_review: TokenReviewAuthenticator | None = None
    """Kubernetes service-account tokens (checked after ``tokens``); closed when serving ends."""
    policy: AccessPolicy | None = None
    """Who may do what; None: every authenticated caller may do everything."""
    tls: TlsSettings | None = None
    """gRPC and REST over TLS (mutual TLS with a client CA); None: both in clear (development only)."""
    migrate: bool = False
    poll_interval: timedelta | None = None
    """How often subscriptions poll for new events (the store's default, 500 ms, when None)."""
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    close_seconds: float = DEFAULT_CLOSE_SECONDS
    """After the grace period: how long stopping the workers and closing the store may take."""
    max_request_body_bytes: int | None = None
    """REST request bodies over this are refused with 413; None: the payload limit plus 1 MiB."""


@dataclasses.dataclass(frozen=True)
class ServingAddresses:
    """The ports actually bound (useful when the settings asked for port 0)."""

    grpc_port: int
    http_port: int
    health_port: int | None = None


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


class _Gateway:
    """The listeners, and what they serve once the store is open."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.authenticator = gateway_authenticator(settings)
        self.database = DatabaseWait(lambda: _open_store(settings))
        self.switch = AppSwitch(create_waiting_app(lambda: self.database.reason))
        self.listeners: list[HttpListener] = []
        self.listeners.append(
            HttpListener(
                self.switch,
                address=settings.http_address,
                tls=settings.tls,
                grace_seconds=settings.grace_seconds,
                name="http",
            )
        )
        if settings.health_address is not None:
            self.listeners.append(
                HttpListener(
                    HealthOnly(self.switch),
                    address=settings.health_address,
                    tls=None,
                    grace_seconds=settings.grace_seconds,
                    name="health",
                )
            )
        self.store: EventStore | None = None
        self.batcher: AppendBatcher | None = None
        self.grpc: SluiceGrpcServer | None = None
        self.waiting_grpc: WaitingGrpcServer | None = None
        self.retention: RetentionWorker | None = None
        self.lag_refresher: LagRefresher | None = None
        self.lag_sampler: LagSampler | None = None
        self.readiness_mirror: asyncio.Task[None] | None = None

    def addresses(self) -> ServingAddresses:
        grpc_port = 0
        if self.grpc is not None:
            grpc_port = self.grpc.port
        elif self.waiting_grpc is not None:
            grpc_port = self.waiting_grpc.port
        return ServingAddresses(
            grpc_port=grpc_port,
            http_port=self.listeners[0].port,
            health_port=self.listeners[1].port if len(self.listeners) > 1 else None,
        )

    async def start_waiting(self) -> None:
        self.waiting_grpc = WaitingGrpcServer(address=self.settings.grpc_address, tls=self.settings.tls)
        await self.waiting_grpc.start()

    async def serve_api(self, store: EventStore) -> None:
        """Serve the API over ``store``: the real gRPC server (on the stand-in's port) and the REST API."""
        settings = self.settings
        self.store = store
        address = self.waiting_grpc.address if self.waiting_grpc is not None else settings.grpc_address
        self.batcher = AppendBatcher(store)  # group commit, shared by the gRPC and REST doors
        self.grpc = build_grpc_server(
            store,
            address=address,
            tokens=self.authenticator,
            tls=settings.tls,
            policy=settings.policy,
            batcher=self.batcher,
        )
        await self.grpc.start()
        if self.waiting_grpc is not None:
            await self.waiting_grpc.stop()
            self.waiting_grpc = None
        lag_history = LagHistory()
        self.switch.app = create_app(
            store,
            tokens=self.authenticator,
            policy=settings.policy,
            lag_refresh_interval=None,
            max_request_body_bytes=settings.max_request_body_bytes,
            lag_history=lag_history,
            batcher=self.batcher,
        )
        self.lag_sampler = LagSampler(store, lag_history)
        self.lag_sampler.start()
        self.lag_refresher = LagRefresher(store)
        await self.lag_refresher.start()
        self.retention = RetentionWorker(store)
        self.retention.start()
        self.readiness_mirror = asyncio.create_task(
            mirror_readiness(store, self.grpc.services.health), name="sluice-grpc-readiness"
        )

    async def stop(self, opening: asyncio.Task[EventStore]) -> None:
        """Stop everything, each step within its time limit."""
        settings = self.settings
        drain_seconds = settings.grace_seconds + 1.0
        if not opening.done():
            opening.cancel()
            await within(1.0, "connecting to the database", asyncio.wait({opening}))
        if self.readiness_mirror is not None:
            self.readiness_mirror.cancel()
        for listener in self.listeners:
            listener.begin_stopping()
        draining = [
            within(drain_seconds, f"stopping the {listener.name} server", listener.wait_stopped())
            for listener in self.listeners
        ]
        if self.grpc is not None:
            draining.append(within(drain_seconds, "stopping the gRPC server", self.grpc.stop(settings.grace_seconds)))
        if self.waiting_grpc is not None:
            draining.append(within(drain_seconds, "stopping the gRPC server", self.waiting_grpc.stop()))
        await asyncio.gather(*draining)
        # What follows shares one budget of close_seconds: writing the queued appends, stopping the workers
        # and closing the store each get what the steps before them left (a hung database must not cost
        # close_seconds per step). A store left no time has its connections terminated.
        budget = ShutdownBudget(settings.close_seconds)
        if self.batcher is not None:  # both doors have drained: write what their appends queued
            await within(budget.left(), "writing the queued appends", self.batcher.close())
        workers = []
        if self.retention is not None:
            workers.append(within(budget.left(), "stopping the retention worker", self.retention.stop()))
        if self.lag_refresher is not None:
            workers.append(within(budget.left(), "stopping the lag refresher", self.lag_refresher.stop()))
        if self.lag_sampler is not None:
            workers.append(within(budget.left(), "stopping the console's lag sampler", self.lag_sampler.stop()))
        if self.readiness_mirror is not None:
            workers.append(within(budget.left(), "stopping the readiness mirror", _finished(self.readiness_mirror)))
        await asyncio.gather(*workers)
        store = self.store
        if store is None and opening.done() and not opening.cancelled() and opening.exception() is None:
            store = opening.result()  # opened just as the stop came
        if store is not None:
            await close_store(store, budget.left())


async def _open_store(settings: ServeSettings) -> EventStore:
    options: dict[str, Any] = {} if settings.poll_interval is None else {"poll_interval": settings.poll_interval}
    return await connect(settings.database_url, schema_name=settings.schema_name, migrate=settings.migrate, **options)


async def _finished(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(
    settings: ServeSettings,
    *,
    ready: Callable[[ServingAddresses], None] | None = None,
    stop: asyncio.Event | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """Serve until ``stop`` is set, or SIGTERM/SIGINT arrives when ``stop`` is not given.

    ``ready`` is called with the bound ports once the listeners accept connections (the API may still be
    waiting for the database then: see ``/health/ready``); ``on_stopping`` when stopping begins."""
    loop = asyncio.get_running_loop()
    stop_event, handled_signals = _stop_event(loop, stop)
    try:
        gateway = _Gateway(settings)
        opening = asyncio.create_task(gateway.database.open(), name="sluice-open-store")
        try:
            await _run(gateway, opening, stop_event, ready)
        finally:
            if on_stopping is not None:
                on_stopping()
            logger.info("stopping")
            await gateway.stop(opening)
    finally:
        for signal_number in handled_signals:
            loop.remove_signal_handler(signal_number)
        if settings.token_review is not None:
            await within(settings.close_seconds, "closing the TokenReview client", settings.token_review.aclose())


async def _run(
    gateway: _Gateway,
    opening: asyncio.Task[EventStore],
    stop_event: asyncio.Event,
    ready: Callable[[ServingAddresses], None] | None,
) -> None:
    stop_waiter = asyncio.create_task(stop_event.wait(), name="sluice-stop")
    try:
        await asyncio.wait({opening, stop_waiter}, timeout=QUICK_START_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if stop_event.is_set():
            return
        if opening.done():
            await gateway.serve_api(opening.result())  # raises a configuration error
        else:
            await gateway.start_waiting()
        for listener in gateway.listeners:
            await listener.start()
        addresses = gateway.addresses()
        logger.info(
            "serving",
            extra={
                "grpc_port": addresses.grpc_port,
                "http_port": addresses.http_port,
                "health_port": addresses.health_port,
                "database_ready": gateway.store is not None,
            },
        )
        if ready is not None:
            ready(addresses)
        stopped_by_itself = {listener.stopped for listener in gateway.listeners if listener.stopped is not None}
        if gateway.store is None:
            await asyncio.wait({opening, stop_waiter, *stopped_by_itself}, return_when=asyncio.FIRST_COMPLETED)
            if not opening.done() or stop_event.is_set():
                return
            await gateway.serve_api(opening.result())
            logger.info("the database is ready: serving the API", extra={"attempts": gateway.database.attempts})
        await asyncio.wait({stop_waiter, *stopped_by_itself}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_waiter.cancel()
        await _finished_quietly(stop_waiter)


async def _finished_quietly(task: asyncio.Task[bool]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task
