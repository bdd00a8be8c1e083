"""The consumer-group worker behind ``sluice consume``: one group member that hands every event to
a sink or handler, retries failures as its RetryPolicy says, dead-letters what never gets through,
and commits. Alongside new events it delivers the group's redriven dead letters (claimed one at a
time under a lease; see sluice.store.contracts.dead_letters), never two deliveries at once.

Stopping (``stop()``, wired to SIGTERM and SIGINT by the CLI): the event in hand is finished
(a retry backoff is cut short, and an event abandoned that way is not committed, so it is delivered
again; an abandoned redrive is released for another member), what was processed is committed, and
the member leaves the group so the others take its partitions over at once. When idle (waiting for
events), it stops at once.

The worker outlives its database: while the database is unreachable or restarting, or the stream
does not exist yet (it is waited for when its first append creates it), the worker reports not
ready on ``/health/ready`` with the reason, logs it, retries with backoff and resumes by itself. It
only stops on its own for a reason that waiting cannot fix: the stream is missing and not
auto-created, it is a queue, or a newer process took its consumer id over (DuplicateConsumerError).

Commit strategies are the consumer groups' own. ``manual`` means "the handler commits"
(``await event.commit()``); with an HTTP sink, whose 2xx answer is its commit, and for dead-lettered
events, the worker commits each event itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import FencedError, SluiceError, StreamTypeError
from sluice.core.streams import StreamType
from sluice.observability.correlation import correlation_context
from sluice.observability.tracing import delivery_span
from sluice.services.consumers.transient import RetryBackoff, is_transient
from sluice.services.retries.access import group_dead_letters
from sluice.services.retries.delivery import Delivery, DeliveryOutcome, deliver_with_retries
from sluice.services.retries.policy import RetryPolicy
from sluice.services.sinks.dead_letters import DeadLetterWriter
from sluice.services.workers import metrics
from sluice.services.workers.health_server import HealthServer
from sluice.services.workers.redriven import RedrivenEvent
from sluice.store.contracts.consumer_groups import GroupConsumption
from sluice.store.contracts.dead_letters import RedriveClaim
from sluice.store.stream_wait import wait_for_stream
from sluice.store.values.consumed import ConsumedEvent
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.store.values.dead_letters import FailedDelivery

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
DEFAULT_REDRIVE_POLL_SECONDS = 1.0
DEFAULT_REDRIVE_LEASE = timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerSettings:
    """Everything one worker needs to know (the CLI builds it from flags and environment)."""

    stream_name: str
    group_id: str
    consumer_id: str
    options: ConsumerGroupOptions = dataclasses.field(default_factory=ConsumerGroupOptions)
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    """Attempts, backoff and the dead-letter stream (default ``<stream>.<group>.dead-letter``)."""
    redrive_poll_interval: float = DEFAULT_REDRIVE_POLL_SECONDS
    """Seconds between looks for redriven dead letters when there are none."""
    redrive_lease: timedelta = DEFAULT_REDRIVE_LEASE
    """How long a claimed redrive is this member's; a member that dies holding one delays it this long."""
    worker_commits_each_event: bool = False
    """Commit every finished event itself (MANUAL strategy with an HTTP sink)."""
    http_host: str = "0.0.0.0"  # noqa: S104  (probes and scrapes come from outside the pod)
    http_port: int = 0
    """0: no health/metrics endpoint."""

    @property
    def dead_letter_stream(self) -> str:
        return self.retry.dead_letter_stream_for(self.stream_name, self.group_id)


