"""QUEUE delivery for one group member: claim ranges of offsets, deliver their events, acknowledge them.

On a stream with ``DeliverySemantics.QUEUE`` the members of a group own no partitions. Each member
claims a range of up to ``batch_size`` events of some partition under a lease (its heartbeats
extend it), delivers them, and acknowledges what was processed according to its commit strategy.
A claim whose lease runs out (the member died, was stuck, or left without finishing it) is taken
over by another member with the next attempt number; the previous holder's acknowledgement is then
refused with FencedError. So each event goes to one member at a time, at least once across
crashes, and work spreads over any number of members even on a one-partition stream. Order within
a partition is not kept. Committed offsets advance over contiguous finished claims in the backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING

from sluice.consumers.backend import refuse_stale_claims
from sluice.consumers.model import Claim, ClaimAcknowledgement
from sluice.consumers.options import OffsetCommitStrategy
from sluice.consumers.waiting import wait_either
from sluice.errors import FencedError
from sluice.events import Direction
from sluice.observability.metrics import seconds_since

if TYPE_CHECKING:
    from sluice.consumers.member import ConsumedEvent, GroupMember

logger = logging.getLogger(__name__)

FINISHED_CLAIMS_REMEMBERED = 1024
"""Claims fully acknowledged that a repeated ``event.commit()`` may still name (it is then a no-op)."""


@dataclasses.dataclass(slots=True)
class HeldClaim:
    """A claim this member holds, with how far it was processed and acknowledged."""

    claim: Claim
    processed_to: int
    """The next offset not yet processed."""
    acknowledged_to: int
    """The next offset not yet acknowledged."""

    def acknowledgement(self, up_to: int) -> ClaimAcknowledgement:
        claim = self.claim
        return ClaimAcknowledgement(claim.claim_id, claim.attempt, claim.partition, min(up_to, claim.to_offset))


class QueueDelivery:
    """The claims of one member of a QUEUE group and the loop that delivers them."""

    def __init__(self, member: GroupMember) -> None:
        self._member = member
        self._held: dict[int, HeldClaim] = {}
        self._finished: dict[int, None] = {}
        """Recently finished claim ids, oldest first (an ordered set)."""
        self._pending: asyncio.Task[None] | None = None
        self._next_partition = int(member.instance_id[:4], 16)
        """Members start at different partitions, so they do not all queue on the same one."""

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member holds claims in now."""
        return tuple(sorted({held.claim.partition for held in self._held.values()}))

    def adopt_epochs(self, partition_epochs: tuple[tuple[int, int], ...]) -> None:
        """Drop the claims a forced reset invalidated (their partition's epoch moved on)."""
        epochs = dict(partition_epochs)
        for claim_id, held in list(self._held.items()):
            if held.claim.epoch < epochs.get(held.claim.partition, held.claim.epoch):
                del self._held[claim_id]

    def drop_all(self) -> None:
        """The member was expelled: its claims were freed for the others; stop delivering them."""
        self._held.clear()

    # ----------------------------------------------------------------- acknowledgements

    async def _acknowledge(self, items: list[tuple[HeldClaim, ClaimAcknowledgement]]) -> None:
        if not items:
            return
        member = self._member
        stale = await member.store._group_acknowledge(
            member.stream_name, member.group_id, [acknowledgement for _, acknowledgement in items]
        )
        stale_ids = {acknowledgement.claim_id for acknowledgement in stale}
        for held, acknowledgement in items:
            claim_id = held.claim.claim_id
            if claim_id in stale_ids:
                self._held.pop(claim_id, None)
            elif acknowledgement.up_to >= held.claim.to_offset:
                self._held.pop(claim_id, None)
                self._remember_finished(claim_id)
            else:
                held.acknowledged_to = max(held.acknowledged_to, acknowledgement.up_to)
        member.stats.commits += 1
        member.stats.committed_events += sum(
            1 for _, acknowledgement in items if acknowledgement.claim_id not in stale_ids
        )
        if stale:
            member.stats.fenced += 1
            refuse_stale_claims(member.consumer_id, member.group_id, stale)

    def _remember_finished(self, claim_id: int) -> None:
        self._finished[claim_id] = None
        if len(self._finished) > FINISHED_CLAIMS_REMEMBERED:
            del self._finished[next(iter(self._finished))]

    async def acknowledge_processed(self) -> None:
        """Acknowledge everything processed and not yet acknowledged (the automatic strategies);
        claims taken over meanwhile are logged and dropped (their new holder delivers them)."""
        items = [
            (held, held.acknowledgement(held.processed_to))
            for held in list(self._held.values())
            if held.processed_to > held.acknowledged_to
        ]
        try:
            await self._acknowledge(items)
        except FencedError as error:
            logger.info(
                "acknowledgement of %s fenced for partitions %s; another member delivers those events",
                self._member.consumer_id,
                error.partitions,
            )

    async def finish_pending(self) -> None:
        """Wait for the acknowledgement sent in the background after the last batch, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def commit_event(self, claim_id: int, offset: int) -> None:
        """``event.commit()``: acknowledge the event's claim up to and including the event."""
        held = self._held.get(claim_id)
        if held is None:
            if claim_id in self._finished:
                return
            raise FencedError(
                f"consumer {self._member.consumer_id!r} no longer holds the claim this event was delivered "
                f"under (group {self._member.group_id!r}); nothing was acknowledged",
            )
        await self._acknowledge([(held, held.acknowledgement(offset + 1))])

    async def commit_offsets(self, offsets: Mapping[int, int]) -> None:
        """``reader.commit(offsets={partition: next offset})``: acknowledge this member's claims in
        each partition below that offset. FencedError for a partition it holds no claim in."""
        items = []
        missing = []
        for partition, offset in offsets.items():
            found = [
                (held, held.acknowledgement(offset))
                for held in self._held.values()
                if held.claim.partition == partition and held.claim.from_offset < offset
            ]
            if not found:
                missing.append(partition)
            items.extend(found)
        if missing:
            raise FencedError(
                f"consumer {self._member.consumer_id!r} does not hold claims below those offsets in partition(s) "
                f"{sorted(missing)} of group {self._member.group_id!r}; nothing was committed",
                tuple(sorted(missing)),
            )
        await self._acknowledge(items)

    def confirm(self, claim_id: int, offset: int) -> None:
        """The event in hand was processed (a clean stop)."""
        held = self._held.get(claim_id)
        if held is not None:
            held.processed_to = max(held.processed_to, offset + 1)

    # ----------------------------------------------------------------- delivery

    async def _claim(self) -> Claim | None:
        """Lease the next events to this member, or wait for some (None after the wait)."""
        member = self._member
        store = member.store
        signals = store._signals
        stream_ticket = signals.ticket(member.stream_name)
        group_ticket = signals.ticket(member.group_signal)
        claim = await store._group_claim(
            member.stream_name,
            member.group_id,
            consumer_id=member.consumer_id,
            instance_id=member.instance_id,
            count=member.options.batch_size,
            lease=member.options.session_timeout,
            first_partition=self._next_partition,
        )
        if claim is None:
            await wait_either(stream_ticket, group_ticket, store.options.poll_interval.total_seconds())
            return None
        self._next_partition = claim.partition + 1
        return claim

    async def _acknowledge_if_due(self, last_commit: float) -> float:
        """After an event: acknowledge now if the strategy says so; returns the last commit time."""
        strategy = self._member.options.commit_strategy
        if strategy is OffsetCommitStrategy.AFTER_EACH:
            await self.acknowledge_processed()
        elif (
            strategy is OffsetCommitStrategy.PERIODIC
            and time.monotonic() - last_commit >= self._member.options.commit_interval.total_seconds()
        ):
            await self.acknowledge_processed()
            return time.monotonic()
        return last_commit

    async def deliver(self) -> AsyncGenerator[ConsumedEvent, None]:
        """Claim, deliver and acknowledge until the consumer stops."""
        member = self._member
        strategy = member.options.commit_strategy
        last_commit = time.monotonic()
        while True:
            if member.expelled:
                member.polled()
                await member.heartbeat()
            member.polled()
            if strategy is OffsetCommitStrategy.PERIODIC:
                last_commit = await self._acknowledge_if_due(last_commit)
            claim = await self._claim()
            if claim is None:
                continue
            held = self._held[claim.claim_id] = HeldClaim(claim, claim.from_offset, claim.from_offset)
            member.in_flight_batch = (claim.partition, claim.claim_id)
            events = await member.store._read_page(
                member.stream_name,
                claim.partition,
                claim.from_offset,
                Direction.FORWARDS,
                claim.to_offset - claim.from_offset,
            )
            complete = True
            if events:
                member.recorder.consumed(len(events), seconds_since(events[0].timestamp))
            for event in events:
                offset = event.offset
                if self._held.get(claim.claim_id) is not held:
                    complete = False
                    break  # taken over (this member was expelled) or dropped by a reset
                member.stats.delivered += 1
                member.in_flight_offset = offset
                yield member.consumed_event(event._row, claim.partition, claim.claim_id)
                member.in_flight_offset = -1
                held.processed_to = offset + 1
                if strategy is not OffsetCommitStrategy.AFTER_BATCH:
                    last_commit = await self._acknowledge_if_due(last_commit)
            if complete and self._held.get(claim.claim_id) is held:
                # Offsets of the range missing from storage (none today; retention later) count as done.
                held.processed_to = claim.to_offset
            if strategy is OffsetCommitStrategy.AFTER_BATCH:
                # As for BROADCAST: the acknowledgement's round trip overlaps the next claim.
                await self.finish_pending()
                self._pending = asyncio.create_task(self.acknowledge_processed())
