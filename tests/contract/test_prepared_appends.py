"""Contract: ``append_prepared`` stores a batch that ``prepare_batch`` validated and encoded, without
encoding it again (the group-commit batcher's path), and refuses what is not one, on both backends."""

from __future__ import annotations

import pytest

from sluice import (
    EventData,
    EventStore,
    InvalidArgumentError,
    PayloadTooLargeError,
    StreamConfig,
    StreamNotFoundError,
    StreamType,
    StreamTypeError,
)
from sluice.core.batches import prepare_batch
from sluice.core.prepared_batches import PreparedBatch, joined
from sluice.observability.correlation import correlation_context


def _prepared(store: EventStore, *payloads: dict[str, object], correlation_id: str | None = None) -> PreparedBatch:
    events = [EventData("Placed", payload) for payload in payloads]
    return prepare_batch(events, store.registry, store.options.max_payload_bytes, correlation_id=correlation_id)


async def test_a_prepared_batch_is_stored_like_an_append(store: EventStore) -> None:
    first = _prepared(store, {"n": 1}, {"n": 2}, correlation_id="c-1")
    second = _prepared(store, {"n": 3}, correlation_id="c-1")
    result = await store.append_prepared("orders", joined([first, second]))
    assert result.offsets == (0, 1, 2)
    stored = [event async for event in store.read_stream("orders")]
    assert [event.data for event in stored] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert {event.correlation_id for event in stored} == {"c-1"}
    assert [event.event_id for event in stored] == [*first.event_ids, *second.event_ids]


async def test_a_prepared_batch_sent_again_is_not_stored_twice(store: EventStore) -> None:
    prepared = _prepared(store, {"n": 1}, {"n": 2})
    assert (await store.append_prepared("orders", prepared)).offsets == (0, 1)
    again = await store.append_prepared("orders", prepared)
    assert again.offsets == (0, 1)
    assert again.deduplicated
    assert (await store.get_stream("orders")).partition_heads[0].head == 2


async def test_what_is_not_a_prepared_batch_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError, match="takes a PreparedBatch, got list"):
        await store.append_prepared("orders", [EventData("Placed", {})])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="at least one event"):
        await store.append_prepared("orders", PreparedBatch())
    with pytest.raises(InvalidArgumentError):
        await store.append_prepared("orders", _prepared(store, {"n": 1}), partition=-1)
    with pytest.raises(InvalidArgumentError):
        await store.append_prepared("not a name!", _prepared(store, {"n": 1}))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    with pytest.raises(StreamTypeError):
        await store.append_prepared("jobs", _prepared(store, {"n": 1}))


async def test_the_context_correlation_id_is_the_prepared_batchs(store: EventStore) -> None:
    with correlation_context("from-context"):
        prepared = _prepared(store, {"n": 1})
    await store.append_prepared("orders", prepared)
    [event] = [event async for event in store.read_stream("orders")]
    assert event.correlation_id == "from-context"


async def test_a_joined_batch_with_one_id_twice_or_a_payload_over_the_limit_is_refused(store: EventStore) -> None:
    prepared = _prepared(store, {"n": 1})
    with pytest.raises(InvalidArgumentError, match="the same event id twice"):
        await store.append_prepared("orders", joined([prepared, prepared]))
    oversized = _prepared(store, {"n": 1})
    oversized.payloads[0] = b"x" * (store.options.max_payload_bytes + 1)
    with pytest.raises(PayloadTooLargeError):
        await store.append_prepared("orders", oversized)
    uneven = _prepared(store, {"n": 1})
    uneven.metadata.append("{}")
    with pytest.raises(InvalidArgumentError, match="columns differ in length"):
        await store.append_prepared("orders", uneven)
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders")  # nothing was stored, not even the stream
