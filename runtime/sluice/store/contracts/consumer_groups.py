"""What ``store.consumer_groups()`` hands out, as the store layer sees it: ``ConsumerGroupReader`` and the
consumptions its ``consume`` and ``consume_batches`` return (``GroupConsumption``, ``GroupBatchConsumption``).

The facade (``EventStore``) sits below the services, so it names the consumer-group service only by these
protocols; the service itself (``sluice.services.consumers.reader.ConsumerGroupService``) is handed to the
store when it is built, as a ``ConsumerGroupsFactory`` (``sluice.store.event_store``; ``sluice.connect``
does it). They are the public types of consumer groups: ``sluice.ConsumerGroupReader``,
``sluice.GroupConsumption`` and ``sluice.GroupBatchConsumption`` are these. What the consumptions deliver
and report are values of the store layer: ``ConsumedEvent`` and ``ConsumedBatch``
(``store/values/consumed.py``), ``MemberStats``, ``MemberHealth`` and ``Truncation``
(``store/values/member_reports.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Protocol, Self, TypeVar

from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent, EventCommitter
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, StartPosition
from sluice.store.values.consumer_groups import GroupDescription, GroupSummary
from sluice.store.values.member_reports import MemberHealth, MemberStats, Truncation

Item_co = TypeVar("Item_co", covariant=True)


class ConsumingMember(EventCommitter, Protocol):
    """The group member behind a consumption (``consumption.member``): doors that consume for a remote
    client commit through it, under the epoch each event was delivered with."""

    @property
    def instance_id(self) -> str:
        """This process's instance of the consumer id (a newer instance fences an older one)."""
        ...


class MemberConsumption(Protocol[Item_co]):
    """An async iterator over what a member delivers that is also an async context manager
    (``async with reader.consume(...) as events:`` leaves the group deterministically on exit)."""

    @property
    def member(self) -> ConsumingMember:
        """The member delivering."""
        ...

    @property
    def stats(self) -> MemberStats:
        """The member's counters."""
        ...

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member owns right now."""
        ...

    @property
    def health(self) -> MemberHealth:
        """Whether this member is consuming now, or why not (joining, waiting out the database,
        stopped); what a worker's readiness reports."""
        ...

    @property
    def truncations(self) -> list[Truncation]:
        """Every time this member found events its group had not consumed already pruned by
        retention, oldest first (see ``ConsumerGroupOptions.on_truncation``)."""
        ...

    def __aiter__(self) -> AsyncIterator[Item_co]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...

    async def aclose(self, *, processed: bool = True) -> None:
        """Stop consuming: commit what was processed (automatic strategies) and leave the group.

        A clean stop (``processed=True``, what ``async with`` passes when its block ends without an
        exception) counts the event (batch) the consumer holds as processed; after an exception it
        is not, and it will be delivered again (at least once)."""
        ...


class GroupConsumption(MemberConsumption[ConsumedEvent], Protocol):
    """What ``consume`` returns: an async iterator of events that is also an async context manager."""


class GroupBatchConsumption(MemberConsumption[ConsumedBatch], Protocol):
    """What ``consume_batches`` returns: an async iterator of batches that is also an async context
    manager. A batch counts as processed when the next one is requested."""


class ConsumerGroupReader(Protocol):
    """Consumer groups over one store (``store.consumer_groups()``): consume as a group member, commit,
    and administer groups."""

    def consume(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> GroupConsumption:
        """Join ``group_id`` as ``consumer_id`` and iterate over the events of the partitions this
        member owns. A stable ``consumer_id`` across a quick restart keeps its partitions; a process
        whose consumer id a newer process took over stops with DuplicateConsumerError. A stream that
        does not exist yet is waited for when streams are auto-created (else StreamNotFoundError);
        database outages are waited out (see ``health``)."""
        ...

    def consume_batches(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> GroupBatchConsumption:
        """As ``consume``, but deliver ``ConsumedBatch`` objects: up to ``options.batch_size``
        consecutive events of one partition at a time (QUEUE delivery: one claim). Same fencing,
        rebalancing and at-least-once guarantees; a batch is processed when the next is requested."""
        ...

    async def commit(self, stream_name: str, *, group_id: str, consumer_id: str, offsets: Mapping[int, int]) -> None:
        """Commit ``{partition: next offset to read}`` for a member consuming in this process."""
        ...

    async def list_groups(self) -> list[GroupSummary]:
        """Every consumer group of the store."""
        ...

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription:
        """Members, assignments, committed offsets and lag per partition."""
        ...

    async def lag(self, stream_name: str, group_id: str) -> GroupDescription:
        """The same as describe: ``.lag_events``, ``.lag_seconds`` and ``.partitions`` carry the lag."""
        ...

    async def reset_offsets(
        self, stream_name: str, group_id: str, *, to: StartPosition, force: bool = False
    ) -> GroupDescription:
        """Move the group's committed offsets (earliest, latest, an offset or a time). Refused while
        members are active unless ``force``; forced, the members are fenced and resume from there."""
        ...

    async def delete(self, stream_name: str, group_id: str, *, force: bool = False) -> None:
        """Delete a group and its offsets (refused while members are active unless ``force``)."""
        ...
