"""``AuthorizedStore``: an EventStore as one principal may use it, under an access policy.

    store = await sluice.connect(url)
    as_ingest = authorized_store(store, principal="ingest", policy=policy)
    await as_ingest.append("orders", [event])        # needs write on "orders"
    await as_ingest.delete_stream("orders")          # needs admin: PermissionDeniedError

A typed forwarding store (``sluice.store.forwarding.ForwardingStore``): every public EventStore method is
forwarded with its own signature, and before it reaches the store the call is checked against
``STORE_PERMISSIONS`` (``sluice.security.operation_permissions``: append and enqueue need write; reads,
subscriptions and descriptions read; dequeue, acknowledge, nack and extend consume; creating, changing and
deleting streams, redrive and purge admin) on the stream it names. A method added to EventStore later is
neither forwarded nor classified until someone does both: the tests that walk EventStore fail first.
Methods with an ``actor`` parameter get the principal as the actor. Listings (``list_streams``, the global
log) leave out what the principal may not see instead of failing; ``consumer_groups()`` returns a reader
checked the same way (``GROUP_PERMISSIONS``). The wrapper does not own the store: ``close()`` leaves it
open for the others sharing it. It shares the wrapped store's ``backend``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sluice.core.events import GlobalPosition, RecordedEvent
from sluice.core.streams import StreamInfo
from sluice.security.authorized_consumer_groups import AuthorizedConsumerGroups
from sluice.security.authorizer import Authorizer
from sluice.security.operation_permissions import STORE_PERMISSIONS, required_permission
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy
from sluice.store.contracts.consumer_groups import ConsumerGroupReader
from sluice.store.event_store import EventStore
from sluice.store.forwarding import ForwardingStore


def authorized_store(store: EventStore, *, principal: str, policy: AccessPolicy) -> AuthorizedStore:
    """``store`` as ``principal`` may use it."""
    return AuthorizedStore(store, principal=principal, policy=policy)


class PolicyEnforcingStore(ForwardingStore):
    """Checks each call against the policy for the principal ``authorizer()`` names, then hands it to the
    store it wraps. ``AuthorizedStore`` acts for one principal, ``CallerScopedStore`` for the caller of each
    call's context."""

    def __init__(self, store: EventStore, *, policy: AccessPolicy) -> None:
        super().__init__(store)
        self.policy = policy

    def authorizer(self) -> Authorizer:
        """The principal's view of the policy that decides the call in progress."""
        raise NotImplementedError

    @property
    def principal(self) -> str:
        return self.authorizer().principal

    def _on_call(self, operation: str, stream_name: str | None, *, correlation_id: str | None = None) -> None:
        permission = required_permission(STORE_PERMISSIONS, operation)
        if stream_name is None:
            self.authorizer().require_everywhere(permission, action=operation)
        else:
            self.authorizer().require(permission, stream_name, action=operation, correlation_id=correlation_id)

    def _actor(self, actor: str | None) -> str | None:
        return self.authorizer().principal if actor is None else actor

    async def close(self) -> None:
        """Nothing to release: the store belongs to whoever opened it."""

    def consumer_groups(self) -> ConsumerGroupReader:
        return AuthorizedConsumerGroups(self.wrapped.consumer_groups(), self.authorizer())

    async def list_streams(self, *, include_deleted: bool = False) -> list[StreamInfo]:
        """The streams the principal holds any permission on."""
        authorizer = self.authorizer()
        streams = await self.wrapped.list_streams(include_deleted=include_deleted)
        return [info for info in streams if authorizer.may_see(info.name)]

    async def read_all(
        self, *, after: GlobalPosition | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """The global log, without the events of streams the principal may not read."""
        authorizer = self.authorizer()
        if authorizer.may_everywhere(Permission.READ):
            async for event in self.wrapped.read_all(after=after, limit=limit):
                yield event
            return
        remaining = limit
        async for event in self.wrapped.read_all(after=after):
            if authorizer.may(Permission.READ, event.stream_name):
                yield event
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    async def subscribe_all(self, *, after: GlobalPosition | None = None) -> AsyncIterator[RecordedEvent]:
        """The live global log, without the events of streams the principal may not read."""
        authorizer = self.authorizer()
        everywhere = authorizer.may_everywhere(Permission.READ)
        async for event in self.wrapped.subscribe_all(after=after):
            if everywhere or authorizer.may(Permission.READ, event.stream_name):
                yield event


class AuthorizedStore(PolicyEnforcingStore):
    """The store as one principal may use it."""

    def __init__(self, store: EventStore, *, principal: str, policy: AccessPolicy) -> None:
        super().__init__(store, policy=policy)
        self._authorizer = Authorizer(principal, policy)

    def authorizer(self) -> Authorizer:
        return self._authorizer
