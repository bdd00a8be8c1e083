"""Retention's storage on PostgreSQL: bounded deletes that move a partition's low watermark, the
consumer-group positions pruning must respect, byte budgets, and the retention policies table.

Each prune batch is one statement, its own short transaction: delete a range of the primary key, then
move ``stream_partitions.first_offset``, and return the counts (one row, not one per deleted event, so a
batch costs the pruning process one round trip and no per-event work). The counter row is also what
appends update, so it is touched last, and the transaction commits with ``synchronous_commit = off``: the
row is then held for microseconds, not for a WAL flush. A prune whose commit a crash loses is harmless (the events come
back and the next run deletes them again). The queries are in ``sql/retention.sql``.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from sluice.storage.postgres.queries import named_queries
from sluice.store.values.retention import CleanupWindow, DeletedBatch, GroupPosition, RetentionLimits, RetentionPolicy


def _query(name: str) -> str:
    return named_queries("retention.sql")[name]


class PostgresRetentionStorage:
    """What ``sluice.services.retention`` needs from a PostgreSQL store (see ``RetentionStorage``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def delete_before(self, stream_name: str, partition: int, before: int, limit: int) -> DeletedBatch | None:
        row = await self._pool.fetchrow(_query("retention_delete_batch"), stream_name, partition, before, limit)
        if row is None:
            return None
        return DeletedBatch(events=int(row["events"]), bytes=int(row["bytes"]), first_offset=int(row["first_offset"]))

    async def byte_cutoffs(self, stream_name: str, max_bytes: int) -> dict[int, int]:
        rows = await self._pool.fetch(_query("retention_byte_cutoffs"), stream_name, max_bytes)
        return {int(row["partition"]): int(row["cutoff"]) for row in rows}

    async def group_positions(self, stream_name: str) -> list[GroupPosition]:
        rows = await self._pool.fetch(_query("retention_group_positions"), stream_name)
        return [
            GroupPosition(
                group_id=row["group_id"],
                partition=int(row["partition"]),
                committed_offset=int(row["committed_offset"]),
                last_active_at=row["last_active_at"],
            )
            for row in rows
        ]

    async def list_policies(self) -> list[RetentionPolicy]:
        rows = await self._pool.fetch(_query("retention_list_policies"))
        return [_policy(row) for row in rows]

    async def save_policy(self, policy: RetentionPolicy) -> None:
        limits = policy.limits
        window = limits.cleanup_window
        await self._pool.execute(
            _query("retention_save_policy"),
            policy.pattern,
            limits.max_age,
            limits.max_event_count,
            limits.max_bytes,
            window.start if window is not None else None,
            window.end if window is not None else None,
            limits.cleanup_interval,
            limits.enforce,
        )

    async def delete_policy(self, pattern: str) -> bool:
        return await self._pool.fetchval(_query("retention_delete_policy"), pattern) is not None

    async def claim_policy_run(self, pattern: str, now: datetime) -> bool:
        return await self._pool.fetchval(_query("retention_claim_policy_run"), pattern, now) is not None


def _policy(row: asyncpg.Record) -> RetentionPolicy:
    window = (
        CleanupWindow(start=row["window_start"], end=row["window_end"]) if row["window_start"] is not None else None
    )
    return RetentionPolicy(
        pattern=row["pattern"],
        limits=RetentionLimits(
            max_age=row["max_age"],
            max_event_count=row["max_event_count"],
            max_bytes=row["max_bytes"],
            cleanup_window=window,
            cleanup_interval=row["cleanup_interval"],
            enforce=row["enforce"],
        ),
        last_applied_at=row["last_applied_at"],
    )
