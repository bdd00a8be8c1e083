"""Loading ``module:function`` handlers: sync and async, and typed errors for bad specs."""

from __future__ import annotations

import threading

import pytest

import sluice
from sluice.core.errors import HandlerSpecError, InvalidArgumentError
from sluice.services.sinks.handler import load_handler
from sluice.store.values.consumed import ConsumedEvent
from tests.sinks import sample_handlers


async def one_consumed_event(postgres_dsn: str) -> ConsumedEvent:
    """A real event delivered by a consumer group (the group is left again right away)."""
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("orders", [sluice.EventData("OrderPlaced", {"n": 1})])
        async with store.consumer_groups().consume("orders", group_id="g", consumer_id="c") as events:
            async for event in events:
                return event
    raise AssertionError("no event delivered")


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("tests.sinks.sample_handlers:async_handler", "async"),
        ("tests.sinks.sample_handlers:sync_handler", "sync"),
        ("tests.sinks.sample_handlers:Handlers.nested", "nested"),
    ],
)
async def test_sync_and_async_handlers_are_called(postgres_dsn: str, spec: str, kind: str) -> None:
    event = await one_consumed_event(postgres_dsn)
    sample_handlers.seen.clear()
    handler = load_handler(spec)
    await handler(event, 1)
    [(called, offset, thread)] = sample_handlers.seen
    assert (called, offset) == (kind, 0)
    # a sync handler runs in a worker thread so that it cannot stall heartbeats
    assert (thread == threading.current_thread().name) == (kind != "sync")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected 'module:function'"),
        ("module:", "expected 'module:function'"),
        ("bad-module:function", "expected 'module:function'"),
        ("tests.sinks.does_not_exist:handler", "cannot import module 'tests.sinks.does_not_exist'"),
        ("tests.sinks.sample_handlers:missing", "has no attribute 'missing'"),
        ("tests.sinks.sample_handlers:NOT_CALLABLE", "is a int, not callable"),
    ],
)
def test_bad_specs_are_typed_errors(spec: str, message: str) -> None:
    with pytest.raises(HandlerSpecError, match=message) as caught:
        load_handler(spec)
    assert isinstance(caught.value, InvalidArgumentError)
    assert caught.value.code == "invalid_handler"
