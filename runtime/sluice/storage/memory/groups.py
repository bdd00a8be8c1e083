"""Consumer groups of the in-memory backend: the same rebalance plan and fencing as PostgreSQL,
applied to dictionaries. Each operation runs without awaiting, so it is atomic on its event loop."""

from __future__ import annotations

import builtins
import dataclasses
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sluice.core.errors import FencedError, GroupNotFoundError, InvalidArgumentError, StreamNotFoundError
from sluice.core.streams import DeliverySemantics, StreamType
from sluice.services.consumers.backend import (
    describe_members,
    duplicate_consumer,
    group_signal_key,
    refuse_if_active,
    start_offsets,
    with_partition_epochs,
)
from sluice.services.consumers.rebalance import plan_heartbeat
from sluice.storage.memory.log import OffsetLog
from sluice.storage.memory.state import MemoryState, MemoryStream, offset_at_time
from sluice.store.values.consumer_group_options import StartPosition
from sluice.store.values.consumer_groups import (
    Assignment,
    Claim,
    ClaimAcknowledgement,
    GroupDescription,
    GroupSummary,
    Heartbeat,
    MemberState,
    PartitionCommit,
    PartitionLag,
    PartitionState,
)
from sluice.store.values.retention import GroupPosition


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(slots=True)
class _StoredClaim:
    """A QUEUE claim as PostgreSQL's consumer_group_claims holds it."""

    claim_id: int
    partition: int
    from_offset: int
    to_offset: int
    owner: str
    instance_id: str
    expires_at: datetime
    epoch: int = 0
    attempt: int = 1
    done: bool = False

    def public(self) -> Claim:
        return Claim(self.claim_id, self.attempt, self.partition, self.from_offset, self.to_offset, self.epoch)


@dataclasses.dataclass(slots=True)
class _Group:
    created_at: datetime
    generation: int = 0
    members: dict[str, MemberState] = dataclasses.field(default_factory=dict)
    partitions: dict[int, PartitionState] = dataclasses.field(default_factory=dict)
    claimed: dict[int, int] = dataclasses.field(default_factory=dict)
    """QUEUE groups: per partition, where the next fresh claim starts."""
    claims: dict[int, _StoredClaim] = dataclasses.field(default_factory=dict)
    last_active_at: datetime | None = None
    """The last heartbeat or commit (retention protects the offsets of groups active lately)."""


