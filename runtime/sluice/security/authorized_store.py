"""``AuthorizedStore``: an EventStore as one principal may use it, under an access policy.

    store = await sluice.connect(url)
    as_ingest = authorized_store(store, principal="ingest", policy=policy)
    await as_ingest.append("orders", [event])        # needs write on "orders"
    await as_ingest.delete_stream("orders")          # needs admin: PermissionDeniedError

Every public EventStore method is classified in ``STORE_PERMISSIONS`` (append and enqueue: write; reads,
subscriptions and descriptions: read; dequeue, acknowledge, nack, extend: consume; creating, changing and
deleting streams, redrive and purge: admin), and ``consumer_groups()`` returns a reader checked the same
way. A public method the table does not know (one added to EventStore later: archive, restore, ...)
fails closed: it needs admin. Calls are forwarded with their arguments unchanged, so the wrapper follows
the store's signatures; methods with an ``actor`` parameter get the principal as the actor. Listings
(``list_streams``, the global log, ``list_groups``) leave out what the principal may not see instead of
failing. The wrapper does not own the store: ``close()`` leaves it open for the others sharing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from sluice.consumers.reader import ConsumerGroupReader
from sluice.events import GlobalPosition, RecordedEvent
from sluice.security.authorized_consumer_groups import AuthorizedConsumerGroups
from sluice.security.authorizer import Authorizer
from sluice.security.guarded_calls import guarded
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy
from sluice.store import EventStore
from sluice.streams import StreamInfo

STORE_PERMISSIONS: dict[str, Permission] = {
    "append": Permission.WRITE,
    "append_prepared": Permission.WRITE,
    "enqueue": Permission.WRITE,
    "enqueue_many": Permission.WRITE,
    "get_stream": Permission.READ,
    "list_streams": Permission.READ,
    "read_stream": Permission.READ,
    "subscribe": Permission.READ,
    "read_all": Permission.READ,
    "subscribe_all": Permission.READ,
    "dead_letters": Permission.READ,
    "queue_depth": Permission.READ,
    "dequeue": Permission.CONSUME,
    "dequeue_many": Permission.CONSUME,
    "acknowledge": Permission.CONSUME,
    "acknowledge_many": Permission.CONSUME,
    "nack": Permission.CONSUME,
    "extend": Permission.CONSUME,
    "create_stream": Permission.ADMIN,
    "delete_stream": Permission.ADMIN,
    "set_partitions": Permission.ADMIN,
    "redrive_dead_letters": Permission.ADMIN,
    "purge_dead_letters": Permission.ADMIN,
}
"""The permission each public EventStore method needs; any other public method needs admin."""

UNGUARDED_METHODS = frozenset({"close", "consumer_groups"})
"""Methods the wrapper defines itself: closing leaves the shared store open; consumer-group operations
are checked one by one (``AuthorizedConsumerGroups``)."""


def authorized_store(store: EventStore, *, principal: str, policy: AccessPolicy) -> EventStore:
    """``store`` as ``principal`` may use it, typed as the EventStore it stands in for."""
    return cast(EventStore, AuthorizedStore(store, principal=principal, policy=policy))


class AuthorizedStore:
    """Checks each call against the policy, then hands it to the store it wraps."""

    def __init__(self, store: EventStore, *, principal: str, policy: AccessPolicy) -> None:
        self._store = store
        self._authorizer = Authorizer(principal, policy)

    @property
    def principal(self) -> str:
        return self._authorizer.principal

    @property
    def options(self) -> object:
        return self._store.options

    @property
    def registry(self) -> object:
        return self._store.registry

    def __getattr__(self, name: str) -> Any:
        """Every store method, behind the check of its permission (admin for methods the table does not know)."""
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} does not expose {name!r}")
        target = getattr(self._store, name)
        permission = STORE_PERMISSIONS.get(name, Permission.ADMIN)
        if not callable(target):
            self._authorizer.require_everywhere(Permission.ADMIN, action=name)
            return target
        return guarded(self._authorizer, name, permission, target)

    async def close(self) -> None:
        """Nothing to release: the store belongs to whoever opened it."""

    def consumer_groups(self) -> ConsumerGroupReader:
        return cast(ConsumerGroupReader, AuthorizedConsumerGroups(self._store.consumer_groups(), self._authorizer))

    async def list_streams(self, *args: Any, **kwargs: Any) -> list[StreamInfo]:
        """The streams the principal holds any permission on."""
        streams = await self._store.list_streams(*args, **kwargs)
        return [info for info in streams if self._authorizer.may_see(info.name)]

    async def read_all(
        self, *, after: GlobalPosition | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """The global log, without the events of streams the principal may not read."""
        if self._authorizer.may_everywhere(Permission.READ):
            async for event in self._store.read_all(after=after, limit=limit):
                yield event
            return
        remaining = limit
        async for event in self._store.read_all(after=after):
            if self._authorizer.may(Permission.READ, event.stream_name):
                yield event
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    async def subscribe_all(self, *, after: GlobalPosition | None = None) -> AsyncIterator[RecordedEvent]:
        """The live global log, without the events of streams the principal may not read."""
        everywhere = self._authorizer.may_everywhere(Permission.READ)
        async for event in self._store.subscribe_all(after=after):
            if everywhere or self._authorizer.may(Permission.READ, event.stream_name):
                yield event
