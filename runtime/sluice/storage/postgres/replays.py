"""Replays recorded in PostgreSQL (tables ``replays`` and ``replay_partitions``, migration 0008).

Each method is one statement from ``sql/replay.sql`` (a run's updates are conditional on its epoch,
so a superseded runner changes nothing), except reads, which take the replay and its partitions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from sluice.core.errors import ReplayNotFoundError
from sluice.storage.postgres.queries import named_queries
from sluice.store.contracts.replays import ReplayRecords, superseded
from sluice.store.values.replays import PartitionProgress, ReplayProgress, ReplayRequest, ReplayState

if TYPE_CHECKING:
    from datetime import datetime

    from sluice.storage.postgres.database import PostgresDatabase

    Connection: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


def _query(name: str) -> str:
    return named_queries("replay.sql")[name]


class PostgresReplayRecords(ReplayRecords):
    """Replays of a PostgreSQL store, on the store's connection pool."""

    def __init__(self, database: PostgresDatabase) -> None:
        # The adapter's own pool: what escapes a statement is a Sluice error (driver_errors).
        self._pool: asyncpg.Pool = database.pool

    async def get(self, name: str) -> ReplayProgress | None:
        async with self._pool.acquire() as connection:
            return await _load(connection, name)

    async def list(self) -> list[ReplayProgress]:
        async with self._pool.acquire() as connection:
            names = [row["name"] for row in await connection.fetch(_query("list_replay_names"))]
            loaded = [await _load(connection, name) for name in names]
        return [progress for progress in loaded if progress is not None]

    async def create(self, request: ReplayRequest, partitions: Sequence[PartitionProgress]) -> bool:
        created = await self._pool.fetchval(
            _query("create_replay"),
            request.name,
            json.dumps(request.definition()),
            request.rate_limit,
            request.batch_size,
            [partition.partition for partition in partitions],
            [partition.start_offset for partition in partitions],
            [partition.end_offset for partition in partitions],
        )
        return created is not None

    async def begin_run(self, request: ReplayRequest) -> ReplayProgress:
        async with self._pool.acquire() as connection:
            epoch = await connection.fetchval(
                _query("begin_replay_run"), request.name, request.rate_limit, request.batch_size
            )
            if epoch is None:
                if await connection.fetchval(_query("get_replay"), request.name) is None:
                    raise ReplayNotFoundError(request.name)
                raise superseded(request.name)
            progress = await _load(connection, request.name)
        if progress is None:
            raise ReplayNotFoundError(request.name)
        return progress

    async def advance(self, name: str, epoch: int, positions: dict[int, int], events_per_second: float | None) -> bool:
        rows = await self._pool.fetch(
            _query("advance_replay"), name, epoch, events_per_second, list(positions), list(positions.values())
        )
        if not rows:
            raise superseded(name)
        return bool(rows[0]["cancel_requested"])

    async def mark_target_prepared(self, name: str, epoch: int) -> None:
        if await self._pool.fetchval(_query("mark_replay_target_prepared"), name, epoch) is None:
            raise superseded(name)

    async def finish(
        self, name: str, epoch: int, state: ReplayState, error: str | None
    ) -> tuple[datetime, datetime | None]:
        row = await self._pool.fetchrow(_query("finish_replay"), name, epoch, state.value, error)
        if row is None:
            raise superseded(name)
        return row["updated_at"], row["finished_at"]

    async def request_cancel(self, name: str) -> ReplayProgress:
        async with self._pool.acquire() as connection:
            await connection.execute(_query("request_replay_cancel"), name)
            progress = await _load(connection, name)
        if progress is None:
            raise ReplayNotFoundError(name)
        return progress


async def _load(connection: Connection, name: str) -> ReplayProgress | None:
    row = await connection.fetchrow(_query("get_replay"), name)
    if row is None:
        return None
    partitions = await connection.fetch(_query("get_replay_partitions"), name)
    request = ReplayRequest.from_definition(
        row["name"], json.loads(row["definition"]), rate_limit=row["rate_limit"], batch_size=row["batch_size"]
    )
    return ReplayProgress(
        request=request,
        state=ReplayState(row["state"]),
        partitions=tuple(
            PartitionProgress(
                partition=partition["partition"],
                start_offset=partition["start_offset"],
                next_offset=partition["next_offset"],
                end_offset=partition["end_offset"],
            )
            for partition in partitions
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        events_per_second=row["events_per_second"],
        cancel_requested=row["cancel_requested"],
        target_prepared=row["target_prepared"],
        run_epoch=row["run_epoch"],
        error=row["error"],
    )
