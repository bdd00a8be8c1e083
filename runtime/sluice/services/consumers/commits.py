"""A consumer-group member's commits: when its strategy commits, and the commits of owned partitions.

``CommitSchedule`` applies the strategy (``OffsetCommitStrategy``): MANUAL commits only what the
consumer commits; AFTER_EACH commits after each event (batch); PERIODIC at most every
``commit_interval``; AFTER_BATCH once per batch, sent in the background while the consumer works
through the next one (see ``PartitionCommits.send_due``). The automatic commits wait out transient
failures with backoff until they land, are fenced, or the member stops.

``PartitionCommits`` commits offsets of the partitions a BROADCAST member owns, conditional on the
ownership epoch: a commit for a partition the member no longer owns, or owns under another epoch,
is refused with FencedError, and the member forgets the partition and rejoins at once. (QUEUE
delivery acknowledges claims instead: queue_delivery.py.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sluice.core.errors import FencedError, SluiceError
from sluice.services.consumers.member_health import Availability
from sluice.services.consumers.member_state import Ownership
from sluice.services.consumers.member_storage import MemberStorage
from sluice.services.consumers.transient import RetryBackoff, is_transient
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, OffsetCommitStrategy
from sluice.store.values.consumer_groups import PartitionCommit
from sluice.store.values.member_reports import MemberStats

logger = logging.getLogger("sluice.services.consumers.member")
"""The member's logger: these messages are the member's, as they always were."""


class CommitSchedule:
    """When the member's strategy commits what was processed (``commit_processed_once`` does it)."""

    def __init__(
        self,
        *,
        options: ConsumerGroupOptions,
        availability: Availability,
        commit_processed_once: Callable[[], Awaitable[None]],
    ) -> None:
        self._options = options
        self._availability = availability
        self._commit_processed_once = commit_processed_once
        self._last_commit = time.monotonic()
        """When the PERIODIC strategy last committed."""

    def restart(self) -> None:
        """Delivery starts: the PERIODIC interval counts from now."""
        self._last_commit = time.monotonic()

    async def commit_if_due(self) -> None:
        """After an event (a batch, when delivering batches): commit now if the strategy says so."""
        strategy = self._options.commit_strategy
        if strategy is OffsetCommitStrategy.AFTER_EACH:
            await self.commit_processed()
        elif (
            strategy is OffsetCommitStrategy.PERIODIC
            and time.monotonic() - self._last_commit >= self._options.commit_interval.total_seconds()
        ):
            await self.commit_processed()
            self._last_commit = time.monotonic()

    async def commit_processed(self, *, retry: bool = True) -> None:
        """Commit everything processed and not yet committed (the automatic strategies). With
        ``retry``, a transient failure is retried with backoff until the commit lands, is fenced, or
        the member stops."""
        backoff = RetryBackoff()
        availability = self._availability
        while True:
            try:
                await self._commit_processed_once()
            except Exception as error:
                if not retry or not is_transient(error):
                    raise
                availability.unavailable_for("commit", error)
                availability.raise_if_failed()
                await asyncio.sleep(backoff.next_delay())
            else:
                availability.available_for("commit")
                return


