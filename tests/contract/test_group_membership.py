"""Contract: consumer-group membership on both backends — a duplicate consumer id fences the older
process for good (no livelock), a clean rebalance redelivers nothing, and a member waits for a stream
that its first append will create."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

import sluice
from sluice import (
    AutoCreateRule,
    ConsumerGroupOptions,
    DuplicateConsumerError,
    EventData,
    EventStore,
    GroupConsumption,
    OffsetCommitStrategy,
    StreamConfig,
    StreamNotFoundError,
)
from tests.contract.group_helpers import fill, take
from tests.store_fixtures import FAST_POLL

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=100), batch_size=10
)


@contextlib.asynccontextmanager
async def second_store(store: EventStore, store_url: str) -> AsyncIterator[EventStore]:
    """Another process's view: a second connection on PostgreSQL, the same store in memory."""
    if store_url == "memory://":
        yield store
        return
    other = await sluice.connect(store_url, poll_interval=FAST_POLL)
    try:
        yield other
    finally:
        await other.close()


async def test_a_newer_process_with_the_same_consumer_id_fences_the_older_one_for_good(
    store: EventStore, store_url: str
) -> None:
    await fill(store, "orders", 40, partitions=2)
    async with second_store(store, store_url) as other:
        older = store.consumer_groups().consume("orders", group_id="g", consumer_id="w", options=FAST)
        await take(older, 5)
        newer = other.consumer_groups().consume("orders", group_id="g", consumer_id="w", options=FAST)
        taken = await take(newer, 5)
        assert taken, "the newer process consumes at once"

        with pytest.raises(DuplicateConsumerError, match="same consumer id"):
            await take(older, 100, seconds=10)  # refused at its next heartbeat; it stops for good

        reader = store.consumer_groups()
        epochs = {p.partition: p.epoch for p in (await reader.describe("orders", "g")).partitions}
        await asyncio.sleep(0.5)  # several heartbeats of the newer process: the epochs stay put (no livelock)
        described = await reader.describe("orders", "g")
        assert {p.partition: p.epoch for p in described.partitions} == epochs
        [member] = described.members
        assert member.consumer_id == "w"
        assert member.instance_id == newer.member.instance_id
        assert member.duplicates_fenced == 1
        assert member.last_duplicate_at is not None
        assert await take(newer, 30), "the newer process goes on consuming"
        await newer.aclose()
        await older.aclose()  # the fenced process leaves nothing behind, and does not remove the newer one


async def test_a_clean_rebalance_redelivers_no_processed_event(store: EventStore, store_url: str) -> None:
    """Two members, one commit per event, 4 partitions, 200 keyed events, nothing crashes: every event
    is delivered exactly once, whichever member joins while the other is busy."""
    await store.create_stream(StreamConfig(name="orders", partitions=4))
    for n in range(200):
        await store.append("orders", EventData("E", {"n": n}), partition_key=f"key-{n}")
    # A long session: on a busy machine a 1 s session can expire, which is not a clean rebalance. The
    # handoff itself does not wait for a heartbeat interval: the join wakes the owner at once.
    options = ConsumerGroupOptions(
        commit_strategy=OffsetCommitStrategy.AFTER_EACH,
        session_timeout=timedelta(seconds=15),
        heartbeat_interval=timedelta(seconds=1),
        batch_size=10,
    )
    deliveries: Counter[tuple[int, int]] = Counter()
    everything = asyncio.Event()

    async def member(events: GroupConsumption) -> None:
        async with events:
            async for event in events:
                deliveries[event.partition, event.offset] += 1
                await asyncio.sleep(0.002)  # some work, so that the second member joins mid-stream
                if len(deliveries) == 200:
                    everything.set()

    async with second_store(store, store_url) as other:
        first = store.consumer_groups().consume("orders", group_id="g", consumer_id="a", options=options)
        second = other.consumer_groups().consume("orders", group_id="g", consumer_id="b", options=options)
        tasks = [asyncio.create_task(member(first))]
        await asyncio.sleep(0.15)
        tasks.append(asyncio.create_task(member(second)))
        await asyncio.wait_for(everything.wait(), 30)
        await asyncio.sleep(1.5)  # a late redelivery would show up now
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert first.stats.delivered > 0, "both members consumed"
    assert second.stats.delivered > 0, "both members consumed"
    assert len(deliveries) == 200
    redelivered = {key: count for key, count in deliveries.items() if count > 1}
    assert not redelivered, f"{sum(deliveries.values())} deliveries; redelivered: {redelivered}"


