"""The ``sluice.v1.PersistentSubscriptions`` service: a consumer-group member per bidirectional call.

The client opens the call with its group, consumer id and options plus initial credits. The server
runs a group member for it (``store.consumer_groups().consume``, with the MANUAL commit strategy:
only the client's commits count) and sends one event per credit, never more; an Assignment message
after every rebalance; and a CommitResult for every Commit. Rebalances, heartbeats and rejoining
after being fenced happen on the server: the client only sees its partitions change.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc

from sluice.core.errors import InvalidArgumentError
from sluice.rpc.call_context import Draining
from sluice.rpc.concurrent_tasks import run_until_first_ends
from sluice.rpc.conversions import datetime_from_timestamp, recorded_event_message, timedelta_from_duration
from sluice.rpc.flow_control import Credits
from sluice.rpc.request_limits import checked_offset
from sluice.rpc.serialized_writer import SerializedWriter
from sluice.rpc.status_codes import sluice_error_of, translate_errors
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from sluice.store import EventStore
from sluice.store.contracts.consumer_groups import ConsumingMember, GroupConsumption
from sluice.store.values.consumer_group_options import (
    ConsumerGroupOptions,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
)

ASSIGNMENT_CHECK_SECONDS = 0.2
DEFAULT_BATCH_SIZE = 100

_START_FROM = {
    sluice_pb2.START_FROM_EARLIEST: StartFrom.EARLIEST,
    sluice_pb2.START_FROM_LATEST: StartFrom.LATEST,
    sluice_pb2.START_FROM_OFFSET: StartFrom.OFFSET,
    sluice_pb2.START_FROM_TIME: StartFrom.TIME,
}


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerSessionStatistics:
    """One open Consume call: what its client granted and what the server pulled from the store."""

    stream_name: str
    group_id: str
    consumer_id: str
    credits_granted: int
    events_pulled: int
    partitions: tuple[int, ...]


class _ConsumerSession:
    def __init__(self, opening: sluice_pb2.ConsumeOpen, consumption: GroupConsumption, credits: Credits) -> None:
        self.opening = opening
        self.consumption = consumption
        self.credits = credits
        self.announced: tuple[int, ...] = ()

    async def announce_assignment(self, writer: SerializedWriter) -> None:
        """Tell the client its partitions if they changed since it was last told."""
        partitions = self.consumption.partitions
        if partitions != self.announced:
            self.announced = partitions
            await writer.write(sluice_pb2.ConsumeResponse(assignment=sluice_pb2.Assignment(partitions=partitions)))

    def statistics(self) -> ConsumerSessionStatistics:
        return ConsumerSessionStatistics(
            stream_name=self.opening.stream_name,
            group_id=self.opening.group_id,
            consumer_id=self.opening.consumer_id,
            credits_granted=self.credits.granted,
            events_pulled=self.consumption.stats.delivered,
            partitions=self.consumption.partitions,
        )


def consumer_options(opening: sluice_pb2.ConsumeOpen) -> ConsumerGroupOptions:
    """The member's options from the open message (commits are always the client's: MANUAL)."""
    if opening.start_from not in _START_FROM:
        raise InvalidArgumentError(f"start_from must be one of {sorted(_START_FROM)}, got {opening.start_from}")
    start = StartPosition(
        start_from=_START_FROM[opening.start_from],
        offset=checked_offset(opening.start_offset, field="start_offset")
        if opening.start_from == sluice_pb2.START_FROM_OFFSET
        else None,
        time=datetime_from_timestamp(opening.start_time, field="start_time")
        if opening.HasField("start_time")
        else None,
    )
    values: dict[str, object] = {
        "commit_strategy": OffsetCommitStrategy.MANUAL,
        "batch_size": opening.batch_size or DEFAULT_BATCH_SIZE,
        "start_position": start,
    }
    if opening.HasField("session_timeout"):
        session_timeout = timedelta_from_duration(opening.session_timeout, field="session_timeout")
        values["session_timeout"] = session_timeout
        values["max_poll_interval"] = max(session_timeout, timedelta(minutes=5))
    return ConsumerGroupOptions(**values)  # type: ignore[arg-type]  # (validated: InvalidArgumentError)


class PersistentSubscriptionsService(sluice_pb2_grpc.PersistentSubscriptionsServicer):
    """Consumer groups over gRPC, backed by one EventStore."""

    def __init__(self, store: EventStore, draining: Draining) -> None:
        self._store = store
        self._draining = draining
        self._sessions: set[_ConsumerSession] = set()

    def statistics(self) -> list[ConsumerSessionStatistics]:
        """The open Consume calls (the flow-control test checks events pulled <= credits granted)."""
        return [session.statistics() for session in self._sessions]

    @translate_errors
    async def Consume(  # type: ignore[override]  # noqa: N802  (context.write style)
        self, request_iterator: AsyncIterator[sluice_pb2.ConsumeRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await self._draining.run_stream(self._consume(request_iterator, context), context)

    async def _consume(
        self, requests: AsyncIterator[sluice_pb2.ConsumeRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("kind") != "open":
            raise InvalidArgumentError("a Consume call must start with an open message")
        opening = first.open
        reader = self._store.consumer_groups()
        consumption = reader.consume(
            opening.stream_name,
            group_id=opening.group_id,
            consumer_id=opening.consumer_id,
            options=consumer_options(opening),
        )
        session = _ConsumerSession(opening, consumption, Credits(opening.initial_credits))
        writer = SerializedWriter(context)
        self._sessions.add(session)
        try:
            async with consumption:
                await run_until_first_ends(
                    _send_events(session, writer),
                    _receive_requests(session, requests, writer),
                    _send_assignments(session, writer),
                )
        finally:
            self._sessions.discard(session)


async def _send_events(session: _ConsumerSession, writer: SerializedWriter) -> None:
    events = aiter(session.consumption)
    while True:
        await session.credits.take()  # before pulling: what is pulled never exceeds what was granted
        event = await anext(events)
        await session.announce_assignment(writer)  # an event never arrives before its partition's assignment
        await writer.write(sluice_pb2.ConsumeResponse(event=recorded_event_message(event), epoch=event.delivery_epoch))


async def _send_assignments(session: _ConsumerSession, writer: SerializedWriter) -> None:
    """Rebalances happen while no event flows too (no credits, nothing new): look for them regularly."""
    while True:
        await session.announce_assignment(writer)
        await asyncio.sleep(ASSIGNMENT_CHECK_SECONDS)


async def _receive_requests(
    session: _ConsumerSession,
    requests: AsyncIterator[sluice_pb2.ConsumeRequest],
    writer: SerializedWriter,
) -> None:
    """Credits and commits until the client closes its side (which ends the call)."""
    async for request in requests:
        kind = request.WhichOneof("kind")
        if kind == "credits":
            await session.credits.grant(request.credits.count)
        elif kind == "commit":
            result = sluice_pb2.CommitResult(request_id=request.commit.request_id)
            try:
                await _commit(session.consumption.member, request.commit)
            except Exception as error:  # answered in the CommitResult; the call goes on
                refused = sluice_error_of(error)
                result.error_code, result.error_message = refused.code, str(refused)
            await writer.write(sluice_pb2.ConsumeResponse(commit_result=result))
        else:
            raise InvalidArgumentError(f"unexpected {kind!r} message after the open message")


async def _commit(member: ConsumingMember, commit: sluice_pb2.Commit) -> None:
    """Commit each ``{partition, next_offset, epoch}`` under the epoch its event was delivered with
    (never the member's current one: a commit from before a rebalance or a forced reset is fenced),
    in the order given; the first refusal stops the rest."""
    if not commit.offsets:
        raise InvalidArgumentError("a commit needs at least one partition offset")
    for offset in commit.offsets:
        if not offset.HasField("epoch"):
            raise InvalidArgumentError(
                f"the commit for partition {offset.partition} has no epoch: send back the epoch the event "
                "was delivered with (ConsumeResponse.epoch)"
            )
        if offset.next_offset == 0:
            raise InvalidArgumentError(f"next_offset of partition {offset.partition} must be at least 1")
        checked_offset(offset.next_offset, field="next_offset")
        checked_offset(offset.epoch, field="epoch")
    for offset in commit.offsets:
        await member.commit_event(offset.partition, offset.next_offset - 1, offset.epoch)
