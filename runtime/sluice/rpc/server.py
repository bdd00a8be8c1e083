"""The gRPC server: the three Sluice services, health, reflection, authentication and TLS on one port.

    server = build_grpc_server(store, address="0.0.0.0:50051", tokens=BearerTokens.from_environment(),
                               policy=policy_from_environment())
    await server.start()
    ...
    await server.stop(grace_seconds=10)   # drain: refuse new calls, end streams, finish unary calls

``run_grpc_server`` does all of that and waits (for the lead's ``sluice serve``, next to REST).

With an access policy, each call's services see the store as the call's principal may use it
(``sluice.security.caller_scope``): a denied operation ends the call with PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sluice.core.errors import InvalidArgumentError
from sluice.rpc.authentication import AuthenticationInterceptor
from sluice.rpc.call_context import Draining
from sluice.rpc.database_outages import DEFAULT_GIVE_UP_AFTER_SECONDS
from sluice.rpc.persistent_subscriptions_service import PersistentSubscriptionsService
from sluice.rpc.queues_service import QueuesService
from sluice.rpc.streams_service import StreamsService, add_streams_service
from sluice.rpc.tls import TlsSettings
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.security.authentication import Authenticator
from sluice.security.caller_scope import caller_scoped_store
from sluice.security.policy import AccessPolicy
from sluice.services.group_commit import AppendBatcher, BatchedEventStore, batched
from sluice.store import EventStore

DEFAULT_GRACE_SECONDS = 10.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SLUICE_SERVICE_NAMES = tuple(service.full_name for service in sluice_pb2.DESCRIPTOR.services_by_name.values())


@dataclasses.dataclass(frozen=True, slots=True)
class SluiceServices:
    """The servicers of one server (tests read their statistics)."""

    streams: StreamsService
    persistent_subscriptions: PersistentSubscriptionsService
    queues: QueuesService
    health: health.aio.HealthServicer
    draining: Draining


class SluiceGrpcServer:
    """A bound, not yet started server, with its port and services."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        services: SluiceServices,
        batcher: AppendBatcher | None = None,
        *,
        owns_batcher: bool = True,
    ) -> None:
        self.server = server
        self.port = port
        self.services = services
        self.batcher = batcher
        """Group commit of concurrent Append calls (None when turned off)."""
        self.owns_batcher = owns_batcher
        """Whether ``stop()`` closes the batcher (not when the caller passed one it shares with others)."""

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *SLUICE_SERVICE_NAMES):
            await self.services.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        """Graceful shutdown: health turns NOT_SERVING, new calls are refused, streaming calls end
        with UNAVAILABLE (after cleaning up: members leave their groups), unary calls get up to
        ``grace_seconds`` to finish."""
        await self.services.health.enter_graceful_shutdown()
        self.services.draining.begin()
        await self.server.stop(grace_seconds)
        if self.batcher is not None and self.owns_batcher:
            await self.batcher.close()  # the calls have ended: write what they queued (nothing, normally)


def build_grpc_server(
    store: EventStore,
    *,
    address: str,
    tokens: Authenticator | None = None,
    tls: TlsSettings | None = None,
    policy: AccessPolicy | None = None,
    group_commit: bool = True,
    batcher: AppendBatcher | None = None,
    database_outage_seconds: float = DEFAULT_GIVE_UP_AFTER_SECONDS,
) -> SluiceGrpcServer:
    """Build and bind the server (call ``start()`` to serve). ``address`` is ``host:port``; port 0
    picks a free port (see ``.port``). ``tokens`` authenticates callers (``BearerTokens``, a
    ``TokenReviewAuthenticator`` or a chain; None: everyone is ``anonymous``); ``policy`` authorizes
    each call (None: every authenticated caller may do everything). ``group_commit`` lets concurrent
    Append calls share transactions (docs/group-commit.md); each call still gets its own offsets and
    errors, and the policy is checked per call before an append joins a batch. Subscriptions and
    queue receivers wait out a database outage of up to ``database_outage_seconds`` (then they end
    with UNAVAILABLE, which clients retry). ``batcher`` is a group-commit batcher over ``store`` shared with
    another door (``sluice serve`` gives the REST API the same one); its owner closes it, not ``stop()``."""
    interceptors = [AuthenticationInterceptor(tokens)] if tokens is not None or policy is not None else []
    if batcher is not None:
        batching: BatchedEventStore | None = BatchedEventStore(store, batcher) if group_commit else None
    else:
        batching = batched(store) if group_commit else None
    appending_store: EventStore = batching if batching is not None else store
    served_store = caller_scoped_store(appending_store, policy) if policy is not None else appending_store
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    draining = Draining()
    services = SluiceServices(
        streams=StreamsService(served_store, draining, outage_seconds=database_outage_seconds),
        persistent_subscriptions=PersistentSubscriptionsService(served_store, draining),
        queues=QueuesService(served_store, draining, outage_seconds=database_outage_seconds),
        health=health.aio.HealthServicer(),
        draining=draining,
    )
    add_streams_service(services.streams, server)  # Subscribe sends events encoded once for all calls
    sluice_pb2_grpc.add_PersistentSubscriptionsServicer_to_server(services.persistent_subscriptions, server)
    sluice_pb2_grpc.add_QueuesServicer_to_server(services.queues, server)
    health_pb2_grpc.add_HealthServicer_to_server(services.health, server)
    reflection.enable_server_reflection((*SLUICE_SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = (
            server.add_secure_port(address, tls.server_credentials())
            if tls is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError as error:
        raise InvalidArgumentError(f"cannot listen on {address!r}: {error}") from error
    return SluiceGrpcServer(
        server, int(port), services, batching.batcher if batching is not None else None, owns_batcher=batcher is None
    )


def create_server(
    store: EventStore,
    *,
    address: str,
    tokens: Authenticator | None = None,
    tls: TlsSettings | None = None,
    policy: AccessPolicy | None = None,
) -> grpc.aio.Server:
    """The bare ``grpc.aio.Server`` (bound, not started). Prefer ``build_grpc_server``, whose
    ``stop`` also drains streams and turns health NOT_SERVING."""
    return build_grpc_server(store, address=address, tokens=tokens, tls=tls, policy=policy).server


async def run_grpc_server(
    store: EventStore,
    *,
    address: str,
    tokens: Authenticator | None = None,
    tls: TlsSettings | None = None,
    policy: AccessPolicy | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
) -> None:
    """Serve until ``stop`` is set (or this task is cancelled), then shut down gracefully.
    ``ready`` is called with the bound port once the server accepts calls."""
    server = build_grpc_server(store, address=address, tokens=tokens, tls=tls, policy=policy)
    await server.start()
    try:
        if ready is not None:
            ready(server.port)
        if stop is None:
            await server.server.wait_for_termination()
        else:
            await stop.wait()
    finally:
        await server.stop(grace_seconds)
