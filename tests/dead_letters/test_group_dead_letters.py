"""A consumer group's dead letters, on both backends: the worker buries events that fail every
attempt with their full record; they can be listed, inspected, redriven (all or selected: the
group, and only that group, receives them again, and the redrive is then done) and purged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sluice import ConsumedEvent, EventData, EventStore, StreamConfig
from sluice.core.errors import (
    DeadLetterNotFoundError,
    GroupNotFoundError,
    InvalidArgumentError,
    StreamNotFoundError,
    StreamTypeError,
)
from sluice.services.retries import (
    DeadLetterBurial,
    FailedDelivery,
    GroupDeadLetter,
    RetryPolicy,
    group_dead_letters,
)
from sluice.services.sinks.dead_letters import DEAD_LETTER_METADATA_KEY
from tests.dead_letters.workers import ScriptedHandler, running_worker, wait_until, worker_settings


def is_poison(event: ConsumedEvent) -> bool:
    return isinstance(event.data, dict) and bool(event.data.get("poison"))


async def bury_poison(
    store: EventStore, *, count: int = 3, group: str = "billing", append: bool = True
) -> list[GroupDeadLetter]:
    """Append events (unless ``append`` is False), every other one poison, and run a worker of
    ``group`` until the ``count`` poison ones are buried."""
    if append:
        events = [
            EventData("OrderPlaced", {"n": n, "poison": n % 2 == 1}, metadata={"source": "test"})
            for n in range(2 * count)
        ]
        await store.append("orders", events, partition_key="one-key", correlation_id="c-1")
    handler = ScriptedHandler(refuse=is_poison)
    dead_letters = group_dead_letters(store)
    async with running_worker(store, worker_settings("orders", group), handler):

        async def all_buried() -> bool:
            return len(await dead_letters.list("orders", group)) == count

        await wait_until(all_buried)
    return await dead_letters.list("orders", group)


async def test_an_event_failing_every_attempt_is_a_dead_letter_with_its_full_record(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    poison = EventData("OrderPlaced", {"n": 1, "poison": True}, metadata={"source": "test"})
    await store.append("orders", [EventData("OrderPlaced", {"n": 0}), poison], partition_key="k", correlation_id="c-9")
    handler = ScriptedHandler(refuse=is_poison)
    policy = RetryPolicy(max_attempts=4, delay=0.01, max_delay=0.02)
    dead_letters = group_dead_letters(store)
    async with running_worker(store, worker_settings("orders", "billing", retry=policy), handler) as worker:

        async def buried() -> bool:
            return bool(await dead_letters.list("orders", "billing"))

        await wait_until(buried)
    [letter] = await dead_letters.list("orders", "billing")
    [stored] = [event async for event in store.read_stream("orders", partition=letter.partition) if event.offset == 1]
    assert letter.event_id == poison.event_id == stored.event_id
    assert (letter.stream_name, letter.group_id, letter.offset) == ("orders", "billing", 1)
    assert letter.partition == stored.partition
    assert letter.event_type == "OrderPlaced"
    assert letter.data == {"n": 1, "poison": True}
    assert dict(letter.metadata) == dict(stored.metadata)
    assert letter.metadata["source"] == "test"
    assert letter.correlation_id == "c-9"
    assert letter.appended_at == stored.timestamp
    assert letter.attempts == 4
    assert letter.error == "RuntimeError: refusing {'n': 1, 'poison': True}"
    assert letter.first_failure_at < letter.last_failure_at <= letter.dead_lettered_at
    assert letter.dead_letter_stream == "orders.billing.dead-letter"
    assert letter.consumer_id == "billing-worker"
    assert not letter.awaiting_redrive
    assert [attempt for data, attempt in handler.attempts if data == letter.data] == [1, 2, 3, 4]
    assert worker.dead_lettered == 1
    assert await dead_letters.get("orders", "billing", letter.dead_letter_id) == letter
    # the dead-letter stream has its copy, and the group committed past the event
    [copy] = [event async for event in store.read_stream("orders.billing.dead-letter")]
    assert copy.event_id == poison.event_id
    assert copy.metadata[DEAD_LETTER_METADATA_KEY]["dead_letter_id"] == letter.dead_letter_id
    assert copy.metadata[DEAD_LETTER_METADATA_KEY]["attempts"] == 4
    assert (await store.consumer_groups().describe("orders", "billing")).lag_events == 0


async def test_a_redriven_dead_letter_is_delivered_again_to_that_group_only_and_then_done(store: EventStore) -> None:
    await bury_poison(store, count=1)
    # a second group of the same stream: it accepts everything, and must not see the redrive
    other = ScriptedHandler(refuse=lambda event: False)
    async with running_worker(store, worker_settings("orders", "audit"), other):

        async def audit_caught_up() -> bool:
            return len(other.succeeded) == 2

        await wait_until(audit_caught_up)
    dead_letters = group_dead_letters(store)
    [letter] = await dead_letters.list("orders", "billing")
    assert await dead_letters.redrive("orders", "billing") == [letter.dead_letter_id]
    assert (await dead_letters.get("orders", "billing", letter.dead_letter_id)).awaiting_redrive
    assert await dead_letters.redrive("orders", "billing") == []  # already waiting

    healed = ScriptedHandler(refuse=lambda event: False)
    audit = ScriptedHandler(refuse=lambda event: False)
    async with (
        running_worker(store, worker_settings("orders", "billing"), healed) as billing,
        running_worker(store, worker_settings("orders", "audit"), audit),
    ):

        async def redelivered() -> bool:
            return bool(healed.succeeded) and not await dead_letters.list("orders", "billing")

        await wait_until(redelivered)
    assert healed.succeeded == [({"n": 1, "poison": True}, True)]
    assert billing.redrives_delivered == 1
    assert audit.attempts == []  # the other group received nothing again
    assert await dead_letters.list("orders", "billing") == []  # done: the redrive was its commit
    with pytest.raises(DeadLetterNotFoundError):
        await dead_letters.get("orders", "billing", letter.dead_letter_id)
    assert (await store.consumer_groups().describe("orders", "billing")).lag_events == 0


async def test_a_redrive_that_fails_again_is_a_dead_letter_again_with_the_attempts_added(store: EventStore) -> None:
    [letter] = await bury_poison(store, count=1)
    dead_letters = group_dead_letters(store)
    await dead_letters.redrive("orders", "billing", dead_letter_ids=[letter.dead_letter_id])
    still_failing = ScriptedHandler(refuse=is_poison)
    async with running_worker(store, worker_settings("orders", "billing"), still_failing):

        async def failed_again() -> bool:
            current = await dead_letters.get("orders", "billing", letter.dead_letter_id)
            return not current.awaiting_redrive

        await wait_until(failed_again)
    again = await dead_letters.get("orders", "billing", letter.dead_letter_id)
    assert again.attempts == 6  # 3 at first, 3 in the redrive
    assert again.redrives == 1
    assert again.first_failure_at == letter.first_failure_at
    assert again.last_failure_at > letter.last_failure_at
    assert [attempt for _, attempt in still_failing.attempts] == [1, 2, 3]


async def test_selected_redrive_and_selected_purge_touch_only_the_chosen(store: EventStore) -> None:
    letters = await bury_poison(store, count=3)
    first, second, third = (letter.dead_letter_id for letter in letters)
    dead_letters = group_dead_letters(store)
    assert await dead_letters.redrive("orders", "billing", dead_letter_ids=[second, 999_999]) == [second]
    waiting = {
        letter.dead_letter_id: letter.awaiting_redrive for letter in await dead_letters.list("orders", "billing")
    }
    assert waiting == {first: False, second: True, third: False}

    assert await dead_letters.purge("orders", "billing", dead_letter_ids=[first]) == 1
    assert [letter.dead_letter_id for letter in await dead_letters.list("orders", "billing")] == [second, third]
    assert await dead_letters.purge("orders", "billing", dead_letter_ids=[first]) == 0  # already gone
    # paging
    assert [letter.dead_letter_id for letter in await dead_letters.list("orders", "billing", limit=1)] == [second]
    assert [letter.dead_letter_id for letter in await dead_letters.list("orders", "billing", after_id=second)] == [
        third
    ]
    # only the redriven one is delivered again
    healed = ScriptedHandler(refuse=lambda event: False)
    async with running_worker(store, worker_settings("orders", "billing"), healed):

        async def delivered() -> bool:
            return bool(healed.succeeded)

        await wait_until(delivered)
    assert healed.succeeded == [(letters[1].data, True)]
    assert [letter.dead_letter_id for letter in await dead_letters.list("orders", "billing")] == [third]
    assert await dead_letters.purge("orders", "billing") == 1
    assert await dead_letters.list("orders", "billing") == []


async def test_dead_letters_belong_to_their_group(store: EventStore) -> None:
    await bury_poison(store, count=1, group="billing")
    await bury_poison(store, count=1, group="shipping", append=False)  # the same events: its own dead letters
    dead_letters = group_dead_letters(store)
    [billing] = await dead_letters.list("orders", "billing")
    [shipping] = await dead_letters.list("orders", "shipping")
    assert billing.dead_letter_id != shipping.dead_letter_id
    with pytest.raises(DeadLetterNotFoundError):
        await dead_letters.get("orders", "shipping", billing.dead_letter_id)
    assert await dead_letters.redrive("orders", "shipping", dead_letter_ids=[billing.dead_letter_id]) == []
    assert await dead_letters.purge("orders", "shipping", dead_letter_ids=[billing.dead_letter_id]) == 0
    assert await dead_letters.purge("orders", "billing") == 1
    assert [letter.dead_letter_id for letter in await dead_letters.list("orders", "shipping")] == [
        shipping.dead_letter_id
    ]


async def test_a_claimed_redrive_is_not_given_to_a_second_member_until_released(store: EventStore) -> None:
    [letter] = await bury_poison(store, count=1)
    dead_letters = group_dead_letters(store)
    await dead_letters.redrive("orders", "billing")
    claim = await dead_letters.claim_redrive("orders", "billing", consumer_id="a", lease=timedelta(minutes=1))
    assert claim is not None
    assert claim.dead_letter.dead_letter_id == letter.dead_letter_id
    assert await dead_letters.claim_redrive("orders", "billing", consumer_id="b", lease=timedelta(minutes=1)) is None
    assert await dead_letters.release_redrive(claim)
    second = await dead_letters.claim_redrive("orders", "billing", consumer_id="b", lease=timedelta(minutes=1))
    assert second is not None
    assert not await dead_letters.complete_redrive(claim)  # the first claim is stale now
    assert await dead_letters.complete_redrive(second)
    assert await dead_letters.list("orders", "billing") == []


async def test_bad_input_is_refused_with_typed_errors_and_changes_nothing(store: EventStore) -> None:
    [letter] = await bury_poison(store, count=1)
    dead_letters = group_dead_letters(store)
    with pytest.raises(StreamNotFoundError):
        await dead_letters.list("missing", "billing")
    await store.enqueue("jobs", EventData("Job", {}))
    with pytest.raises(StreamTypeError):
        await dead_letters.list("jobs", "billing")
    with pytest.raises(InvalidArgumentError):
        await dead_letters.list("orders", "bad group")
    with pytest.raises(InvalidArgumentError):
        await dead_letters.list("orders", "billing", limit=0)
    with pytest.raises(InvalidArgumentError):
        await dead_letters.redrive("orders", "billing", dead_letter_ids=[])
    with pytest.raises(InvalidArgumentError):
        await dead_letters.purge("orders", "billing", dead_letter_ids=[0])
    with pytest.raises(InvalidArgumentError):
        await dead_letters.get("orders", "billing", -1)
    [event] = [event async for event in store.read_stream("orders", limit=1)]
    failure = FailedDelivery(
        error="x", attempts=1, first_failure_at=letter.first_failure_at, last_failure_at=letter.last_failure_at
    )
    burial = DeadLetterBurial(group_id="nobody", consumer_id="c", dead_letter_stream="dl")
    with pytest.raises(GroupNotFoundError):
        await dead_letters.bury(event, failure, burial)
    assert [item.dead_letter_id for item in await dead_letters.list("orders", "billing")] == [letter.dead_letter_id]


async def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_late_completion_changes_nothing(
    store: EventStore,
) -> None:
    [letter] = await bury_poison(store, count=1)
    dead_letters = group_dead_letters(store)
    await dead_letters.redrive("orders", "billing")
    slow = await dead_letters.claim_redrive("orders", "billing", consumer_id="a", lease=timedelta(milliseconds=200))
    assert slow is not None
    await asyncio.sleep(0.4)
    taker = await dead_letters.claim_redrive("orders", "billing", consumer_id="b", lease=timedelta(minutes=1))
    assert taker is not None
    assert taker.dead_letter.dead_letter_id == letter.dead_letter_id
    assert not await dead_letters.complete_redrive(slow)
    assert not await dead_letters.fail_redrive(
        slow, FailedDelivery("late", 1, letter.first_failure_at, letter.last_failure_at)
    )
    assert (await dead_letters.get("orders", "billing", letter.dead_letter_id)).awaiting_redrive
    assert await dead_letters.complete_redrive(taker)


async def test_a_worker_stopping_during_a_redrive_releases_it_for_the_next_one(store: EventStore) -> None:
    [letter] = await bury_poison(store, count=1)
    dead_letters = group_dead_letters(store)
    await dead_letters.redrive("orders", "billing")
    slow_policy = RetryPolicy(max_attempts=5, delay=30, max_delay=30)
    still_failing = ScriptedHandler(refuse=is_poison)
    async with running_worker(store, worker_settings("orders", "billing", retry=slow_policy), still_failing):

        async def tried() -> bool:
            return bool(still_failing.attempts)

        await wait_until(tried)
    # stopped during the 30 s backoff: abandoned, released, still waiting for a redrive
    assert len(still_failing.attempts) == 1
    waiting = await dead_letters.get("orders", "billing", letter.dead_letter_id)
    assert waiting.awaiting_redrive
    assert waiting.attempts == letter.attempts
    healed = ScriptedHandler(refuse=lambda event: False)
    async with running_worker(store, worker_settings("orders", "billing"), healed):

        async def delivered() -> bool:
            return bool(healed.succeeded)

        await wait_until(delivered)
    assert healed.succeeded == [(letter.data, True)]


async def test_deleting_the_group_deletes_its_dead_letters(store: EventStore) -> None:
    await bury_poison(store, count=1, group="billing")
    await bury_poison(store, count=1, group="shipping", append=False)
    await store.consumer_groups().delete("orders", "billing")
    dead_letters = group_dead_letters(store)
    assert await dead_letters.list("orders", "billing") == []
    assert len(await dead_letters.list("orders", "shipping")) == 1
    # a new group of the same name starts without the old one's dead letters
    await bury_poison(store, count=1, group="billing", append=False)
    [fresh] = await dead_letters.list("orders", "billing")
    assert fresh.attempts == 3