async def test_a_member_waits_for_a_stream_that_its_first_append_creates(store: EventStore) -> None:
    events = store.consumer_groups().consume("later", group_id="g", consumer_id="w", options=FAST)
    taking = asyncio.create_task(take(events, 2, seconds=20))
    subscribing = asyncio.create_task(anext(aiter(store.subscribe("later"))))
    await asyncio.sleep(0.3)
    assert not taking.done(), "the member waits for the stream"
    assert not subscribing.done(), "the subscription waits for the stream"
    assert not events.health.ready
    await store.append("later", [EventData("E", {"n": 1}), EventData("E", {"n": 2})])
    taken = await taking
    assert [event.data["n"] for event in taken] == [1, 2]
    assert events.health.ready, events.health.reason
    first: sluice.RecordedEvent = await asyncio.wait_for(subscribing, 10)
    assert first.data == {"n": 1}
    await events.aclose()


@pytest.mark.parametrize(
    "options",
    [
        {"auto_create_streams": False},
        {"auto_create_rules": (AutoCreateRule(pattern="nev*", create=False),)},
    ],
    ids=["auto-create-off", "denied-by-rule"],
)
async def test_a_stream_that_is_not_auto_created_fails_at_once(store_url: str, options: dict[str, object]) -> None:
    async with await sluice.connect(store_url, poll_interval=FAST_POLL, **options) as store:
        with pytest.raises(StreamNotFoundError, match="not auto-created"):
            await take(store.consumer_groups().consume("never", group_id="g", consumer_id="w", options=FAST), 1, 5)
        with pytest.raises(StreamNotFoundError, match="not auto-created"):
            await asyncio.wait_for(anext(aiter(store.subscribe("never"))), 5)


async def test_a_deleted_stream_is_not_waited_for(store: EventStore) -> None:
    await fill(store, "gone", 1)
    await store.delete_stream("gone", soft=True)
    with pytest.raises(sluice.StreamDeletedError):
        await take(store.consumer_groups().consume("gone", group_id="g", consumer_id="w", options=FAST), 1, 5)


@pytest.mark.parametrize("api", ["events", "batches"])
async def test_a_member_cancelled_while_it_stops_still_stops_heartbeating(store: EventStore, api: str) -> None:
    """A consumer that breaks out of its loop and is then cancelled (a worker stopping with a deadline):
    every await on the way out may raise CancelledError, and none of them may leave the heartbeat
    running (a member that outlives its consumer keeps its partitions until the process exits)."""
    await fill(store, "orders", 200, partitions=2)
    options = ConsumerGroupOptions(
        session_timeout=timedelta(seconds=1),
        heartbeat_interval=timedelta(milliseconds=50),
        batch_size=10,
        commit_strategy=OffsetCommitStrategy.AFTER_BATCH,
    )
    reader = store.consumer_groups()
    for attempt in range(20):  # the cancellations land on a different await each time
        consumption = (
            reader.consume("orders", group_id=f"g{attempt}", consumer_id="w", options=options)
            if api == "events"
            else reader.consume_batches("orders", group_id=f"g{attempt}", consumer_id="w", options=options)
        )
        delivered = asyncio.Event()

        async def member(
            consumption: sluice.GroupConsumption | sluice.GroupBatchConsumption, delivered: asyncio.Event
        ) -> None:
            async with consumption:
                seen = 0
                async for item in consumption:
                    seen += len(item.events) if isinstance(item, sluice.ConsumedBatch) else 1
                    if seen >= 25:
                        delivered.set()
                        break

        task = asyncio.create_task(member(consumption, delivered))
        await asyncio.wait_for(delivered.wait(), 10)
        for _ in range(attempt):
            await asyncio.sleep(0)
        while not task.done():
            task.cancel()
            await asyncio.sleep(0)
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.2)  # four heartbeat intervals: a leaked heartbeat would still be running
    heartbeats = [task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("sluice-heartbeat-")]
    assert heartbeats == [], f"{len(heartbeats)} heartbeats outlived their consumers"
