"""The storage operations retention needs from a backend, and how to find them for a store.

Both backends provide them (``backends/memory_retention.py``, ``backends/postgres/retention.py``)
through a ``_retention_storage()`` method of their store. Everything else retention needs
(partition bounds, the offset at a time) is part of every ``EventStore``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sluice.errors import RetentionUnavailableError
from sluice.retention.model import DeletedBatch, GroupPosition, RetentionPolicy

if TYPE_CHECKING:
    from sluice.store import EventStore


class RetentionStorage(Protocol):
    """Retention's storage operations on one backend."""

    async def delete_before(self, stream_name: str, partition: int, before: int, limit: int) -> DeletedBatch | None:
        """Delete at most ``limit`` of the partition's oldest events, all below offset ``before``, and
        move its first offset up, in one short transaction. None when the stream or partition is gone."""
        ...

    async def byte_cutoffs(self, stream_name: str, max_bytes: int) -> dict[int, int]:
        """Per partition, the offset below which events do not fit in the stream's newest ``max_bytes``
        payload bytes (partitions with nothing to prune are left out)."""
        ...

    async def group_positions(self, stream_name: str) -> list[GroupPosition]:
        """Every consumer group of the stream, per partition, with when it was last active."""
        ...

    async def list_policies(self) -> list[RetentionPolicy]: ...

    async def save_policy(self, policy: RetentionPolicy) -> None:
        """Create or replace the policy of ``policy.pattern`` (its last run time is kept)."""
        ...

    async def delete_policy(self, pattern: str) -> bool: ...

    async def claim_policy_run(self, pattern: str, now: datetime) -> bool:
        """Record that the policy runs at ``now`` if its cleanup interval has passed since its last run;
        False when it has not (or another worker claimed this run)."""
        ...


def storage_of(store: EventStore) -> RetentionStorage:
    """The retention storage of ``store``; RetentionUnavailableError when it has none."""
    factory = getattr(store, "_retention_storage", None)
    if factory is None:
        raise RetentionUnavailableError(f"{type(store).__name__} offers no retention storage")
    storage: RetentionStorage = factory()
    return storage
