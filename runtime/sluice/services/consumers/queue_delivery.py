"""Claim delivery (QUEUE semantics) for one group member: claim ranges of offsets, deliver, acknowledge.

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
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING

from sluice.core.errors import FencedError
from sluice.core.events import EventRow
from sluice.observability.metrics import GroupRecorder, seconds_since
from sluice.services.consumers.backend import refuse_stale_claims
from sluice.services.consumers.commits import CommitSchedule
from sluice.services.consumers.member_health import Availability
from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.member_storage import MemberStorage
from sluice.services.consumers.truncation import Truncations
from sluice.services.consumers.waiting import wait_either
from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.store.values.consumer_groups import Claim, ClaimAcknowledgement
from sluice.store.values.member_reports import MemberStats

if TYPE_CHECKING:
    from sluice.services.consumers.member import GroupMember
    from sluice.services.consumers.membership import Membership
    from sluice.store.values.member_reports import Truncation

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

    def __init__(
        self,
        *,
        member: GroupMember,
        storage: MemberStorage,
        options: ConsumerGroupOptions,
        ownership: Ownership,
        membership: Membership,
        availability: Availability,
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
        self._schedule = schedule
        self._truncations = truncations
        self._stats = stats
        self._recorder = recorder
        self._held: dict[int, HeldClaim] = {}
        self._finished: dict[int, None] = {}
        """Recently finished claim ids, oldest first (an ordered set)."""
        self._pending: asyncio.Task[None] | None = None
        self._next_partition = int(membership.instance_id[:4], 16)
        """Members start at different partitions, so they do not all queue on the same one."""
        self._truncated_up_to: dict[int, int] = {}
        """Per partition, where the last pruned range this member found ended."""
        self._untold: dict[int, Truncation] = {}
        """Per partition, the truncation the next batch delivered of it carries."""

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
        storage, stats = self._storage, self._stats
        stale = await storage.acknowledge([acknowledgement for _, acknowledgement in items])
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
        stats.commits += 1
        stats.committed_events += sum(1 for _, acknowledgement in items if acknowledgement.claim_id not in stale_ids)
        if stale:
            stats.fenced += 1
            refuse_stale_claims(storage.consumer_id, storage.group_id, stale)

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
                self._storage.consumer_id,
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
                f"consumer {self._storage.consumer_id!r} no longer holds the claim this event was delivered "
                f"under (group {self._storage.group_id!r}); nothing was acknowledged",
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
                f"consumer {self._storage.consumer_id!r} does not hold claims below those offsets in partition(s) "
                f"{sorted(missing)} of group {self._storage.group_id!r}; nothing was committed",
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
        storage = self._storage
        signals = storage.signals
        stream_ticket = signals.ticket(storage.stream_name)
        group_ticket = signals.ticket(storage.group_signal)
        claim = await storage.claim(
            instance_id=self._membership.instance_id,
            count=self._options.batch_size,
            lease=self._options.session_timeout,
            first_partition=self._next_partition,
        )
        if claim is None:
            await wait_either(stream_ticket, group_ticket, seconds=storage.poll_interval.total_seconds())
            return None
        self._next_partition = claim.partition + 1
        return claim

    async def batches(self, *, per_event: bool) -> AsyncGenerator[ConsumedBatch, None]:
        """Claim, deliver and acknowledge until the consumer stops: one batch per claim (none for a
        claim whose events are all missing from storage). With ``per_event``, ``events_of`` marks
        the events processed one by one; otherwise a batch is processed, whole, when the next one
        is requested."""
        membership, availability, ownership = self._membership, self._availability, self._ownership
        commit_if_due = self._schedule.commit_if_due
        strategy = self._options.commit_strategy
        while True:
            availability.raise_if_failed()
            membership.polled()
            if strategy is OffsetCommitStrategy.PERIODIC:
                await commit_if_due()
            try:
                if membership.expelled:
                    await membership.heartbeat()
                claim = await self._claim()
                if claim is None:
                    continue
                rows = await self._storage.read_rows(
                    claim.partition, claim.from_offset, claim.to_offset - claim.from_offset
                )
            except Exception as error:  # a claim whose events could not be read is redelivered after its lease
                await availability.wait_out_read_failure(error)
                continue
            availability.read_succeeded()
            held = self._held[claim.claim_id] = HeldClaim(claim, claim.from_offset, claim.from_offset)
            ownership.in_flight_batch = (claim.partition, claim.claim_id)
            if not rows or rows[0][0] != claim.from_offset:  # retention pruned the claim's first events
                rows = [row for row in rows if row[0] < claim.to_offset]  # the read went on past the claim
                self._truncated(claim, rows)
            if rows:
                self._recorder.consumed(len(rows), seconds_since(rows[0][8]))
                truncation = self._untold.pop(claim.partition, None)
                batch = ConsumedBatch(
                    self._member, claim.partition, claim.claim_id, int(rows[0][0]), rows, truncation=truncation
                )
                if per_event:
                    yield batch  # events_of() marks the events processed
                else:
                    self._stats.delivered += len(rows)
                    ownership.in_flight_offset = batch.last_offset
                    yield batch
                    ownership.in_flight_offset = -1
                    self._finish(held)
                    if strategy is not OffsetCommitStrategy.AFTER_BATCH:
                        await commit_if_due()
            else:
                self._finish(held)
            ownership.in_flight_batch = None
            if strategy is OffsetCommitStrategy.AFTER_BATCH:
                # As for BROADCAST: the acknowledgement's round trip overlaps the next claim.
                await self.finish_pending()
                self._pending = asyncio.create_task(self.acknowledge_processed())

    def _truncated(self, claim: Claim, rows: Sequence[EventRow]) -> None:
        """Retention pruned events of this claim before the group consumed them: note the
        truncation once per run of such claims (the member's next claims walk through the pruned
        range); the next batch of the partition carries it. QUEUE delivery goes on from the first
        retained event under both earliest and latest (claims cover a partition in order); fail raises."""
        first = int(rows[0][0]) if rows else claim.to_offset
        previous = self._untold.get(claim.partition)
        continuing = self._truncated_up_to.get(claim.partition) == claim.from_offset
        self._truncated_up_to[claim.partition] = first
        if continuing and previous is not None:
            extended = self._untold[claim.partition] = dataclasses.replace(
                previous, first_offset=first, resumed_at=first
            )
            self._truncations.replace(previous, extended)
        elif not continuing:
            self._untold[claim.partition] = self._truncations.note(
                claim.partition, expected_offset=claim.from_offset, first_offset=first, resumed_at=first
            )

    def _finish(self, held: HeldClaim) -> None:
        """Every event of a claim still held was processed. Offsets of the range missing from
        storage (none today; retention later) count as done."""
        if self._held.get(held.claim.claim_id) is held:
            held.processed_to = held.claim.to_offset

    async def events_of(self, batch: ConsumedBatch) -> AsyncGenerator[ConsumedEvent, None]:
        """Deliver a claim's batch an event at a time (``reader.consume``), marking each processed
        when the next is requested; stops if the claim is taken over or dropped meanwhile."""
        stats, ownership = self._stats, self._ownership
        held = self._held.get(batch._token)
        if held is None:
            return  # taken over (this member was expelled) or dropped by a reset before delivery
        each = self._options.commit_strategy is not OffsetCommitStrategy.AFTER_BATCH
        for event in batch.events:
            if self._held.get(batch._token) is not held:
                return  # taken over (this member was expelled) or dropped by a reset
            offset = event.offset
            stats.delivered += 1
            ownership.in_flight_offset = offset
            yield event
            ownership.in_flight_offset = -1
            held.processed_to = offset + 1
            if each:
                await self._schedule.commit_if_due()
        self._finish(held)
