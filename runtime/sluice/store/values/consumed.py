"""What a consumer-group member hands to its consumer: events and batches that can commit themselves.

``reader.consume`` delivers ``ConsumedEvent`` objects one at a time; ``reader.consume_batches``
delivers ``ConsumedBatch`` objects, the events of one partition read in one page (QUEUE delivery:
one claim). A batch holds the stored rows and builds each event only when it is looked at, so a
batch costs one object until it is used.

They are values of the store layer (``store.contracts.consumer_groups`` names them); each commits through
the member that delivered it, which they know only as an ``EventCommitter`` (the consumer-group service's
``GroupMember`` is one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Protocol, overload

from sluice.core.events import EventRow, RecordedEvent

if TYPE_CHECKING:
    from sluice.store.values.member_reports import Truncation


class EventCommitter(Protocol):
    """The member a delivered event or batch commits through."""

    @property
    def stream_name(self) -> str:
        """The stream the member consumes."""
        ...

    async def commit_event(self, partition: int, offset: int, epoch: int) -> None:
        """Commit ``partition`` up to and including ``offset``, under the ownership ``epoch`` (QUEUE
        delivery: the claim) the event was delivered under; FencedError when it is no longer held."""
        ...


class ConsumedEvent(RecordedEvent):
    """A RecordedEvent delivered by a consumer group, which can commit itself (MANUAL strategy)."""

    __slots__ = ("_epoch", "_member")

    def __init__(self, row: EventRow, stream_name: str, partition: int, member: EventCommitter, epoch: int) -> None:
        # The parent's fields are set here directly: one of these is built per delivered event.
        self._row = row
        self.stream_name = stream_name
        self.partition = partition
        self._data = None
        self._metadata = None
        self._member = member
        self._epoch = epoch

    @property
    def delivery_epoch(self) -> int:
        """The partition's ownership epoch this event was delivered under (QUEUE delivery: the
        claim's id). A door that commits for a remote consumer sends it out with the event and
        requires it back, so a commit after a rebalance or a forced reset is fenced."""
        return self._epoch

    async def commit(self) -> None:
        """Commit this event's partition up to and including this event (QUEUE delivery: the
        member's claim it was delivered under). Raises FencedError if the member no longer owns the
        partition (holds the claim)."""
        await self._member.commit_event(self.partition, self.offset, self._epoch)


class BatchEvents(Sequence[ConsumedEvent]):
    """The events of a batch, built on access (each access builds a new, equal, event object)."""

    __slots__ = ("_batch",)

    def __init__(self, batch: ConsumedBatch) -> None:
        self._batch = batch

    def __len__(self) -> int:
        return len(self._batch._rows)

    @overload
    def __getitem__(self, index: int) -> ConsumedEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ConsumedEvent]: ...

    def __getitem__(self, index: int | slice) -> ConsumedEvent | Sequence[ConsumedEvent]:
        batch = self._batch
        if isinstance(index, slice):
            return [batch._event(row) for row in batch._rows[index]]
        return batch._event(batch._rows[index])

    def __iter__(self) -> Iterator[ConsumedEvent]:
        # map() over the class is measurably cheaper per event than a generator (no frame to resume).
        batch = self._batch
        return map(
            ConsumedEvent, batch._rows, repeat(batch.stream_name), repeat(batch.partition), repeat(batch._member),
            repeat(batch._token),
        )  # fmt: skip


class ConsumedBatch:
    """Consecutive events of one partition, delivered together (never empty).

    The batch counts as processed, whole, when the consumer asks for the next batch (or leaves
    the ``async with`` block without an exception). ``await batch.commit()`` commits it at once
    (MANUAL strategy); single events can commit themselves as with ``consume``."""

    __slots__ = ("_member", "_rows", "_token", "first_offset", "partition", "stream_name", "truncation")

    def __init__(
        self,
        member: EventCommitter,
        partition: int,
        token: int,
        first_offset: int,
        rows: Sequence[EventRow],
        *,
        truncation: Truncation | None = None,
    ):
        self._member = member
        self._rows = rows
        self._token = token
        """The partition's epoch the batch was read under (QUEUE delivery: the claim's id)."""
        self.stream_name = member.stream_name
        self.partition = partition
        self.first_offset = first_offset
        """The offset of the first event."""
        self.truncation = truncation
        """Set on the first batch of a partition after retention pruned events the group had not
        consumed: which offsets were lost, and what the group's ``on_truncation`` policy did."""

    @property
    def events(self) -> Sequence[ConsumedEvent]:
        """The events, in offset order, each built when it is looked at."""
        return BatchEvents(self)

    @property
    def last_offset(self) -> int:
        """The offset of the last event."""
        return int(self._rows[-1][0])

    @property
    def next_offset(self) -> int:
        """The offset after the last event: what committing this batch makes the committed offset."""
        return self.last_offset + 1

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ConsumedEvent]:
        return iter(BatchEvents(self))

    def _event(self, row: EventRow) -> ConsumedEvent:
        return ConsumedEvent(row, self.stream_name, self.partition, self._member, self._token)

    async def commit(self) -> None:
        """Commit the partition up to and including the last event of this batch (QUEUE delivery:
        acknowledge the claim). Raises FencedError if the member no longer owns the partition (or
        holds the claim), including after a forced reset while it was being processed."""
        await self._member.commit_event(self.partition, self.last_offset, self._token)

    def __repr__(self) -> str:
        return (
            f"ConsumedBatch(stream_name={self.stream_name!r}, partition={self.partition}, "
            f"offsets={self.first_offset}..{self.last_offset}, events={len(self._rows)})"
        )
