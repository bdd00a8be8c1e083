"""One member of a consumer group: joins, heartbeats, fetches its partitions, delivers events and
commits offsets according to its strategy. Backend-agnostic: it talks to ConsumerGroupBackend.

Delivery is at least once. An event counts as processed when the consumer asks for the next one;
only processed events are committed. A member that loses a partition (rebalance, expired session,
forced reset) stops delivering it at once, and its commits for it are refused (FencedError).
On a stream with QUEUE delivery semantics the member delivers claims instead (queue_delivery.py).

The member outlives its database: joins, heartbeats, page reads and the automatic commits wait out
transient failures (``transient.py``: the database restarting, unreachable, out of connections) with
backoff and resume by themselves; ``health`` says why the member is not consuming meanwhile. A
heartbeat that fails for any other reason (the stream was deleted, a newer process took this
consumer id over: DuplicateConsumerError) ends the consumption with that error: the member never
goes on delivering without a live heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.consumers.backend import group_signal_key
from sluice.consumers.consumed import ConsumedBatch, ConsumedEvent
from sluice.consumers.model import Assignment, Heartbeat, OwnedPartition, PartitionCommit
from sluice.consumers.options import ConsumerGroupOptions, OffsetCommitStrategy, TruncationPolicy
from sluice.consumers.queue_delivery import QueueDelivery
from sluice.consumers.stream_wait import wait_for_stream
from sluice.consumers.transient import RetryBackoff, is_transient
from sluice.consumers.truncation import Truncation, announce
from sluice.consumers.waiting import wait_either
from sluice.errors import ConsumerTruncatedError, FencedError, SluiceError, StreamTypeError
from sluice.events import EventRow
from sluice.observability.metrics import GroupRecorder, seconds_since
from sluice.streams import DeliverySemantics, StreamType

if TYPE_CHECKING:
    from sluice.store import EventStore

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class MemberHealth:
    """Whether a member is consuming (what the readiness of a worker reports) and why not."""

    ready: bool
    reason: str


@dataclasses.dataclass(slots=True)
class MemberStats:
    """Counters of one member, for tests, metrics and the curious."""

    delivered: int = 0
    commits: int = 0
    committed_events: int = 0
    rebalances: int = 0
    fenced: int = 0
    truncations: int = 0
    """Times retention had pruned events the group had not consumed (see truncation.py)."""


class GroupMember:
    """Runs one member's loop; ``events()`` is the async iterator ``reader.consume`` returns."""

    def __init__(
        self,
        store: EventStore,
        *,
        stream_name: str,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions,
    ) -> None:
        self.store = store
        self.stream_name = stream_name
        self.group_id = group_id
        self.consumer_id = consumer_id
        self.options = options
        self.instance_id = uuid.uuid4().hex
        self.stats = MemberStats()
        self.recorder = GroupRecorder(stream_name, group_id)
        """Prometheus: events consumed, delivery latency and rebalances of this group."""
        self._owned: dict[int, OwnedPartition] = {}
        self._positions: dict[int, int] = {}
        self._processed: dict[int, int] = {}
        self._generation: int | None = None
        self._expelled = False
        self._last_poll = time.monotonic()
        self._last_commit = time.monotonic()
        """When the PERIODIC strategy last committed."""
        self.in_flight_batch: tuple[int, int] | None = None
        """(partition, epoch or, for QUEUE delivery, claim id) of the batch being delivered."""
        self.in_flight_offset = -1
        """The offset of the event the consumer is processing right now, -1 when none (a partition
        is not handed over mid-event)."""
        self._ownership_changes = 0
        """Bumped whenever ownership or positions change outside the delivery loop, which then
        re-checks the batch it delivers (instead of checking ownership for every event)."""
        self._prefetch: asyncio.Task[_Page | None] | None = None
        self._commit_due = False
        """AFTER_BATCH: a batch was processed and its commit is to be sent."""
        self._commit_in_flight: asyncio.Task[None] | None = None
        """AFTER_BATCH: the commit sent in the background, on its own statement (one at a time)."""
        self._assignment_changed = asyncio.Event()
        """Set when a heartbeat changes what this member owns, to wake its delivery loop (which
        may have looked, found nothing, and gone to wait just before the heartbeat answered)."""
        self._queue: QueueDelivery | None = None
        """Set when the stream has QUEUE delivery semantics."""
        self._heartbeat_lock = asyncio.Lock()
        self._next_partition = 0
        self.group_signal = group_signal_key(stream_name, group_id)
        self.truncations: list[Truncation] = []
        """Every truncation this member found, oldest first (see truncation.py)."""
        self._pending_truncations: dict[int, Truncation] = {}
        """Per partition, the truncation the next batch delivered of it carries."""
        self._failure: BaseException | None = None
        """Why the heartbeat stopped for good; the delivery loop raises it."""
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._joined = False
        self._last_heartbeat_ok = 0.0
        """time.monotonic() of the last heartbeat the group answered."""
        self._unavailable: dict[str, str] = {}
        """Activities (join, heartbeat, read, commit) failing on a transient error now, and why."""
        self._unavailable_since: float | None = None
        self._read_backoff = RetryBackoff()

    # ----------------------------------------------------------------- membership

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member owns now (QUEUE delivery: holds claims in)."""
        if self._queue is not None:
            return self._queue.partitions
        return tuple(sorted(self._owned))

    @property
    def expelled(self) -> bool:
        """The group expelled this member (stuck past max_poll_interval); it rejoins on its next poll."""
        return self._expelled

    @property
    def health(self) -> MemberHealth:
        """Consuming, or why not: joining, waiting out the database (and since when), or stopped."""
        if self._failure is not None:
            return MemberHealth(False, f"stopped: {self._failure}")
        if self._unavailable:
            since = time.monotonic() - (self._unavailable_since or time.monotonic())
            reasons = "; ".join(f"{activity}: {reason}" for activity, reason in sorted(self._unavailable.items()))
            return MemberHealth(False, f"database unavailable for {since:.0f} s, retrying ({reasons})")
        if not self._joined:
            return MemberHealth(False, "joining the group")
        if self._session_lapsed():
            return MemberHealth(False, "no heartbeat answered within the session timeout; rejoining")
        return MemberHealth(True, f"consuming partitions {list(self.partitions)}")

    def _session_lapsed(self) -> bool:
        """No heartbeat was answered for a whole session: the group may have given our partitions away."""
        return time.monotonic() - self._last_heartbeat_ok > self.options.session_timeout.total_seconds()

    def _unavailable_for(self, activity: str, error: BaseException) -> None:
        """A transient failure of ``activity``: logged when it starts, shown by ``health``."""
        if activity not in self._unavailable:
            logger.warning(
                "consumer %s of group %s: %s failed, the database is unavailable (retrying with backoff): %s",
                self.consumer_id,
                self.group_id,
                activity,
                error,
            )
        self._unavailable[activity] = f"{type(error).__name__}: {error}"
        if self._unavailable_since is None:
            self._unavailable_since = time.monotonic()

    def _available_for(self, activity: str) -> None:
        if self._unavailable.pop(activity, None) is None or self._unavailable:
            return
        if self._unavailable_since is not None:
            logger.warning(
                "consumer %s of group %s: the database answers again after %.1f s; consuming",
                self.consumer_id,
                self.group_id,
                time.monotonic() - self._unavailable_since,
            )
        self._unavailable_since = None

    def _fail(self, error: BaseException) -> None:
        """The heartbeat cannot go on: stop delivering, and let the delivery loop raise ``error``."""
        logger.error("consumer %s of group %s stops: %s", self.consumer_id, self.group_id, error)
        self._failure = error
        self._owned = {}
        self._positions.clear()
        self._ownership_changes += 1
        self._assignment_changed.set()

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        task = self._keep_alive_task
        if task is not None and task.done() and not task.cancelled():
            self._fail(RuntimeError(f"the heartbeat of consumer {self.consumer_id!r} ended"))
            raise self._failure  # type: ignore[misc]

    def polled(self) -> None:
        """The consumer asked for events now (max_poll_interval counts from here)."""
        self._last_poll = time.monotonic()

    async def heartbeat(self, *, leaving: bool = False, joining: bool = False) -> Assignment:
        """Tell the group this member is alive (or leaving, or joining) and adopt the assignment it
        answers. Partitions the group asks to hand over are committed (automatic strategies) and
        released right away."""
        async with self._heartbeat_lock:
            assignment = await self._send_heartbeat(leaving=leaving, released=(), joining=joining)
            for _ in range(3):
                releasing = self._adopt(assignment)
                if not releasing or leaving:
                    break
                pending = {
                    partition: self._processed[partition] for partition in releasing if partition in self._processed
                }
                # MANUAL members commit only what the consumer commits: the rest is redelivered.
                if pending and self.options.commit_strategy is not OffsetCommitStrategy.MANUAL:
                    await self._settle_commits()  # an older commit in flight must not land after this one
                    with contextlib.suppress(FencedError):
                        await self.commit_offsets(pending)
                assignment = await self._send_heartbeat(leaving=False, released=tuple(releasing))
            return assignment

    async def _send_heartbeat(self, *, leaving: bool, released: tuple[int, ...], joining: bool = False) -> Assignment:
        heartbeat = Heartbeat(
            consumer_id=self.consumer_id,
            instance_id=self.instance_id,
            session_timeout=self.options.session_timeout,
            max_poll_interval=self.options.max_poll_interval,
            since_last_poll=timedelta(seconds=time.monotonic() - self._last_poll),
            leaving=leaving,
            released=released,
            joining=joining,
        )
        assignment = await self.store._group_heartbeat(
            self.stream_name, self.group_id, heartbeat, self.options.start_position
        )
        self._last_heartbeat_ok = time.monotonic()
        if assignment.replaced_live_instance:
            logger.warning(
                "consumer %s of group %s took its consumer id over from another instance that was still in its "
                "session: a restart, or a second process with this id (that one is fenced and stops with "
                "DuplicateConsumerError at its next heartbeat)",
                self.consumer_id,
                self.group_id,
            )
        return assignment

    def _in_flight_partition(self) -> int | None:
        batch = self.in_flight_batch
        return batch[0] if batch is not None and self.in_flight_offset >= 0 else None

    def _adopt(self, assignment: Assignment) -> list[int]:
        """Take the assignment; return the partitions to hand over (already no longer delivered)."""
        new = {owned.partition: owned for owned in assignment.partitions}
        if new != self._owned:
            self._ownership_changes += 1
            self._assignment_changed.set()
        in_flight = self._in_flight_partition()
        for partition, owned in self._owned.items():
            if partition not in new or new[partition].epoch != owned.epoch:
                self._positions.pop(partition, None)
                self._processed.pop(partition, None)
        releasing = []
        for partition, owned in new.items():
            if owned.releasing:
                self._positions.pop(partition, None)
                if partition != in_flight:  # else released once that event is processed
                    releasing.append(partition)
            elif partition not in self._positions or self._owned.get(partition, owned).epoch != owned.epoch:
                self._positions[partition] = owned.committed_offset
                self._processed.pop(partition, None)
        if self._generation is not None and assignment.generation != self._generation:
            self.stats.rebalances += 1
            self.recorder.rebalanced()
        self._owned = new
        self._generation = assignment.generation
        self._expelled = assignment.expelled
        if self._queue is not None:
            self._queue.adopt_epochs(assignment.partition_epochs)
            if assignment.expelled:
                self._queue.drop_all()
        if assignment.expelled:
            logger.warning(
                "consumer %s of group %s was stuck longer than max_poll_interval and lost its partitions",
                self.consumer_id,
                self.group_id,
            )
        return releasing

    async def _keep_alive(self) -> None:
        """Heartbeat every interval (and at once when the group changes) until cancelled. Transient
        failures are retried with backoff, never more than an interval apart, so the member rejoins
        as soon as the database answers (after an outage longer than its session too: the group
        then hands it partitions again); any other failure stops the member (``_fail``)."""
        interval = self.options.effective_heartbeat_interval.total_seconds()
        signals = self.store._signals
        backoff = RetryBackoff(maximum=max(interval, 0.05))
        pause = interval
        try:
            while True:
                ticket = signals.ticket(self.group_signal)
                await signals.wait(ticket, pause)
                try:
                    await self.heartbeat()
                except Exception as error:
                    if not is_transient(error):
                        raise
                    self._unavailable_for("heartbeat", error)
                    pause = backoff.next_delay()
                else:
                    self._available_for("heartbeat")
                    backoff.reset()
                    pause = interval
        except asyncio.CancelledError:
            raise
        except Exception as error:  # whatever it is, the delivery loop raises it
            self._fail(error)

    # ----------------------------------------------------------------- commits

    async def commit_event(self, partition: int, offset: int, epoch: int) -> None:
        """Commit up to and including one delivered event (``event.commit()``)."""
        if self._queue is not None:
            await self._queue.commit_event(epoch, offset)
        else:
            await self.commit_offsets({partition: offset + 1}, epochs={partition: epoch})

    async def commit_offsets(self, offsets: dict[int, int], *, epochs: dict[int, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}``; FencedError for partitions not owned, or
        (with ``epochs``, the ownership an event was delivered under) owned under another epoch.
        QUEUE delivery: acknowledges this member's claims in each partition below the offset."""
        if self._queue is not None:
            await self._queue.commit_offsets(offsets)
            return
        not_owned = tuple(
            sorted(
                partition
                for partition in offsets
                if partition not in self._owned
                or (
                    epochs is not None
                    and epochs.get(partition, self._owned[partition].epoch) != self._owned[partition].epoch
                )
            )
        )
        if not_owned:
            raise FencedError(
                f"consumer {self.consumer_id!r} does not own partition(s) {list(not_owned)} of group "
                f"{self.group_id!r}; nothing was committed",
                not_owned,
            )
        commits = [
            PartitionCommit(partition, (epochs or {}).get(partition, self._owned[partition].epoch), offset)
            for partition, offset in offsets.items()
        ]
        try:
            await self.store._group_commit(self.stream_name, self.group_id, self.consumer_id, commits)
        except FencedError as error:
            self._lose(error.partitions)
            raise
        self._record_commits(commits)

    def _record_commits(self, commits: Sequence[PartitionCommit]) -> None:
        """Commits that were applied: what they covered no longer waits to be committed."""
        self.stats.commits += 1
        for commit in commits:
            if self._processed.get(commit.partition, -1) <= commit.offset:
                self._processed.pop(commit.partition, None)
            self.stats.committed_events += 1 if commit.offset else 0

    def _lose(self, partitions: Sequence[int]) -> None:
        """Commits for ``partitions`` were fenced: this member no longer owns them; rejoin now."""
        self.stats.fenced += 1
        self._ownership_changes += 1
        for partition in partitions:
            self._owned.pop(partition, None)
            self._positions.pop(partition, None)
            self._processed.pop(partition, None)
        self.store._signals.fire(self.group_signal)  # rejoin now, not at the next heartbeat

    async def _settle_commits(self) -> None:
        """Wait for the commit sent in the background, if any (it reports its own outcome)."""
        task = self._commit_in_flight
        if task is not None:
            await asyncio.wait([task])
            if self._commit_in_flight is task:  # the delivery loop may have sent the next one meanwhile
                self._commit_in_flight = None

    async def _send_due_commits(self) -> None:
        """AFTER_BATCH: send the commit of the batch just processed, in the background, on a
        statement of its own (a commit waits for the WAL flush; the next read should not wait
        with it). One commit per batch, one in flight at a time, so they land in order: the
        member waits only if the previous one has not landed by the time the next is due."""
        commits = self._due_commits()
        if commits:
            await self._settle_commits()
            self._commit_in_flight = asyncio.create_task(self._commit_in_background(commits))

    async def _commit_in_background(self, commits: list[PartitionCommit]) -> None:
        """Commit; fenced partitions are dropped (their new owner redelivers), a failed commit is
        logged (its events are delivered again: at least once)."""
        applied = commits
        try:
            await self.store._group_commit(self.stream_name, self.group_id, self.consumer_id, commits)
        except FencedError as error:
            self._lose(error.partitions)
            logger.info(
                "commit of %s fenced for partitions %s; they will be redelivered", self.consumer_id, error.partitions
            )
            applied = [commit for commit in commits if commit.partition not in error.partitions]
        except Exception as error:
            if not isinstance(error, SluiceError) and not is_transient(error):
                self._fail(error)  # a bug, not the database: the delivery loop raises it
                return
            logger.warning("commit of %s failed; its events will be delivered again: %s", self.consumer_id, error)
            return
        if applied:
            self._record_commits(applied)

    async def _finish_commit(self) -> None:
        """QUEUE delivery: wait for the acknowledgement sent in the background, if any."""
        if self._queue is not None:
            await self._queue.finish_pending()

    async def commit_processed(self, *, retry: bool = True) -> None:
        """Commit everything processed and not yet committed (the automatic strategies). With
        ``retry``, a transient failure is retried with backoff until the commit lands, is fenced, or
        the member stops."""
        backoff = RetryBackoff()
        while True:
            try:
                await self._commit_processed_once()
            except Exception as error:
                if not retry or not is_transient(error):
                    raise
                self._unavailable_for("commit", error)
                self.raise_if_failed()
                await asyncio.sleep(backoff.next_delay())
            else:
                self._available_for("commit")
                return

    async def _commit_processed_once(self) -> None:
        if self._queue is not None:
            await self._queue.acknowledge_processed()
            return
        pending = {partition: offset for partition, offset in self._processed.items() if partition in self._owned}
        if not pending:
            return
        try:
            await self.commit_offsets(pending)
        except FencedError as error:
            logger.info(
                "commit of %s fenced for partitions %s; they will be redelivered", self.consumer_id, error.partitions
            )

    # ----------------------------------------------------------------- delivery

    async def _join(self) -> asyncio.Task[None]:
        """Check the stream (waiting for it to be created, when it is auto-created), join the group,
        and start heartbeating (the task returned). Transient failures are retried with backoff."""
        backoff = RetryBackoff()
        while True:
            try:
                info = await wait_for_stream(self.store, self.stream_name)
                if info.type is not StreamType.PERSISTENT:
                    raise StreamTypeError(f"{info.name!r} is a queue: consumer groups read persistent streams")
                if info.delivery is DeliverySemantics.QUEUE and self._queue is None:
                    self._queue = QueueDelivery(self)
                await self.heartbeat(joining=True)
            except Exception as error:
                if not is_transient(error):
                    raise
                self._unavailable_for("join", error)
                await asyncio.sleep(backoff.next_delay())
            else:
                self._available_for("join")
                break
        self._joined = True
        self._keep_alive_task = asyncio.create_task(self._keep_alive(), name=f"sluice-heartbeat-{self.consumer_id}")
        return self._keep_alive_task

    async def batches(self, *, per_event: bool = False) -> AsyncGenerator[ConsumedBatch, None]:
        """Join, then deliver batches until the consumer stops; commit and leave on the way out.

        This is the one delivery loop, for both APIs: ``reader.consume_batches`` iterates it
        directly, and ``events()`` (``per_event=True``) delivers each batch an event at a time and
        marks the events processed itself. Per batch: the page read ahead of time is taken (and the
        one after it requested), it is delivered, and its commit becomes due. A whole batch counts
        as processed when the next one is requested."""
        keep_alive = await self._join()
        try:
            if self._queue is not None:
                async with contextlib.aclosing(self._queue.batches(per_event=per_event)) as claimed:
                    async for batch in claimed:
                        yield batch
                return
            after_batch = self.options.commit_strategy is OffsetCommitStrategy.AFTER_BATCH
            self._last_commit = time.monotonic()
            while True:
                page = await self._next_page()
                if page is None or not self._still_delivering(page.partition, page.epoch, page.start):
                    continue  # nothing to deliver, or ownership moved while the page was read
                if page.rows[0][0] != page.start:  # retention pruned the events from page.start on
                    page = await self._skip_truncated(page)
                    if page is None:
                        continue
                batch = ConsumedBatch(
                    self,
                    page.partition,
                    page.epoch,
                    page.start,
                    page.rows,
                    truncation=self._pending_truncations.pop(page.partition, None),
                )
                self.in_flight_batch = (page.partition, page.epoch)
                if per_event:
                    yield batch
                else:
                    version = self._ownership_changes
                    self.stats.delivered += len(page.rows)
                    self.in_flight_offset = batch.last_offset  # the whole batch is in the consumer's hands
                    yield batch
                    self.in_flight_offset = -1
                    await self._batch_processed(batch, page.epoch, version)
                self.in_flight_batch = None
                if after_batch:
                    # The commit is sent in the background when the next page is taken, while
                    # the consumer works through it; one at a time, so commits land in order,
                    # and leaving waits for the last one.
                    self._commit_due = True
        finally:
            await self._shutdown(keep_alive)

    async def _batch_processed(self, batch: ConsumedBatch, epoch: int, version: int) -> None:
        """The consumer asked for the batch after ``batch``: all of it is processed (unless the
        partition was lost meanwhile; one being handed over is released now)."""
        partition, next_offset = batch.partition, batch.next_offset
        if self._ownership_changes != version and not self._goes_on_after(partition, epoch, next_offset - 1):
            return
        self._processed[partition] = self._positions[partition] = next_offset
        await self.commit_if_due()

    async def events(self) -> AsyncGenerator[ConsumedEvent, None]:
        """Join, then deliver events until the consumer stops; commit and leave on the way out.

        The batches of ``batches(per_event=True)`` are delivered here an event at a time; the
        per-event work is written out inline rather than in a generator this one would drive
        (each generator layer costs every event a hand-off): one object and one ownership-version
        check per event."""
        commits_each = self.options.commit_strategy in (OffsetCommitStrategy.AFTER_EACH, OffsetCommitStrategy.PERIODIC)
        stream_name = self.stream_name
        stats = self.stats
        processed = self._processed
        positions = self._positions
        async with contextlib.aclosing(self.batches(per_event=True)) as batches:
            async for batch in batches:
                if self._queue is not None:
                    async with contextlib.aclosing(self._queue.events_of(batch)) as claimed:
                        async for event in claimed:
                            yield event
                    continue
                partition = batch.partition
                epoch = batch._token
                offset = batch.first_offset
                version = self._ownership_changes
                for row in batch._rows:
                    if self._ownership_changes != version:
                        if not self._still_delivering(partition, epoch, offset):
                            break  # revoked, reset or moved while this batch was in flight
                        version = self._ownership_changes
                    offset = row[0]
                    stats.delivered += 1
                    self.in_flight_offset = offset
                    yield ConsumedEvent(row, stream_name, partition, self, epoch)
                    self.in_flight_offset = -1
                    # Processed: the fast path inline (no coroutine per event); commits when due.
                    if self._ownership_changes != version:
                        if not self._goes_on_after(partition, epoch, offset):
                            break
                        version = self._ownership_changes
                    offset += 1
                    processed[partition] = offset
                    positions[partition] = offset
                    if commits_each:
                        await self.commit_if_due()

    async def _shutdown(self, keep_alive: asyncio.Task[None]) -> None:
        await self._stop_prefetch()
        keep_alive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keep_alive
        await self._leave()

    def _goes_on_after(self, partition: int, epoch: int, offset: int) -> bool:
        """After the consumer processed the event at ``offset`` while ownership changed somewhere:
        whether the batch goes on. A partition lost meanwhile is not committed (the new owner
        redelivers the event); one being handed over counts the event and is released now."""
        current = self._owned.get(partition)
        if current is None or current.epoch != epoch:
            return False
        if current.releasing:
            self._processed[partition] = offset + 1
            self.store._signals.fire(self.group_signal)
            return False
        return True

    async def _leave(self) -> None:
        """Commit what was processed and leave, one attempt each: a member that stops while the
        database is away does not wait for it (its session expires; the uncommitted is redelivered)."""
        if self._failure is not None:
            return  # fenced for good (or the heartbeat failed): nothing of ours to commit or leave
        try:
            await self._finish_commit()
            if self.options.commit_strategy is not OffsetCommitStrategy.MANUAL:
                await self.commit_processed(retry=False)
            await self.heartbeat(leaving=True)
        except FencedError as error:
            logger.warning("consumer %s could not leave cleanly: %s", self.consumer_id, error)
        except Exception as error:
            if not is_transient(error):
                raise
            logger.warning("consumer %s could not leave cleanly (its session will expire): %s", self.consumer_id, error)

    def confirm_in_flight(self) -> None:
        """The consumer finished the event it holds and is stopping cleanly: count it as processed,
        so the commit on the way out includes it."""
        if self.in_flight_batch is None or self.in_flight_offset < 0:
            return
        (partition, epoch), offset = self.in_flight_batch, self.in_flight_offset
        if self._queue is not None:
            self._queue.confirm(epoch, offset)
            return
        current = self._owned.get(partition)
        if current is not None and current.epoch == epoch:
            self._processed[partition] = offset + 1

    async def commit_if_due(self) -> None:
        """After an event (a batch, when delivering batches): commit now if the strategy says so."""
        strategy = self.options.commit_strategy
        if strategy is OffsetCommitStrategy.AFTER_EACH:
            await self.commit_processed()
        elif (
            strategy is OffsetCommitStrategy.PERIODIC
            and time.monotonic() - self._last_commit >= self.options.commit_interval.total_seconds()
        ):
            await self.commit_processed()
            self._last_commit = time.monotonic()

    def _still_delivering(self, partition: int, epoch: int, offset: int) -> bool:
        """Whether the batch may go on at ``offset`` after ownership changed somewhere."""
        owned = self._owned.get(partition)
        return owned is not None and owned.epoch == epoch and self._positions.get(partition) == offset

    async def _next_page(self) -> _Page | None:
        """The next page to deliver (None after waiting for events, a rebalance, or the database);
        requests the page after it ahead of time (AFTER_BATCH: and sends the commit of the batch
        just processed). Raises what stopped the heartbeat for good."""
        self.raise_if_failed()
        signals = self.store._signals
        stream_ticket = signals.ticket(self.stream_name)
        group_ticket = signals.ticket(self.group_signal)
        self._assignment_changed.clear()
        self._last_poll = time.monotonic()
        if self.options.commit_strategy is OffsetCommitStrategy.PERIODIC:
            await self.commit_if_due()
        if self._session_lapsed():
            # No heartbeat answered for a session: the group may have moved our partitions. Deliver
            # nothing until one is answered (it says what we own); the heartbeat task retries.
            await self._stop_prefetch()
            await wait_either(group_ticket, self._assignment_changed, seconds=self._retry_pause())
            return None
        try:
            if self._expelled:
                await self.heartbeat()
            page = await self._take_prefetched()
            await self._send_due_commits()
            if page is None:
                page = await self._fetch_next()
        except Exception as error:
            await self.wait_out_read_failure(error)
            return None
        self.read_succeeded()
        if page is None:
            await wait_either(
                stream_ticket,
                group_ticket,
                self._assignment_changed,
                seconds=self.store.options.poll_interval.total_seconds(),
            )
            return None
        owned = sorted(self._positions)
        if page.partition in owned:
            self._next_partition = owned[(owned.index(page.partition) + 1) % len(owned)]
        # Read the page after this one while the consumer works through this one.
        next_position = int(page.rows[-1][0]) + 1  # not start + len(rows): retention may have pruned from start on
        self._prefetch = asyncio.create_task(self._fetch_next(assume=(page.partition, next_position)))
        if page.rows:
            self.recorder.consumed(len(page.rows), seconds_since(page.rows[0][8]))
        # Let the read ahead send its query now. A consumer that works through a page without
        # awaiting anything real never gives the event loop a turn, so without this the task would
        # only start when the page is done, and the database would idle while the consumer works.
        await asyncio.sleep(0)
        return page

    async def wait_out_read_failure(self, error: Exception) -> None:
        """A read (or claim) failed: wait before the next one if the failure is transient, else raise it."""
        if not is_transient(error):
            raise error
        self._unavailable_for("read", error)
        await wait_either(self._assignment_changed, seconds=self._read_backoff.next_delay())

    def read_succeeded(self) -> None:
        if self._read_backoff.failures:
            self._read_backoff.reset()
        self._available_for("read")

    def _retry_pause(self) -> float:
        return min(self.store.options.poll_interval.total_seconds(), 1.0)

    async def _skip_truncated(self, page: _Page) -> _Page | None:
        """The page starts past the position it was read from: retention pruned the events in
        between before this group consumed them. Apply ``on_truncation``: earliest delivers the page
        from its first event, latest moves to the head (committed by the automatic strategies), fail
        raises ConsumerTruncatedError (see ``note_truncation``)."""
        policy = self.options.on_truncation
        first = int(page.rows[0][0])
        resumed_at = first
        if policy is TruncationPolicy.LATEST:
            info = await self.store.get_stream(self.stream_name)
            resumed_at = max(info.partition_heads[page.partition].head, first)
        truncation = self.note_truncation(
            page.partition, expected_offset=page.start, first_offset=first, resumed_at=resumed_at
        )
        if not self._still_delivering(page.partition, page.epoch, page.start):
            return None  # ownership moved while the head was looked up
        self._pending_truncations[page.partition] = truncation
        self._positions[page.partition] = resumed_at
        if policy is TruncationPolicy.LATEST:
            self._processed[page.partition] = resumed_at
            return None
        return _Page(page.partition, page.epoch, first, page.rows)

    def note_truncation(
        self, partition: int, *, expected_offset: int, first_offset: int, resumed_at: int
    ) -> Truncation:
        """Record a truncation (kept, counted, logged); raise ConsumerTruncatedError under the fail policy."""
        truncation = Truncation(
            stream_name=self.stream_name,
            group_id=self.group_id,
            partition=partition,
            expected_offset=expected_offset,
            first_offset=first_offset,
            resumed_at=resumed_at,
            policy=self.options.on_truncation,
        )
        self.truncations.append(truncation)
        self.stats.truncations += 1
        announce(truncation)
        if truncation.policy is TruncationPolicy.FAIL:
            raise ConsumerTruncatedError(
                stream_name=self.stream_name,
                group_id=self.group_id,
                partition=partition,
                expected_offset=expected_offset,
                first_offset=first_offset,
            )
        return truncation

    def _due_commits(self) -> list[PartitionCommit]:
        """AFTER_BATCH: the commits of the batches processed and not sent yet. Partitions being
        handed over are left to the handoff, which commits them itself."""
        if not self._commit_due:
            return []
        self._commit_due = False
        owned = self._owned
        return [
            PartitionCommit(partition, owned[partition].epoch, offset)
            for partition, offset in self._processed.items()
            if partition in owned and not owned[partition].releasing
        ]

    async def _take_prefetched(self) -> _Page | None:
        """The page read ahead of time, if it is still what the loop wants next."""
        task, self._prefetch = self._prefetch, None
        if task is None:
            return None
        page = await task
        if page is None or not self._still_delivering(page.partition, page.epoch, page.start):
            return None  # an empty answer is not trusted either: the loop reads again before it waits
        return page

    async def _stop_prefetch(self) -> None:
        """On the way out: the read ahead is cancelled, a commit in flight awaited."""
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as error:  # the read ahead failed: nothing of it was delivered
                if not isinstance(error, SluiceError) and not is_transient(error):
                    raise
        await self._settle_commits()

    async def _fetch_next(self, *, assume: tuple[int, int] | None = None) -> _Page | None:
        """The next page: up to ``batch_size`` events of the first owned partition, in turn from
        the one after the last delivered, that has any; one simple indexed read per page. When
        reading ahead, ``assume`` is (partition, position) of the page being delivered meanwhile."""
        owned = sorted(self._positions)
        start = owned.index(self._next_partition) if self._next_partition in owned else 0
        for step in range(len(owned)):
            partition = owned[(start + step) % len(owned)]
            position = assume[1] if assume is not None and assume[0] == partition else self._positions.get(partition)
            ownership = self._owned.get(partition)
            if position is None or ownership is None:
                continue
            rows = await self.store._read_rows(self.stream_name, partition, position, self.options.batch_size)
            if rows:
                return _Page(partition, ownership.epoch, position, rows)
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Page:
    """Events of one partition to deliver, as read under one ownership epoch."""

    partition: int
    epoch: int
    start: int
    rows: Sequence[EventRow]


__all__ = ["ConsumedBatch", "ConsumedEvent", "GroupMember", "MemberStats"]
"""ConsumedEvent lives in ``consumed.py``; it is also importable from here, where it used to be."""
