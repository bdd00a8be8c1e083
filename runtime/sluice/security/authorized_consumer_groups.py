"""``AuthorizedConsumerGroups``: ``store.consumer_groups()`` as one principal may use it.

Consuming and committing need ``consume`` on the stream; describing a group and its lag needs
``read``; resetting offsets and deleting groups need ``admin``, as does any operation added to
ConsumerGroupReader later (fail closed). ``list_groups`` leaves out the groups of streams the
principal holds nothing on.
"""

from __future__ import annotations

from typing import Any

from sluice.consumers.model import GroupSummary
from sluice.consumers.reader import ConsumerGroupReader
from sluice.security.authorizer import Authorizer
from sluice.security.guarded_calls import guarded
from sluice.security.permissions import Permission

GROUP_PERMISSIONS: dict[str, Permission] = {
    "consume": Permission.CONSUME,
    "consume_batches": Permission.CONSUME,
    "commit": Permission.CONSUME,
    "list_groups": Permission.READ,
    "describe": Permission.READ,
    "lag": Permission.READ,
    "reset_offsets": Permission.ADMIN,
    "delete": Permission.ADMIN,
}
"""The permission each public ConsumerGroupReader method needs; any other public method needs admin."""


class AuthorizedConsumerGroups:
    """Checks each group operation against the policy, then hands it to the reader it wraps."""

    def __init__(self, reader: ConsumerGroupReader, authorizer: Authorizer) -> None:
        self._reader = reader
        self._authorizer = authorizer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} does not expose {name!r}")
        target = getattr(self._reader, name)
        action = f"consumer_groups.{name}"
        if not callable(target):
            self._authorizer.require_everywhere(Permission.ADMIN, action=action)
            return target
        return guarded(self._authorizer, action, GROUP_PERMISSIONS.get(name, Permission.ADMIN), target)

    async def list_groups(self, *args: Any, **kwargs: Any) -> list[GroupSummary]:
        """The groups of the streams the principal holds any permission on."""
        groups = await self._reader.list_groups(*args, **kwargs)
        return [summary for summary in groups if self._authorizer.may_see(summary.stream_name)]
