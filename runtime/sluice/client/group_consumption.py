"""``client.consume(...)``: a consumer-group member over gRPC, as an async iterator of events.

The server runs the member (joins, heartbeats, rebalances, rejoins after being fenced); this side
grants credits as the application takes events (at most ``prefetch`` are ever on their way or
waiting here), sends commits, and tracks the assignment the server reports.

    async with client.consume("orders", group_id="email", consumer_id="worker-1") as events:
        async for event in events:
            await send_email(event.data)
            await event.commit()
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from sluice.client.bidirectional_call import BidirectionalCall, Reconnection
from sluice.client.received import ReceivedEvent, event_fields
from sluice.client.remote_errors import error_from_code
from sluice.core.errors import InvalidArgumentError
from sluice.rpc.v1 import sluice_pb2


@dataclasses.dataclass(frozen=True, slots=True)
class GroupEvent(ReceivedEvent):
    """An event delivered to this group member; ``await event.commit()`` commits its partition up
    to and including it (FencedError if the partition moved to another member, or an admin reset the
    group's offsets, since it was delivered: nothing is committed then)."""

    delivery_epoch: int = dataclasses.field(kw_only=True)
    """The epoch of the partition's ownership (QUEUE delivery: the claim) it was delivered under; the
    commit carries it, and the server refuses it once that epoch is over."""
    consumption: RemoteGroupConsumption = dataclasses.field(kw_only=True, repr=False, compare=False)

    async def commit(self) -> None:
        await self.consumption.commit({self.partition: self.offset + 1}, epochs={self.partition: self.delivery_epoch})


class RemoteGroupConsumption:
    """An async iterator of GroupEvent that is also an async context manager (leaves the group on exit)."""

    def __init__(
        self, open_call: Callable[[], Any], opening: sluice_pb2.ConsumeOpen, *, reconnect_for: timedelta | None
    ) -> None:
        self.prefetch = opening.initial_credits
        self.partitions: tuple[int, ...] = ()
        """The partitions this member owns, as the server last reported them."""
        self.rebalances = 0
        self._opening = opening
        self._handed_out_since_grant = 0
        self._call: BidirectionalCall[GroupEvent] = BidirectionalCall(
            open_call,
            self._route,
            "sluice-client-consume",
            reconnection=Reconnection(self._reopening, reconnect_for, deliveries_end_with_the_call=True),
        )

    @property
    def reconnects(self) -> int:
        """How many times the call was opened again (the member rejoined) after the server went away."""
        return self._call.reconnects

    def _reopening(self) -> sluice_pb2.ConsumeRequest:
        """A new call starts afresh: events not yet handed out are dropped (the new call delivers
        them again), and the server gets the full prefetch as credits."""
        self._handed_out_since_grant = 0
        self.partitions = ()
        return sluice_pb2.ConsumeRequest(open=self._opening)

    def _route(self, response: sluice_pb2.ConsumeResponse) -> GroupEvent | None:
        kind = response.WhichOneof("kind")
        if kind == "event":
            return GroupEvent(**event_fields(response.event), delivery_epoch=response.epoch, consumption=self)
        if kind == "assignment":
            self.partitions = tuple(response.assignment.partitions)
            self.rebalances += 1
        elif kind == "commit_result":
            result = response.commit_result
            error = error_from_code(result.error_code, result.error_message) if result.error_code else None
            self._call.resolve(result.request_id, error)
        return None

    async def open(self) -> None:
        await self._call.write(sluice_pb2.ConsumeRequest(open=self._opening))

    async def commit(self, offsets: Mapping[int, int], *, epochs: Mapping[int, int]) -> None:
        """Commit ``{partition: next offset to read}``, each under the ``delivery_epoch`` of the event
        it follows (``epochs``: ``{partition: epoch}``); raises FencedError for partitions this member
        no longer owns under that epoch (nothing is committed for them)."""
        missing = sorted(set(offsets) - set(epochs))
        if missing:
            raise InvalidArgumentError(f"epochs must name the delivery epoch of every partition, missing {missing}")

        def build(request_id: int) -> sluice_pb2.ConsumeRequest:
            return sluice_pb2.ConsumeRequest(
                commit=sluice_pb2.Commit(
                    request_id=request_id,
                    offsets=[
                        sluice_pb2.PartitionOffset(partition=partition, next_offset=offset, epoch=epochs[partition])
                        for partition, offset in offsets.items()
                    ],
                )
            )

        error = await self._call.request(build)
        if error is not None:
            raise error

    def __aiter__(self) -> AsyncIterator[GroupEvent]:
        return self

    async def __anext__(self) -> GroupEvent:
        event = await self._call.next_item()
        self._handed_out_since_grant += 1
        if self._handed_out_since_grant >= max(self.prefetch // 2, 1):
            # Credit back what the application has taken: the server may send that many more.
            count, self._handed_out_since_grant = self._handed_out_since_grant, 0
            await self._call.write(sluice_pb2.ConsumeRequest(credits=sluice_pb2.Credits(count=count)))
        return event

    async def aclose(self) -> None:
        """Leave the group (uncommitted events are delivered again, to this or another member)."""
        await self._call.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()
