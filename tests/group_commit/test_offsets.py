"""Group commit gives every caller its own correct offsets: concurrency, keys, correlation ids."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sluice import ConcurrencyError, EventData, EventStore, ExpectedOffset, StreamConfig
from sluice.core.partitioning import partition_for_key
from sluice.observability.correlation import correlation_context
from sluice.services.group_commit import AppendBatcher
from tests.group_commit.helpers import batch_sizes, private_metrics, read, sample


async def test_200_concurrent_single_event_appenders_get_correct_distinct_offsets(store: EventStore) -> None:
    metrics = private_metrics()
    events = [EventData("Tick", {"n": n}) for n in range(200)]
    async with AppendBatcher(store, linger=timedelta(milliseconds=20), metrics=metrics) as batcher:
        results = await asyncio.gather(*(batcher.append("ticks", event) for event in events))

    offsets = [result.offsets for result in results]
    assert all(len(offset) == 1 for offset in offsets)
    assert sorted(offset[0] for offset in offsets) == list(range(200))  # distinct and gap-free
    assert all(result.partitions == (0,) and not result.deduplicated for result in results)

    stored = await read(store, "ticks")
    assert [event.offset for event in stored] == list(range(200))
    by_offset = {event.offset: event for event in stored}
    for event, result in zip(events, results, strict=True):
        # Each caller's offset holds exactly the event that caller appended.
        assert by_offset[result.first_offset].event_id == event.event_id
        assert by_offset[result.first_offset].data == event.data
    assert len(batch_sizes(stored)) < 20  # they really shared transactions
    assert sample(metrics, "sluice_group_commit_batch_size_sum", "ticks") == 200
    assert sample(metrics, "sluice_group_commit_flushes_total", "ticks") == len(batch_sizes(stored))


async def test_producers_appending_in_loops_get_every_offset_once(store: EventStore) -> None:
    async with AppendBatcher(store, linger=timedelta(milliseconds=2)) as batcher:

        async def producer(number: int) -> list[int]:
            offsets = []
            for sequence in range(10):
                result = await batcher.append("loops", EventData("E", {"producer": number, "sequence": sequence}))
                offsets.append(result.first_offset)
            return offsets

        per_producer = await asyncio.gather(*(producer(number) for number in range(50)))

    stored = {event.offset: event.data for event in await read(store, "loops")}
    assert sorted(offset for offsets in per_producer for offset in offsets) == list(range(500))
    for number, offsets in enumerate(per_producer):
        assert offsets == sorted(offsets)  # a producer's sequential appends keep their order
        assert [stored[offset] for offset in offsets] == [{"producer": number, "sequence": s} for s in range(10)]


async def test_keyed_events_land_where_the_store_routes_them_and_keep_per_key_order(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="keyed", partitions=4))
    keys = [f"customer-{number}" for number in range(12)]
    async with AppendBatcher(store, linger=timedelta(milliseconds=5)) as batcher:

        async def producer(key: str) -> list[tuple[int, int]]:
            places = []
            for sequence in range(8):
                result = await batcher.append("keyed", EventData("E", {"key": key, "n": sequence}), partition_key=key)
                places.append((result.partitions[0], result.first_offset))
            return places

        places_by_key = dict(zip(keys, await asyncio.gather(*(producer(key) for key in keys)), strict=True))

    for key, places in places_by_key.items():
        unbatched = await store.append("keyed", EventData("E", {"key": key, "n": 8}), partition_key=key)
        partition = partition_for_key(key, 4)
        assert {place[0] for place in places} == {partition} == set(unbatched.partitions)
        stored = [event.data["n"] for event in await read(store, "keyed", partition) if event.data["key"] == key]
        assert stored == list(range(9))  # per-key order, the store's own append included
    counts = [len(await read(store, "keyed", partition)) for partition in range(4)]
    assert sum(counts) == 12 * 9


async def test_explicit_partitions_and_callers_with_several_events(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="parts", partitions=3))
    async with AppendBatcher(store, linger=timedelta(milliseconds=10)) as batcher:
        results = await asyncio.gather(
            *(
                batcher.append("parts", [EventData("E", {"caller": caller, "i": i}) for i in range(3)], partition=2)
                for caller in range(5)
            )
        )
    stored = {event.offset: event.data for event in await read(store, "parts", 2)}
    assert sorted(offset for result in results for offset in result.offsets) == list(range(15))
    for caller, result in enumerate(results):
        assert result.partitions == (2, 2, 2)
        assert result.offsets == tuple(range(result.first_offset, result.first_offset + 3))  # together
        assert [stored[offset] for offset in result.offsets] == [{"caller": caller, "i": i} for i in range(3)]


async def test_each_event_keeps_its_callers_correlation_id(store: EventStore) -> None:
    async with AppendBatcher(store, linger=timedelta(milliseconds=10)) as batcher:

        async def in_context(number: int) -> int:
            with correlation_context(f"context-{number % 3}"):
                return (await batcher.append("correlated", EventData("E", {"n": number}))).first_offset

        explicit = [
            batcher.append("correlated", EventData("E", {"n": 100 + n}), correlation_id=f"explicit-{n % 2}")
            for n in range(6)
        ]
        plain = [batcher.append("correlated", EventData("E", {"n": 200 + n})) for n in range(4)]
        await asyncio.gather(*(in_context(number) for number in range(9)), *explicit, *plain)

    stored = await read(store, "correlated")
    for event in stored:
        n = event.data["n"]
        expected = f"context-{n % 3}" if n < 100 else f"explicit-{(n - 100) % 2}" if n < 200 else None
        assert event.correlation_id == expected
        assert event.metadata.get("correlation_id") == expected
    # Callers with different correlation ids share transactions (one correlation id per event is stored).
    assert len(batch_sizes(stored)) < 6, batch_sizes(stored)


async def test_expected_offset_bypasses_batching_and_fails_only_its_caller(store: EventStore) -> None:
    async with AppendBatcher(store, linger=timedelta(milliseconds=10)) as batcher:
        first = await batcher.append("checked", EventData("E", {"n": 0}), expected_offset=ExpectedOffset.NO_STREAM)
        assert first.offsets == (0,)
        outcomes = await asyncio.gather(
            batcher.append("checked", EventData("E", {"n": 1})),
            batcher.append("checked", EventData("E", {"n": 2}), expected_offset=ExpectedOffset.NO_STREAM),
            batcher.append("checked", EventData("E", {"n": 3})),
            return_exceptions=True,
        )
    assert isinstance(outcomes[1], ConcurrencyError)
    assert sorted(outcome.first_offset for outcome in (outcomes[0], outcomes[2])) == [1, 2]  # type: ignore[union-attr]
    assert (await read(store, "checked"))[0].data == {"n": 0}


@pytest.mark.parametrize("linger", [timedelta(0), timedelta(milliseconds=1)])
async def test_short_or_no_linger_still_gives_distinct_offsets(store: EventStore, linger: timedelta) -> None:
    async with AppendBatcher(store, linger=linger, max_batch=7) as batcher:
        results = await asyncio.gather(*(batcher.append("quick", EventData("E", {"n": n})) for n in range(60)))
    assert sorted(result.first_offset for result in results) == list(range(60))
    assert all(size <= 7 for size in batch_sizes(await read(store, "quick")))


async def test_unkeyed_appends_spread_over_partitions_like_the_stores(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="spread", partitions=4))
    async with AppendBatcher(store, linger=timedelta(milliseconds=20)) as batcher:
        results = await asyncio.gather(*(batcher.append("spread", EventData("E", {"n": n})) for n in range(200)))
    placed = {(result.partitions[0], result.first_offset) for result in results}
    assert len(placed) == 200  # distinct
    for partition in range(4):
        stored = await read(store, "spread", partition)
        assert len(stored) == 50  # round-robin, one append at a time
        assert sorted(offset for part, offset in placed if part == partition) == list(range(50))
        assert {event.data["n"] for event in stored} == {
            results.index(result) for result in results if result.partitions[0] == partition
        }
        assert len(batch_sizes(stored)) < 10
