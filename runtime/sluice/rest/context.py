"""What the routes share: the store, the authenticator, the access policy, health settings and metrics of one app."""

from __future__ import annotations

import dataclasses

from fastapi import Request

from sluice.observability.health.model import HealthSettings
from sluice.observability.metrics import SluiceMetrics
from sluice.security.authentication import Authenticator
from sluice.security.authorized_store import authorized_store
from sluice.security.authorizer import Authorizer
from sluice.security.permissions import Permission
from sluice.security.policy import AccessPolicy
from sluice.services.group_commit import AppendBatcher, BatchedEventStore
from sluice.store import EventStore


@dataclasses.dataclass(frozen=True, slots=True)
class ServerContext:
    store: EventStore
    tokens: Authenticator | None
    health: HealthSettings
    metrics: SluiceMetrics
    policy: AccessPolicy | None = None
    batcher: AppendBatcher | None = None
    """Group commit for the append route (``sluice serve`` shares the gRPC server's): None appends alone."""

    def appending_store_for(self, principal: str) -> EventStore:
        """``store_for(principal)`` whose appends go through the batcher: concurrent requests share
        transactions, each still gets its own offsets or error, and the policy is checked before joining."""
        if self.batcher is None:
            return self.store_for(principal)
        store = BatchedEventStore(self.store, self.batcher)
        if self.policy is None:
            return store
        return authorized_store(store, principal=principal, policy=self.policy)

    def store_for(self, principal: str) -> EventStore:
        """The store as ``principal`` may use it (the whole store when no policy is configured)."""
        if self.policy is None:
            return self.store
        return authorized_store(self.store, principal=principal, policy=self.policy)

    def authorize(self, principal: str, permission: Permission, stream_name: str, *, action: str) -> None:
        """PermissionDeniedError (logged for audit) unless the policy lets ``principal`` do it."""
        if self.policy is not None:
            Authorizer(principal, self.policy).require(permission, stream_name, action=action)


def server_context(request: Request) -> ServerContext:
    """The app's context (a FastAPI dependency)."""
    context: ServerContext = request.app.state.sluice
    return context
