"""The queue half of the EventStore facade: enqueue, dequeue, acknowledge, nack, extend, dead letters and
depth of ephemeral streams, each checking its arguments once and calling ``store.backend.queues``.

``EventStore`` inherits it; it holds no state of its own (the store's backend, options, registry and closed
flag are the facade's), and the helpers both halves use (``_check_open``, ``_check_duration``) live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from sluice.core.batches import prepare_batch
from sluice.core.errors import InvalidArgumentError, StaleReceiptError, StoreClosedError
from sluice.core.event_types import EventTypeRegistry
from sluice.core.messages import DeadLetter, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.names import validate_stream_name
from sluice.core.options import StoreOptions
from sluice.core.validation import MAX_INT64, check_dedupe_key, check_duration, check_receipt
from sluice.observability import metrics
from sluice.store.backend import Backend
from sluice.store.limits import DEFAULT_VISIBILITY_TIMEOUT, MAX_BATCH_EVENTS

_DEDUPLICATED = attrgetter("deduplicated")


class QueueOperations:
    """Queues (ephemeral streams) over ``backend.queues``: the facade's queue methods."""

    backend: Backend
    options: StoreOptions
    registry: EventTypeRegistry
    _closed: bool

    async def enqueue(
        self,
        queue_name: str,
        message: object,
        *,
        delay: timedelta | None = None,
        dedupe_key: str | None = None,
        correlation_id: str | None = None,
    ) -> EnqueueResult:
        """Put one message on a queue. ``delay`` postpones its first delivery; a ``dedupe_key``
        already held by a pending message makes this a no-op that returns that message's id."""
        check_dedupe_key(dedupe_key)
        results = await self.enqueue_many(
            queue_name, [message], delay=delay, correlation_id=correlation_id, dedupe_keys=[dedupe_key]
        )
        return results[0]

    async def enqueue_many(
        self,
        queue_name: str,
        messages: Sequence[object],
        *,
        delay: timedelta | None = None,
        correlation_id: str | None = None,
        dedupe_keys: Sequence[str | None] | None = None,
    ) -> list[EnqueueResult]:
        """Put several messages on a queue in one transaction."""
        self._check_open()
        validate_stream_name(queue_name)
        if not messages:
            raise InvalidArgumentError("enqueue_many needs at least one message")
        if len(messages) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"enqueue_many takes at most {MAX_BATCH_EVENTS} messages per call")
        if delay is not None:
            check_duration(delay, "delay", allow_zero=True)
        keys: list[str | None] = list(dedupe_keys) if dedupe_keys is not None else [None] * len(messages)
        if len(keys) != len(messages):
            raise InvalidArgumentError("dedupe_keys must have one entry per message")
        if keys.count(None) != len(keys):  # (a batch without keys, the usual one, has nothing to check)
            for key in keys:
                check_dedupe_key(key)
        prepared = prepare_batch(
            messages,
            self.registry,
            self.options.max_payload_bytes,
            correlation_id=correlation_id,
            make_event_ids=False,  # queues store no event ids
        )
        results = await self.backend.queues.enqueue(
            queue_name, prepared, keys, delay or timedelta(0), prepared.correlation_id
        )
        metrics.record_enqueued(queue_name, len(results) - sum(map(_DEDUPLICATED, results)))
        self.backend.signals.fire(queue_name)
        return results

    async def dequeue(
        self, queue_name: str, *, visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT
    ) -> QueueMessage | None:
        """Lease the next visible message for ``visibility_timeout``; None when there is none."""
        messages = await self.dequeue_many(queue_name, max_messages=1, visibility_timeout=visibility_timeout)
        return messages[0] if messages else None

    async def dequeue_many(
        self,
        queue_name: str,
        *,
        max_messages: int = 10,
        visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> list[QueueMessage]:
        """Lease up to ``max_messages`` visible messages. Messages that have used up their
        attempts move to the dead-letter queue instead of being delivered."""
        self._check_open()
        validate_stream_name(queue_name)
        if not 0 < max_messages <= 1000:
            raise InvalidArgumentError(f"max_messages must be 1 to 1000, got {max_messages}")
        self._check_duration(visibility_timeout, "visibility_timeout")
        messages = await self.backend.queues.dequeue(queue_name, max_messages, visibility_timeout)
        if messages:
            waited = (datetime.now(UTC) - messages[0].enqueued_at).total_seconds()
            metrics.record_dequeued(queue_name, len(messages), waited)
        return messages

    async def acknowledge(self, queue_name: str, receipt: Receipt) -> None:
        """Finish a message. Raises StaleReceiptError (and changes nothing) if the receipt is stale."""
        stale = await self.acknowledge_many(queue_name, [receipt])
        if stale:
            raise StaleReceiptError(queue_name, receipt)

    async def acknowledge_many(self, queue_name: str, receipts: Sequence[Receipt]) -> list[Receipt]:
        """Finish several messages in one round trip; returns the receipts that were stale
        (those changed nothing; the others were acknowledged)."""
        self._check_open()
        validate_stream_name(queue_name)
        if not receipts:
            return []
        for receipt in receipts:
            check_receipt(receipt.message_id, receipt.attempt)
        stale = await self.backend.queues.acknowledge(queue_name, list(receipts))
        metrics.record_acknowledged(queue_name, len(receipts) - len(stale))
        return stale

    async def nack(
        self,
        queue_name: str,
        receipt: Receipt,
        *,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        """Give a message back for redelivery after ``delay`` (default: at once), recording
        ``reason`` in its history. On its last attempt it moves to the dead-letter queue."""
        self._check_open()
        validate_stream_name(queue_name)
        check_receipt(receipt.message_id, receipt.attempt)
        if delay is not None:
            check_duration(delay, "delay", allow_zero=True)
        if not await self.backend.queues.nack(queue_name, receipt, delay or timedelta(0), reason or "nacked"):
            raise StaleReceiptError(queue_name, receipt)
        metrics.record_nacked(queue_name)

    async def extend(self, queue_name: str, receipt: Receipt, *, by: timedelta) -> None:
        """Lengthen a lease by ``by`` (from its current end, or from now if it has run out)."""
        self._check_open()
        validate_stream_name(queue_name)
        check_receipt(receipt.message_id, receipt.attempt)
        self._check_duration(by, "by")
        if not await self.backend.queues.extend(queue_name, receipt, by):
            raise StaleReceiptError(queue_name, receipt)

    async def dead_letters(self, queue_name: str, *, limit: int = 100) -> list[DeadLetter]:
        """The queue's dead letters, oldest first."""
        self._check_open()
        validate_stream_name(queue_name)
        if limit <= 0:
            raise InvalidArgumentError(f"limit must be positive, got {limit}")
        return await self.backend.queues.dead_letters(queue_name, limit)

    async def redrive_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> list[int]:
        """Put dead letters (those named, or all) back on the queue as new messages, visible at once,
        with a fresh attempt count; their delivery history is kept, and ``metadata["redriven_from"]``
        records the dead letter, the original message id and its attempts. Returns the new message ids
        (a new id, so that a stale receipt of the original message can never settle the new one)."""
        self._check_open()
        validate_stream_name(queue_name)
        ids = self._checked_dead_letter_ids(dead_letter_ids)
        redriven = await self.backend.queues.redrive_dead_letters(queue_name, ids)
        if redriven:
            self.backend.signals.fire(queue_name)
        return redriven

    async def purge_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (those named, or all) for good; returns how many were deleted."""
        self._check_open()
        validate_stream_name(queue_name)
        return await self.backend.queues.purge_dead_letters(queue_name, self._checked_dead_letter_ids(dead_letter_ids))

    @staticmethod
    def _checked_dead_letter_ids(dead_letter_ids: Sequence[int] | None) -> list[int] | None:
        if dead_letter_ids is None:
            return None
        ids = list(dead_letter_ids)
        if not ids or any(
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT64 for value in ids
        ):
            raise InvalidArgumentError(
                f"dead_letter_ids must be integers from 1 to {MAX_INT64} (or None for all of them)"
            )
        return ids

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        """Messages waiting on the queue and leased from it (a count of the queue's rows: meant for
        metrics refreshed every few seconds, not for every message)."""
        self._check_open()
        validate_stream_name(queue_name)
        return await self.backend.queues.queue_depth(queue_name)

    # ----------------------------------------------------------------- shared helpers

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this store was closed")

    @staticmethod
    def _check_duration(duration: timedelta, name: str) -> None:
        check_duration(duration, name)
