"""Contract: consumer groups on a stream with QUEUE delivery semantics — each event to one member of
a group, work spread over members even on one partition, expired claims taken over, stale members
fenced, committed offsets and lag exact, groups independent."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from sluice import (
    ConsumerGroupOptions,
    DeliverySemantics,
    EventStore,
    FencedError,
    GroupConsumption,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
)
from sluice.store.values.consumer_groups import ClaimAcknowledgement
from tests.contract.group_helpers import fill as fill_stream
from tests.contract.group_helpers import take

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=200), batch_size=5
)
MANUAL = FAST.model_copy(update={"commit_strategy": OffsetCommitStrategy.MANUAL})


async def fill(store: EventStore, stream: str, count: int, partitions: int = 1) -> None:
    await fill_stream(store, stream, count, partitions, delivery=DeliverySemantics.QUEUE)


async def consume_all(
    consumptions: dict[str, GroupConsumption], expected: int, *, delay: float, seconds: float = 20
) -> list[tuple[str, int, int]]:
    """Run every member until ``expected`` distinct events were seen; (consumer, partition, offset)."""
    seen: list[tuple[str, int, int]] = []
    done = asyncio.Event()

    async def run(name: str, consumption: GroupConsumption) -> None:
        async for event in consumption:
            seen.append((name, event.partition, event.offset))
            if len({(p, o) for _, p, o in seen}) == expected:
                done.set()
            await asyncio.sleep(delay)

    tasks = [asyncio.create_task(run(name, consumption)) for name, consumption in consumptions.items()]
    try:
        await asyncio.wait_for(done.wait(), seconds)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumption in consumptions.values():
            await consumption.aclose()
    return seen


async def test_each_event_goes_to_one_member_and_work_spreads_over_members_of_one_partition(
    store: EventStore,
) -> None:
    await fill(store, "jobs", 60)
    reader = store.consumer_groups()
    members = {name: reader.consume("jobs", group_id="g", consumer_id=name, options=FAST) for name in ("a", "b", "c")}
    seen = await consume_all(members, 60, delay=0.01)
    assert sorted(offset for _, _, offset in seen) == list(range(60)), "each event delivered exactly once"
    per_member = Counter(name for name, _, _ in seen)
    assert set(per_member) == {"a", "b", "c"}, f"work spread over every member: {per_member}"
    described = await reader.describe("jobs", "g")
    assert described.partitions[0].committed_offset == 60
    assert described.lag_events == 0
    assert all(partition.owner is None for partition in described.partitions), "QUEUE members own no partition"


async def test_a_second_group_still_receives_every_event(store: EventStore) -> None:
    await fill(store, "jobs", 24, partitions=3)
    reader = store.consumer_groups()
    first = {name: reader.consume("jobs", group_id="first", consumer_id=name, options=FAST) for name in ("a", "b")}
    second = {"z": reader.consume("jobs", group_id="second", consumer_id="z", options=FAST)}
    seen_first, seen_second = await asyncio.gather(
        consume_all(first, 24, delay=0.005), consume_all(second, 24, delay=0)
    )
    everything = sorted((n % 3, n // 3) for n in range(24))
    assert sorted((p, o) for _, p, o in seen_first) == everything
    assert sorted((p, o) for _, p, o in seen_second) == everything
    for group in ("first", "second"):
        assert (await reader.lag("jobs", group)).lag_events == 0


async def test_committed_offset_advances_only_over_contiguous_acknowledged_events(store: EventStore) -> None:
    await fill(store, "jobs", 9)
    reader = store.consumer_groups()
    consumption = reader.consume(
        "jobs", group_id="g", consumer_id="w", options=MANUAL.model_copy(update={"batch_size": 3})
    )
    events = await take(consumption, 9)
    assert [event.offset for event in events] == list(range(9))

    async def committed() -> tuple[int, int]:
        described = await reader.lag("jobs", "g")
        return described.partitions[0].committed_offset, described.lag_events

    await events[7].commit()  # the third claim, up to offset 7: not at the front
    assert await committed() == (0, 9)
    await events[4].commit()  # part of the second claim
    assert await committed() == (0, 9)
    await events[2].commit()  # the first claim is finished: 0..2, then 3..4 are contiguous
    assert await committed() == (5, 4)
    await events[5].commit()  # the second claim is finished: 5, then 6..7 of the third
    assert await committed() == (8, 1)
    await events[5].commit()  # committing a finished claim again changes nothing
    await reader.commit("jobs", group_id="g", consumer_id="w", offsets={0: 9})
    assert await committed() == (9, 0)
    with pytest.raises(FencedError, match="does not hold claims"):
        await reader.commit("jobs", group_id="g", consumer_id="w", offsets={0: 9})
    await consumption.aclose()


async def test_a_claim_whose_lease_expires_is_redelivered_and_its_late_acknowledgement_refused(
    store: EventStore,
) -> None:
    await fill(store, "jobs", 15)
    reader = store.consumer_groups()
    live = reader.consume("jobs", group_id="g", consumer_id="live", options=FAST)
    [first] = await take(live, 1)  # the group exists; "live" holds offsets 0..4
    assert first.offset == 0
    # A member that claims 5..9 and dies: it never heartbeats, so its lease is never extended.
    dead = await store.backend.groups.claim(
        "jobs",
        "g",
        consumer_id="dead",
        instance_id="dead-instance",
        count=5,
        lease=timedelta(milliseconds=300),
        first_partition=0,
    )
    assert dead is not None
    assert (dead.from_offset, dead.to_offset, dead.attempt) == (5, 10, 1)
    rest = await take(live, 14)
    offsets = [event.offset for event in rest]
    assert sorted(offsets) == list(range(1, 15)), "the dead member's events were redelivered to the live one"
    assert offsets.index(5) > offsets.index(14), "taken over after its lease ran out, not before"
    stale = await store.backend.groups.acknowledge(
        "jobs", "g", [ClaimAcknowledgement(dead.claim_id, dead.attempt, dead.partition, dead.to_offset)]
    )
    assert [item.claim_id for item in stale] == [dead.claim_id], "the dead member's acknowledgement is refused"
    await live.aclose()
    described = await reader.describe("jobs", "g")
    assert described.partitions[0].committed_offset == 15
    assert described.lag_events == 0


async def test_a_stale_member_is_fenced_and_its_events_go_to_another_member(store: EventStore) -> None:
    await fill(store, "jobs", 20)
    reader = store.consumer_groups()
    stuck = reader.consume(
        "jobs",
        group_id="g",
        consumer_id="stuck",
        options=MANUAL.model_copy(update={"max_poll_interval": timedelta(milliseconds=400)}),
    )
    [held] = await take(stuck, 1)  # it holds this event (and its claim of 0..4) and does not ask for more
    healthy = reader.consume("jobs", group_id="g", consumer_id="healthy", options=FAST)
    events = await take(healthy, 20, seconds=15)  # including the stuck member's, once it is expelled
    assert sorted(event.offset for event in events) == list(range(20))
    with pytest.raises(FencedError, match="no longer holds"):
        await held.commit()
    assert stuck.stats.delivered == 1
    await healthy.aclose()
    await stuck.aclose()
    described = await reader.describe("jobs", "g")
    assert described.partitions[0].committed_offset == 20
    assert described.lag_events == 0


async def test_a_member_that_leaves_hands_its_unprocessed_claims_over_at_once(store: EventStore) -> None:
    await fill(store, "jobs", 10)
    reader = store.consumer_groups()
    leaving = reader.consume(
        "jobs", group_id="g", consumer_id="leaving", options=FAST.model_copy(update={"batch_size": 10})
    )
    await take(leaving, 3)
    await leaving.aclose()  # processed 0..2 (the third confirmed by the clean stop); 3..9 released
    assert (await reader.describe("jobs", "g")).partitions[0].committed_offset == 3
    other = reader.consume(
        "jobs",
        group_id="g",
        consumer_id="other",
        options=FAST.model_copy(update={"session_timeout": timedelta(seconds=30)}),
    )
    started = asyncio.get_running_loop().time()
    events = await take(other, 7)
    assert [event.offset for event in events] == list(range(3, 10))
    assert asyncio.get_running_loop().time() - started < 1.0, "no wait for the leaver's lease to run out"
    await other.aclose()


async def test_a_forced_reset_drops_claims_and_fences_their_holders(store: EventStore) -> None:
    await fill(store, "jobs", 10)
    reader = store.consumer_groups()
    consumption = reader.consume("jobs", group_id="g", consumer_id="w", options=MANUAL)
    events = await take(consumption, 3)
    described = await reader.reset_offsets(
        "jobs", "g", to=StartPosition(start_from=StartFrom.OFFSET, offset=8), force=True
    )
    assert described.partitions[0].committed_offset == 8
    with pytest.raises(FencedError):
        await events[2].commit()
    resumed = await take(consumption, 2)
    assert [event.offset for event in resumed] == [8, 9]
    await resumed[1].commit()
    assert (await reader.describe("jobs", "g")).partitions[0].committed_offset == 10
    await consumption.aclose()
