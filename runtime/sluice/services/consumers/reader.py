"""``store.consumer_groups()``: consume as a group member, commit, and administer groups.

``ConsumerGroupService`` is the consumer-group service a store hands out; the store knows it only by the
store layer's protocols (``sluice.store.contracts.consumer_groups``: ``ConsumerGroupReader``, which it
implements, and the ``GroupConsumption`` and ``GroupBatchConsumption`` that ``MemberEventConsumption`` and
``MemberBatchConsumption`` implement), and is given it when built (``sluice.connect`` passes this class
as the store's ``consumer_groups_factory``).

reader = store.consumer_groups()
async for event in reader.consume("orders", group_id="email", consumer_id="worker-1",
                                  options=ConsumerGroupOptions(batch_size=100)):
    await send_email(event)

async for batch in reader.consume_batches("orders", group_id="email", consumer_id="worker-1"):
    await send_emails(batch.events)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Self, TypeVar

from sluice.core.errors import FencedError, GroupNotFoundError
from sluice.core.names import validate_group_id, validate_stream_name
from sluice.services.consumers.member import GroupMember
from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, StartPosition
from sluice.store.values.consumer_groups import GroupDescription, GroupSummary
from sluice.store.values.member_reports import MemberHealth, MemberStats, Truncation

if TYPE_CHECKING:
    from sluice.store import EventStore


Item = TypeVar("Item")


class _MemberConsumption(Generic[Item]):
    """An async iterator over what a member delivers that is also an async context manager
    (``async with reader.consume(...) as events:`` leaves the group deterministically on exit)."""

    def __init__(self, member: GroupMember, items: AsyncGenerator[Item, None]) -> None:
        self.member = member
        self._items = items

    @property
    def stats(self) -> MemberStats:
        return self.member.stats

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this member owns right now."""
        return self.member.partitions

    @property
    def health(self) -> MemberHealth:
        """Whether this member is consuming now, or why not (joining, waiting out the database,
        stopped); what a worker's readiness reports."""
        return self.member.health

    @property
    def truncations(self) -> list[Truncation]:
        """Every time this member found events its group had not consumed already pruned by
        retention, oldest first (see ``ConsumerGroupOptions.on_truncation``)."""
        return self.member.truncations

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._items

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose(processed=exc_type is None)

    async def aclose(self, *, processed: bool = True) -> None:
        """Stop consuming: commit what was processed (automatic strategies) and leave the group.

        A clean stop (``processed=True``, what ``async with`` passes when its block ends without an
        exception) counts the event (batch) the consumer holds as processed; after an exception it
        is not, and it will be delivered again (at least once)."""
        if processed:
            self.member.confirm_in_flight()
        try:
            await self._items.aclose()
        except RuntimeError as error:
            raise RuntimeError(
                "this consumption is being iterated by another task; cancel that task to stop it "
                "(it then commits what was processed and leaves the group)"
            ) from error


class MemberEventConsumption(_MemberConsumption[ConsumedEvent]):
    """What ``consume`` returns (a ``GroupConsumption``): an async iterator of events that is also an async
    context manager."""

    def __init__(self, member: GroupMember) -> None:
        super().__init__(member, member.events())


class MemberBatchConsumption(_MemberConsumption[ConsumedBatch]):
    """What ``consume_batches`` returns (a ``GroupBatchConsumption``): an async iterator of batches that is
    also an async context manager. A batch counts as processed when the next one is requested."""

    def __init__(self, member: GroupMember) -> None:
        super().__init__(member, member.batches())


class ConsumerGroupService:
    """Consumer groups over one store: the ``ConsumerGroupReader`` that ``store.consumer_groups()`` returns."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._members: dict[tuple[str, str, str], GroupMember] = {}

    def consume(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> MemberEventConsumption:
        """Join ``group_id`` as ``consumer_id`` and iterate over the events of the partitions this
        member owns. A stable ``consumer_id`` across a quick restart keeps its partitions; a process
        whose consumer id a newer process took over stops with DuplicateConsumerError. A stream that
        does not exist yet is waited for when streams are auto-created (else StreamNotFoundError);
        database outages are waited out (see ``health``)."""
        return MemberEventConsumption(self._member(stream_name, group_id, consumer_id, options))

    def consume_batches(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> MemberBatchConsumption:
        """As ``consume``, but deliver ``ConsumedBatch`` objects: up to ``options.batch_size``
        consecutive events of one partition at a time (QUEUE delivery: one claim). Same fencing,
        rebalancing and at-least-once guarantees; a batch is processed when the next is requested."""
        return MemberBatchConsumption(self._member(stream_name, group_id, consumer_id, options))

    def _member(
        self, stream_name: str, group_id: str, consumer_id: str, options: ConsumerGroupOptions | None
    ) -> GroupMember:
        validate_stream_name(stream_name)
        validate_group_id(group_id)
        validate_group_id(consumer_id, "consumer id")
        member = GroupMember(
            self._store,
            stream_name=stream_name,
            group_id=group_id,
            consumer_id=consumer_id,
            options=options or ConsumerGroupOptions(),
        )
        self._members[(stream_name, group_id, consumer_id)] = member
        return member

    async def commit(self, stream_name: str, *, group_id: str, consumer_id: str, offsets: Mapping[int, int]) -> None:
        """Commit ``{partition: next offset to read}`` for a member consuming in this process."""
        member = self._members.get((stream_name, group_id, consumer_id))
        if member is None:
            raise FencedError(
                f"consumer {consumer_id!r} is not consuming group {group_id!r} of {stream_name!r} here",
                tuple(offsets),
            )
        await member.commit_offsets(dict(offsets))

    async def list_groups(self) -> list[GroupSummary]:
        return await self._store.backend.groups.list()

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription:
        """Members, assignments, committed offsets and lag per partition."""
        validate_stream_name(stream_name)
        validate_group_id(group_id)
        description = await self._store.backend.groups.describe(stream_name, group_id)
        if description is None:
            await self._store.get_stream(stream_name)  # StreamNotFoundError first, if that is the problem
            raise GroupNotFoundError(stream_name, group_id)
        return description

    async def lag(self, stream_name: str, group_id: str) -> GroupDescription:
        """The same as describe: ``.lag_events``, ``.lag_seconds`` and ``.partitions`` carry the lag."""
        return await self.describe(stream_name, group_id)

    async def reset_offsets(
        self, stream_name: str, group_id: str, *, to: StartPosition, force: bool = False
    ) -> GroupDescription:
        """Move the group's committed offsets (earliest, latest, an offset or a time). Refused while
        members are active unless ``force``; forced, the members are fenced and resume from there."""
        validate_stream_name(stream_name)
        validate_group_id(group_id)
        return await self._store.backend.groups.reset(stream_name, group_id, to, force)

    async def delete(self, stream_name: str, group_id: str, *, force: bool = False) -> None:
        """Delete a group and its offsets (refused while members are active unless ``force``)."""
        validate_stream_name(stream_name)
        validate_group_id(group_id)
        if not await self._store.backend.groups.delete(stream_name, group_id, force):
            raise GroupNotFoundError(stream_name, group_id)
