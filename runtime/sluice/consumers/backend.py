"""The storage operations consumer groups need from a backend, and the logic both backends share.

Each backend implements these underscore methods (PostgreSQL in one transaction each, memory
atomically); the member loop and the admin API in ``reader.py`` are written once on top of them.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence

from sluice.consumers.model import Assignment, GroupDescription, GroupSummary, Heartbeat, PartitionCommit
from sluice.consumers.options import StartFrom, StartPosition


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


class ConsumerGroupBackend(abc.ABC):
    """Storage of consumer groups."""

    @abc.abstractmethod
    async def _group_heartbeat(
        self, stream_name: str, group_id: str, heartbeat: Heartbeat, start: StartPosition
    ) -> Assignment:
        """Join, stay alive or leave (creating the group on first join), rebalancing as needed."""

    @abc.abstractmethod
    async def _group_commit(
        self, stream_name: str, group_id: str, consumer_id: str, commits: Sequence[PartitionCommit]
    ) -> None:
        """Commit offsets conditional on ownership and epoch. Raises InvalidArgumentError for an
        offset beyond the head (nothing committed) and FencedError for partitions not owned."""

    @abc.abstractmethod
    async def _group_describe(self, stream_name: str, group_id: str) -> GroupDescription | None: ...

    @abc.abstractmethod
    async def _group_list(self) -> list[GroupSummary]: ...

    @abc.abstractmethod
    async def _group_reset(
        self, stream_name: str, group_id: str, target: StartPosition, force: bool
    ) -> GroupDescription:
        """Move every partition's committed offset; refused (GroupActiveError) while members are
        active unless ``force``, which fences them by bumping every epoch."""

    @abc.abstractmethod
    async def _group_delete(self, stream_name: str, group_id: str, force: bool) -> bool: ...
