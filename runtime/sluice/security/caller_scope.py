"""The principal of the call in progress, for servers that share one store among callers.

The gRPC door authenticates a call, then runs its handler inside ``caller_context(principal)``; a
``caller_scoped_store`` hands every operation to an ``AuthorizedStore`` for the principal of the call
it runs in (tasks the handler starts copy the context, so they act as the same caller). Outside any
caller context it refuses: an unauthenticated path can never reach the store by mistake.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, cast

from sluice.errors import UnauthenticatedError
from sluice.security.authorized_store import AuthorizedStore
from sluice.security.policy import AccessPolicy
from sluice.store import EventStore

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


class CallerScopedStore:
    """Every attribute comes from an AuthorizedStore for the current caller."""

    def __init__(self, store: EventStore, policy: AccessPolicy) -> None:
        self._store = store
        self._policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(AuthorizedStore(self._store, principal=current_caller(), policy=self._policy), name)


def caller_scoped_store(store: EventStore, policy: AccessPolicy) -> EventStore:
    """``store`` authorized per call for the caller of the context it is used in."""
    return cast(EventStore, CallerScopedStore(store, policy))
