"""Which partition a batched append goes to, decided the way the store decides it.

Keyed events must land where ``store.append(partition_key=...)`` would put them, or per-key order
breaks; so the batcher hashes keys with ``sluice.core.partitioning`` over the stream's partition count,
which it caches for as long as the backends do and looks up again when a flush says the stream changed.
Events without a key or partition are spread round-robin, one append at a time, as the store spreads
single appends. Concurrent callers of an uncached stream share one lookup.
"""

from __future__ import annotations

import asyncio
import time

from sluice.core.errors import InvalidArgumentError, PermissionDeniedError, StreamNotFoundError, StreamTypeError
from sluice.core.partitioning import PartitionSpreader, partition_for_key
from sluice.core.streams import StreamType
from sluice.store import EventStore

PARTITION_COUNT_TTL_SECONDS = 5.0
"""How long a partition count is trusted (the PostgreSQL backend trusts its own as long)."""


class PartitionRouter:
    """Partition counts of streams, cached, and the routing of keys and explicit partitions."""

    def __init__(self, store: EventStore, *, ttl_seconds: float = PARTITION_COUNT_TTL_SECONDS) -> None:
        self._store = store
        self._ttl_seconds = ttl_seconds
        self._counts: dict[str, tuple[int, float]] = {}
        self._lookups: dict[str, asyncio.Task[int]] = {}
        self._spreader = PartitionSpreader()
        self._unreadable: dict[str, float] = {}
        """Streams whose description we may not read, and since when (not asked again for the TTL)."""

    async def route(self, stream_name: str, *, partition_key: str | None, partition: int | None) -> int | None:
        """The partition for these events: the one given, the key's, or for events with neither the
        next one round-robin, as the store spreads single appends (so the lanes of a stream's
        partitions write in parallel). None when the stream's description may not be read (an
        access policy granting write but not read): the store then spreads the whole batch."""
        if partition is None and partition_key is None:
            refused_at = self._unreadable.get(stream_name)
            if refused_at is not None and time.monotonic() - refused_at < self._ttl_seconds:
                return None
            try:
                return self._spreader.next_partition(await self.partition_count(stream_name))
            except PermissionDeniedError:
                self._unreadable[stream_name] = time.monotonic()
                return None
        partitions = await self.partition_count(stream_name)
        if partition is not None:
            if partition >= partitions:  # the stream may have grown since we looked
                self.forget(stream_name)
                partitions = await self.partition_count(stream_name)
            if partition >= partitions:
                raise InvalidArgumentError(
                    f"stream {stream_name!r} has {partitions} partition(s); partition {partition} does not exist"
                )
            return partition
        assert partition_key is not None
        return partition_for_key(partition_key, partitions)

    def forget(self, stream_name: str) -> None:
        """Drop a cached count (after a flush failed in a way that says the stream changed)."""
        self._counts.pop(stream_name, None)

    async def partition_count(self, stream_name: str) -> int:
        cached = self._counts.get(stream_name)
        if cached is not None and time.monotonic() - cached[1] < self._ttl_seconds:
            return cached[0]
        lookup = self._lookups.get(stream_name)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(stream_name))
            self._lookups[stream_name] = lookup
            lookup.add_done_callback(lambda done: self._lookup_finished(stream_name, done))
        # Shielded: a caller cancelled while waiting must not cancel the lookup others wait for.
        return await asyncio.shield(lookup)

    async def close(self) -> None:
        """Wait for lookups still running (their callers may have been cancelled)."""
        if self._lookups:
            await asyncio.gather(*self._lookups.values(), return_exceptions=True)

    async def _look_up(self, stream_name: str) -> int:
        try:
            info = await self._store.get_stream(stream_name)
        except StreamNotFoundError:
            config = self._store.options.auto_create_config(stream_name, StreamType.PERSISTENT)
            if config is None:
                raise
            # The append will create it as the store's auto-create rules say (creating it here
            # instead would need more than the write permission an append needs). Not cached: the
            # next lookup sees the stream as whoever created it first made it.
            return config.partitions
        if info.type is not StreamType.PERSISTENT:
            raise StreamTypeError(f"{stream_name!r} is a queue (an ephemeral stream): use enqueue, not append")
        self._counts[stream_name] = (info.partitions, time.monotonic())
        return info.partitions

    def _lookup_finished(self, stream_name: str, lookup: asyncio.Task[int]) -> None:
        if self._lookups.get(stream_name) is lookup:
            del self._lookups[stream_name]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here, so that a lookup whose callers all left logs nothing
