"""The in-memory queues (the port's ``QueueStorage``): enqueue, dequeue, acknowledge, nack, extend, the queue's
own dead letters and its depth, over ``MemoryState``.

As in the stream log, no operation awaits inside it, so each is atomic on one event loop. Every operation
after dequeue holds only for the receipt's delivery attempt, as on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

from sluice.core.batches import PreparedBatch
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
from sluice.core.payloads import decode_payload, encode_metadata
from sluice.core.streams import StreamType
from sluice.core.validation import MAX_DURATION, check_prepared_events, lease_too_long
from sluice.observability import metrics
from sluice.storage.memory.state import MemoryState, MemoryStream, StoredMessage
from sluice.storage.memory.stream_catalog import MemoryStreamCatalog, utc_now


class MemoryQueues:
    """Queues (ephemeral streams) in process memory: messages, leases and dead letters (``QueueStorage``)."""

    def __init__(self, state: MemoryState, options: StoreOptions, catalog: MemoryStreamCatalog) -> None:
        self._state = state
        self._options = options
        self._catalog = catalog
        self._message_ids = itertools.count(1)
        self._dead_letter_ids = itertools.count(1)

    async def enqueue(
        self,
        queue_name: str,
        messages: PreparedBatch,
        dedupe_keys: list[str | None],
        delay: timedelta,
        correlation_id: str | None,
    ) -> list[EnqueueResult]:
        check_prepared_events(messages.schema_versions, messages.metadata, limit=self._options.max_payload_bytes)
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=True)
        messages = stream.config.compression_policy.apply(messages)
        pending_by_key = {
            message.dedupe_key: message.message_id for message in stream.messages.values() if message.dedupe_key
        }
        results = []
        now = utc_now()
        for prepared, key in zip(messages.events(), dedupe_keys, strict=True):
            if key is not None and key in pending_by_key:
                results.append(EnqueueResult(queue_name, pending_by_key[key], deduplicated=True))
                continue
            message_id = next(self._message_ids)
            stream.messages[message_id] = StoredMessage(
                message_id, prepared, correlation_id, key, enqueued_at=now, visible_at=now + delay
            )
            if key is not None:
                pending_by_key[key] = message_id
            results.append(stored_message(queue_name, message_id))
        return results

    async def dequeue(self, queue_name: str, max_messages: int, visibility_timeout: timedelta) -> list[QueueMessage]:
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=False)
        now = utc_now()
        visible = sorted(
            (message for message in stream.messages.values() if message.visible_at <= now),
            key=lambda message: (message.visible_at, message.message_id),
        )
        delivered: list[QueueMessage] = []
        for message in visible:
            if len(delivered) == max_messages:
                break
            if message.attempts >= stream.config.max_attempts:
                message.record_expired_lease()
                self._bury(stream, message)
                continue
            message.record_expired_lease()
            message.attempts += 1
            message.visible_at = now + visibility_timeout
            message.first_delivered_at = message.first_delivered_at or now
            message.last_delivered_at = now
            message.last_failed_attempt = message.attempts - 1
            delivered.append(_queue_message(queue_name, message, self._options.max_payload_bytes))
        return delivered

    def _bury(self, stream: MemoryStream, message: StoredMessage) -> None:
        del stream.messages[message.message_id]
        metrics.record_dead_lettered(stream.config.name, 1)
        prepared = message.prepared
        dead_letter_id = next(self._dead_letter_ids)
        stream.buried[dead_letter_id] = message
        stream.dead_letters.append(
            DeadLetter(
                queue_name=stream.config.name,
                dead_letter_id=dead_letter_id,
                message_id=message.message_id,
                event_type=prepared.event_type,
                data=decode_payload(prepared.payload, prepared.content_type, limit=self._options.max_payload_bytes),
                metadata=decode_payload(prepared.metadata_json.encode(), "application/json"),
                correlation_id=message.correlation_id,
                enqueued_at=message.enqueued_at,
                attempts=message.attempts,
                first_delivered_at=message.first_delivered_at,
                last_delivered_at=message.last_delivered_at,
                failures=tuple(message.failures),
                dead_lettered_at=utc_now(),
            )
        )

    def _current(self, queue_name: str, receipt: Receipt) -> tuple[MemoryStream, StoredMessage] | None:
        stream = self._state.streams.get(queue_name)
        if stream is None:
            return None
        message = stream.messages.get(receipt.message_id)
        if message is None or message.attempts != receipt.attempt:
            return None
        return stream, message

    async def acknowledge(self, queue_name: str, receipts: list[Receipt]) -> list[Receipt]:
        stale = []
        for receipt in receipts:
            current = self._current(queue_name, receipt)
            if current is None:
                stale.append(receipt)
            else:
                del current[0].messages[receipt.message_id]
        return stale

    async def nack(self, queue_name: str, receipt: Receipt, delay: timedelta, reason: str) -> bool:
        current = self._current(queue_name, receipt)
        if current is None:
            return False
        stream, message = current
        now = utc_now()
        message.failures.append(DeliveryFailure(message.attempts, now, reason))
        message.last_failed_attempt = message.attempts
        if message.attempts >= stream.config.max_attempts:
            self._bury(stream, message)
        else:
            message.visible_at = now + delay
        return True

    async def extend(self, queue_name: str, receipt: Receipt, by: timedelta) -> bool:
        current = self._current(queue_name, receipt)
        if current is None:
            return False
        message = current[1]
        now = utc_now()
        new_end = max(message.visible_at, now) + by
        if new_end > now + MAX_DURATION:
            raise lease_too_long(queue_name, receipt)
        message.visible_at = new_end
        return True

    async def dead_letters(self, queue_name: str, limit: int) -> list[DeadLetter]:
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=False)
        return stream.dead_letters[:limit]

    async def redrive_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> list[int]:
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=False)
        chosen = _take_dead_letters(stream, dead_letter_ids)
        now = utc_now()
        redriven = []
        for dead_letter in chosen:
            original = stream.buried.pop(dead_letter.dead_letter_id)
            metadata = dict(dead_letter.metadata)
            metadata["redriven_from"] = {
                "dead_letter_id": dead_letter.dead_letter_id,
                "message_id": dead_letter.message_id,
                "attempts": dead_letter.attempts,
            }
            prepared = dataclasses.replace(original.prepared, metadata_json=encode_metadata(metadata))
            message_id = next(self._message_ids)
            stream.messages[message_id] = StoredMessage(
                message_id,
                prepared,
                original.correlation_id,
                None,
                enqueued_at=original.enqueued_at,
                visible_at=now,
                failures=list(original.failures),
            )
            redriven.append(message_id)
        return redriven

    async def purge_dead_letters(self, queue_name: str, dead_letter_ids: list[int] | None) -> int:
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=False)
        chosen = _take_dead_letters(stream, dead_letter_ids)
        for dead_letter in chosen:
            stream.buried.pop(dead_letter.dead_letter_id, None)
        return len(chosen)

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        stream = self._catalog.stream(queue_name, StreamType.EPHEMERAL, create=False)
        now = utc_now()
        in_flight = sum(
            1
            for message in stream.messages.values()
            if message.attempts > message.last_failed_attempt and message.visible_at > now
        )
        return QueueDepth(queue_name, waiting=len(stream.messages) - in_flight, in_flight=in_flight)


def _queue_message(queue_name: str, message: StoredMessage, payload_limit: int) -> QueueMessage:
    prepared = message.prepared
    return QueueMessage(
        queue_name=queue_name,
        message_id=message.message_id,
        event_type=prepared.event_type,
        data=decode_payload(prepared.payload, prepared.content_type, limit=payload_limit),
        metadata=decode_payload(prepared.metadata_json.encode(), "application/json"),
        correlation_id=message.correlation_id,
        enqueued_at=message.enqueued_at,
        attempt=message.attempts,
        visible_at=message.visible_at,
        dedupe_key=message.dedupe_key,
    )


def _take_dead_letters(stream: MemoryStream, dead_letter_ids: list[int] | None) -> list[DeadLetter]:
    """Remove the chosen dead letters (all when ``dead_letter_ids`` is None) and return them."""
    wanted = None if dead_letter_ids is None else set(dead_letter_ids)
    chosen = [letter for letter in stream.dead_letters if wanted is None or letter.dead_letter_id in wanted]
    stream.dead_letters = [letter for letter in stream.dead_letters if letter not in chosen]
    return chosen
