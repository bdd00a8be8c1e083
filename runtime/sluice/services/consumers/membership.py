"""A consumer-group member's place in its group: join, heartbeat, rebalance, fencing.

The member joins (waiting for its stream to exist), then heartbeats every interval and at once when
the group changes. Each heartbeat answers the assignment: the partitions the member owns, with
their ownership epochs. Partitions it no longer owns, or owns under a newer epoch (a forced reset),
stop being delivered at once; partitions the group asks it to hand over are committed (automatic
strategies) and released. A member stuck longer than ``max_poll_interval`` is expelled and rejoins
on its next poll. Transient failures are waited out with backoff (see member_health.py); a heartbeat
that fails for any other reason (the stream was deleted, a newer process took this consumer id
over: DuplicateConsumerError) stops the member: it never goes on delivering without a live heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sluice.core.errors import FencedError, StreamTypeError
from sluice.core.streams import StreamInfo, StreamType
from sluice.observability.metrics import GroupRecorder
from sluice.services.consumers.commits import PartitionCommits
from sluice.services.consumers.member_health import Availability
from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.member_storage import MemberStorage
from sluice.services.consumers.transient import RetryBackoff, is_transient
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.store.values.consumer_groups import Assignment, Heartbeat
from sluice.store.values.member_reports import MemberHealth, MemberStats

if TYPE_CHECKING:
    from sluice.services.consumers.queue_delivery import QueueDelivery

logger = logging.getLogger("sluice.services.consumers.member")
"""The member's logger: these messages are the member's, as they always were."""


class Membership:
    """One member's joining, heartbeats and assignment; it adopts what each heartbeat answers."""

    def __init__(
        self,
        *,
        storage: MemberStorage,
        options: ConsumerGroupOptions,
        ownership: Ownership,
        availability: Availability,
        commits: PartitionCommits,
        stats: MemberStats,
        recorder: GroupRecorder,
    ) -> None:
        self._storage = storage
        self._options = options
        self._ownership = ownership
        self._availability = availability
        self._commits = commits
        self._stats = stats
        self._recorder = recorder
        self.instance_id = uuid.uuid4().hex
        """This process's instance of the consumer id (a newer instance fences an older one)."""
        self.claims: QueueDelivery | None = None
        """QUEUE delivery: the member's claims, which a forced reset or an expulsion invalidates."""
        self.joined = False
        self._generation: int | None = None
        self._expelled = False
        self._last_poll = time.monotonic()
        self._last_heartbeat_ok = 0.0
        """time.monotonic() of the last heartbeat the group answered."""
        self._heartbeat_lock = asyncio.Lock()

    @property
    def expelled(self) -> bool:
        """The group expelled this member (stuck past max_poll_interval); it rejoins on its next poll."""
        return self._expelled

    def health(self, partitions: tuple[int, ...]) -> MemberHealth:
        """Consuming ``partitions``, or why not: joining, waiting out the database (and since when), or stopped."""
        availability = self._availability
        if availability.failure is not None:
            return MemberHealth(False, f"stopped: {availability.failure}")
        unavailable = availability.unavailable_health()
        if unavailable is not None:
            return unavailable
        if not self.joined:
            return MemberHealth(False, "joining the group")
        if self.session_lapsed():
            return MemberHealth(False, "no heartbeat answered within the session timeout; rejoining")
        return MemberHealth(True, f"consuming partitions {list(partitions)}")

    def session_lapsed(self) -> bool:
        """No heartbeat was answered for a whole session: the group may have given our partitions away."""
        return time.monotonic() - self._last_heartbeat_ok > self._options.session_timeout.total_seconds()

    def polled(self) -> None:
        """The consumer asked for events now (max_poll_interval counts from here)."""
        self._last_poll = time.monotonic()

    async def join(self, on_stream: Callable[[StreamInfo], None]) -> asyncio.Task[None]:
        """Check the stream (waiting for it to be created, when it is auto-created; ``on_stream`` is
        told what it is), join the group, and start heartbeating (the task returned). Transient
        failures are retried with backoff."""
        backoff = RetryBackoff()
        availability = self._availability
        while True:
            try:
                info = await self._storage.wait_for_stream()
                if info.type is not StreamType.PERSISTENT:
                    raise StreamTypeError(f"{info.name!r} is a queue: consumer groups read persistent streams")
                on_stream(info)
                await self.heartbeat(joining=True)
            except Exception as error:
                if not is_transient(error):
                    raise
                availability.unavailable_for("join", error)
                await asyncio.sleep(backoff.next_delay())
            else:
                availability.available_for("join")
                break
        self.joined = True
        task = asyncio.create_task(self._keep_alive(), name=f"sluice-heartbeat-{self._storage.consumer_id}")
        availability.watch_heartbeat(task)
        return task

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
                processed = self._ownership.processed
                pending = {partition: processed[partition] for partition in releasing if partition in processed}
                # MANUAL members commit only what the consumer commits: the rest is redelivered.
                if pending and self._options.commit_strategy is not OffsetCommitStrategy.MANUAL:
                    await self._commits.settle()  # an older commit in flight must not land after this one
                    with contextlib.suppress(FencedError):
                        await self._commits.commit_offsets(pending)
                assignment = await self._send_heartbeat(leaving=False, released=tuple(releasing))
            return assignment

    async def _send_heartbeat(self, *, leaving: bool, released: tuple[int, ...], joining: bool = False) -> Assignment:
        options = self._options
        heartbeat = Heartbeat(
            consumer_id=self._storage.consumer_id,
            instance_id=self.instance_id,
            session_timeout=options.session_timeout,
            max_poll_interval=options.max_poll_interval,
            since_last_poll=timedelta(seconds=time.monotonic() - self._last_poll),
            leaving=leaving,
            released=released,
            joining=joining,
        )
        assignment = await self._storage.heartbeat(heartbeat, options.start_position)
        self._last_heartbeat_ok = time.monotonic()
        if assignment.replaced_live_instance:
            logger.warning(
                "consumer %s of group %s took its consumer id over from another instance that was still in its "
                "session: a restart, or a second process with this id (that one is fenced and stops with "
                "DuplicateConsumerError at its next heartbeat)",
                self._storage.consumer_id,
                self._storage.group_id,
            )
        return assignment

    def _adopt(self, assignment: Assignment) -> list[int]:
        """Take the assignment; return the partitions to hand over (already no longer delivered)."""
        ownership = self._ownership
        positions, processed = ownership.positions, ownership.processed
        new = {owned.partition: owned for owned in assignment.partitions}
        if new != ownership.owned:
            ownership.changes += 1
            ownership.assignment_changed.set()
        in_flight = ownership.in_flight_partition()
        for partition, owned in ownership.owned.items():
            if partition not in new or new[partition].epoch != owned.epoch:
                positions.pop(partition, None)
                processed.pop(partition, None)
        releasing = []
        for partition, owned in new.items():
            if owned.releasing:
                positions.pop(partition, None)
                if partition != in_flight:  # else released once that event is processed
                    releasing.append(partition)
            elif partition not in positions or ownership.owned.get(partition, owned).epoch != owned.epoch:
                positions[partition] = owned.committed_offset
                processed.pop(partition, None)
        if self._generation is not None and assignment.generation != self._generation:
            self._stats.rebalances += 1
            self._recorder.rebalanced()
        ownership.owned = new
        self._generation = assignment.generation
        self._expelled = assignment.expelled
        if self.claims is not None:
            self.claims.adopt_epochs(assignment.partition_epochs)
            if assignment.expelled:
                self.claims.drop_all()
        if assignment.expelled:
            logger.warning(
                "consumer %s of group %s was stuck longer than max_poll_interval and lost its partitions",
                self._storage.consumer_id,
                self._storage.group_id,
            )
        return releasing

    async def _keep_alive(self) -> None:
        """Heartbeat every interval (and at once when the group changes) until cancelled. Transient
        failures are retried with backoff, never more than an interval apart, so the member rejoins
        as soon as the database answers (after an outage longer than its session too: the group
        then hands it partitions again); any other failure stops the member (``Availability.fail``)."""
        interval = self._options.effective_heartbeat_interval.total_seconds()
        signals = self._storage.signals
        group_signal = self._storage.group_signal
        availability = self._availability
        backoff = RetryBackoff(maximum=max(interval, 0.05))
        pause = interval
        try:
            while True:
                ticket = signals.ticket(group_signal)
                await signals.wait(ticket, pause)
                try:
                    await self.heartbeat()
                except Exception as error:
                    if not is_transient(error):
                        raise
                    availability.unavailable_for("heartbeat", error)
                    pause = backoff.next_delay()
                else:
                    availability.available_for("heartbeat")
                    backoff.reset()
                    pause = interval
        except asyncio.CancelledError:
            raise
        except Exception as error:  # whatever it is, the delivery loop raises it
            availability.fail(error)
