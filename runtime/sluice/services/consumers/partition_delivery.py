"""Delivery of the partitions a BROADCAST consumer-group member owns: read pages, deliver, mark processed.

Per batch: the page read ahead of time is taken (and the one after it requested, so the database
reads while the consumer works), it is delivered, and its commit becomes due. The member takes its
owned partitions in turn, one page of up to ``batch_size`` events at a time, one simple indexed
read per page. An event counts as processed when the consumer asks for the next one (a batch when
it asks for the next batch); only processed events are committed. A partition the member loses
(rebalance, expired session, forced reset) stops being delivered at once; one it is asked to hand
over is released after the event in the consumer's hands. A page that starts past the position it
was read from met retention: ``on_truncation`` decides (see truncation.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING

from sluice.core.errors import SluiceError
from sluice.core.events import EventRow
from sluice.observability.metrics import GroupRecorder, seconds_since
from sluice.services.consumers.commits import CommitSchedule, PartitionCommits
from sluice.services.consumers.member_health import Availability
from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.member_storage import MemberStorage
from sluice.services.consumers.membership import Membership
from sluice.services.consumers.transient import is_transient
from sluice.services.consumers.truncation import Truncations
from sluice.services.consumers.waiting import wait_either
from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy, TruncationPolicy
from sluice.store.values.member_reports import MemberStats, Truncation

if TYPE_CHECKING:
    from sluice.services.consumers.member import GroupMember


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """Events of one partition to deliver, as read under one ownership epoch."""

    partition: int
    epoch: int
    start: int
    rows: Sequence[EventRow]


class PartitionDelivery:
    """The delivery loop of one BROADCAST member over the partitions it owns."""

    def __init__(
        self,
        *,
        member: GroupMember,
        storage: MemberStorage,
        options: ConsumerGroupOptions,
        ownership: Ownership,
        membership: Membership,
        availability: Availability,
        commits: PartitionCommits,
        schedule: CommitSchedule,
        truncations: Truncations,
        stats: MemberStats,
        recorder: GroupRecorder,
    ) -> None:
        self._member = member
        """What delivered events and batches commit through (``event.commit()``)."""
        self._storage = storage
        self._options = options
        self._ownership = ownership
        self._membership = membership
        self._availability = availability
        self._commits = commits
        self._schedule = schedule
        self._truncations = truncations
        self._stats = stats
        self._recorder = recorder
        self._prefetch: asyncio.Task[Page | None] | None = None
        self._next_partition = 0
        self._pending_truncations: dict[int, Truncation] = {}
        """Per partition, the truncation the next batch delivered of it carries."""

    async def batches(self, *, per_event: bool) -> AsyncGenerator[ConsumedBatch, None]:
        """Deliver batches until the consumer stops. With ``per_event``, ``events`` marks the events
        processed one by one; otherwise a whole batch is processed when the next one is requested."""
        ownership = self._ownership
        after_batch = self._options.commit_strategy is OffsetCommitStrategy.AFTER_BATCH
        self._schedule.restart()
        while True:
            page = await self._next_page()
            if page is None or not ownership.still_delivering(page.partition, page.epoch, page.start):
                continue  # nothing to deliver, or ownership moved while the page was read
            if page.rows[0][0] != page.start:  # retention pruned the events from page.start on
                page = await self._skip_truncated(page)
                if page is None:
                    continue
            batch = ConsumedBatch(
                self._member,
                page.partition,
                page.epoch,
                page.start,
                page.rows,
                truncation=self._pending_truncations.pop(page.partition, None),
            )
            ownership.in_flight_batch = (page.partition, page.epoch)
            if per_event:
                yield batch
            else:
                version = ownership.changes
                self._stats.delivered += len(page.rows)
                ownership.in_flight_offset = batch.last_offset  # the whole batch is in the consumer's hands
                yield batch
                ownership.in_flight_offset = -1
                await self._batch_processed(batch, page.epoch, version)
            ownership.in_flight_batch = None
            if after_batch:
                # The commit is sent in the background when the next page is taken, while
                # the consumer works through it; one at a time, so commits land in order,
                # and leaving waits for the last one.
                self._commits.due = True

    async def _batch_processed(self, batch: ConsumedBatch, epoch: int, version: int) -> None:
        """The consumer asked for the batch after ``batch``: all of it is processed (unless the
        partition was lost meanwhile; one being handed over is released now)."""
        partition, next_offset = batch.partition, batch.next_offset
        ownership = self._ownership
        if ownership.changes != version and not self.goes_on_after(partition, epoch, next_offset - 1):
            return
        ownership.processed[partition] = ownership.positions[partition] = next_offset
        await self._schedule.commit_if_due()

    async def events(self, batches: AsyncGenerator[ConsumedBatch, None]) -> AsyncGenerator[ConsumedEvent, None]:
        """Deliver the ``batches`` (of ``GroupMember.batches(per_event=True)``) an event at a time.

        The per-event work is written out inline rather than in a generator this one would drive
        (each generator layer costs every event a hand-off): one object and one ownership-version
        check per event. Batches of claims (QUEUE delivery) are delivered by their claim delivery."""
        commits_each = self._options.commit_strategy in (
            OffsetCommitStrategy.AFTER_EACH,
            OffsetCommitStrategy.PERIODIC,
        )
        member = self._member
        stream_name = member.stream_name
        stats = self._stats
        ownership = self._ownership
        processed = ownership.processed
        positions = ownership.positions
        commit_if_due = self._schedule.commit_if_due
        async with contextlib.aclosing(batches):
            async for batch in batches:
                claims = self._membership.claims
                if claims is not None:
                    async with contextlib.aclosing(claims.events_of(batch)) as claimed:
                        async for event in claimed:
                            yield event
                    continue
                partition = batch.partition
                epoch = batch._token
                offset = batch.first_offset
                version = ownership.changes
                for row in batch._rows:
                    if ownership.changes != version:
                        if not ownership.still_delivering(partition, epoch, offset):
                            break  # revoked, reset or moved while this batch was in flight
                        version = ownership.changes
                    offset = row[0]
                    stats.delivered += 1
                    ownership.in_flight_offset = offset
                    yield ConsumedEvent(row, stream_name, partition, member, epoch)
                    ownership.in_flight_offset = -1
                    # Processed: the fast path inline (no coroutine per event); commits when due.
                    if ownership.changes != version:
                        if not self.goes_on_after(partition, epoch, offset):
                            break
                        version = ownership.changes
                    offset += 1
                    processed[partition] = offset
                    positions[partition] = offset
                    if commits_each:
                        await commit_if_due()

    def goes_on_after(self, partition: int, epoch: int, offset: int) -> bool:
        """After the consumer processed the event at ``offset`` while ownership changed somewhere:
        whether the batch goes on. A partition lost meanwhile is not committed (the new owner
        redelivers the event); one being handed over counts the event and is released now."""
        current = self._ownership.owned.get(partition)
        if current is None or current.epoch != epoch:
            return False
        if current.releasing:
            self._ownership.processed[partition] = offset + 1
            self._storage.wake_group()
            return False
        return True

    async def _next_page(self) -> Page | None:
        """The next page to deliver (None after waiting for events, a rebalance, or the database);
        requests the page after it ahead of time (AFTER_BATCH: and sends the commit of the batch
        just processed). Raises what stopped the heartbeat for good."""
        availability = self._availability
        availability.raise_if_failed()
        storage = self._storage
        signals = storage.signals
        stream_ticket = signals.ticket(storage.stream_name)
        group_ticket = signals.ticket(storage.group_signal)
        assignment_changed = self._ownership.assignment_changed
        assignment_changed.clear()
        self._membership.polled()
        if self._options.commit_strategy is OffsetCommitStrategy.PERIODIC:
            await self._schedule.commit_if_due()
        if self._membership.session_lapsed():
            # No heartbeat answered for a session: the group may have moved our partitions. Deliver
            # nothing until one is answered (it says what we own); the heartbeat task retries.
            await self.stop_prefetch()
            await wait_either(group_ticket, assignment_changed, seconds=self._retry_pause())
            return None
        try:
            if self._membership.expelled:
                await self._membership.heartbeat()
            page = await self._take_prefetched()
            await self._commits.send_due()
            if page is None:
                page = await self._fetch_next()
        except Exception as error:
            await availability.wait_out_read_failure(error)
            return None
        availability.read_succeeded()
        if page is None:
            await wait_either(
                stream_ticket, group_ticket, assignment_changed, seconds=storage.poll_interval.total_seconds()
            )
            return None
        owned = sorted(self._ownership.positions)
        if page.partition in owned:
            self._next_partition = owned[(owned.index(page.partition) + 1) % len(owned)]
        # Read the page after this one while the consumer works through this one.
        next_position = int(page.rows[-1][0]) + 1  # not start + len(rows): retention may have pruned from start on
        self._prefetch = asyncio.create_task(self._fetch_next(assume=(page.partition, next_position)))
        if page.rows:
            self._recorder.consumed(len(page.rows), seconds_since(page.rows[0][8]))
        # Let the read ahead send its query now. A consumer that works through a page without
        # awaiting anything real never gives the event loop a turn, so without this the task would
        # only start when the page is done, and the database would idle while the consumer works.
        await asyncio.sleep(0)
        return page

    def _retry_pause(self) -> float:
        return min(self._storage.poll_interval.total_seconds(), 1.0)

    async def _skip_truncated(self, page: Page) -> Page | None:
        """The page starts past the position it was read from: retention pruned the events in
        between before this group consumed them. Apply ``on_truncation``: earliest delivers the page
        from its first event, latest moves to the head (committed by the automatic strategies), fail
        raises ConsumerTruncatedError (see ``Truncations.note``)."""
        policy = self._options.on_truncation
        ownership = self._ownership
        first = int(page.rows[0][0])
        resumed_at = first
        if policy is TruncationPolicy.LATEST:
            info = await self._storage.describe_stream()
            resumed_at = max(info.partition_heads[page.partition].head, first)
        truncation = self._truncations.note(
            page.partition, expected_offset=page.start, first_offset=first, resumed_at=resumed_at
        )
        if not ownership.still_delivering(page.partition, page.epoch, page.start):
            return None  # ownership moved while the head was looked up
        self._pending_truncations[page.partition] = truncation
        ownership.positions[page.partition] = resumed_at
        if policy is TruncationPolicy.LATEST:
            ownership.processed[page.partition] = resumed_at
            return None
        return Page(page.partition, page.epoch, first, page.rows)

    async def _take_prefetched(self) -> Page | None:
        """The page read ahead of time, if it is still what the loop wants next."""
        task, self._prefetch = self._prefetch, None
        if task is None:
            return None
        page = await task
        if page is None or not self._ownership.still_delivering(page.partition, page.epoch, page.start):
            return None  # an empty answer is not trusted either: the loop reads again before it waits
        return page

    async def stop_prefetch(self) -> None:
        """On the way out: the read ahead is cancelled, a commit in flight awaited."""
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # raises our own cancellation, not the read ahead's
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, SluiceError) and not is_transient(error):
                raise error  # the read ahead failed with a bug; a database error: nothing of it was delivered
        await self._commits.settle()

    async def _fetch_next(self, *, assume: tuple[int, int] | None = None) -> Page | None:
        """The next page: up to ``batch_size`` events of the first owned partition, in turn from
        the one after the last delivered, that has any; one simple indexed read per page. When
        reading ahead, ``assume`` is (partition, position) of the page being delivered meanwhile."""
        ownership = self._ownership
        owned = sorted(ownership.positions)
        start = owned.index(self._next_partition) if self._next_partition in owned else 0
        for step in range(len(owned)):
            partition = owned[(start + step) % len(owned)]
            position = (
                assume[1] if assume is not None and assume[0] == partition else ownership.positions.get(partition)
            )
            owner = ownership.owned.get(partition)
            if position is None or owner is None:
                continue
            rows = await self._storage.read_rows(partition, position, self._options.batch_size)
            if rows:
                return Page(partition, owner.epoch, position, rows)
        return None
