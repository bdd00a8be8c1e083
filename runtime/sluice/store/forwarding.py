"""``ForwardingStore``: an EventStore that hands every call to another EventStore, for wrappers to build on.

The access-control wrapper (``sluice.security.AuthorizedStore``) and group commit
(``sluice.services.group_commit.BatchedEventStore``) are stores that stand in for another one. Each public
EventStore method is forwarded here by a method with the same signature, so mypy checks every call a
wrapper makes and every call made to it, and a wrapper is an ``EventStore`` wherever one is expected
(no ``cast``, no ``__getattr__``). Before forwarding, each method names what it is about to do to
``_on_call`` (the operation and the stream it addresses: None when it addresses none in particular) and
passes a recorded ``actor`` through ``_actor``; both do nothing here, and a wrapper overrides them (or
overrides the method itself, as group commit does for ``append``).

A wrapper shares the wrapped store's ``backend``, ``options``, ``registry`` and ``consumer_groups_factory``
(though ``consumer_groups()`` is forwarded like the rest): services that need storage
(``store.backend.sagas``, ...) find the same storage through it. ``tests/access_control/test_typed_wrappers.py``
fails when EventStore gains a public method this class does not forward.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from sluice.core.batches import PreparedBatch
from sluice.core.events import AppendResult, Direction, ExpectedOffset, GlobalPosition, RecordedEvent
from sluice.core.messages import DeadLetter, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.streams import StreamConfig, StreamInfo
from sluice.store.contracts.consumer_groups import ConsumerGroupReader
from sluice.store.event_store import EventStore
from sluice.store.limits import DEFAULT_VISIBILITY_TIMEOUT
from sluice.store.port import BackendCheck


class ForwardingStore(EventStore):
    """Every public EventStore method, forwarded to ``wrapped`` with its arguments unchanged."""

    def __init__(self, wrapped: EventStore) -> None:
        super().__init__(
            wrapped.backend, wrapped.options, wrapped.registry, consumer_groups_factory=wrapped.consumer_groups_factory
        )
        self.wrapped = wrapped
        """The store the calls go to (itself possibly a wrapper)."""

    def _on_call(self, operation: str, stream_name: str | None, *, correlation_id: str | None = None) -> None:
        """Called before each forwarded call: ``operation`` is the method's name, ``stream_name`` the stream
        or queue it addresses (None: none in particular). Raising refuses the call before it reaches the store."""

    def _actor(self, actor: str | None) -> str | None:
        """The actor to record for a lifecycle change (who created, deleted, archived... a stream)."""
        return actor

    # ----------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        self._on_call("close", None)
        await self.wrapped.close()

    async def check_backend(self) -> BackendCheck:
        self._on_call("check_backend", None)
        return await self.wrapped.check_backend()

    # ----------------------------------------------------------------- streams

    async def create_stream(self, config: StreamConfig, *, actor: str | None = None) -> StreamInfo:
        self._on_call("create_stream", config.name)
        return await self.wrapped.create_stream(config, actor=self._actor(actor))

    async def get_stream(self, name: str) -> StreamInfo:
        self._on_call("get_stream", name)
        return await self.wrapped.get_stream(name)

    async def list_streams(self, *, include_deleted: bool = False) -> list[StreamInfo]:
        self._on_call("list_streams", None)
        return await self.wrapped.list_streams(include_deleted=include_deleted)

    async def delete_stream(self, name: str, *, soft: bool = False, actor: str | None = None) -> None:
        self._on_call("delete_stream", name)
        await self.wrapped.delete_stream(name, soft=soft, actor=self._actor(actor))

    async def archive_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        self._on_call("archive_stream", name)
        return await self.wrapped.archive_stream(name, actor=self._actor(actor))

    async def unarchive_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        self._on_call("unarchive_stream", name)
        return await self.wrapped.unarchive_stream(name, actor=self._actor(actor))

    async def restore_stream(self, name: str, *, actor: str | None = None) -> StreamInfo:
        self._on_call("restore_stream", name)
        return await self.wrapped.restore_stream(name, actor=self._actor(actor))

    async def purge_deleted_streams(self, *, older_than: timedelta | None = None) -> list[str]:
        self._on_call("purge_deleted_streams", None)
        return await self.wrapped.purge_deleted_streams(older_than=older_than)

    async def set_partitions(self, name: str, partitions: int) -> StreamInfo:
        self._on_call("set_partitions", name)
        return await self.wrapped.set_partitions(name, partitions)

    def consumer_groups(self) -> ConsumerGroupReader:
        self._on_call("consumer_groups", None)
        return self.wrapped.consumer_groups()

    # ----------------------------------------------------------------- persistent streams

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
        self._on_call("append", stream_name, correlation_id=correlation_id)
        return await self.wrapped.append(
            stream_name,
            events,
            expected_offset=expected_offset,
            correlation_id=correlation_id,
            partition_key=partition_key,
            partition=partition,
        )

    async def append_prepared(
        self,
        stream_name: str,
        prepared: PreparedBatch,
        *,
        partition_key: str | None = None,
        partition: int | None = None,
    ) -> AppendResult:
        self._on_call("append_prepared", stream_name)
        return await self.wrapped.append_prepared(
            stream_name, prepared, partition_key=partition_key, partition=partition
        )

    async def read_stream(
        self,
        stream_name: str,
        *,
        from_offset: int | None = None,
        from_time: datetime | None = None,
        direction: Direction = Direction.FORWARDS,
        limit: int | None = None,
        partition: int = 0,
    ) -> AsyncIterator[RecordedEvent]:
        self._on_call("read_stream", stream_name)  # when first iterated, as the wrapped generator would start
        async for event in self.wrapped.read_stream(
            stream_name,
            from_offset=from_offset,
            from_time=from_time,
            direction=direction,
            limit=limit,
            partition=partition,
        ):
            yield event

    async def subscribe(
        self, stream_name: str, *, from_offset: int = 0, partition: int = 0
    ) -> AsyncIterator[RecordedEvent]:
        self._on_call("subscribe", stream_name)
        async for event in self.wrapped.subscribe(stream_name, from_offset=from_offset, partition=partition):
            yield event

    async def read_all(
        self, *, after: GlobalPosition | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        self._on_call("read_all", None)
        async for event in self.wrapped.read_all(after=after, limit=limit):
            yield event

    async def subscribe_all(self, *, after: GlobalPosition | None = None) -> AsyncIterator[RecordedEvent]:
        self._on_call("subscribe_all", None)
        async for event in self.wrapped.subscribe_all(after=after):
            yield event

    # ----------------------------------------------------------------- queues

    async def enqueue(
        self,
        queue_name: str,
        message: object,
        *,
        delay: timedelta | None = None,
        dedupe_key: str | None = None,
        correlation_id: str | None = None,
    ) -> EnqueueResult:
        self._on_call("enqueue", queue_name, correlation_id=correlation_id)
        return await self.wrapped.enqueue(
            queue_name, message, delay=delay, dedupe_key=dedupe_key, correlation_id=correlation_id
        )

    async def enqueue_many(
        self,
        queue_name: str,
        messages: Sequence[object],
        *,
        delay: timedelta | None = None,
        correlation_id: str | None = None,
        dedupe_keys: Sequence[str | None] | None = None,
    ) -> list[EnqueueResult]:
        self._on_call("enqueue_many", queue_name, correlation_id=correlation_id)
        return await self.wrapped.enqueue_many(
            queue_name, messages, delay=delay, correlation_id=correlation_id, dedupe_keys=dedupe_keys
        )

    async def dequeue(
        self, queue_name: str, *, visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT
    ) -> QueueMessage | None:
        self._on_call("dequeue", queue_name)
        return await self.wrapped.dequeue(queue_name, visibility_timeout=visibility_timeout)

    async def dequeue_many(
        self,
        queue_name: str,
        *,
        max_messages: int = 10,
        visibility_timeout: timedelta = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> list[QueueMessage]:
        self._on_call("dequeue_many", queue_name)
        return await self.wrapped.dequeue_many(
            queue_name, max_messages=max_messages, visibility_timeout=visibility_timeout
        )

    async def acknowledge(self, queue_name: str, receipt: Receipt) -> None:
        self._on_call("acknowledge", queue_name)
        await self.wrapped.acknowledge(queue_name, receipt)

    async def acknowledge_many(self, queue_name: str, receipts: Sequence[Receipt]) -> list[Receipt]:
        self._on_call("acknowledge_many", queue_name)
        return await self.wrapped.acknowledge_many(queue_name, receipts)

    async def nack(
        self,
        queue_name: str,
        receipt: Receipt,
        *,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        self._on_call("nack", queue_name)
        await self.wrapped.nack(queue_name, receipt, delay=delay, reason=reason)

    async def extend(self, queue_name: str, receipt: Receipt, *, by: timedelta) -> None:
        self._on_call("extend", queue_name)
        await self.wrapped.extend(queue_name, receipt, by=by)

    async def dead_letters(self, queue_name: str, *, limit: int = 100) -> list[DeadLetter]:
        self._on_call("dead_letters", queue_name)
        return await self.wrapped.dead_letters(queue_name, limit=limit)

    async def redrive_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> list[int]:
        self._on_call("redrive_dead_letters", queue_name)
        return await self.wrapped.redrive_dead_letters(queue_name, dead_letter_ids=dead_letter_ids)

    async def purge_dead_letters(self, queue_name: str, *, dead_letter_ids: Sequence[int] | None = None) -> int:
        self._on_call("purge_dead_letters", queue_name)
        return await self.wrapped.purge_dead_letters(queue_name, dead_letter_ids=dead_letter_ids)

    async def queue_depth(self, queue_name: str) -> QueueDepth:
        self._on_call("queue_depth", queue_name)
        return await self.wrapped.queue_depth(queue_name)
