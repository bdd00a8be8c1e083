"""The logic both storage adapters' consumer-group storage shares (descriptions, refusals, start offsets).

The storage interface itself is ``sluice.store.port.GroupStorage`` (PostgreSQL in one transaction per
call, memory atomically); the member loop and the admin API in ``reader.py`` are written once on top of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from sluice.core.errors import DuplicateConsumerError, FencedError, GroupActiveError
from sluice.store.values.consumer_group_options import StartFrom, StartPosition
from sluice.store.values.consumer_groups import (
    Assignment,
    ClaimAcknowledgement,
    Heartbeat,
    MemberDescription,
    MemberState,
    PartitionLag,
    PartitionState,
)


def describe_members(
    members: Iterable[MemberState], partitions: Sequence[PartitionLag], now: datetime
) -> tuple[MemberDescription, ...]:
    """Members as ``describe`` shows them: with the partitions they own, ordered by consumer id."""
    return tuple(
        MemberDescription(
            consumer_id=member.consumer_id,
            joined_at=member.joined_at,
            last_heartbeat_at=member.last_heartbeat_at,
            partitions=tuple(p.partition for p in partitions if p.owner == member.consumer_id),
            active=not member.expired(now),
            instance_id=member.instance_id,
            duplicates_fenced=member.duplicates_fenced,
            last_duplicate_at=member.last_duplicate_at,
        )
        for member in sorted(members, key=lambda member: member.consumer_id)
    )


def refuse_if_active(
    members: Iterable[MemberState], now: datetime, *, stream_name: str, group_id: str, force: bool, action: str
) -> None:
    """GroupActiveError unless the group has no active member or ``force`` is given."""
    active = sorted(member.consumer_id for member in members if not member.expired(now))
    if active and not force:
        raise GroupActiveError(
            f"consumer group {group_id!r} of {stream_name!r} has active members {active}: stop them, "
            f"or pass force=True to {action} anyway (the members are then fenced)"
        )


def refuse_stale_claims(consumer_id: str, group_id: str, stale: Sequence[ClaimAcknowledgement]) -> None:
    """FencedError for acknowledgements whose claim was taken over or dropped, if there are any."""
    if stale:
        partitions = tuple(sorted({acknowledgement.partition for acknowledgement in stale}))
        raise FencedError(
            f"consumer {consumer_id!r} no longer holds its claim(s) on partition(s) {list(partitions)} of group "
            f"{group_id!r} (another member took them over, or the group was reset); they were not acknowledged",
            partitions,
        )


def duplicate_consumer(stream_name: str, group_id: str, heartbeat: Heartbeat) -> DuplicateConsumerError:
    """The error refusing a heartbeat from a process whose consumer id a newer process took over."""
    return DuplicateConsumerError(
        f"duplicate consumer id {heartbeat.consumer_id!r} in group {group_id!r} of {stream_name!r}: another "
        f"process joined with the same consumer id after this one (instance {heartbeat.instance_id}), so this "
        "one is fenced for good and stops; give every process its own consumer id"
    )


def with_partition_epochs(assignment: Assignment, partitions: Iterable[PartitionState]) -> Assignment:
    """A QUEUE member's assignment: no partitions owned, but every partition's epoch, so that the
    member drops claims a forced reset invalidated."""
    epochs = tuple(sorted((state.partition, state.epoch) for state in partitions))
    return dataclasses.replace(assignment, partition_epochs=epochs)


def group_signal_key(stream_name: str, group_id: str) -> str:
    """The wake-up key for a group's rebalances ('/' never occurs in stream names)."""
    return f"group/{stream_name}/{group_id}"


async def start_offsets(
    position: StartPosition,
    bounds: Sequence[tuple[int, int, int]],
    offset_at_time: Callable[[int], Awaitable[int]],
) -> dict[int, int]:
    """The committed offset each partition starts at. ``bounds`` is (partition, first offset, head)."""
    offsets: dict[int, int] = {}
    for partition, first, head in bounds:
        if position.start_from is StartFrom.EARLIEST:
            offsets[partition] = first
        elif position.start_from is StartFrom.LATEST:
            offsets[partition] = head
        elif position.start_from is StartFrom.OFFSET:
            assert position.offset is not None
            offsets[partition] = min(max(position.offset, first), head)
        else:
            offsets[partition] = max(await offset_at_time(partition), first)
    return offsets
