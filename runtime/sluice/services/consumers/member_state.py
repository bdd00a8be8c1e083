"""What one consumer-group member owns and where it is: shared by its membership, delivery and commits.

``Ownership`` holds the partitions the group assigned to the member (with their epochs), the next
offset to deliver and the next offset to commit of each, and the event (batch) in the consumer's
hands. Membership changes it when a heartbeat answers, commits when one is fenced, delivery as it
goes; ``changes`` counts the changes made outside the delivery loop, which re-checks the batch it
delivers only when that count moved (instead of checking ownership for every event).
What the member did is counted in its ``MemberStats`` (``sluice.store.values.member_reports``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sluice.store.values.consumer_groups import OwnedPartition


class Ownership:
    """The partitions one member owns now, its positions in them, and what it is delivering."""

    def __init__(self) -> None:
        self.owned: dict[int, OwnedPartition] = {}
        self.positions: dict[int, int] = {}
        """Per owned partition, the next offset to deliver."""
        self.processed: dict[int, int] = {}
        """Per owned partition, the offset after the last event processed and not committed yet."""
        self.changes = 0
        """Bumped whenever ownership or positions change outside the delivery loop, which then
        re-checks the batch it delivers (instead of checking ownership for every event)."""
        self.assignment_changed = asyncio.Event()
        """Set when a heartbeat changes what this member owns, to wake its delivery loop (which
        may have looked, found nothing, and gone to wait just before the heartbeat answered)."""
        self.in_flight_batch: tuple[int, int] | None = None
        """(partition, epoch or, for QUEUE delivery, claim id) of the batch being delivered."""
        self.in_flight_offset = -1
        """The offset of the event the consumer is processing right now, -1 when none (a partition
        is not handed over mid-event)."""

    def in_flight_partition(self) -> int | None:
        """The partition of the event in the consumer's hands, if any."""
        batch = self.in_flight_batch
        return batch[0] if batch is not None and self.in_flight_offset >= 0 else None

    def still_delivering(self, partition: int, epoch: int, offset: int) -> bool:
        """Whether a batch of ``partition`` read under ``epoch`` may go on at ``offset``."""
        owned = self.owned.get(partition)
        return owned is not None and owned.epoch == epoch and self.positions.get(partition) == offset

    def lose(self, partitions: Iterable[int]) -> None:
        """Commits for ``partitions`` were fenced: the member no longer owns them."""
        self.changes += 1
        for partition in partitions:
            self.owned.pop(partition, None)
            self.positions.pop(partition, None)
            self.processed.pop(partition, None)

    def drop_all(self) -> None:
        """The member stops for good: it owns nothing and delivers nothing more."""
        self.owned = {}
        self.positions.clear()
        self.changes += 1
        self.assignment_changed.set()
