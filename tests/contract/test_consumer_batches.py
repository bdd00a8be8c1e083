"""Contract: consumer groups delivering batches (``reader.consume_batches``) — the same commits,
fencing, cooperative rebalancing and QUEUE delivery as the per-event iterator, a batch at a time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest

from sluice import (
    ConsumerGroupOptions,
    DeliverySemantics,
    EventData,
    EventStore,
    FencedError,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
    StreamConfig,
)
from sluice.store.contracts.consumer_groups import GroupBatchConsumption
from sluice.store.values.consumed import ConsumedBatch

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=5
)


def options(**changes: object) -> ConsumerGroupOptions:
    return FAST.model_copy(update=changes)


async def fill(
    store: EventStore, stream: str, count: int, partitions: int = 1, delivery: DeliverySemantics | None = None
) -> None:
    config = StreamConfig(name=stream, partitions=partitions, delivery=delivery or DeliverySemantics.BROADCAST)
    await store.create_stream(config)
    for n in range(count):
        await store.append(stream, EventData("E", {"n": n}), partition=n % partitions)


async def next_batch(batches: AsyncIterator[ConsumedBatch], seconds: float = 10) -> ConsumedBatch:
    return await asyncio.wait_for(anext(batches), seconds)


async def take_events(consumption: GroupBatchConsumption, count: int, seconds: float = 10) -> list[ConsumedBatch]:
    """Batches until they hold ``count`` events (the last one stays in hand, unprocessed)."""
    taken: list[ConsumedBatch] = []

    async def run() -> None:
        async for batch in consumption:
            taken.append(batch)
            if sum(len(batch) for batch in taken) >= count:
                return

    await asyncio.wait_for(run(), seconds)
    return taken


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def owned(consumption: GroupBatchConsumption) -> tuple[int, ...]:
    """The partitions a member owns now (a call, so that type checkers do not narrow it)."""
    return consumption.partitions


def offsets(batches: list[ConsumedBatch]) -> list[tuple[int, int]]:
    return [(event.partition, event.offset) for batch in batches for event in batch.events]


async def test_batches_hold_consecutive_events_of_one_partition_and_commit_after_each_batch(store: EventStore) -> None:
    await fill(store, "orders", 23, partitions=2)  # 12 events in partition 0, 11 in partition 1
    reader = store.consumer_groups()
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=FAST) as consumption:
        batches = await take_events(consumption, 23)
        assert sorted(offsets(batches)) == sorted((n % 2, n // 2) for n in range(23))
        for batch in batches:
            events = list(batch.events)
            assert 1 <= len(batch) == len(events) <= 5
            assert [event.offset for event in events] == list(range(batch.first_offset, batch.next_offset))
            assert {event.partition for event in events} == {batch.partition}
            assert [event.data["n"] for event in events] == [event.offset * 2 + batch.partition for event in events]
            assert batch.events[-1] == events[-1]
            assert batch.events[1:3] == events[1:3]
        # One commit per processed batch (sent with the next read); the last batch is still in hand.
        await eventually(lambda: consumption.stats.commits == len(batches) - 1)
        await asyncio.sleep(0.1)
        assert consumption.stats.commits == len(batches) - 1
        assert consumption.stats.delivered == 23
        committed = sum(p.committed_offset for p in (await reader.describe("orders", "g")).partitions)
        assert committed == 23 - len(batches[-1])
    # Leaving the block cleanly counts the batch in hand as processed: everything is committed.
    described = await reader.describe("orders", "g")
    assert described.lag_events == 0
    assert described.members == ()


async def test_an_exception_leaves_the_batch_in_hand_unprocessed(store: EventStore) -> None:
    await fill(store, "orders", 12)
    reader = store.consumer_groups()

    async def fail_at_the_second_batch() -> None:
        async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=FAST) as consumption:
            async for batch in consumption:
                if batch.first_offset == 5:
                    raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await fail_at_the_second_batch()
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 5
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=FAST) as again:
        redelivered = await next_batch(aiter(again))
        assert (redelivered.first_offset, redelivered.last_offset) == (5, 9)


async def test_manual_batches_commit_themselves_or_per_event(store: EventStore) -> None:
    await fill(store, "orders", 12)
    reader = store.consumer_groups()
    manual = options(commit_strategy=OffsetCommitStrategy.MANUAL)
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=manual) as consumption:
        batches = aiter(consumption)
        first = await next_batch(batches)
        second = await next_batch(batches)
        assert consumption.stats.commits == 0
        await first.commit()
        assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 5
        await second.events[2].commit()
        assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 8
        assert consumption.stats.commits == 2
    # MANUAL commits nothing on leaving: the rest is delivered again.
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 8


async def test_after_each_commits_each_batch_as_soon_as_it_is_processed(store: EventStore) -> None:
    await fill(store, "orders", 15)
    reader = store.consumer_groups()
    each = options(commit_strategy=OffsetCommitStrategy.AFTER_EACH)
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=each) as consumption:
        batches = aiter(consumption)
        await next_batch(batches)
        await next_batch(batches)
        assert consumption.stats.commits == 1  # the first, committed before the second was delivered
        assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 5
        await next_batch(batches)
        assert consumption.stats.commits == 2
        assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 10


async def test_a_partition_is_handed_over_only_after_the_batch_in_hand_is_processed(store: EventStore) -> None:
    await fill(store, "orders", 20, partitions=2)
    reader = store.consumer_groups()
    first = reader.consume_batches("orders", group_id="g", consumer_id="a", options=FAST)
    first_batches = aiter(first)
    seen: list[tuple[str, int, int]] = []
    for _ in range(2):  # partition 0, then partition 1, which stays in hand
        batch = await next_batch(first_batches)
        seen.extend(("a", partition, offset) for partition, offset in offsets([batch]))
    assert batch.partition == 1
    assert first.partitions == (0, 1)
    second = reader.consume_batches("orders", group_id="g", consumer_id="b", options=FAST)

    async def run_second() -> None:
        async for batch in second:
            seen.extend(("b", partition, offset) for partition, offset in offsets([batch]))

    second_task = asyncio.create_task(run_second())
    try:
        await eventually(lambda: _has_active_members(store, "orders", 2), seconds=5)  # the second has joined
        await asyncio.sleep(0.5)  # the group wants partition 1 moved, but the batch of it is in hand
        assert first.partitions == (0, 1)
        assert all(member == "a" for member, _, _ in seen)
        batch = await next_batch(first_batches)  # partition 1's batch is processed: it is committed and released
        seen.extend(("a", partition, offset) for partition, offset in offsets([batch]))
        await eventually(lambda: len({(p, o) for _, p, o in seen}) == 20)
        assert sorted((p, o) for _, p, o in seen) == sorted((n % 2, n // 2) for n in range(20)), "nothing twice"
        assert {(member, partition) for member, partition, offset in seen if offset >= 5} == {("a", 0), ("b", 1)}
        assert (owned(first), owned(second)) == ((0,), (1,))
    finally:
        second_task.cancel()
        await asyncio.gather(second_task, return_exceptions=True)
        await first.aclose()
        await second.aclose()
    assert (await reader.describe("orders", "g")).lag_events == 0


async def test_batches_are_split_between_members_and_each_event_is_processed_once(store: EventStore) -> None:
    await fill(store, "orders", 60, partitions=4)
    reader = store.consumer_groups()
    consumptions = {
        name: reader.consume_batches("orders", group_id="g", consumer_id=name, options=FAST) for name in ("a", "b")
    }
    seen: list[tuple[str, int, int]] = []

    async def run(name: str, consumption: GroupBatchConsumption) -> None:
        async for batch in consumption:
            seen.extend((name, partition, offset) for partition, offset in offsets([batch]))
            await asyncio.sleep(0.05)  # slow enough that the second member joins mid-way

    tasks = [asyncio.create_task(run(name, consumption)) for name, consumption in consumptions.items()]
    await eventually(lambda: len({(p, o) for _, p, o in seen}) == 60, seconds=20)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for consumption in consumptions.values():
        await consumption.aclose()
    assert sorted((p, o) for _, p, o in seen) == sorted((n % 4, n // 4) for n in range(60))
    assert set(Counter(name for name, _, _ in seen)) == {"a", "b"}


async def test_a_forced_reset_mid_batch_fences_its_commit_and_delivery_resumes_at_the_reset(store: EventStore) -> None:
    await fill(store, "orders", 20)
    reader = store.consumer_groups()
    manual = options(commit_strategy=OffsetCommitStrategy.MANUAL)
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=manual) as consumption:
        batches = aiter(consumption)
        await next_batch(batches)
        in_hand = await next_batch(batches)
        await reader.reset_offsets("orders", "g", to=StartPosition(start_from=StartFrom.OFFSET, offset=12), force=True)
        with pytest.raises(FencedError):
            await in_hand.commit()
        with pytest.raises(FencedError):
            await in_hand.events[0].commit()
        resumed = await next_batch(batches)
        assert resumed.first_offset == 12
        await resumed.commit()
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 17


async def test_an_automatic_commit_of_a_batch_fenced_mid_batch_is_not_applied(store: EventStore) -> None:
    await fill(store, "orders", 20)
    reader = store.consumer_groups()
    async with reader.consume_batches("orders", group_id="g", consumer_id="w", options=FAST) as consumption:
        batches = aiter(consumption)
        in_hand = await next_batch(batches)
        assert in_hand.first_offset == 0
        await reader.reset_offsets("orders", "g", to=StartPosition(start_from=StartFrom.OFFSET, offset=15), force=True)
        await asyncio.sleep(0.5)  # the member learns of the reset at its next heartbeat (every 200 ms)
        resumed = await next_batch(batches)
        assert resumed.first_offset == 15, "the batch in hand was not committed over the reset"
        assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 15


async def test_a_member_expelled_while_it_holds_a_batch_cannot_commit_it(store: EventStore) -> None:
    await fill(store, "orders", 20, partitions=2)
    reader = store.consumer_groups()
    stuck_options = options(commit_strategy=OffsetCommitStrategy.MANUAL, max_poll_interval=timedelta(milliseconds=400))
    stuck = reader.consume_batches("orders", group_id="g", consumer_id="stuck", options=stuck_options)
    in_hand = await next_batch(aiter(stuck))  # processing it takes too long
    healthy = reader.consume_batches("orders", group_id="g", consumer_id="healthy", options=FAST)
    collected = asyncio.create_task(take_events(healthy, 20, seconds=15))
    await eventually(lambda: healthy.partitions == (0, 1) and stuck.partitions == ())
    with pytest.raises(FencedError):
        await in_hand.commit()
    batches = await collected  # the healthy member delivers the stuck member's batch again
    assert sorted(offsets(batches)) == sorted((n % 2, n // 2) for n in range(20))
    await healthy.aclose()
    await stuck.aclose()


async def test_queue_delivery_batches_are_claims_and_each_event_goes_to_one_member(store: EventStore) -> None:
    await fill(store, "jobs", 40, delivery=DeliverySemantics.QUEUE)
    reader = store.consumer_groups()
    consumptions = {
        name: reader.consume_batches("jobs", group_id="g", consumer_id=name, options=FAST) for name in ("a", "b", "c")
    }
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()
    holding_a_claim: set[str] = set()
    everyone_holds_one = asyncio.Event()

    async def run(name: str, consumption: GroupBatchConsumption) -> None:
        async for batch in consumption:
            assert len(batch) <= 5
            if not everyone_holds_one.is_set():  # each member holds its first claim until all three do
                holding_a_claim.add(name)
                if len(holding_a_claim) == len(consumptions):
                    everyone_holds_one.set()
                await asyncio.wait_for(everyone_holds_one.wait(), 20)
            seen.extend((name, event.offset) for event in batch)
            if len(seen) >= 40:
                done.set()
            await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(run(name, consumption)) for name, consumption in consumptions.items()]
    await asyncio.wait_for(done.wait(), 20)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for consumption in consumptions.values():
        await consumption.aclose()
    assert sorted(offset for _, offset in seen) == list(range(40)), "each event delivered exactly once"
    assert set(Counter(name for name, _ in seen)) == {"a", "b", "c"}
    await eventually(lambda: _lag_is_zero(store))


async def _has_active_members(store: EventStore, stream: str, count: int) -> bool:
    return len((await store.consumer_groups().describe(stream, "g")).active_members) == count


async def _lag_is_zero(store: EventStore) -> bool:
    return (await store.consumer_groups().lag("jobs", "g")).lag_events == 0


async def test_queue_delivery_batch_commit_acknowledges_its_claim(store: EventStore) -> None:
    await fill(store, "jobs", 10, delivery=DeliverySemantics.QUEUE)
    reader = store.consumer_groups()
    manual = options(commit_strategy=OffsetCommitStrategy.MANUAL)
    async with reader.consume_batches("jobs", group_id="g", consumer_id="w", options=manual) as consumption:
        batches = aiter(consumption)
        first = await next_batch(batches)
        second = await next_batch(batches)
        await second.commit()
        assert (await reader.describe("jobs", "g")).partitions[0].committed_offset == 0  # the first is open
        await first.commit()
        assert (await reader.describe("jobs", "g")).partitions[0].committed_offset == 10
