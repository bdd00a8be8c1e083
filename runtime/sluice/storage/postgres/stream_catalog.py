"""What the PostgreSQL stream log and queues share: creating and describing streams, and the cached settings
(type, partitions, compression) a write looks up before its statement.

``PostgresStreamLog`` and ``PostgresQueues`` are each given the one ``PostgresStreamCatalog`` of their
store, so an enqueue can auto-create a queue and a deleted stream is forgotten by both.
"""

from __future__ import annotations

import dataclasses
import time

import asyncpg

from sluice.core.compression import Compression, CompressionPolicy
from sluice.core.errors import StreamAlreadyExistsError, StreamDeletedError, StreamNotFoundError, StreamTypeError
from sluice.core.lifecycle import AUTO_CREATE_ACTOR
from sluice.core.options import StoreOptions
from sluice.core.streams import (
    DeliverySemantics,
    PartitionInfo,
    StreamConfig,
    StreamInfo,
    StreamType,
    same_shape,
    shape_description,
)
from sluice.storage.postgres.queries import query

PARTITION_COUNT_TTL_SECONDS = 5.0
"""How long a write trusts a cached partition count before looking it up again."""


@dataclasses.dataclass(frozen=True, slots=True)
class CachedStream:
    """What writes need to know of a stream, and when it was looked up."""

    type: StreamType
    partitions: int
    compression: CompressionPolicy
    looked_up_at: float


class PostgresStreamCatalog:
    """Streams as stored (create, describe, list) and the write settings of each, cached for a few seconds."""

    def __init__(self, *, pool: asyncpg.Pool, options: StoreOptions) -> None:
        self._pool = pool
        self._options = options
        self._cached_streams: dict[str, CachedStream] = {}

    async def create(self, config: StreamConfig, actor: str | None) -> StreamInfo:
        """Create the stream, or find it already there in the same shape."""
        created = await self._pool.fetchval(
            query("create_stream"),
            config.name,
            config.type.value,
            config.partitions,
            config.max_attempts,
            config.delivery.value,
            config.compression.value,
            config.compression_threshold,
            actor,
        )
        info = await self.describe(config.name)
        if info is None:  # deleted again between the two statements
            raise StreamNotFoundError(config.name)
        if info.deleted:
            raise StreamDeletedError(config.name, "restore it or purge it before creating it again")
        if created is None and not same_shape(info.config, config):
            raise StreamAlreadyExistsError(config.name, shape_description(info.config))
        self._remember(info)
        return info

    async def describe(self, name: str) -> StreamInfo | None:
        rows = await self._pool.fetch(query("describe_stream"), name)
        streams = _stream_infos(rows)
        return streams[0] if streams else None

    async def list_streams(self) -> list[StreamInfo]:
        rows = await self._pool.fetch(query("list_streams"))
        return _stream_infos(rows)

    def forget(self, name: str) -> None:
        """Drop the cached settings of ``name`` (it was deleted, changed, or a write found them stale)."""
        self._cached_streams.pop(name, None)

    async def write_settings(self, name: str, stream_type: StreamType) -> CachedStream:
        """What a write to ``name`` needs (partitions, compression), cached for a few seconds; creates
        the stream (queue) as the auto-create rules say when it is missing. Archived streams are not
        refused here: the write's own statement refuses them, so a cached entry is never wrong about it."""
        cached = self._cached_streams.get(name)
        if cached is None or time.monotonic() - cached.looked_up_at >= PARTITION_COUNT_TTL_SECONDS:
            info = await self.describe(name)
            if info is None:
                config = self._options.auto_create_config(name, stream_type)
                if config is None:
                    raise StreamNotFoundError(name)
                info = await self.create(config, AUTO_CREATE_ACTOR)
            if info.deleted:
                raise StreamDeletedError(name)
            cached = self._remember(info)
        if cached.type is not stream_type:
            if stream_type is StreamType.PERSISTENT:
                raise StreamTypeError(f"{name!r} is a queue (an ephemeral stream): use enqueue, not append")
            raise StreamTypeError(f"{name!r} is a persistent stream: use append, not enqueue")
        return cached

    def _remember(self, info: StreamInfo) -> CachedStream:
        cached = CachedStream(
            info.type,
            info.partitions,
            CompressionPolicy(info.compression, info.compression_threshold),
            time.monotonic(),
        )
        self._cached_streams[info.name] = cached
        return cached


def _stream_infos(rows: list[asyncpg.Record]) -> list[StreamInfo]:
    streams: list[StreamInfo] = []
    partitions: list[PartitionInfo] = []
    for index, row in enumerate(rows):
        partitions.append(
            PartitionInfo(
                partition=row["partition"],
                head=row["next_offset"],
                last_appended_at=row["last_appended_at"],
                first_offset=row["first_offset"],
            )
        )
        if index + 1 == len(rows) or rows[index + 1]["stream_id"] != row["stream_id"]:
            streams.append(
                StreamInfo(
                    name=row["name"],
                    type=StreamType(row["type"]),
                    partitions=row["partitions"],
                    max_attempts=row["max_attempts"],
                    created_at=row["created_at"],
                    delivery=DeliverySemantics(row["delivery"]),
                    compression=Compression(row["compression"]),
                    compression_threshold=row["compression_threshold"],
                    created_by=row["created_by"],
                    archived_at=row["archived_at"],
                    archived_by=row["archived_by"],
                    deleted_at=row["deleted_at"],
                    deleted_by=row["deleted_by"],
                    partition_heads=tuple(partitions),
                )
            )
            partitions = []
    return streams
