"""``AuthorizedConsumerGroups``: ``store.consumer_groups()`` as one principal may use it.

Each public ConsumerGroupReader method (the protocol ``sluice.store.contracts.consumer_groups`` declares and the
consumer-group service implements) is forwarded by a method with its own signature, after a check of
what ``GROUP_PERMISSIONS`` (``sluice.security.operation_permissions``) says it needs on the group's
stream: consuming and committing need ``consume``, describing a group and its lag ``read``, resetting
offsets and deleting groups ``admin``. ``list_groups`` leaves out the groups of streams the principal
holds nothing on. A method added to ConsumerGroupReader later fails the tests that walk the class until it
is classified and forwarded here.
"""

from __future__ import annotations

from collections.abc import Mapping

from sluice.security.authorizer import Authorizer
from sluice.security.operation_permissions import GROUP_PERMISSIONS, required_permission
from sluice.store.contracts.consumer_groups import ConsumerGroupReader, GroupBatchConsumption, GroupConsumption
from sluice.store.values.consumer_group_options import ConsumerGroupOptions, StartPosition
from sluice.store.values.consumer_groups import GroupDescription, GroupSummary


class AuthorizedConsumerGroups(ConsumerGroupReader):
    """Checks each group operation against the policy, then hands it to the reader it wraps."""

    def __init__(self, reader: ConsumerGroupReader, authorizer: Authorizer) -> None:
        # Every operation goes to ``reader``, which holds the members.
        self._reader = reader
        self._authorizer = authorizer

    def _require(self, operation: str, stream_name: str) -> None:
        permission = required_permission(GROUP_PERMISSIONS, operation)
        self._authorizer.require(permission, stream_name, action=f"consumer_groups.{operation}")

    def consume(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> GroupConsumption:
        self._require("consume", stream_name)
        return self._reader.consume(stream_name, group_id=group_id, consumer_id=consumer_id, options=options)

    def consume_batches(
        self,
        stream_name: str,
        *,
        group_id: str,
        consumer_id: str,
        options: ConsumerGroupOptions | None = None,
    ) -> GroupBatchConsumption:
        self._require("consume_batches", stream_name)
        return self._reader.consume_batches(stream_name, group_id=group_id, consumer_id=consumer_id, options=options)

    async def commit(self, stream_name: str, *, group_id: str, consumer_id: str, offsets: Mapping[int, int]) -> None:
        self._require("commit", stream_name)
        await self._reader.commit(stream_name, group_id=group_id, consumer_id=consumer_id, offsets=offsets)

    async def list_groups(self) -> list[GroupSummary]:
        """The groups of the streams the principal holds any permission on."""
        groups = await self._reader.list_groups()
        return [summary for summary in groups if self._authorizer.may_see(summary.stream_name)]

    async def describe(self, stream_name: str, group_id: str) -> GroupDescription:
        self._require("describe", stream_name)
        return await self._reader.describe(stream_name, group_id)

    async def lag(self, stream_name: str, group_id: str) -> GroupDescription:
        self._require("lag", stream_name)
        return await self._reader.lag(stream_name, group_id)

    async def reset_offsets(
        self, stream_name: str, group_id: str, *, to: StartPosition, force: bool = False
    ) -> GroupDescription:
        self._require("reset_offsets", stream_name)
        return await self._reader.reset_offsets(stream_name, group_id, to=to, force=force)

    async def delete(self, stream_name: str, group_id: str, *, force: bool = False) -> None:
        self._require("delete", stream_name)
        await self._reader.delete(stream_name, group_id, force=force)
