"""The storage one consumer-group member uses, each call made here and only here.

A member joins and heartbeats, commits offsets, claims and acknowledges events (QUEUE delivery),
reads rows of a partition, looks its stream up and waits for wake-ups (new events, rebalances).
Every one of those goes through ``MemberStorage``, which the member's collaborators (membership,
commits, partition and claim delivery) are handed, so the store's storage interface is named in one
module: switching the member to another storage interface changes this file only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.events import Direction, EventRow
from sluice.core.signals import AppendSignals
from sluice.core.streams import StreamInfo
from sluice.services.consumers.backend import group_signal_key
from sluice.store.stream_wait import wait_for_stream
from sluice.store.values.consumer_group_options import StartPosition
from sluice.store.values.consumer_groups import Assignment, Claim, ClaimAcknowledgement, Heartbeat, PartitionCommit

if TYPE_CHECKING:
    from sluice.store import EventStore


class MemberStorage:
    """The storage calls of one member of ``group_id`` on ``stream_name`` (as ``consumer_id``)."""

    def __init__(self, store: EventStore, *, stream_name: str, group_id: str, consumer_id: str) -> None:
        self._store = store
        self.stream_name = stream_name
        self.group_id = group_id
        self.consumer_id = consumer_id
        self.group_signal = group_signal_key(stream_name, group_id)
        """The wake-up key of this group's rebalances."""

    @property
    def signals(self) -> AppendSignals:
        """The store's wake-ups: new events of the stream (its name) and rebalances (``group_signal``)."""
        return self._store.backend.signals

    @property
    def poll_interval(self) -> timedelta:
        """How long an idle member waits for a wake-up before it looks again."""
        return self._store.options.poll_interval

    def wake_group(self) -> None:
        """Wake every member of the group in this process (their heartbeat runs at once)."""
        self.signals.fire(self.group_signal)

    async def wait_for_stream(self) -> StreamInfo:
        """The stream's description once it exists (see sluice.store.stream_wait)."""
        return await wait_for_stream(self._store.backend, self._store.options, self.stream_name)

    async def describe_stream(self) -> StreamInfo:
        """The stream's description now (its partition heads)."""
        return await self._store.get_stream(self.stream_name)

    async def heartbeat(self, heartbeat: Heartbeat, start: StartPosition) -> Assignment:
        """Join, stay alive or leave; the assignment the group answers."""
        return await self._store.backend.groups.heartbeat(self.stream_name, self.group_id, heartbeat, start)

    async def commit(self, commits: Sequence[PartitionCommit]) -> None:
        """Commit offsets under the epochs named (FencedError for partitions not owned under them)."""
        await self._store.backend.groups.commit(self.stream_name, self.group_id, self.consumer_id, commits)

    async def claim(self, *, instance_id: str, count: int, lease: timedelta, first_partition: int) -> Claim | None:
        """QUEUE delivery: lease the next events to this member (None when there is nothing to claim)."""
        return await self._store.backend.groups.claim(
            self.stream_name,
            self.group_id,
            consumer_id=self.consumer_id,
            instance_id=instance_id,
            count=count,
            lease=lease,
            first_partition=first_partition,
        )

    async def acknowledge(self, acknowledgements: Sequence[ClaimAcknowledgement]) -> list[ClaimAcknowledgement]:
        """QUEUE delivery: record processed events; returns the acknowledgements refused as stale."""
        return await self._store.backend.groups.acknowledge(self.stream_name, self.group_id, acknowledgements)

    async def read_rows(self, partition: int, start: int, count: int) -> Sequence[EventRow]:
        """Up to ``count`` stored rows of ``partition`` from offset ``start`` on."""
        return await self._store.backend.log.read_page(self.stream_name, partition, start, Direction.FORWARDS, count)
