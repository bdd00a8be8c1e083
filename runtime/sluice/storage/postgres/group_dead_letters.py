"""Consumer-group dead letters on PostgreSQL: table ``group_dead_letters`` (migration 0009), named
queries in ``sql/group_dead_letters.sql``, connections from the store's pool (so what escapes a statement
is a Sluice error, ``driver_errors``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pydantic_core

from sluice.core.errors import GroupNotFoundError
from sluice.core.payloads import encode_metadata
from sluice.storage.postgres.queries import named_queries
from sluice.store.contracts.dead_letters import DeadLetterBurial, GroupDeadLetters, RedriveClaim
from sluice.store.values.dead_letters import FailedDelivery, GroupDeadLetter

if TYPE_CHECKING:
    from sluice.core.events import RecordedEvent
    from sluice.storage.postgres.database import PostgresDatabase
    from sluice.store.port import GroupStorage, StreamLog


def query(name: str) -> str:
    """One named query of ``sql/group_dead_letters.sql``."""
    return named_queries("group_dead_letters.sql")[name]


class PostgresGroupDeadLetters(GroupDeadLetters):
    """Dead letters in ``group_dead_letters``; every operation is one statement."""

    def __init__(self, log: StreamLog, groups: GroupStorage, database: PostgresDatabase) -> None:
        super().__init__(log, groups)
        self._database = database

    async def _fetch(self, operation: str, name: str, *arguments: Any) -> list[asyncpg.Record]:
        async with self._database.acquire() as connection:
            rows: list[asyncpg.Record] = await connection.fetch(query(name), *arguments)
            return rows

    async def _bury(self, event: RecordedEvent, failure: FailedDelivery, burial: DeadLetterBurial) -> GroupDeadLetter:
        try:
            [row] = await self._fetch(
                "bury dead letter",
                "bury_group_dead_letter",
                event.stream_name,
                burial.group_id,
                event.partition,
                event.offset,
                event.event_id,
                event.event_type,
                event.schema_version,
                event.content_type,
                event.payload,
                encode_metadata(event.metadata),
                event.correlation_id,
                event.timestamp,
                failure.error,
                failure.attempts,
                failure.first_failure_at,
                failure.last_failure_at,
                burial.dead_letter_stream,
                burial.consumer_id,
            )
        except asyncpg.NotNullViolationError as error:  # no such group: its key is null
            raise GroupNotFoundError(event.stream_name, burial.group_id) from error
        return _letter(row, event.stream_name, burial.group_id)

    async def _list(self, stream_name: str, group_id: str, limit: int, after_id: int) -> list[GroupDeadLetter]:
        rows = await self._fetch("list dead letters", "list_group_dead_letters", stream_name, group_id, after_id, limit)
        return [_letter(row, stream_name, group_id) for row in rows]

    async def _get(self, stream_name: str, group_id: str, dead_letter_id: int) -> GroupDeadLetter | None:
        rows = await self._fetch("get dead letter", "get_group_dead_letter", stream_name, group_id, dead_letter_id)
        return _letter(rows[0], stream_name, group_id) if rows else None

    async def _redrive(self, stream_name: str, group_id: str, dead_letter_ids: list[int] | None) -> list[int]:
        if dead_letter_ids is None:
            rows = await self._fetch("redrive", "redrive_all_group_dead_letters", stream_name, group_id)
        else:
            rows = await self._fetch(
                "redrive", "redrive_selected_group_dead_letters", stream_name, group_id, dead_letter_ids
            )
        return [int(row["dead_letter_id"]) for row in rows]

    async def _purge(self, stream_name: str, group_id: str, dead_letter_ids: list[int] | None) -> int:
        if dead_letter_ids is None:
            rows = await self._fetch("purge", "purge_all_group_dead_letters", stream_name, group_id)
        else:
            rows = await self._fetch(
                "purge", "purge_selected_group_dead_letters", stream_name, group_id, dead_letter_ids
            )
        return len(rows)

    async def _claim(
        self, stream_name: str, group_id: str, consumer_id: str, token: uuid.UUID, lease: timedelta
    ) -> GroupDeadLetter | None:
        rows = await self._fetch(
            "claim redrive", "claim_group_redrive", stream_name, group_id, consumer_id, token, lease
        )
        return _letter(rows[0], stream_name, group_id) if rows else None

    async def _complete(self, claim: RedriveClaim) -> bool:
        rows = await self._fetch(
            "complete redrive", "complete_group_redrive", claim.dead_letter.dead_letter_id, claim.token
        )
        return bool(rows)

    async def _fail(self, claim: RedriveClaim, failure: FailedDelivery) -> bool:
        rows = await self._fetch(
            "fail redrive",
            "fail_group_redrive",
            claim.dead_letter.dead_letter_id,
            claim.token,
            failure.error,
            failure.attempts,
            failure.last_failure_at,
            claim.consumer_id,
        )
        return bool(rows)

    async def _release(self, claim: RedriveClaim) -> bool:
        rows = await self._fetch(
            "release redrive", "release_group_redrive", claim.dead_letter.dead_letter_id, claim.token
        )
        return bool(rows)


def _letter(row: asyncpg.Record, stream_name: str, group_id: str) -> GroupDeadLetter:
    return GroupDeadLetter(
        dead_letter_id=int(row["dead_letter_id"]),
        stream_name=stream_name,
        group_id=group_id,
        partition=int(row["source_partition"]),
        offset=int(row["source_offset"]),
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=int(row["schema_version"]),
        content_type=row["content_type"],
        payload=bytes(row["payload"]),
        metadata=pydantic_core.from_json(row["metadata"]),
        correlation_id=row["correlation_id"],
        appended_at=row["appended_at"],
        error=row["error"],
        attempts=int(row["attempts"]),
        first_failure_at=row["first_failure_at"],
        last_failure_at=row["last_failure_at"],
        dead_lettered_at=row["dead_lettered_at"],
        dead_letter_stream=row["dead_letter_stream"],
        consumer_id=row["consumer_id"],
        redrives=int(row["redrives"]),
        redrive_requested_at=row["redrive_requested_at"],
    )
