"""Retention's storage in the in-memory backend: drops a partition's oldest events (and their
entries in the global log and the event-id index), reports group positions and byte budgets, and
keeps retention policies for the life of the store. Each call runs without awaiting, so it is
atomic on its event loop, as a transaction is on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sluice.core.streams import StreamType
from sluice.storage.memory.groups import MemoryConsumerGroups
from sluice.storage.memory.state import MemoryState
from sluice.store.values.retention import DeletedBatch, GroupPosition, RetentionPolicy


class MemoryRetentionStorage:
    """What ``sluice.services.retention`` needs from a memory store (see ``RetentionStorage``)."""

    def __init__(self, state: MemoryState, groups: MemoryConsumerGroups) -> None:
        self._state = state
        self._groups = groups
        self._policies: dict[str, RetentionPolicy] = {}

    async def delete_before(self, stream_name: str, partition: int, before: int, limit: int) -> DeletedBatch | None:
        stream = self._state.streams.get(stream_name)
        if stream is None or stream.config.type is not StreamType.PERSISTENT or partition >= len(stream.partitions):
            return None
        events = stream.partitions[partition].events
        dropped = events.drop_before(min(before, events.first_offset + limit))
        for stored in dropped:
            stream.event_ids.pop(stored.prepared.event_id, None)
        if dropped:
            self._state.forget_pruned()
        return DeletedBatch(
            events=len(dropped),
            bytes=sum(len(stored.prepared.payload) for stored in dropped),
            first_offset=events.first_offset,
        )

    async def byte_cutoffs(self, stream_name: str, max_bytes: int) -> dict[int, int]:
        stream = self._state.streams.get(stream_name)
        if stream is None:
            return {}
        newest_first = sorted(
            (
                (stored.timestamp, stored.global_position, number, stored.offset, len(stored.prepared.payload))
                for number, partition in enumerate(stream.partitions)
                for stored in partition.events
            ),
            reverse=True,
        )
        cutoffs: dict[int, int] = {}
        newer_bytes = 0
        for _, _, number, offset, size in newest_first:
            newer_bytes += size
            if newer_bytes > max_bytes:
                cutoffs[number] = max(cutoffs.get(number, 0), offset + 1)
        return cutoffs

    async def group_positions(self, stream_name: str) -> list[GroupPosition]:
        return self._groups.retention_positions(stream_name)

    async def list_policies(self) -> list[RetentionPolicy]:
        return [self._policies[pattern] for pattern in sorted(self._policies)]

    async def save_policy(self, policy: RetentionPolicy) -> None:
        existing = self._policies.get(policy.pattern)
        last_applied_at = existing.last_applied_at if existing is not None else None
        self._policies[policy.pattern] = policy.model_copy(update={"last_applied_at": last_applied_at})

    async def delete_policy(self, pattern: str) -> bool:
        return self._policies.pop(pattern, None) is not None

    async def claim_policy_run(self, pattern: str, now: datetime) -> bool:
        policy = self._policies.get(pattern)
        if policy is None:
            return False
        last = policy.last_applied_at
        if last is not None and last + policy.limits.cleanup_interval > now:
            return False
        self._policies[pattern] = policy.model_copy(update={"last_applied_at": now})
        return True
