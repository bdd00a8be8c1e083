"""``run_saga_worker(store, saga)``: the process that runs a saga until it is cancelled.

It runs, side by side:
- one consumer-group member (group ``saga.<name>``) per stream the saga reads: trigger events start
  instances, reply events are recorded for the step they answer; an event's offset is committed
  after it is handled, so a crash delivers it again (starting and recording are idempotent);
- a loop over the saga's work queue (``saga.<name>.work``): advance messages and the delayed
  timeout messages. A message is acknowledged after it is handled; the lease (``lease``) bounds how
  long a message held by a dead worker waits before another worker takes it.

Several workers may run one saga: the queue spreads instances over them, and optimistic
concurrency on each instance keeps two of them from both saving a move. Stop a worker by cancelling
it (``sluice sagas run`` does on SIGTERM/SIGINT): whatever it was doing is picked up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta

from sluice.core.errors import (
    ConnectionLostError,
    DatabaseBusyError,
    InvalidArgumentError,
    StaleReceiptError,
    StreamNotFoundError,
)
from sluice.core.streams import StreamConfig, StreamType
from sluice.services.sagas.definition import Saga
from sluice.services.sagas.engine import SagaEngine
from sluice.store import EventStore
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy

logger = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=30)
RETRY_DELAY = timedelta(seconds=1)
MAX_CONCURRENCY = 100
OUTAGE_FIRST_DELAY_SECONDS = 0.1
OUTAGE_MAX_DELAY_SECONDS = 2.0
TRANSIENT_ERRORS = (ConnectionLostError, DatabaseBusyError)
"""Errors the worker waits out: the database is away or busy, and will be back."""


def default_worker_id() -> str:
    """The host name (a pod's name), so a restarted pod rejoins its group under the same id."""
    return socket.gethostname() or f"worker-{os.getpid()}"


async def run_saga_worker(
    store: EventStore,
    saga: Saga,
    *,
    worker_id: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    concurrency: int = 1,
    group_options: ConsumerGroupOptions | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run ``saga`` until cancelled, advancing up to ``concurrency`` instances at a time. ``ready``
    is set once the worker has recovered unfinished instances and started consuming."""
    if lease <= timedelta(0):
        raise InvalidArgumentError(f"lease must be positive, got {lease}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidArgumentError(f"concurrency must be 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    member = worker_id or default_worker_id()
    options = group_options or ConsumerGroupOptions(commit_strategy=OffsetCommitStrategy.AFTER_EACH)
    engine = SagaEngine(saga, store)
    for stream_name in saga.streams:
        await _ensure_stream(store, StreamConfig(name=stream_name))
    await _ensure_stream(store, StreamConfig(name=saga.work_queue, type=StreamType.EPHEMERAL))
    recovered = await engine.recover()
    if recovered:
        logger.info("saga %s: woke %d unfinished instance(s)", saga.name, recovered)
    async with asyncio.TaskGroup() as tasks:
        for stream_name in saga.streams:
            tasks.create_task(_consume(engine, stream_name, member, options), name=f"saga {saga.name}: {stream_name}")
        for number in range(concurrency):
            tasks.create_task(_work(engine, lease), name=f"saga {saga.name}: work queue {number}")
        if ready is not None:
            ready.set()


async def _ensure_stream(store: EventStore, config: StreamConfig) -> None:
    """Create the stream or queue if it is missing (an existing one is used as it is)."""
    try:
        await store.get_stream(config.name)
    except StreamNotFoundError:
        await store.create_stream(config)


async def _consume(engine: SagaEngine, stream_name: str, worker_id: str, options: ConsumerGroupOptions) -> None:
    reader = engine.store.consumer_groups()
    async with reader.consume(
        stream_name, group_id=engine.saga.group_id, consumer_id=worker_id, options=options
    ) as events:
        async for event in events:
            outage = _Outage(f"saga {engine.saga.name}: event {event.stream_name}/{event.partition}/{event.offset}")
            while True:
                try:
                    # Both are idempotent: a redelivered event finds its instance (or reply) recorded.
                    if await engine.start(event) is None:
                        await engine.deliver_reply(event)
                    break
                except TRANSIENT_ERRORS as error:  # the same event again once the database answers
                    await outage.wait(error)
            outage.over()


async def _work(engine: SagaEngine, lease: timedelta) -> None:
    """Take work messages off the saga's queue and handle them. A database outage does not end the loop
    (it ended the whole worker): a failed dequeue, ack or nack is retried with backoff, and a message
    whose settlement was lost comes back when its lease runs out."""
    store = engine.store
    queue = engine.saga.work_queue
    idle = store.options.poll_interval.total_seconds()
    outage = _Outage(f"saga {engine.saga.name}: work queue {queue}")
    while True:
        try:
            await _work_once(engine, lease, idle)
        except TRANSIENT_ERRORS as error:
            await outage.wait(error)
            continue
        outage.over()


async def _work_once(engine: SagaEngine, lease: timedelta, idle: float) -> None:
    store = engine.store
    queue = engine.saga.work_queue
    message = await store.dequeue(queue, visibility_timeout=lease)
    if message is None:
        await asyncio.sleep(idle)
        return
    try:
        await engine.handle_message(message)
    except Exception as error:  # the database went away, a definition mismatch...: try later
        logger.exception("saga %s: work message %s failed", engine.saga.name, message.message_id)
        await store.nack(queue, message.receipt, delay=RETRY_DELAY, reason=str(error)[:500])
        return
    with contextlib.suppress(StaleReceiptError):  # the lease ran out and another worker has it now
        await store.acknowledge(queue, message.receipt)


class _Outage:
    """Backoff while the database is away: 0.1 s doubling to 2 s, logged once per outage."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._delay: float | None = None

    async def wait(self, error: Exception) -> None:
        if self._delay is None:
            logger.warning("%s: the database is unavailable, retrying: %s", self._description, error)
            self._delay = OUTAGE_FIRST_DELAY_SECONDS
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, OUTAGE_MAX_DELAY_SECONDS)

    def over(self) -> None:
        if self._delay is not None:
            logger.info("%s: the database answers again", self._description)
            self._delay = None
