"""The PostgreSQL queues (the port's ``QueueStorage``): enqueue, dequeue, acknowledge, nack, extend, the queue's
own dead letters and its depth, one statement per operation.

Every operation after dequeue is conditional on the receipt's delivery attempt, so a member whose lease
ran out (and whose message was delivered again) cannot finish or change the newer delivery.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pydantic_core

from sluice.core.batches import PreparedBatch
from sluice.core.errors import StreamArchivedError, StreamDeletedError, StreamNotFoundError, StreamTypeError
from sluice.core.lifecycle import AUTO_CREATE_ACTOR
from sluice.core.messages import (
    DeadLetter,
    DeliveryFailure,
    EnqueueResult,
    QueueDepth,
    QueueMessage,
    Receipt,
    stored_message,
)
from sluice.core.options import StoreOptions
from sluice.core.payloads import decode_payload
from sluice.core.signals import AppendSignals
from sluice.core.streams import StreamType
from sluice.core.validation import MAX_DURATION, check_prepared_events, lease_too_long
from sluice.observability import metrics
from sluice.storage.postgres.batch_columns import event_arrays, uniform_column
from sluice.storage.postgres.queries import query
from sluice.storage.postgres.stream_catalog import PostgresStreamCatalog


class PostgresQueues:
    """Queues (ephemeral streams) on PostgreSQL: messages, leases and dead letters (``QueueStorage``)."""

    def __init__(
        self, *, pool: asyncpg.Pool, options: StoreOptions, catalog: PostgresStreamCatalog, signals: AppendSignals
    ) -> None:
        self._pool = pool
        self._options = options
        self._catalog = catalog
        self._signals = signals

    async def enqueue(
        self,
        queue_name: str,
        messages: PreparedBatch,
        dedupe_keys: list[str | None],
        delay: timedelta,
        correlation_id: str | None,
    ) -> list[EnqueueResult]:
        check_prepared_events(messages.schema_versions, messages.metadata, limit=self._options.max_payload_bytes)
        for _ in range(3):
            queue = await self._catalog.write_settings(queue_name, StreamType.EPHEMERAL)
            arrays = event_arrays(queue.compression.apply(messages))[1:]  # queues keep no event ids
            rows = await self._pool.fetch(
                query("enqueue_messages"), queue_name, *arrays, uniform_column(dedupe_keys), correlation_id, delay
            )
            if rows:
                return await self._enqueue_results(queue_name, rows, dedupe_keys)
            self._catalog.forget(queue_name)
            await self._ensure_queue(queue_name)
        raise StreamNotFoundError(queue_name)

    async def _ensure_queue(self, queue_name: str) -> None:
        """After an enqueue found no queue to write to: create it (as the auto-create rules say), or
        say why it cannot be written."""
        info = await self._catalog.describe(queue_name)
        if info is None:
            config = self._options.auto_create_config(queue_name, StreamType.EPHEMERAL)
            if config is None:
                raise StreamNotFoundError(queue_name)
            await self._catalog.create(config, AUTO_CREATE_ACTOR)
        elif info.deleted:
            raise StreamDeletedError(queue_name)
        elif info.type is not StreamType.EPHEMERAL:
            raise StreamTypeError(f"{queue_name!r} is a persistent stream: use append, not enqueue")
        elif info.archived:
            raise StreamArchivedError(queue_name)

    async def _enqueue_results(
        self, queue_name: str, rows: list[asyncpg.Record], dedupe_keys: list[str | None]
    ) -> list[EnqueueResult]:
        if dedupe_keys.count(None) == len(dedupe_keys):  # the common case: every message stored, in order
            return [stored_message(queue_name, row["message_id"]) for row in rows]  # a bigint: already an int
        inserted = [row for row in rows if row["message_id"] is not None]
        inserted_by_key = {row["dedupe_key"]: int(row["message_id"]) for row in inserted if row["dedupe_key"]}
        unkeyed = iter(int(row["message_id"]) for row in inserted if row["dedupe_key"] is None)
        results: list[EnqueueResult | None] = []
        claimed: set[str] = set()
        missing: list[str] = []
        for key in dedupe_keys:
            if key is None:
                results.append(EnqueueResult(queue_name, next(unkeyed)))
            elif key in inserted_by_key and key not in claimed:
                claimed.add(key)
                results.append(EnqueueResult(queue_name, inserted_by_key[key]))
            else:
                missing.append(key)
                results.append(None)
        if missing:
            found = await self._pool.fetch(query("pending_dedupe_keys"), rows[0]["stream_id"], missing)
            existing = {row["dedupe_key"]: int(row["message_id"]) for row in found}
            existing.update(inserted_by_key)
            results = [
                result or EnqueueResult(queue_name, existing[key], deduplicated=True)
                for result, key in zip(results, dedupe_keys, strict=True)
            ]
        return [result for result in results if result is not None]

    async def dequeue(self, queue_name: str, max_messages: int, visibility_timeout: timedelta) -> list[QueueMessage]:
        while True:
            rows = await self._pool.fetch(query("dequeue_messages"), queue_name, max_messages, visibility_timeout)
            if not rows:
                await self._ensure_queue_exists(queue_name)
                return []
            limit = self._options.max_payload_bytes
            messages = [_queue_message(row, queue_name, limit) for row in rows if row["message_id"] is not None]
            if rows[0]["dead_lettered"]:
                metrics.record_dead_lettered(queue_name, rows[0]["dead_lettered"])
            if messages or rows[0]["dead_lettered"] == 0:
                return messages
            # Everything we picked was dead-lettered; there may be deliverable messages behind them.

    async def _ensure_queue_exists(self, queue_name: str) -> None:
        info = await self._catalog.describe(queue_name)
        if info is None:
            raise StreamNotFoundError(queue_name)
        if info.deleted:
            raise StreamDeletedError(queue_name)
        if info.type is not StreamType.EPHEMERAL:
            raise StreamTypeError(f"{queue_name!r} is a persistent stream: read it, do not dequeue from it")

    async def acknowledge(self, queue_name: str, receipts: list[Receipt]) -> list[Receipt]:
        rows = await self._pool.fetch(
            query("acknowledge_messages"),
            queue_name,
            [receipt.message_id for receipt in receipts],
            [receipt.attempt for receipt in receipts],
        )
        done = {int(row["message_id"]) for row in rows}
        return [receipt for receipt in receipts if receipt.message_id not in done]

    async def nack(self, queue_name: str, receipt: Receipt, delay: timedelta, reason: str) -> bool:
        outcome = await self._pool.fetchrow(
            query("nack_message"), queue_name, receipt.message_id, receipt.attempt, delay, reason
        )
        changed = outcome is not None and outcome["changed"] > 0
        if outcome is not None and changed and outcome["buried"]:
            metrics.record_dead_lettered(queue_name, outcome["buried"])
        if changed and delay <= timedelta(0):
            self._signals.fire(queue_name)
        return bool(changed)

    async def extend(self, queue_name: str, receipt: Receipt, by: timedelta) -> bool:
        row = await self._pool.fetchrow(
            query("extend_lease"), queue_name, receipt.message_id, receipt.attempt, by, MAX_DURATION
        )
        if row is not None and not row["extended"]:
            raise lease_too_long(queue_name, receipt)
        return row is not None

    async def redrive_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> list[int]:
        await self._ensure_queue_exists(queue_name)
        rows = await self._pool.fetch(query("redrive_dead_letters"), queue_name, dead_letter_ids)
        return sorted(int(row["message_id"]) for row in rows)

    async def purge_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> int:
        await self._ensure_queue_exists(queue_name)
        return int(await self._pool.fetchval(query("purge_dead_letters"), queue_name, dead_letter_ids))

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        await self._ensure_queue_exists(queue_name)
        row = await self._pool.fetchrow(query("queue_depth"), queue_name)
        total, in_flight = (int(row["total"]), int(row["in_flight"])) if row is not None else (0, 0)
        return QueueDepth(queue_name, waiting=total - in_flight, in_flight=in_flight)

    async def dead_letters(self, queue_name: str, limit: int) -> list[DeadLetter]:
        rows = await self._pool.fetch(query("list_dead_letters"), queue_name, limit)
        if not rows:
            await self._ensure_queue_exists(queue_name)
        return [_dead_letter(row, queue_name, self._options.max_payload_bytes) for row in rows]


def _queue_message(row: asyncpg.Record, queue_name: str, payload_limit: int) -> QueueMessage:
    return QueueMessage(
        queue_name=queue_name,
        message_id=row["message_id"],
        event_type=row["event_type"],
        data=decode_payload(row["data"], row["content_type"], limit=payload_limit),
        metadata=pydantic_core.from_json(row["metadata"]),
        correlation_id=row["correlation_id"],
        enqueued_at=row["enqueued_at"],
        attempt=row["attempts"],
        visible_at=row["visible_at"],
        dedupe_key=row["dedupe_key"],
    )


def _dead_letter(row: asyncpg.Record, queue_name: str, payload_limit: int) -> DeadLetter:
    return DeadLetter(
        queue_name=queue_name,
        dead_letter_id=row["dead_letter_id"],
        message_id=row["message_id"],
        event_type=row["event_type"],
        data=decode_payload(row["data"], row["content_type"], limit=payload_limit),
        metadata=pydantic_core.from_json(row["metadata"]),
        correlation_id=row["correlation_id"],
        enqueued_at=row["enqueued_at"],
        attempts=row["attempts"],
        first_delivered_at=row["first_delivered_at"],
        last_delivered_at=row["last_delivered_at"],
        failures=tuple(
            DeliveryFailure(
                attempt=int(failure["attempt"]),
                at=datetime.fromisoformat(failure["at"]),
                reason=str(failure["reason"]),
            )
            for failure in pydantic_core.from_json(row["failures"])
        ),
        dead_lettered_at=row["dead_lettered_at"],
    )
