"""``batched(store)``: a store whose appends go through an AppendBatcher, configured in one place.

    store = batched(await sluice.connect(url), linger=timedelta(milliseconds=2), max_batch=500)
    async with store:
        await store.append("orders", event)          # batched with concurrent appends
        async for event in store.read_stream("orders"):  # everything else: the wrapped store
            ...

Every other attribute is the wrapped store's (``store.unbatched`` gives it with its full type).
Closing writes what is queued, then closes the wrapped store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from sluice.events import AppendResult, ExpectedOffset
from sluice.group_commit.batcher import DEFAULT_LINGER, DEFAULT_MAX_BATCH, AppendBatcher
from sluice.group_commit.metrics import GroupCommitMetrics
from sluice.store import EventStore


class BatchedEventStore:
    """An EventStore's API with batched appends (see AppendBatcher)."""

    def __init__(self, store: EventStore, batcher: AppendBatcher) -> None:
        self.unbatched = store
        self.batcher = batcher

    async def append(
        self,
        stream_name: str,
        events: Sequence[object] | object,
        *,
        expected_offset: int | ExpectedOffset | None = None,
        correlation_id: str | None = None,
        partition_key: str | None = None,
        partition: int | None = None,
    ) -> AppendResult:
        """``EventStore.append``, sharing transactions with concurrent appends."""
        return await self.batcher.append(
            stream_name,
            events,
            expected_offset=expected_offset,
            correlation_id=correlation_id,
            partition_key=partition_key,
            partition=partition,
        )

    async def close(self) -> None:
        """Write the queued appends, then close the wrapped store."""
        try:
            await self.batcher.close()
        finally:
            await self.unbatched.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unbatched, name)


def batched(
    store: EventStore,
    *,
    linger: timedelta = DEFAULT_LINGER,
    max_batch: int = DEFAULT_MAX_BATCH,
    metrics: GroupCommitMetrics | None = None,
) -> BatchedEventStore:
    """Wrap ``store`` so that its appends are batched (group commit); see AppendBatcher."""
    return BatchedEventStore(store, AppendBatcher(store, linger=linger, max_batch=max_batch, metrics=metrics))
