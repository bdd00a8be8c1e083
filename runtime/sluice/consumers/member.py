"""One member of a consumer group: joins, heartbeats, fetches its partitions, delivers events and
commits offsets according to its strategy. Backend-agnostic: it talks to ConsumerGroupBackend.

Delivery is at least once. An event counts as processed when the consumer asks for the next one;
only processed events are committed. A member that loses a partition (rebalance, expired session,
forced reset) stops delivering it at once, and its commits for it are refused (FencedError).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.consumers.backend import group_signal_key
from sluice.consumers.model import Assignment, Heartbeat, OwnedPartition, PartitionCommit
from sluice.consumers.options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.errors import ConnectionLostError, FencedError, StreamTypeError
from sluice.events import Direction, EventRow, RecordedEvent
from sluice.streams import StreamType

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class MemberStats:
    """Counters of one member, for tests, metrics and the curious."""

    delivered: int = 0
    commits: int = 0
    committed_events: int = 0
    rebalances: int = 0
    fenced: int = 0


class ConsumedEvent(RecordedEvent):
    """A RecordedEvent delivered by a consumer group, which can commit itself (MANUAL strategy)."""

    __slots__ = ("_epoch", "_member")

    def __init__(self, row: EventRow, stream_name: str, partition: int, member: GroupMember, epoch: int) -> None:
        # The parent's fields are set here directly: one of these is built per delivered event.
        self._row = row
        self.stream_name = stream_name
        self.partition = partition
        self._data = None
        self._metadata = None
        self._member = member
        self._epoch = epoch

    async def commit(self) -> None:
        """Commit this event's partition up to and including this event. Raises FencedError if the
        member no longer owns the partition."""
        await self._member.commit_offsets({self.partition: self.offset + 1}, epochs={self.partition: self._epoch})


class GroupMember:
    """Runs one member's loop; ``events()`` is the async iterator ``reader.consume`` returns."""

    def __init__(
        self,
        store: EventStore,
        *,
        stream_name: str,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions,
    ) -> None:
        self.store = store
        self.stream_name = stream_name
        self.group_id = group_id
        self.consumer_id = consumer_id
        self.options = options
        self.instance_id = uuid.uuid4().hex
        self.stats = MemberStats()
        self._owned: dict[int, OwnedPartition] = {}
        self._positions: dict[int, int] = {}
        self._processed: dict[int, int] = {}
        self._generation: int | None = None
        self._expelled = False
        self._last_poll = time.monotonic()
        self._in_flight: int | None = None
        """The partition of the event the consumer is processing right now (not handed over mid-event)."""
        self._in_flight_event: tuple[int, int, int] | None = None
        """(partition, epoch, offset) of that event."""
        self._heartbeat_lock = asyncio.Lock()
        self._pending_commit: asyncio.Task[None] | None = None
        self._next_partition = 0
        self._group_key = group_signal_key(stream_name, group_id)

    # ----------------------------------------------------------------- membership

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member owns now."""
        return tuple(sorted(self._owned))

    async def heartbeat(self, *, leaving: bool = False) -> Assignment:
        """Tell the group this member is alive (or leaving) and adopt the assignment it answers.
        Partitions the group asks to hand over are committed and released right away."""
        async with self._heartbeat_lock:
            assignment = await self._send_heartbeat(leaving=leaving, released=())
            for _ in range(3):
                releasing = self._adopt(assignment)
                if not releasing or leaving:
                    break
                pending = {
                    partition: self._processed[partition] for partition in releasing if partition in self._processed
                }
                if pending:
                    with contextlib.suppress(FencedError):
                        await self.commit_offsets(pending)
                assignment = await self._send_heartbeat(leaving=False, released=tuple(releasing))
            return assignment

    async def _send_heartbeat(self, *, leaving: bool, released: tuple[int, ...]) -> Assignment:
        heartbeat = Heartbeat(
            consumer_id=self.consumer_id,
            instance_id=self.instance_id,
            session_timeout=self.options.session_timeout,
            max_poll_interval=self.options.max_poll_interval,
            since_last_poll=timedelta(seconds=time.monotonic() - self._last_poll),
            leaving=leaving,
            released=released,
        )
        return await self.store._group_heartbeat(
            self.stream_name, self.group_id, heartbeat, self.options.start_position
        )

    def _adopt(self, assignment: Assignment) -> list[int]:
        """Take the assignment; return the partitions to hand over (already no longer delivered)."""
        new = {owned.partition: owned for owned in assignment.partitions}
        for partition, owned in self._owned.items():
            if partition not in new or new[partition].epoch != owned.epoch:
                self._positions.pop(partition, None)
                self._processed.pop(partition, None)
        releasing = []
        for partition, owned in new.items():
            if owned.releasing:
                self._positions.pop(partition, None)
                if partition != self._in_flight:  # else released once that event is processed
                    releasing.append(partition)
            elif partition not in self._positions or self._owned.get(partition, owned).epoch != owned.epoch:
                self._positions[partition] = owned.committed_offset
                self._processed.pop(partition, None)
        if self._generation is not None and assignment.generation != self._generation:
            self.stats.rebalances += 1
        self._owned = new
        self._generation = assignment.generation
        self._expelled = assignment.expelled
        if assignment.expelled:
            logger.warning(
                "consumer %s of group %s was stuck longer than max_poll_interval and lost its partitions",
                self.consumer_id,
                self.group_id,
            )
        return releasing

    async def _keep_alive(self) -> None:
        interval = self.options.effective_heartbeat_interval.total_seconds()
        signals = self.store._signals
        while True:
            ticket = signals.ticket(self._group_key)
            await signals.wait(ticket, interval)
            try:
                await self.heartbeat()
            except ConnectionLostError as error:
                logger.warning("heartbeat of %s failed, retrying: %s", self.consumer_id, error)

    # ----------------------------------------------------------------- commits

    async def commit_offsets(self, offsets: dict[int, int], *, epochs: dict[int, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}``; FencedError for partitions not owned, or
        (with ``epochs``, the ownership an event was delivered under) owned under another epoch."""
        not_owned = tuple(
            sorted(
                partition
                for partition in offsets
                if partition not in self._owned
                or (
                    epochs is not None
                    and epochs.get(partition, self._owned[partition].epoch) != self._owned[partition].epoch
                )
            )
        )
        if not_owned:
            raise FencedError(
                f"consumer {self.consumer_id!r} does not own partition(s) {list(not_owned)} of group "
                f"{self.group_id!r}; nothing was committed",
                not_owned,
            )
        commits = [
            PartitionCommit(partition, (epochs or {}).get(partition, self._owned[partition].epoch), offset)
            for partition, offset in offsets.items()
        ]
        try:
            await self.store._group_commit(self.stream_name, self.group_id, self.consumer_id, commits)
        except FencedError as error:
            self.stats.fenced += 1
            for partition in error.partitions:
                self._owned.pop(partition, None)
                self._positions.pop(partition, None)
                self._processed.pop(partition, None)
            self.store._signals.fire(self._group_key)  # rejoin now, not at the next heartbeat
            raise
        self.stats.commits += 1
        for partition, offset in offsets.items():
            if self._processed.get(partition, -1) <= offset:
                self._processed.pop(partition, None)
            self.stats.committed_events += 1 if offset else 0

    async def _finish_commit(self) -> None:
        pending, self._pending_commit = self._pending_commit, None
        if pending is not None:
            await pending

    async def commit_processed(self) -> None:
        """Commit everything processed and not yet committed (the automatic strategies)."""
        pending = {partition: offset for partition, offset in self._processed.items() if partition in self._owned}
        if not pending:
            return
        try:
            await self.commit_offsets(pending)
        except FencedError as error:
            logger.info(
                "commit of %s fenced for partitions %s; they will be redelivered", self.consumer_id, error.partitions
            )

    # ----------------------------------------------------------------- delivery

    async def events(self) -> AsyncGenerator[ConsumedEvent, None]:
        """Join, then deliver events until the consumer stops; commit and leave on the way out."""
        info = await self.store.get_stream(self.stream_name)
        if info.type is not StreamType.PERSISTENT:
            raise StreamTypeError(f"{info.name!r} is a queue: consumer groups read persistent streams")
        await self.heartbeat()
        keep_alive = asyncio.create_task(self._keep_alive(), name=f"sluice-heartbeat-{self.consumer_id}")
        try:
            # Delegating by hand (not "async for ... yield") would add a generator layer per event;
            # _deliver is driven directly and closed with this generator.
            delivered = self._deliver()
            try:
                while True:
                    try:
                        event = await delivered.__anext__()
                    except StopAsyncIteration:
                        return
                    yield event
            finally:
                await delivered.aclose()
        finally:
            keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keep_alive
            await self._leave()

    async def _leave(self) -> None:
        try:
            await self._finish_commit()
            if self.options.commit_strategy is not OffsetCommitStrategy.MANUAL:
                await self.commit_processed()
            await self.heartbeat(leaving=True)
        except ConnectionLostError as error:
            logger.warning("consumer %s could not leave cleanly (its session will expire): %s", self.consumer_id, error)

    def confirm_in_flight(self) -> None:
        """The consumer finished the event it holds and is stopping cleanly: count it as processed,
        so the commit on the way out includes it."""
        if self._in_flight_event is None:
            return
        partition, epoch, offset = self._in_flight_event
        current = self._owned.get(partition)
        if current is not None and current.epoch == epoch:
            self._processed[partition] = offset + 1

    async def _commit_if_due(self, last_commit: float) -> bool:
        """After an event: commit now if the strategy says so. Returns whether a periodic commit happened."""
        strategy = self.options.commit_strategy
        if strategy is OffsetCommitStrategy.AFTER_EACH:
            await self.commit_processed()
        elif (
            strategy is OffsetCommitStrategy.PERIODIC
            and time.monotonic() - last_commit >= self.options.commit_interval.total_seconds()
        ):
            await self.commit_processed()
            return True
        return False

    async def _fetch_next(self, batch_size: int) -> tuple[int, int, list[RecordedEvent]] | None:
        """The next batch: (partition, its epoch when fetched, up to ``batch_size`` of its events),
        taking partitions in turn, one simple indexed read per batch; None when all are caught up."""
        owned = sorted(self._positions)
        start = owned.index(self._next_partition) if self._next_partition in owned else 0
        for step in range(len(owned)):
            partition = owned[(start + step) % len(owned)]
            position = self._positions.get(partition)
            ownership = self._owned.get(partition)
            if position is None or ownership is None:
                continue
            batch = await self.store._read_page(self.stream_name, partition, position, Direction.FORWARDS, batch_size)
            if batch:
                self._next_partition = owned[(start + step + 1) % len(owned)]
                return partition, ownership.epoch, batch
        return None

    async def _deliver(self) -> AsyncGenerator[ConsumedEvent, None]:
        strategy = self.options.commit_strategy
        commits_each = strategy in (OffsetCommitStrategy.AFTER_EACH, OffsetCommitStrategy.PERIODIC)
        batch_size = self.options.batch_size
        commit_interval = self.options.commit_interval.total_seconds()
        wait_seconds = self.store.options.poll_interval.total_seconds()
        signals = self.store._signals
        last_commit = time.monotonic()
        while True:
            if self._expelled:
                self._last_poll = time.monotonic()
                await self.heartbeat()
            stream_ticket = signals.ticket(self.stream_name)
            group_ticket = signals.ticket(self._group_key)
            self._last_poll = time.monotonic()
            if strategy is OffsetCommitStrategy.PERIODIC and time.monotonic() - last_commit >= commit_interval:
                await self.commit_processed()
                last_commit = time.monotonic()
            fetched = await self._fetch_next(batch_size) if self._positions else None
            if fetched is None:
                await _wait_either(stream_ticket, group_ticket, wait_seconds)
                continue
            partition, epoch, batch = fetched
            stream_name = self.stream_name
            for event in batch:
                offset = event.offset
                owned = self._owned.get(partition)
                if owned is None or owned.epoch != epoch or self._positions.get(partition) != offset:
                    break  # revoked, reset or moved while this batch was in flight
                self.stats.delivered += 1
                self._in_flight = partition
                self._in_flight_event = (partition, epoch, offset)
                try:
                    yield ConsumedEvent(event._row, stream_name, partition, self, epoch)
                finally:
                    self._in_flight = None
                    self._in_flight_event = None
                # Processed: the fast path inline (no coroutine per event); commits when due.
                current = self._owned.get(partition)
                if current is None or current.epoch != epoch:
                    break  # lost while the consumer processed it: the new owner redelivers it
                self._processed[partition] = offset + 1
                if current.releasing:
                    self.store._signals.fire(self._group_key)  # hand it over now that the event is done
                    break
                self._positions[partition] = offset + 1
                if commits_each and await self._commit_if_due(last_commit):
                    last_commit = time.monotonic()
            if strategy is OffsetCommitStrategy.AFTER_BATCH:
                # The commit's round trip (and fsync) overlaps the next fetch; it is awaited
                # before the next commit and before leaving, so commits stay in order.
                await self._finish_commit()
                self._pending_commit = asyncio.create_task(self.commit_processed())


async def _wait_either(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    """Wait for either wake-up (new events, or a rebalance) or the poll interval."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
