"""What every call shares: the correlation id from its metadata, and the server's draining signal
that ends long-lived streams when the server shuts down gracefully."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import grpc

CORRELATION_ID_METADATA_KEY = "x-correlation-id"
MAX_CORRELATION_ID_LENGTH = 200


def correlation_id_of(context: grpc.aio.ServicerContext[Any, Any], explicit: str = "") -> str | None:
    """The request's correlation id: the explicit field if set, else the ``x-correlation-id`` metadata."""
    if explicit:
        return explicit[:MAX_CORRELATION_ID_LENGTH]
    for key, value in context.invocation_metadata() or ():
        if key == CORRELATION_ID_METADATA_KEY and isinstance(value, str) and value:
            return value[:MAX_CORRELATION_ID_LENGTH]
    return None


class Draining:
    """Set once when the server starts shutting down: streams stop, unary calls finish."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def begin(self) -> None:
        self._event.set()

    async def run_stream(self, work: Coroutine[Any, Any, None], context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Run a streaming call's work until it ends, or until the server drains: then stop the work
        (which cleans up: leaves its group, releases its leases) and end the call with UNAVAILABLE,
        so clients reconnect (to another replica) and resume from their checkpoint."""
        work_task = asyncio.ensure_future(work)
        drain_task = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({work_task, drain_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drain_task.cancel()
            if not work_task.done():
                work_task.cancel()
            await asyncio.gather(work_task, drain_task, return_exceptions=True)
        if not work_task.cancelled():
            work_task.result()  # the work ended on its own: return, or re-raise its error
            return
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; reconnect and resume")
