"""Contract: consumer groups — assignment, fencing, commit strategies, lag and administration."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice import (
    ConsumerGroupOptions,
    EventData,
    EventStore,
    FencedError,
    GroupActiveError,
    GroupConsumption,
    GroupNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
)
from sluice.services.consumers.assignment import assign_partitions, moved_partitions
from tests.contract.group_helpers import fill, take

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=10
)


def options(**changes: object) -> ConsumerGroupOptions:
    return FAST.model_copy(update=changes)


async def eventually(check: object, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_assignment_is_even_and_sticky() -> None:
    first = assign_partitions(8, ["a", "b", "c", "d"], {})
    assert sorted(list(first.values()).count(member) for member in "abcd") == [2, 2, 2, 2]
    second = assign_partitions(8, ["a", "b", "c"], first)
    assert sorted(list(second.values()).count(member) for member in "abc") == [2, 3, 3]
    assert len(moved_partitions(first, second)) == 2  # only d's two partitions move
    third = assign_partitions(8, ["a", "b", "c", "d"], second)
    assert len(moved_partitions(second, third)) == 2
    assert assign_partitions(3, [], {0: "a"}) == {0: None, 1: None, 2: None}
    assert list(assign_partitions(2, ["a", "b", "c"], {}).values()).count(None) == 0


async def test_a_single_member_reads_everything_and_commits_after_each_batch(store: EventStore) -> None:
    await fill(store, "orders", 25, partitions=2)
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w1", options=FAST) as consumption:
        events = await take(consumption, 25)
        assert sorted((e.partition, e.offset) for e in events) == sorted((n % 2, n // 2) for n in range(25))
        assert consumption.partitions == (0, 1)
    described = await reader.describe("orders", "g")
    # Leaving the block cleanly counts the event in hand as processed: all 25 are committed.
    assert sum(p.committed_offset for p in described.partitions) == 25
    assert described.lag_events == 0
    assert described.members == ()  # left on exit


async def test_events_are_split_between_members_and_each_is_processed_once(store: EventStore) -> None:
    await fill(store, "orders", 40, partitions=4)
    reader = store.consumer_groups()
    first = reader.consume("orders", group_id="g", consumer_id="w1", options=FAST)
    second = reader.consume("orders", group_id="g", consumer_id="w2", options=FAST)
    seen: list[tuple[int, int]] = []
    everything = sorted((n % 4, n // 4) for n in range(40))

    async def run(consumption: GroupConsumption) -> None:
        async for event in consumption:
            seen.append((event.partition, event.offset))
            await asyncio.sleep(0.01)  # slow enough that the second member joins mid-way

    tasks = [asyncio.create_task(run(first)), asyncio.create_task(run(second))]
    await eventually(lambda: _true(sorted(set(seen)) == everything), seconds=20)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await first.aclose()
    await second.aclose()
    # The handoff is cooperative: nothing processed is delivered twice.
    assert sorted(seen) == everything
    assert first.stats.delivered > 0
    assert second.stats.delivered > 0


async def test_a_member_that_lost_its_partition_is_fenced(store: EventStore) -> None:
    await fill(store, "orders", 10, partitions=2)
    reader = store.consumer_groups()
    first = reader.consume(
        "orders", group_id="g", consumer_id="w1", options=options(commit_strategy=OffsetCommitStrategy.MANUAL)
    )
    [event] = await take(first, 1)
    assert first.partitions == (0, 1)
    second = reader.consume("orders", group_id="g", consumer_id="w2", options=FAST)
    second_events = asyncio.create_task(take(second, 1))
    await eventually(lambda: _owns(second, 1))
    await second_events
    if event.partition in second.partitions:
        with pytest.raises(FencedError, match=r"no longer owns|does not own"):
            await event.commit()
    else:
        await event.commit()
        other = next(p for p in (0, 1) if p != event.partition)
        with pytest.raises(FencedError):
            await reader.commit("orders", group_id="g", consumer_id="w1", offsets={other: 1})
    await first.aclose()
    await second.aclose()


async def _true(value: bool) -> bool:
    return value


async def _owns(consumption: GroupConsumption, count: int) -> bool:
    return len(consumption.partitions) == count


async def test_commit_strategies_commit_exactly_when_they_say(store: EventStore) -> None:
    await fill(store, "orders", 30)
    reader = store.consumer_groups()
    expectations = {
        OffsetCommitStrategy.AFTER_EACH: 30,  # one per event
        OffsetCommitStrategy.AFTER_BATCH: 3,  # batches of 10
        OffsetCommitStrategy.MANUAL: 0,
    }
    for strategy, commits in expectations.items():
        consumption = reader.consume(
            "orders", group_id=f"g-{strategy.value}", consumer_id="w", options=options(commit_strategy=strategy)
        )
        events = await take(consumption, 30)
        # The 30th event is still being processed until the next request: its commit is not due.
        # (A batch's commit is sent while the next batch is fetched, so it may still be landing.)
        due = commits - 1 if strategy is not OffsetCommitStrategy.MANUAL else 0
        await eventually(lambda consumption=consumption, due=due: _true(consumption.stats.commits >= due))
        await asyncio.sleep(0.1)
        assert consumption.stats.commits == due, strategy
        if strategy is OffsetCommitStrategy.MANUAL:
            await events[14].commit()
            assert consumption.stats.commits == 1
        await consumption.aclose()
        described = await reader.describe("orders", f"g-{strategy.value}")
        # A clean close confirms the event in hand, and the automatic strategies commit it on leaving.
        expected_offset = 15 if strategy is OffsetCommitStrategy.MANUAL else 30
        assert described.partitions[0].committed_offset == expected_offset, strategy


async def test_periodic_commits_by_time(store: EventStore) -> None:
    await fill(store, "orders", 5)
    reader = store.consumer_groups()
    consumption = reader.consume(
        "orders", group_id="g", consumer_id="w",
        options=options(commit_strategy=OffsetCommitStrategy.PERIODIC, commit_interval=timedelta(milliseconds=300)),
    )  # fmt: skip
    first_five = asyncio.create_task(take(consumption, 5))
    await first_five
    assert consumption.stats.commits == 0
    waiting = asyncio.create_task(take(consumption, 1))
    await asyncio.sleep(0.5)  # idle past the interval: the member commits 0..3 while it waits
    await store.append("orders", EventData("E", {"n": 5}))
    await waiting
    assert consumption.stats.commits == 1
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 5
    await consumption.aclose()


async def test_a_restarted_member_resumes_from_its_committed_offset(store: EventStore) -> None:
    await fill(store, "orders", 20)
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST) as first:
        await take(first, 10)
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST) as second:
        events = await take(second, 10)
    assert [e.offset for e in events] == list(range(10, 20))


async def test_start_positions(store: EventStore) -> None:
    await fill(store, "orders", 10)
    reader = store.consumer_groups()
    latest = reader.consume(
        "orders",
        group_id="late",
        consumer_id="w",
        options=options(start_position=StartPosition(start_from=StartFrom.LATEST)),
    )
    pending = asyncio.create_task(take(latest, 1))
    await asyncio.sleep(0.3)
    await store.append("orders", EventData("E", {"n": 10}))
    assert [e.offset for e in await pending] == [10]
    await latest.aclose()
    at_offset = reader.consume(
        "orders",
        group_id="mid",
        consumer_id="w",
        options=options(start_position=StartPosition(start_from=StartFrom.OFFSET, offset=7)),
    )
    assert [e.offset for e in await take(at_offset, 2)] == [7, 8]
    await at_offset.aclose()
    stored = [e async for e in store.read_stream("orders")]
    at_time = reader.consume(
        "orders",
        group_id="timed",
        consumer_id="w",
        options=options(start_position=StartPosition(start_from=StartFrom.TIME, time=stored[10].timestamp)),
    )
    assert [e.offset for e in await take(at_time, 1)] == [10]
    await at_time.aclose()


async def test_lag_is_exact_in_events_and_seconds(store: EventStore) -> None:
    await fill(store, "orders", 10, partitions=2)
    reader = store.consumer_groups()
    async with reader.consume("orders", group_id="g", consumer_id="w", options=FAST) as consumption:
        await take(consumption, 6)
    await asyncio.sleep(0.2)
    described = await reader.lag("orders", "g")
    committed = sum(p.committed_offset for p in described.partitions)
    assert committed == 6  # the block ended cleanly: the sixth counts as processed
    assert described.lag_events == 10 - committed
    assert all(p.lag_events == p.head - p.committed_offset for p in described.partitions)
    assert 0.2 <= described.lag_seconds < 30
    for n in range(10, 14):
        await store.append("orders", EventData("E", {"n": n}), partition=0)
    assert (await reader.lag("orders", "g")).lag_events == 14 - committed
    summary = await reader.list_groups()
    assert [(s.stream_name, s.group_id, s.members, s.lag_events) for s in summary] == [
        ("orders", "g", 0, 14 - committed)
    ]


async def test_reset_is_refused_while_members_are_active_and_a_forced_reset_fences_them(store: EventStore) -> None:
    await fill(store, "orders", 10)
    reader = store.consumer_groups()
    consumption = reader.consume(
        "orders", group_id="g", consumer_id="w", options=options(commit_strategy=OffsetCommitStrategy.MANUAL)
    )
    events = await take(consumption, 5)
    with pytest.raises(GroupActiveError, match="active members \\['w'\\]"):
        await reader.reset_offsets("orders", "g", to=StartPosition(start_from=StartFrom.LATEST))
    with pytest.raises(GroupActiveError):
        await reader.delete("orders", "g")
    described = await reader.reset_offsets(
        "orders", "g", to=StartPosition(start_from=StartFrom.OFFSET, offset=8), force=True
    )
    assert described.partitions[0].committed_offset == 8
    with pytest.raises(FencedError):
        await events[4].commit()
    resumed = await take(consumption, 2)
    assert [e.offset for e in resumed] == [8, 9]
    await consumption.aclose()
    await reader.reset_offsets("orders", "g", to=StartPosition())
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 0
    await reader.delete("orders", "g")
    with pytest.raises(GroupNotFoundError):
        await reader.describe("orders", "g")


async def test_partitions_can_grow_and_groups_pick_them_up(store: EventStore) -> None:
    await fill(store, "orders", 4, partitions=2)
    reader = store.consumer_groups()
    consumption = reader.consume("orders", group_id="g", consumer_id="w", options=FAST)
    await take(consumption, 4)
    grown = await store.set_partitions("orders", 4)
    assert grown.partitions == 4
    await store.append("orders", EventData("E", {"n": 99}), partition=3)
    [late] = await take(consumption, 1)
    assert (late.partition, late.offset) == (3, 0)
    await consumption.aclose()
    with pytest.raises(InvalidArgumentError, match="can only grow"):
        await store.set_partitions("orders", 2)


async def test_bad_input_is_refused(store: EventStore) -> None:
    await fill(store, "orders", 3)
    reader = store.consumer_groups()
    with pytest.raises(InvalidNameError, match="invalid group id"):
        reader.consume("orders", group_id="bad group", consumer_id="w")
    with pytest.raises(InvalidNameError, match="invalid consumer id"):
        reader.consume("orders", group_id="g", consumer_id="")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        ConsumerGroupOptions(batch_size=0)
    with pytest.raises(GroupNotFoundError):
        await reader.describe("orders", "nope")
    consumption = reader.consume(
        "orders", group_id="g", consumer_id="w", options=options(commit_strategy=OffsetCommitStrategy.MANUAL)
    )
    await take(consumption, 1)
    with pytest.raises(InvalidArgumentError, match="the head is 3"):
        await reader.commit("orders", group_id="g", consumer_id="w", offsets={0: 4})
    with pytest.raises(FencedError, match="does not own"):
        await reader.commit("orders", group_id="g", consumer_id="w", offsets={5: 0})
    with pytest.raises(FencedError, match="not consuming"):
        await reader.commit("orders", group_id="g", consumer_id="other", offsets={0: 1})
    assert (await reader.describe("orders", "g")).partitions[0].committed_offset == 0
    await consumption.aclose()


async def test_a_member_stuck_past_max_poll_interval_loses_its_partitions_and_rejoins(store: EventStore) -> None:
    await fill(store, "orders", 20, partitions=2)
    reader = store.consumer_groups()
    stuck = reader.consume(
        "orders", group_id="g", consumer_id="stuck", options=options(max_poll_interval=timedelta(milliseconds=400))
    )
    await take(stuck, 1)  # it holds this event and does not ask for more
    healthy = reader.consume("orders", group_id="g", consumer_id="healthy", options=FAST)
    collected = asyncio.create_task(take(healthy, 19, seconds=15))
    # The stuck member's own heartbeat reports it has not polled for too long: it is expelled and
    # the healthy member takes every partition, although the stuck one keeps heartbeating.
    await eventually(lambda: _true(healthy.partitions == (0, 1)), seconds=10)
    # The healthy member's heartbeat may expel it first; the stuck one learns at its own next heartbeat.
    await eventually(lambda: _true(stuck.partitions == ()), seconds=5)
    await collected
    await healthy.aclose()
    await stuck.aclose()
    described = await reader.describe("orders", "g")
    assert described.lag_events <= 1  # the stuck member's event may be delivered twice, never lost


async def test_a_manual_member_hands_over_without_committing_what_its_consumer_did_not(store: EventStore) -> None:
    await fill(store, "orders", 10, partitions=2)
    reader = store.consumer_groups()
    first = reader.consume(
        "orders", group_id="g", consumer_id="w1", options=options(commit_strategy=OffsetCommitStrategy.MANUAL)
    )
    pulling = asyncio.create_task(take(first, 11))  # pulls all ten, commits none, waits for more
    await eventually(lambda: _true(first.stats.delivered == 10))
    second = reader.consume("orders", group_id="g", consumer_id="w2", options=FAST)
    [redelivered] = await take(second, 1)
    assert redelivered.offset == 0, "the handed-over partition restarts at its last commit"
    assert first.stats.commits == 0
    pulling.cancel()
    await asyncio.gather(pulling, return_exceptions=True)
    await first.aclose()
    await second.aclose()


async def test_a_member_starts_on_a_partition_it_is_handed_at_once_not_at_its_next_poll(store_url: str) -> None:
    """The partition arrives with the member's own heartbeat, after its delivery loop found
    nothing and went to wait: the heartbeat must wake the loop (the poll interval here is 60 s)."""
    slow_poll = await sluice.connect(store_url, poll_interval=timedelta(seconds=60))
    await fill(slow_poll, "orders", 20, partitions=2)
    reader = slow_poll.consumer_groups()
    first = reader.consume_batches("orders", group_id="g", consumer_id="a", options=options(batch_size=5))
    second = reader.consume("orders", group_id="g", consumer_id="b", options=FAST)
    try:
        in_hand = await asyncio.wait_for(anext(aiter(first)), 10)  # partition 0's batch stays in hand
        assert in_hand.partition == 0
        events = await take(second, 10, seconds=10)  # partition 1 moves to it while it waits
        assert sorted(event.offset for event in events) == list(range(10))
        assert {event.partition for event in events} == {1}
    finally:
        await second.aclose()
        await first.aclose()
        await slow_poll.close()