class MemoryConsumerGroups:
    """Group state of one MemoryEventStore, keyed by (stream object, group id)."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state
        self._groups: dict[tuple[int, str], _Group] = {}
        self._claim_ids = itertools.count(1)

    def _stream(self, stream_name: str) -> MemoryStream:
        stream = self._state.streams.get(stream_name)
        if stream is None:
            raise StreamNotFoundError(stream_name)
        return stream

    def _key(self, stream: MemoryStream, group_id: str) -> tuple[int, str]:
        return (stream.serial, group_id)

    def _group(self, stream_name: str, group_id: str) -> tuple[MemoryStream, _Group] | None:
        stream = self._stream(stream_name)
        group = self._groups.get(self._key(stream, group_id))
        return (stream, group) if group is not None else None

    @staticmethod
    def _bounds(stream: MemoryStream) -> list[tuple[int, int, int]]:
        return [
            (number, partition.events.first_offset, len(partition.events))
            for number, partition in enumerate(stream.partitions)
        ]

    async def _offsets_for(self, stream: MemoryStream, position: StartPosition, *, skip: set[int]) -> dict[int, int]:
        """The committed offset ``position`` means for each partition of the stream not in ``skip``."""

        async def at_time(partition: int) -> int:
            assert position.time is not None
            return offset_at_time(stream, partition, position.time)

        bounds = [bound for bound in self._bounds(stream) if bound[0] not in skip]
        return await start_offsets(position, bounds, at_time)

    async def _ensure_partitions(self, stream: MemoryStream, group: _Group, start: StartPosition) -> None:
        if len(group.partitions) >= len(stream.partitions):
            return
        offsets = await self._offsets_for(stream, start, skip=set(group.partitions))
        for partition, offset in offsets.items():
            group.partitions[partition] = PartitionState(partition, offset, None, 0)
            group.claimed[partition] = offset

    async def heartbeat(
        self, stream_name: str, group_id: str, heartbeat: Heartbeat, start: StartPosition
    ) -> Assignment:
        stream = self._stream(stream_name)
        if stream.config.type is not StreamType.PERSISTENT:
            raise StreamNotFoundError(stream_name)
        key = self._key(stream, group_id)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(created_at=_now())
        await self._ensure_partitions(stream, group, start)
        now = _now()
        group.last_active_at = now
        # QUEUE members own no partitions: they claim ranges (claim below); only membership is planned.
        queue = stream.config.delivery is DeliverySemantics.QUEUE
        plan = plan_heartbeat(
            now=now,
            generation=group.generation,
            members=list(group.members.values()),
            partitions=[] if queue else [group.partitions[number] for number in sorted(group.partitions)],
            heartbeat=heartbeat,
        )
        if plan.duplicate:
            holder = group.members[heartbeat.consumer_id]
            if not heartbeat.leaving:
                group.members[heartbeat.consumer_id] = dataclasses.replace(
                    holder, duplicates_fenced=holder.duplicates_fenced + 1, last_duplicate_at=now
                )
            raise duplicate_consumer(stream_name, group_id, heartbeat)
        if queue:
            _renew_claims(group, heartbeat, plan.removed_members, caller_gone=plan.caller is None, now=now)
        for consumer_id in plan.removed_members:
            group.members.pop(consumer_id, None)
        if plan.caller is not None:
            group.members[plan.caller.consumer_id] = plan.caller
        for state in plan.partitions:
            group.partitions[state.partition] = state
        group.generation = plan.assignment.generation
        if plan.changed:
            self._state.signals.fire(group_signal_key(stream_name, group_id))
        if queue:
            return with_partition_epochs(plan.assignment, group.partitions.values())
        return plan.assignment

    async def claim(
        self,
        stream_name: str,
        group_id: str,
        *,
        consumer_id: str,
        instance_id: str,
        count: int,
        lease: timedelta,
        first_partition: int,
    ) -> Claim | None:
        found = self._group(stream_name, group_id)
        if found is None:
            return None
        stream, group = found
        now = _now()
        expired = [claim for claim in group.claims.values() if not claim.done and claim.expires_at < now]
        if expired:
            taken = min(expired, key=lambda claim: claim.expires_at)
            taken.owner, taken.instance_id, taken.expires_at = consumer_id, instance_id, now + lease
            taken.attempt += 1
            return taken.public()
        partitions = len(stream.partitions)
        for step in range(partitions):
            partition = (first_partition + step) % partitions
            claimed = group.claimed.get(partition)
            head = len(stream.partitions[partition].events)
            if claimed is None or claimed >= head:
                continue
            end = min(claimed + count, head)
            group.claimed[partition] = end
            claim = _StoredClaim(
                next(self._claim_ids),
                partition,
                claimed,
                end,
                consumer_id,
                instance_id,
                now + lease,
                epoch=group.partitions[partition].epoch,
            )
            group.claims[claim.claim_id] = claim
            return claim.public()
        return None

    async def acknowledge(
        self, stream_name: str, group_id: str, acknowledgements: Sequence[ClaimAcknowledgement]
    ) -> list[ClaimAcknowledgement]:
        found = self._group(stream_name, group_id)
        claims = found[1].claims if found is not None else {}
        stale = []
        touched = set()
        for acknowledgement in acknowledgements:
            claim = claims.get(acknowledgement.claim_id)
            if claim is None or claim.attempt != acknowledgement.attempt:
                stale.append(acknowledgement)
                continue
            if claim.done or acknowledgement.up_to <= claim.from_offset:
                continue
            if acknowledgement.up_to >= claim.to_offset:
                claim.done = True
            else:  # the processed part becomes a finished claim of its own
                finished = dataclasses.replace(
                    claim, claim_id=next(self._claim_ids), to_offset=acknowledgement.up_to, done=True
                )
                claims[finished.claim_id] = finished
                claim.from_offset = acknowledgement.up_to
            touched.add(claim.partition)
        if found is not None:
            found[1].last_active_at = _now()
            for partition in touched:
                _advance_committed(found[1], partition)
        return stale

    async def commit(
        self, stream_name: str, group_id: str, consumer_id: str, commits: Sequence[PartitionCommit]
    ) -> None:
        found = self._group(stream_name, group_id)
        if found is None:
            raise FencedError(f"consumer group {group_id!r} does not exist", tuple(c.partition for c in commits))
        stream, group = found
        heads = {number: len(partition.events) for number, partition in enumerate(stream.partitions)}
        for commit in commits:
            head = heads.get(commit.partition)
            if commit.offset < 0 or head is None or commit.offset > head:
                raise InvalidArgumentError(
                    f"cannot commit offset {commit.offset} for partition {commit.partition} of {stream_name!r}: "
                    f"the head is {head}; nothing was committed"
                )
        fenced = tuple(
            commit.partition
            for commit in commits
            if (state := group.partitions.get(commit.partition)) is None
            or state.owner != consumer_id
            or state.epoch != commit.epoch
        )
        group.last_active_at = _now()
        for commit in commits:
            if commit.partition not in fenced:
                state = group.partitions[commit.partition]
                group.partitions[commit.partition] = dataclasses.replace(state, committed_offset=commit.offset)
        if fenced:
            raise FencedError(
                f"consumer {consumer_id!r} no longer owns partition(s) {list(fenced)} of group {group_id!r} "
                "(the group rebalanced or was reset); those offsets were not committed",
                fenced,
            )

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription | None:
        found = self._group(stream_name, group_id)
        if found is None:
            return None
        stream, group = found
        now = _now()
        partitions = []
        for number in sorted(group.partitions):
            state = group.partitions[number]
            events = stream.partitions[number].events if number < len(stream.partitions) else OffsetLog()
            first_unconsumed = max(state.committed_offset, events.first_offset)
            oldest = events[first_unconsumed].timestamp if first_unconsumed < len(events) else None
            partitions.append(
                PartitionLag(
                    partition=number,
                    committed_offset=state.committed_offset,
                    head=len(events),
                    owner=state.owner,
                    epoch=state.epoch,
                    oldest_unconsumed_at=oldest,
                    observed_at=now,
                )
            )
        members = describe_members(group.members.values(), partitions, now)
        return GroupDescription(
            stream_name=stream_name,
            group_id=group_id,
            generation=group.generation,
            created_at=group.created_at,
            members=members,
            partitions=tuple(partitions),
        )

    async def list(self) -> list[GroupSummary]:
        summaries = []
        for stream in self._state.streams.values():
            for (stream_key, group_id), group in self._groups.items():
                if stream_key != stream.serial:
                    continue
                lag = sum(
                    max(len(stream.partitions[number].events) - state.committed_offset, 0)
                    for number, state in group.partitions.items()
                    if number < len(stream.partitions)
                )
                summaries.append(GroupSummary(stream.config.name, group_id, len(group.members), lag))
        return sorted(summaries, key=lambda summary: (summary.stream_name, summary.group_id))

    async def reset(self, stream_name: str, group_id: str, target: StartPosition, force: bool) -> GroupDescription:
        found = self._group(stream_name, group_id)
        if found is None:
            raise GroupNotFoundError(stream_name, group_id)
        stream, group = found
        refuse_if_active(
            group.members.values(),
            _now(),
            stream_name=stream_name,
            group_id=group_id,
            force=force,
            action="reset its offsets",
        )
        offsets = await self._offsets_for(stream, target, skip=set())
        for partition, offset in offsets.items():
            state = group.partitions.get(partition) or PartitionState(partition, offset, None, 0)
            group.partitions[partition] = dataclasses.replace(state, committed_offset=offset, epoch=state.epoch + 1)
            group.claimed[partition] = offset
        group.claims.clear()
        group.generation += 1
        self._state.signals.fire(group_signal_key(stream_name, group_id))
        description = await self.describe(stream_name, group_id)
        assert description is not None
        return description

    async def delete(self, stream_name: str, group_id: str, force: bool) -> bool:
        found = self._group(stream_name, group_id)
        if found is None:
            return False
        stream, group = found
        refuse_if_active(
            group.members.values(), _now(), stream_name=stream_name, group_id=group_id, force=force, action="delete it"
        )
        del self._groups[self._key(stream, group_id)]
        self._state.signals.fire(group_signal_key(stream_name, group_id))
        return True

    def retention_positions(self, stream_name: str) -> builtins.list[GroupPosition]:
        """Every group of the stream with its committed offset per partition and when it was last
        active (its last heartbeat or commit, else its creation), for retention."""
        stream = self._state.streams.get(stream_name)
        if stream is None:
            return []
        positions: builtins.list[GroupPosition] = []
        for (serial, group_id), group in sorted(self._groups.items(), key=lambda item: item[0][1]):
            if serial != stream.serial:
                continue
            active = max(group.created_at, group.last_active_at or group.created_at)
            positions.extend(
                GroupPosition(group_id, state.partition, state.committed_offset, active)
                for state in sorted(group.partitions.values(), key=lambda state: state.partition)
            )
        return positions


def _renew_claims(
    group: _Group, heartbeat: Heartbeat, removed: Sequence[str], *, caller_gone: bool, now: datetime
) -> None:
    """Extend the caller's leases, or free them at once when it leaves or was expelled; free the
    claims of removed members and of an earlier process with the caller's consumer id."""
    for claim in group.claims.values():
        if claim.done:
            continue
        if claim.owner in removed or (
            claim.owner == heartbeat.consumer_id and claim.instance_id != heartbeat.instance_id
        ):
            claim.expires_at = datetime.min.replace(tzinfo=UTC)
        elif claim.owner == heartbeat.consumer_id and not caller_gone:
            claim.expires_at = now + heartbeat.session_timeout


def _advance_committed(group: _Group, partition: int) -> None:
    """Move the partition's committed offset over the contiguous finished claims at its front."""
    state = group.partitions[partition]
    committed = state.committed_offset
    by_start = {claim.from_offset: claim for claim in group.claims.values() if claim.partition == partition}
    while (claim := by_start.get(committed)) is not None and claim.done:
        del group.claims[claim.claim_id]
        committed = claim.to_offset
    group.partitions[partition] = dataclasses.replace(state, committed_offset=committed)
