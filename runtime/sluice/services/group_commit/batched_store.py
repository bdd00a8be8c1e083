"""``batched(store)``: a store whose appends go through an AppendBatcher, configured in one place.

    store = batched(await sluice.connect(url), linger=timedelta(milliseconds=2), max_batch=500)
    async with store:
        await store.append("orders", event)          # batched with concurrent appends
        async for event in store.read_stream("orders"):  # everything else: the wrapped store
            ...

A typed forwarding store (``sluice.store.forwarding.ForwardingStore``): every other EventStore method is
forwarded to the wrapped store with its own signature (``store.unbatched`` is that store), and the wrapped
store's ``backend`` is this one's. Closing writes what is queued, then closes the wrapped store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sluice.core.events import AppendResult, ExpectedOffset
from sluice.services.group_commit.batcher import DEFAULT_EAGER_EVENTS, DEFAULT_LINGER, DEFAULT_MAX_BATCH, AppendBatcher
from sluice.services.group_commit.metrics import GroupCommitMetrics
from sluice.store.event_store import EventStore
from sluice.store.forwarding import ForwardingStore


class BatchedEventStore(ForwardingStore):
    """An EventStore's API with batched appends (see AppendBatcher)."""

    def __init__(self, store: EventStore, batcher: AppendBatcher) -> None:
        super().__init__(store)
        self.batcher = batcher

    @property
    def unbatched(self) -> EventStore:
        """The wrapped store: its appends are not batched."""
        return self.wrapped

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
            await self.wrapped.close()


def batched(
    store: EventStore,
    *,
    linger: timedelta = DEFAULT_LINGER,
    max_batch: int = DEFAULT_MAX_BATCH,
    eager_events: int = DEFAULT_EAGER_EVENTS,
    metrics: GroupCommitMetrics | None = None,
) -> BatchedEventStore:
    """Wrap ``store`` so that its appends are batched (group commit); see AppendBatcher."""
    batcher = AppendBatcher(store, linger=linger, max_batch=max_batch, eager_events=eager_events, metrics=metrics)
    return BatchedEventStore(store, batcher)
