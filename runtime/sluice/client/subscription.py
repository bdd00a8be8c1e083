"""``client.subscribe(stream)``: catch up, then live, resuming from the last checkpoint after the
connection, the server or its database goes away (a restart, a rolling update: the server ends
streams with UNAVAILABLE when it drains, or when its database stays away longer than it waits).

The resume point is the offset after the last event handed out, or the server's last checkpoint
if that is further: no event is skipped, and none is handed out twice by one Subscription.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import grpc

from sluice.client.received import ReceivedEvent
from sluice.client.remote_errors import error_from_rpc
from sluice.rpc.v1 import sluice_pb2

RETRYABLE_STATUSES = frozenset({grpc.StatusCode.UNAVAILABLE})
"""Whatever its details: the server restarting or draining, the network, or the database away for
longer than the server waits (``connection_lost``)."""
FIRST_RETRY_DELAY_SECONDS = 0.1
MAX_RETRY_DELAY_SECONDS = 2.0


class Subscription:
    """An async iterator of ReceivedEvent; ``next_offset`` is where it would resume."""

    def __init__(
        self,
        open_call: Callable[[sluice_pb2.SubscribeRequest], Any],
        request: sluice_pb2.SubscribeRequest,
        *,
        reconnect_for: timedelta | None,
    ) -> None:
        self._open_call = open_call
        self._request = request
        self._reconnect_for = reconnect_for
        self.next_offset = request.from_offset
        self.caught_up = False
        """Whether the subscription has reached the end of the partition (as of when it started)."""
        self.reconnects = 0
        self._call: Any = None
        self._events = self._generate()

    def __aiter__(self) -> AsyncIterator[ReceivedEvent]:
        return self

    async def __anext__(self) -> ReceivedEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        if self._call is not None:
            self._call.cancel()
        await self._events.aclose()

    async def _generate(self) -> AsyncGenerator[ReceivedEvent, None]:
        delay = FIRST_RETRY_DELAY_SECONDS
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            request = sluice_pb2.SubscribeRequest()
            request.CopyFrom(self._request)
            request.from_offset = self.next_offset
            self._call = self._open_call(request)
            try:
                async for response in self._call:
                    failing_since, delay = None, FIRST_RETRY_DELAY_SECONDS
                    kind = response.WhichOneof("kind")
                    if kind == "events":
                        batch = response.events
                        last = len(batch.events) - 1
                        for index, message in enumerate(batch.events):
                            if message.offset < self.next_offset:
                                continue  # already handed out before a reconnect
                            self.next_offset = message.offset + 1
                            if index == last and batch.caught_up:
                                self.caught_up = True  # before the application sees the last event
                            yield ReceivedEvent.from_message(message)
                        self.caught_up = self.caught_up or batch.caught_up
                    elif kind == "checkpoint":
                        self.next_offset = max(self.next_offset, response.checkpoint.next_offset)
                    elif kind == "caught_up":
                        self.caught_up = True
                return
            except grpc.aio.AioRpcError as rpc_error:
                error = error_from_rpc(rpc_error)
                if rpc_error.code() not in RETRYABLE_STATUSES:
                    raise error from rpc_error
                now = loop.time()
                failing_since = now if failing_since is None else failing_since
                if self._reconnect_for is None or now - failing_since > self._reconnect_for.total_seconds():
                    raise error from rpc_error
            finally:
                self._call.cancel()
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
