"""Consumer groups of the in-memory backend: the same rebalance plan and fencing as PostgreSQL,
applied to dictionaries. Each operation runs without awaiting, so it is atomic on its event loop."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.consumers.backend import describe_members, group_signal_key, refuse_if_active, start_offsets
from sluice.consumers.model import (
    Assignment,
    GroupDescription,
    GroupSummary,
    Heartbeat,
    MemberState,
    PartitionCommit,
    PartitionLag,
    PartitionState,
)
from sluice.consumers.options import StartPosition
from sluice.consumers.rebalance import plan_heartbeat
from sluice.errors import FencedError, GroupNotFoundError, InvalidArgumentError, StreamNotFoundError
from sluice.streams import StreamType

if TYPE_CHECKING:
    from sluice.backends.memory import MemoryEventStore, _Stream


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(slots=True)
class _Group:
    created_at: datetime
    generation: int = 0
    members: dict[str, MemberState] = dataclasses.field(default_factory=dict)
    partitions: dict[int, PartitionState] = dataclasses.field(default_factory=dict)


class MemoryConsumerGroups:
    """Group state of one MemoryEventStore, keyed by (stream object, group id)."""

    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store
        self._groups: dict[tuple[int, str], _Group] = {}

    def _stream(self, stream_name: str) -> _Stream:
        stream = self._store._streams.get(stream_name)
        if stream is None:
            raise StreamNotFoundError(stream_name)
        return stream

    def _key(self, stream: _Stream, group_id: str) -> tuple[int, str]:
        return (stream.serial, group_id)

    def _group(self, stream_name: str, group_id: str) -> tuple[_Stream, _Group] | None:
        stream = self._stream(stream_name)
        group = self._groups.get(self._key(stream, group_id))
        return (stream, group) if group is not None else None

    @staticmethod
    def _bounds(stream: _Stream) -> list[tuple[int, int, int]]:
        return [
            (number, partition.events[0].offset if partition.events else 0, len(partition.events))
            for number, partition in enumerate(stream.partitions)
        ]

    async def _offsets_for(self, stream: _Stream, position: StartPosition, *, skip: set[int]) -> dict[int, int]:
        """The committed offset ``position`` means for each partition of the stream not in ``skip``."""

        async def at_time(partition: int) -> int:
            assert position.time is not None
            return await self._store._offset_at_time(stream.config.name, partition, position.time)

        bounds = [bound for bound in self._bounds(stream) if bound[0] not in skip]
        return await start_offsets(position, bounds, at_time)

    async def _ensure_partitions(self, stream: _Stream, group: _Group, start: StartPosition) -> None:
        if len(group.partitions) >= len(stream.partitions):
            return
        offsets = await self._offsets_for(stream, start, skip=set(group.partitions))
        for partition, offset in offsets.items():
            group.partitions[partition] = PartitionState(partition, offset, None, 0)

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
        plan = plan_heartbeat(
            now=_now(),
            generation=group.generation,
            members=list(group.members.values()),
            partitions=[group.partitions[number] for number in sorted(group.partitions)],
            heartbeat=heartbeat,
        )
        for consumer_id in plan.removed_members:
            group.members.pop(consumer_id, None)
        if plan.caller is not None:
            group.members[plan.caller.consumer_id] = plan.caller
        for state in plan.partitions:
            group.partitions[state.partition] = state
        group.generation = plan.assignment.generation
        if plan.changed:
            self._store._signals.fire(group_signal_key(stream_name, group_id))
        return plan.assignment

    def commit(self, stream_name: str, group_id: str, consumer_id: str, commits: Sequence[PartitionCommit]) -> None:
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

    def describe(self, stream_name: str, group_id: str) -> GroupDescription | None:
        found = self._group(stream_name, group_id)
        if found is None:
            return None
        stream, group = found
        now = _now()
        partitions = []
        for number in sorted(group.partitions):
            state = group.partitions[number]
            events = stream.partitions[number].events if number < len(stream.partitions) else []
            first = events[0].offset if events else 0
            oldest = (
                events[state.committed_offset - first].timestamp
                if first <= state.committed_offset < len(events) + first
                else None
            )
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

    def list(self) -> list[GroupSummary]:
        summaries = []
        for stream in self._store._streams.values():
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
        group.generation += 1
        self._store._signals.fire(group_signal_key(stream_name, group_id))
        description = self.describe(stream_name, group_id)
        assert description is not None
        return description

    def delete(self, stream_name: str, group_id: str, force: bool) -> bool:
        found = self._group(stream_name, group_id)
        if found is None:
            return False
        stream, group = found
        refuse_if_active(
            group.members.values(), _now(), stream_name=stream_name, group_id=group_id, force=force, action="delete it"
        )
        del self._groups[self._key(stream, group_id)]
        self._store._signals.fire(group_signal_key(stream_name, group_id))
        return True