class ConsumerWorker:
    """Runs one member until ``stop()``; ``run()`` returns after a clean stop."""

    def __init__(
        self,
        store: EventStore,
        settings: ConsumerSettings,
        delivery: Delivery[ConsumedEvent],
        *,
        health_server: HealthServer | None = None,
    ) -> None:
        """``health_server``: one already serving (the CLI starts it before the database answers);
        the worker takes its readiness over. Otherwise the worker starts one when ``http_port`` is set."""
        self.store = store
        self.settings = settings
        self.delivery = delivery
        self.stopping = asyncio.Event()
        self.health_server = health_server
        self._owns_health_server = health_server is None
        self._waiting_for: str | None = "checking the stream"
        """Why the worker is not consuming yet (the database, the stream), None once it consumes."""
        self.delivered = 0
        self.dead_lettered = 0
        self.redrives_delivered = 0
        self._in_flight = False
        self._closing = False
        self._consumption: GroupConsumption | None = None
        self._consume_task: asyncio.Task[None] | None = None
        self._delivering = asyncio.Lock()
        """Held around each delivery: new events and redrives never reach the sink at once."""
        self._consume_ended = asyncio.Event()
        self._group_dead_letters = group_dead_letters(store)
        self._dead_letters = DeadLetterWriter(
            store,
            stream_name=settings.dead_letter_stream,
            group_id=settings.group_id,
            consumer_id=settings.consumer_id,
        )
        labels = {"stream": settings.stream_name, "group": settings.group_id}
        self._delivered_counter = metrics.EVENTS_DELIVERED.labels(**labels)
        self._failures_counter = metrics.DELIVERY_FAILURES.labels(**labels)
        self._dead_lettered_counter = metrics.EVENTS_DEAD_LETTERED.labels(**labels)
        self._redrives_counter = metrics.REDRIVES_DELIVERED.labels(**labels)
        self._delivery_seconds = metrics.DELIVERY_SECONDS.labels(**labels)
        self._owned_partitions = metrics.OWNED_PARTITIONS.labels(**labels)

    def stop(self) -> None:
        """Ask the worker to stop: finish the event in hand, commit, leave. Safe to call repeatedly
        and from a signal handler on the event loop."""
        if self.stopping.is_set():
            return
        logger.info("stopping: finishing the event in hand, committing and leaving the group")
        self.stopping.set()
        if not self._in_flight and not self._closing and self._consume_task is not None:
            self._consume_task.cancel()  # idle: stop waiting for events (commits and leaves on the way out)

    async def run(self) -> None:
        """Start the health endpoint, check the stream (waiting for the database, and for the stream
        when it is auto-created), consume until stopped."""
        if self.health_server is None and self.settings.http_port:
            self.health_server = HealthServer(
                host=self.settings.http_host, port=self.settings.http_port, readiness=self.readiness
            )
            await self.health_server.start()
        if self.health_server is not None:
            self.health_server.readiness = self.readiness
        try:
            if await self._stream_ready():
                await self._consume_until_stopped()
        finally:
            if self.health_server is not None and self._owns_health_server:
                await self.health_server.stop()
        logger.info(
            "stopped cleanly: %d delivered, %d dead-lettered, %d redriven",
            self.delivered,
            self.dead_lettered,
            self.redrives_delivered,
        )

    async def _stream_ready(self) -> bool:
        """Wait until the stream exists (database outages waited out); False if stopped meanwhile."""
        name = self.settings.stream_name
        backoff = RetryBackoff()
        while not self.stopping.is_set():
            waiting = asyncio.create_task(wait_for_stream(self.store.backend, self.store.options, name))
            stopped = asyncio.create_task(self.stopping.wait())
            self._waiting_for = f"waiting for stream {name!r} (created by its first append)"
            try:
                await asyncio.wait([waiting, stopped], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if not waiting.done():
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting
            if not waiting.done() or waiting.cancelled():
                return False
            error = waiting.exception()
            if error is None:
                info = waiting.result()
                if info.type is not StreamType.PERSISTENT:
                    raise StreamTypeError(f"{info.name!r} is a queue: consumer groups read persistent streams")
                self._waiting_for = None
                return True
            await self._wait_out(error, backoff)
        return False

    async def _wait_out(self, error: BaseException, backoff: RetryBackoff) -> None:
        """A transient failure: not ready, logged, a pause (cut short by stop()); anything else is raised."""
        if not is_transient(error):
            raise error
        delay = backoff.next_delay()
        self._waiting_for = f"database unavailable, retrying: {error}"
        logger.warning("the database is unavailable (retrying in %.1f s): %s", delay, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def _consume_until_stopped(self) -> None:
        """Consume (and deliver redrives) until stopped. A consumption that ends on a transient
        failure the member did not wait out itself is started again after a pause."""
        redrive_task = asyncio.create_task(self._drain_redrives(), name=f"sluice-redrive-{self.settings.group_id}")
        backoff = RetryBackoff()
        try:
            while not self.stopping.is_set():
                self._consume_task = asyncio.create_task(
                    self._consume(), name=f"sluice-consume-{self.settings.group_id}"
                )
                try:
                    await self._consume_task
                except asyncio.CancelledError:
                    if not self.stopping.is_set():
                        raise
                    break
                except Exception as error:
                    self._consumption = None
                    await self._wait_out(error, backoff)
                    continue
                break
        finally:
            self._consume_ended.set()
            await redrive_task

    async def readiness(self) -> tuple[bool, str]:
        """Ready: consuming (the member heartbeats and reads), not stopping, and the database answers."""
        if self.stopping.is_set():
            return False, "stopping"
        if self._waiting_for is not None:
            return False, self._waiting_for
        if self._consumption is None:
            return False, "not consuming yet"
        health = self._consumption.health
        if not health.ready:
            return False, health.reason
        try:
            await asyncio.wait_for(self.store.get_stream(self.settings.stream_name), READINESS_TIMEOUT_SECONDS)
        except (SluiceError, OSError, TimeoutError) as error:
            return False, f"database unavailable: {error}"
        return True, f"consuming partitions {list(self._consumption.partitions)}"

    async def _consume(self) -> None:
        settings = self.settings
        consumption = self.store.consumer_groups().consume(
            settings.stream_name,
            group_id=settings.group_id,
            consumer_id=settings.consumer_id,
            options=settings.options,
        )
        self._consumption = consumption
        self._closing = False  # a consumption started again after a failure can be stopped like the first
        logger.info(
            "joining group %s of stream %s as %s", settings.group_id, settings.stream_name, settings.consumer_id
        )
        finished_cleanly = False
        try:
            async for event in consumption:
                self._in_flight = True
                done = await self._process(event)
                self._in_flight = False
                self._owned_partitions.set(len(consumption.partitions))
                if not done or self.stopping.is_set():
                    finished_cleanly = done
                    break
            else:
                finished_cleanly = True
        finally:
            self._in_flight = False
            self._closing = True  # committing and leaving: a stop() now must not cancel that
            await consumption.aclose(processed=finished_cleanly)

    async def _process(self, event: ConsumedEvent) -> bool:
        """Deliver one event (dead-lettering it if need be). False if abandoned because stopping."""
        started = time.monotonic()
        with (
            correlation_context(event.correlation_id),
            delivery_span(
                event.stream_name,
                group_id=self.settings.group_id,
                partition=event.partition,
                offset=event.offset,
                correlation_id=event.correlation_id,
            ),
        ):
            async with self._delivering:
                outcome = await deliver_with_retries(
                    self.delivery,
                    event,
                    self.settings.retry,
                    stopping=self.stopping,
                    describe=f"{event.stream_name}/{event.partition}/{event.offset} ({event.event_type})",
                )
        if outcome.abandoned:
            self._failures_counter.inc(outcome.attempts)
            logger.info(
                "abandoned %s/%d at offset %d: it will be delivered again",
                event.stream_name,
                event.partition,
                event.offset,
            )
            return False
        self._delivery_seconds.observe(time.monotonic() - started)
        if outcome.delivered:
            self._failures_counter.inc(outcome.attempts - 1)
            self._delivered_counter.inc()
            self.delivered += 1
            if self.settings.worker_commits_each_event:
                await self._commit(event)
            return True
        self._failures_counter.inc(outcome.attempts)
        await self._dead_letter(event, outcome)
        if self.settings.options.commit_strategy is OffsetCommitStrategy.MANUAL:
            await self._commit(event)  # commit past it: nobody else will
        return True

    async def _dead_letter(self, event: ConsumedEvent, outcome: DeliveryOutcome) -> None:
        await self._dead_letters.write(event, FailedDelivery.from_outcome(outcome))
        self._dead_lettered_counter.inc()
        self.dead_lettered += 1
        logger.warning(
            "dead-lettered %s/%d at offset %d to %s after %d attempts: %s",
            event.stream_name,
            event.partition,
            event.offset,
            self.settings.dead_letter_stream,
            outcome.attempts,
            outcome.error,
        )

    @staticmethod
    async def _commit(event: ConsumedEvent) -> None:
        try:
            await event.commit()
        except FencedError as error:
            logger.info("commit of offset %d fenced (%s); the new owner delivers it again", event.offset, error)

    async def _drain_redrives(self) -> None:
        """Deliver the group's redriven dead letters, one at a time, until the consumption ends."""
        settings = self.settings
        while not self._consume_ended.is_set():
            claim: RedriveClaim | None = None
            if self._consumption is not None and not self.stopping.is_set():
                try:
                    claim = await self._group_dead_letters.claim_redrive(
                        settings.stream_name,
                        settings.group_id,
                        consumer_id=settings.consumer_id,
                        lease=settings.redrive_lease,
                    )
                except SluiceError as error:  # the database is away: look again later
                    logger.warning("could not look for redriven dead letters: %s", error)
            if claim is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._consume_ended.wait(), timeout=settings.redrive_poll_interval)
                continue
            try:
                await self._redrive(claim)
            except SluiceError as error:  # completing, failing or releasing it failed: the lease ends it
                logger.warning("redrive of dead letter %d failed: %s", claim.dead_letter.dead_letter_id, error)

    async def _redrive(self, claim: RedriveClaim) -> None:
        letter = claim.dead_letter
        event = RedrivenEvent(letter)
        describe = (
            f"redriven dead letter {letter.dead_letter_id} ({letter.stream_name}/{letter.partition}/{letter.offset})"
        )
        with (
            correlation_context(event.correlation_id),
            delivery_span(
                event.stream_name,
                group_id=self.settings.group_id,
                partition=event.partition,
                offset=event.offset,
                correlation_id=event.correlation_id,
            ),
        ):
            async with self._delivering:
                outcome = await deliver_with_retries(
                    self.delivery, event, self.settings.retry, stopping=self.stopping, describe=describe
                )
        dead_letters = self._group_dead_letters
        if outcome.abandoned:
            self._failures_counter.inc(outcome.attempts)
            await dead_letters.release_redrive(claim)
            logger.info("abandoned %s: another member (or the next start) delivers it", describe)
            return
        if outcome.delivered:
            self._failures_counter.inc(outcome.attempts - 1)
            self._redrives_counter.inc()
            self.redrives_delivered += 1
            if not await dead_letters.complete_redrive(claim):
                logger.warning("%s was delivered, but its claim had run out: it may be delivered again", describe)
            else:
                logger.info("delivered %s", describe)
            return
        self._failures_counter.inc(outcome.attempts)
        self._dead_lettered_counter.inc()
        self.dead_lettered += 1
        await dead_letters.fail_redrive(claim, FailedDelivery.from_outcome(outcome))
        logger.warning("%s failed again after %d attempts: %s", describe, outcome.attempts, outcome.error)
