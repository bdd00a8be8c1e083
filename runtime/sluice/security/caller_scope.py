"""The principal of the call in progress, for servers that share one store among callers.

The gRPC door authenticates a call, then runs its handler inside ``caller_context(principal)``; a
``caller_scoped_store`` enforces the policy as ``AuthorizedStore`` does, for the principal of the call each
operation runs in (tasks the handler starts copy the context, so they act as the same caller). Outside any
caller context it refuses: an unauthenticated path can never reach the store by mistake.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from sluice.core.errors import UnauthenticatedError
from sluice.security.authorized_store import PolicyEnforcingStore
from sluice.security.authorizer import Authorizer
from sluice.security.policy import AccessPolicy
from sluice.store.event_store import EventStore

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("sluice_caller", default=None)


def current_caller() -> str:
    """The principal of the call in progress; UnauthenticatedError outside a caller context."""
    principal = _caller.get()
    if principal is None:
        raise UnauthenticatedError("no authenticated caller in this context")
    return principal


@contextlib.contextmanager
def caller_context(principal: str) -> Iterator[str]:
    """Run the block (and the tasks it starts) as ``principal``."""
    token = _caller.set(principal)
    try:
        yield principal
    finally:
        _caller.reset(token)


def enter_caller_context(principal: str) -> None:
    """Set the caller for the rest of the current task (for async generators, which cannot hold a
    ``with`` block across their yields in another task's context)."""
    _caller.set(principal)


class CallerScopedStore(PolicyEnforcingStore):
    """The store as the caller of the context each operation runs in may use it."""

    def __init__(self, store: EventStore, policy: AccessPolicy) -> None:
        super().__init__(store, policy=policy)

    def authorizer(self) -> Authorizer:
        """The current caller's view of the policy (UnauthenticatedError outside a caller context)."""
        return Authorizer(current_caller(), self.policy)


def caller_scoped_store(store: EventStore, policy: AccessPolicy) -> CallerScopedStore:
    """``store`` authorized per call for the caller of the context it is used in."""
    return CallerScopedStore(store, policy)
