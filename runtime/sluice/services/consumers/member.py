"""One member of a consumer group: joins, heartbeats, fetches its partitions, delivers events and
commits offsets according to its strategy. Backend-agnostic: it talks to the store through
``MemberStorage`` (member_storage.py), the one place its storage calls are made.

Delivery is at least once. An event counts as processed when the consumer asks for the next one;
only processed events are committed. A member that loses a partition (rebalance, expired session,
forced reset) stops delivering it at once, and its commits for it are refused (FencedError).

``GroupMember`` is the member the reader hands out; it puts together one collaborator per concern,
each given what it works with:

- membership.py: joining, heartbeats, rebalances and fencing (``Membership``);
- partition_delivery.py: delivering the partitions a BROADCAST member owns (``PartitionDelivery``);
- queue_delivery.py: on a stream with QUEUE delivery semantics, claims instead (``QueueDelivery``);
- commits.py: the commit strategies and the commits of owned partitions (``CommitSchedule``,
  ``PartitionCommits``);
- member_state.py and member_health.py: what the member owns, its counters, and whether it can go on.

The member outlives its database: joins, heartbeats, page reads and the automatic commits wait out
transient failures (``transient.py``: the database restarting, unreachable, out of connections) with
backoff and resume by themselves; ``health`` says why the member is not consuming meanwhile. A
heartbeat that fails for any other reason (the stream was deleted, a newer process took this
consumer id over: DuplicateConsumerError) ends the consumption with that error: the member never
goes on delivering without a live heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from sluice.core.errors import FencedError
from sluice.core.streams import DeliverySemantics, StreamInfo
from sluice.observability.metrics import GroupRecorder
from sluice.services.consumers.commits import CommitSchedule, PartitionCommits
from sluice.services.consumers.member_health import Availability
from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.member_storage import MemberStorage
from sluice.services.consumers.membership import Membership
from sluice.services.consumers.partition_delivery import PartitionDelivery
from sluice.services.consumers.queue_delivery import QueueDelivery
from sluice.services.consumers.transient import is_transient
from sluice.services.consumers.truncation import Truncations
from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.store.values.consumer_groups import Assignment
from sluice.store.values.member_reports import MemberHealth, MemberStats, Truncation

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)


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
        self.stream_name = stream_name
        self.group_id = group_id
        self.consumer_id = consumer_id
        self.options = options
        self.stats = MemberStats()
        self.recorder = GroupRecorder(stream_name, group_id)
        """Prometheus: events consumed, delivery latency and rebalances of this group."""
        self._storage = MemberStorage(store, stream_name=stream_name, group_id=group_id, consumer_id=consumer_id)
        self._ownership = Ownership()
        self._availability = Availability(consumer_id=consumer_id, group_id=group_id, ownership=self._ownership)
        self._commits = PartitionCommits(
            storage=self._storage, ownership=self._ownership, availability=self._availability, stats=self.stats
        )
        self._schedule = CommitSchedule(
            options=options, availability=self._availability, commit_processed_once=self._commit_processed_once
        )
        self._truncations = Truncations(
            stream_name=stream_name, group_id=group_id, policy=options.on_truncation, stats=self.stats
        )
        self._membership = Membership(
            storage=self._storage,
            options=options,
            ownership=self._ownership,
            availability=self._availability,
            commits=self._commits,
            stats=self.stats,
            recorder=self.recorder,
        )
        self._partitions = PartitionDelivery(
            member=self,
            storage=self._storage,
            options=options,
            ownership=self._ownership,
            membership=self._membership,
            availability=self._availability,
            commits=self._commits,
            schedule=self._schedule,
            truncations=self._truncations,
            stats=self.stats,
            recorder=self.recorder,
        )

    # ----------------------------------------------------------------- what the member shows

    @property
    def instance_id(self) -> str:
        """This process's instance of the consumer id (a newer instance fences an older one)."""
        return self._membership.instance_id

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member owns now (QUEUE delivery: holds claims in)."""
        claims = self._membership.claims
        if claims is not None:
            return claims.partitions
        return tuple(sorted(self._ownership.owned))

    @property
    def expelled(self) -> bool:
        """The group expelled this member (stuck past max_poll_interval); it rejoins on its next poll."""
        return self._membership.expelled

    @property
    def health(self) -> MemberHealth:
        """Consuming, or why not: joining, waiting out the database (and since when), or stopped."""
        return self._membership.health(self.partitions)

    @property
    def truncations(self) -> list[Truncation]:
        """Every truncation this member found, oldest first (see truncation.py)."""
        return self._truncations.found

    def raise_if_failed(self) -> None:
        """Raise what stopped the member for good, if anything did."""
        self._availability.raise_if_failed()

    def polled(self) -> None:
        """The consumer asked for events now (max_poll_interval counts from here)."""
        self._membership.polled()

    async def heartbeat(self, *, leaving: bool = False, joining: bool = False) -> Assignment:
        """Tell the group this member is alive (or leaving, or joining) and adopt what it answers."""
        return await self._membership.heartbeat(leaving=leaving, joining=joining)

    # ----------------------------------------------------------------- commits

    async def commit_event(self, partition: int, offset: int, epoch: int) -> None:
        """Commit up to and including one delivered event (``event.commit()``)."""
        claims = self._membership.claims
        if claims is not None:
            await claims.commit_event(epoch, offset)
        else:
            await self._commits.commit_offsets({partition: offset + 1}, epochs={partition: epoch})

    async def commit_offsets(self, offsets: dict[int, int], *, epochs: dict[int, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}``; FencedError for partitions not owned, or
        (with ``epochs``, the ownership an event was delivered under) owned under another epoch.
        QUEUE delivery: acknowledges this member's claims in each partition below the offset."""
        claims = self._membership.claims
        if claims is not None:
            await claims.commit_offsets(offsets)
            return
        await self._commits.commit_offsets(offsets, epochs=epochs)

    async def commit_if_due(self) -> None:
        """After an event (a batch, when delivering batches): commit now if the strategy says so."""
        await self._schedule.commit_if_due()

    async def commit_processed(self, *, retry: bool = True) -> None:
        """Commit everything processed and not yet committed (the automatic strategies). With
        ``retry``, a transient failure is retried with backoff until the commit lands, is fenced, or
        the member stops."""
        await self._schedule.commit_processed(retry=retry)

    async def _commit_processed_once(self) -> None:
        claims = self._membership.claims
        if claims is not None:
            await claims.acknowledge_processed()
        else:
            await self._commits.commit_processed_once()

    def confirm_in_flight(self) -> None:
        """The consumer finished the event it holds and is stopping cleanly: count it as processed,
        so the commit on the way out includes it."""
        ownership = self._ownership
        if ownership.in_flight_batch is None or ownership.in_flight_offset < 0:
            return
        (partition, epoch), offset = ownership.in_flight_batch, ownership.in_flight_offset
        claims = self._membership.claims
        if claims is not None:
            claims.confirm(epoch, offset)
            return
        current = ownership.owned.get(partition)
        if current is not None and current.epoch == epoch:
            ownership.processed[partition] = offset + 1

    # ----------------------------------------------------------------- delivery

    def _on_stream(self, info: StreamInfo) -> None:
        """Joining: a stream with QUEUE delivery semantics is delivered in claims."""
        if info.delivery is DeliverySemantics.QUEUE and self._membership.claims is None:
            self._membership.claims = QueueDelivery(
                member=self,
                storage=self._storage,
                options=self.options,
                ownership=self._ownership,
                membership=self._membership,
                availability=self._availability,
                schedule=self._schedule,
                truncations=self._truncations,
                stats=self.stats,
                recorder=self.recorder,
            )

    async def batches(self, *, per_event: bool = False) -> AsyncGenerator[ConsumedBatch, None]:
        """Join, then deliver batches until the consumer stops; commit and leave on the way out.

        This is the one delivery loop, for both APIs: ``reader.consume_batches`` iterates it
        directly, and ``events()`` (``per_event=True``) delivers each batch an event at a time and
        marks the events processed itself. Per batch: the page read ahead of time is taken (and the
        one after it requested), it is delivered, and its commit becomes due. A whole batch counts
        as processed when the next one is requested."""
        keep_alive = await self._membership.join(self._on_stream)
        try:
            claims = self._membership.claims
            delivery = claims.batches(per_event=per_event) if claims is not None else None
            if delivery is None:
                delivery = self._partitions.batches(per_event=per_event)
            async with contextlib.aclosing(delivery) as delivered:
                async for batch in delivered:
                    yield batch
        finally:
            await self._shutdown(keep_alive)

    def events(self) -> AsyncGenerator[ConsumedEvent, None]:
        """Join, then deliver events until the consumer stops; commit and leave on the way out
        (the batches of ``batches(per_event=True)``, an event at a time: see PartitionDelivery.events)."""
        return self._partitions.events(self.batches(per_event=True))

    async def _shutdown(self, keep_alive: asyncio.Task[None]) -> None:
        """Stop the read ahead and the heartbeat, then commit and leave. The consumer's task may be
        cancelled at any await on the way (a worker stopping with a deadline cancels it again): the
        heartbeat stops whatever happens, so the member never outlives its consumer (it would keep its
        partitions until the process exits); a cancelled stop skips the leave, and the session expires."""
        try:
            await self._partitions.stop_prefetch()
        finally:
            keep_alive.cancel()
        await asyncio.wait({keep_alive})  # raises our own cancellation, not the heartbeat's
        await self._leave()

    async def _leave(self) -> None:
        """Commit what was processed and leave, one attempt each: a member that stops while the
        database is away does not wait for it (its session expires; the uncommitted is redelivered)."""
        if self._availability.failure is not None:
            return  # fenced for good (or the heartbeat failed): nothing of ours to commit or leave
        try:
            claims = self._membership.claims
            if claims is not None:
                await claims.finish_pending()
            if self.options.commit_strategy is not OffsetCommitStrategy.MANUAL:
                await self.commit_processed(retry=False)
            await self.heartbeat(leaving=True)
        except FencedError as error:
            logger.warning("consumer %s could not leave cleanly: %s", self.consumer_id, error)
        except Exception as error:
            if not is_transient(error):
                raise
            logger.warning("consumer %s could not leave cleanly (its session will expire): %s", self.consumer_id, error)