class PartitionCommits:
    """Commits of the partitions one BROADCAST member owns, fenced by their ownership epochs."""

    def __init__(
        self,
        *,
        storage: MemberStorage,
        ownership: Ownership,
        availability: Availability,
        stats: MemberStats,
    ) -> None:
        self._storage = storage
        self._ownership = ownership
        self._availability = availability
        self._stats = stats
        self.due = False
        """AFTER_BATCH: a batch was processed and its commit is to be sent."""
        self._in_flight: asyncio.Task[None] | None = None
        """AFTER_BATCH: the commit sent in the background, on its own statement (one at a time)."""

    async def commit_offsets(self, offsets: dict[int, int], *, epochs: dict[int, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}``; FencedError for partitions not owned, or
        (with ``epochs``, the ownership an event was delivered under) owned under another epoch."""
        owned = self._ownership.owned
        not_owned = tuple(
            sorted(
                partition
                for partition in offsets
                if partition not in owned
                or (epochs is not None and epochs.get(partition, owned[partition].epoch) != owned[partition].epoch)
            )
        )
        if not_owned:
            raise FencedError(
                f"consumer {self._storage.consumer_id!r} does not own partition(s) {list(not_owned)} of group "
                f"{self._storage.group_id!r}; nothing was committed",
                not_owned,
            )
        commits = [
            PartitionCommit(partition, (epochs or {}).get(partition, owned[partition].epoch), offset)
            for partition, offset in offsets.items()
        ]
        try:
            await self._storage.commit(commits)
        except FencedError as error:
            self._lose(error.partitions)
            raise
        self._record(commits)

    async def commit_processed_once(self) -> None:
        """Commit what was processed in the partitions still owned (fenced ones are logged)."""
        ownership = self._ownership
        pending = {
            partition: offset for partition, offset in ownership.processed.items() if partition in ownership.owned
        }
        if not pending:
            return
        try:
            await self.commit_offsets(pending)
        except FencedError as error:
            logger.info(
                "commit of %s fenced for partitions %s; they will be redelivered",
                self._storage.consumer_id,
                error.partitions,
            )

    def _record(self, commits: Sequence[PartitionCommit]) -> None:
        """Commits that were applied: what they covered no longer waits to be committed."""
        stats, processed = self._stats, self._ownership.processed
        stats.commits += 1
        for commit in commits:
            if processed.get(commit.partition, -1) <= commit.offset:
                processed.pop(commit.partition, None)
            stats.committed_events += 1 if commit.offset else 0

    def _lose(self, partitions: Sequence[int]) -> None:
        """Commits for ``partitions`` were fenced: this member no longer owns them; rejoin now."""
        self._stats.fenced += 1
        self._ownership.lose(partitions)
        self._storage.wake_group()  # rejoin now, not at the next heartbeat

    async def settle(self) -> None:
        """Wait for the commit sent in the background, if any (it reports its own outcome)."""
        task = self._in_flight
        if task is not None:
            await asyncio.wait([task])
            if self._in_flight is task:  # the delivery loop may have sent the next one meanwhile
                self._in_flight = None

    async def send_due(self) -> None:
        """AFTER_BATCH: send the commit of the batch just processed, in the background, on a
        statement of its own (a commit waits for the WAL flush; the next read should not wait
        with it). One commit per batch, one in flight at a time, so they land in order: the
        member waits only if the previous one has not landed by the time the next is due."""
        commits = self._due_commits()
        if commits:
            await self.settle()
            self._in_flight = asyncio.create_task(self._commit_in_background(commits))

    def _due_commits(self) -> list[PartitionCommit]:
        """AFTER_BATCH: the commits of the batches processed and not sent yet. Partitions being
        handed over are left to the handoff, which commits them itself."""
        if not self.due:
            return []
        self.due = False
        owned = self._ownership.owned
        return [
            PartitionCommit(partition, owned[partition].epoch, offset)
            for partition, offset in self._ownership.processed.items()
            if partition in owned and not owned[partition].releasing
        ]

    async def _commit_in_background(self, commits: list[PartitionCommit]) -> None:
        """Commit; fenced partitions are dropped (their new owner redelivers), a failed commit is
        logged (its events are delivered again: at least once)."""
        consumer_id = self._storage.consumer_id
        applied = commits
        try:
            await self._storage.commit(commits)
        except FencedError as error:
            self._lose(error.partitions)
            logger.info(
                "commit of %s fenced for partitions %s; they will be redelivered", consumer_id, error.partitions
            )
            applied = [commit for commit in commits if commit.partition not in error.partitions]
        except Exception as error:
            if not isinstance(error, SluiceError) and not is_transient(error):
                self._availability.fail(error)  # a bug, not the database: the delivery loop raises it
                return
            logger.warning("commit of %s failed; its events will be delivered again: %s", consumer_id, error)
            return
        if applied:
            self._record(applied)
