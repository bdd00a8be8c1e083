"""The per-call store of the gRPC door: each task acts as the caller of its own context, and outside any
caller context nothing reaches the store."""

from __future__ import annotations

import asyncio

import pytest

from sluice import EventData, EventStore
from sluice.core.errors import PermissionDeniedError, UnauthenticatedError
from sluice.security import AccessPolicy
from sluice.security.caller_scope import caller_context, caller_scoped_store


async def test_concurrent_callers_each_act_as_themselves(store: EventStore, policy: AccessPolicy) -> None:
    shared = caller_scoped_store(store, policy)
    both_inside = asyncio.Barrier(2)

    async def append_as(principal: str) -> str:
        with caller_context(principal):
            await both_inside.wait()  # both contexts are set before either appends
            try:
                await shared.append("orders", EventData("OrderPlaced", {"by": principal}))
            except PermissionDeniedError:
                return "denied"
            return "appended"

    outcomes = await asyncio.gather(append_as("reader"), append_as("writer"))
    assert list(outcomes) == ["denied", "appended"]
    assert [event.data async for event in store.read_stream("orders")] == [{"by": "writer"}]


async def test_outside_a_caller_context_nothing_reaches_the_store(store: EventStore, policy: AccessPolicy) -> None:
    shared = caller_scoped_store(store, policy)
    with pytest.raises(UnauthenticatedError):
        await shared.append("orders", EventData("OrderPlaced", {}))
    assert await store.list_streams() == []
