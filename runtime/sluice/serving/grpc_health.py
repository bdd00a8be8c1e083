"""gRPC while the database is not ready, and gRPC health that follows readiness.

``WaitingGrpcServer`` holds the gRPC port until the store opens: the standard health service answers
NOT_SERVING (overall and for every Sluice service) and every other call ends at once with UNAVAILABLE, which
clients retry. Once the store opens, the real server binds the same port (gRPC sets SO_REUSEPORT) and starts,
then this one stops.

``mirror_readiness`` keeps a serving server's health in step with ``/health/ready``: NOT_SERVING while the
database cannot be reached or its schema is not current, SERVING again when it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sluice.core.errors import InvalidArgumentError
from sluice.observability.health.checks import check_readiness
from sluice.rpc.refusal import await_first_request
from sluice.rpc.server import SLUICE_SERVICE_NAMES
from sluice.rpc.tls import TlsSettings
from sluice.store import EventStore

logger = logging.getLogger(__name__)

HEALTH_NAMES = ("", *SLUICE_SERVICE_NAMES)
READINESS_INTERVAL = timedelta(seconds=5)
WAITING_MESSAGE = "the server is waiting for its database; retry later"


class _RefuseUntilReady(grpc.GenericRpcHandler):
    """Every method that no other handler serves: UNAVAILABLE, once the first request has arrived
    (``sluice.rpc.refusal``: refused earlier, a streaming client may see INTERNAL and not retry)."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        return grpc.stream_stream_rpc_method_handler(_refuse)


async def _refuse(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
    await await_first_request(requests)
    await context.abort(grpc.StatusCode.UNAVAILABLE, WAITING_MESSAGE)


class WaitingGrpcServer:
    """A bound, not yet started stand-in on ``address``."""

    def __init__(self, *, address: str, tls: TlsSettings | None) -> None:
        self._server = grpc.aio.server()
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._server.add_generic_rpc_handlers([_RefuseUntilReady()])
        try:
            bound = (
                self._server.add_secure_port(address, tls.server_credentials())
                if tls is not None
                else self._server.add_insecure_port(address)
            )
        except RuntimeError as error:
            raise InvalidArgumentError(f"cannot listen on {address!r}: {error}") from error
        self.port = int(bound)
        self.address = f"{address.rpartition(':')[0]}:{self.port}"
        """``address`` with the bound port: where the real server binds too."""

    async def start(self) -> None:
        await self._server.start()
        for name in HEALTH_NAMES:
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self) -> None:
        await self._server.stop(0)


async def mirror_readiness(
    store: EventStore, servicer: health.aio.HealthServicer, *, interval: timedelta = READINESS_INTERVAL
) -> None:
    """Set the health of every service from the store's readiness, every ``interval``, until cancelled."""
    serving: bool | None = True  # the server starts SERVING
    while True:
        await asyncio.sleep(interval.total_seconds())
        try:
            readiness = await check_readiness(store)
        except Exception:
            logger.exception("the readiness check failed")
            continue
        if readiness.ready == serving:
            continue
        serving = readiness.ready
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        if serving:
            logger.info("ready again: gRPC health is SERVING")
        else:
            logger.warning("not ready, gRPC health is NOT_SERVING: %s", readiness.detail)
        for name in HEALTH_NAMES:
            await servicer.set(name, status)
