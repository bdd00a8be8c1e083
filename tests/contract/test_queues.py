"""Contract: queues (ephemeral streams) with leases, receipts, retries and dead letters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sluice import (
    EventData,
    EventStore,
    InvalidArgumentError,
    QueueDepth,
    Receipt,
    StaleReceiptError,
    StreamConfig,
    StreamNotFoundError,
    StreamType,
    StreamTypeError,
)

SHORT_LEASE = timedelta(milliseconds=200)


def message(n: int) -> EventData:
    return EventData("SendEmail", {"n": n})


async def test_enqueue_creates_the_queue_and_dequeue_leases_in_order(store: EventStore) -> None:
    for n in range(3):
        await store.enqueue("email", message(n), correlation_id="c-1")
    assert (await store.get_stream("email")).type is StreamType.EPHEMERAL
    first = await store.dequeue("email", visibility_timeout=timedelta(minutes=5))
    assert first is not None
    assert (first.data, first.attempt, first.correlation_id, first.event_type) == ({"n": 0}, 1, "c-1", "SendEmail")
    rest = await store.dequeue_many("email", max_messages=10)
    assert [m.data["n"] for m in rest] == [1, 2]
    assert await store.dequeue("email") is None
    await store.acknowledge("email", first.receipt)
    assert await store.acknowledge_many("email", [m.receipt for m in rest]) == []
    assert await store.dequeue("email") is None


async def test_two_consumers_never_hold_the_same_message(store: EventStore) -> None:
    await store.enqueue_many("jobs", [message(n) for n in range(50)])
    batches = await asyncio.gather(*(store.dequeue_many("jobs", max_messages=7) for _ in range(10)))
    held = [m.message_id for batch in batches for m in batch]
    assert len(held) == 50
    assert len(set(held)) == 50


async def test_an_expired_lease_is_delivered_again_and_the_late_ack_is_refused(store: EventStore) -> None:
    await store.enqueue("jobs", message(1))
    slow = await store.dequeue("jobs", visibility_timeout=SHORT_LEASE)
    assert slow is not None
    assert await store.dequeue("jobs") is None  # still leased
    await asyncio.sleep(0.3)
    fast = await store.dequeue("jobs", visibility_timeout=timedelta(minutes=5))
    assert fast is not None
    assert (fast.message_id, fast.attempt) == (slow.message_id, 2)
    with pytest.raises(StaleReceiptError, match="stale"):
        await store.acknowledge("jobs", slow.receipt)
    with pytest.raises(StaleReceiptError):
        await store.nack("jobs", slow.receipt)
    with pytest.raises(StaleReceiptError):
        await store.extend("jobs", slow.receipt, by=timedelta(minutes=1))
    assert await store.dequeue("jobs") is None  # the stale calls changed nothing
    await store.acknowledge("jobs", fast.receipt)
    with pytest.raises(StaleReceiptError):
        await store.acknowledge("jobs", fast.receipt)  # acknowledged twice


async def test_extend_keeps_the_lease(store: EventStore) -> None:
    await store.enqueue("jobs", message(1))
    leased = await store.dequeue("jobs", visibility_timeout=SHORT_LEASE)
    assert leased is not None
    await store.extend("jobs", leased.receipt, by=timedelta(minutes=5))
    await asyncio.sleep(0.3)
    assert await store.dequeue("jobs") is None
    await store.acknowledge("jobs", leased.receipt)


async def test_nack_redelivers_after_its_delay(store: EventStore) -> None:
    await store.enqueue("jobs", message(1))
    leased = await store.dequeue("jobs")
    assert leased is not None
    await store.nack("jobs", leased.receipt, delay=timedelta(milliseconds=200), reason="smtp down")
    assert await store.dequeue("jobs") is None
    await asyncio.sleep(0.3)
    again = await store.dequeue("jobs")
    assert again is not None
    assert again.attempt == 2


async def test_messages_dead_letter_after_max_attempts_with_their_history(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=3))
    await store.enqueue("jobs", message(7), correlation_id="c-9")
    first = await store.dequeue("jobs")
    assert first is not None
    await store.nack("jobs", first.receipt, reason="boom 1")
    second = await store.dequeue("jobs", visibility_timeout=timedelta(milliseconds=50))
    assert second is not None
    assert second.message_id == first.message_id
    await asyncio.sleep(0.1)  # lease runs out: a failure of its own
    third = await store.dequeue("jobs")
    assert third is not None
    assert third.attempt == 3
    await store.nack("jobs", third.receipt, reason="boom 3")  # last attempt: dead-lettered now

    [dead] = await store.dead_letters("jobs")
    assert (dead.message_id, dead.data, dead.attempts, dead.correlation_id) == (first.message_id, {"n": 7}, 3, "c-9")
    assert [(f.attempt, f.reason) for f in dead.failures] == [
        (1, "boom 1"),
        (2, "visibility timeout expired"),
        (3, "boom 3"),
    ]
    assert dead.first_delivered_at is not None
    assert dead.last_delivered_at is not None
    assert dead.first_delivered_at <= dead.last_delivered_at <= dead.dead_lettered_at
    assert await store.dequeue("jobs") is None
    await store.enqueue("jobs", message(8))
    other = await store.dequeue("jobs")
    assert other is not None
    assert other.data == {"n": 8}


async def test_expired_messages_on_their_last_attempt_dead_letter_at_the_next_dequeue(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue("jobs", message(1))
    leased = await store.dequeue("jobs", visibility_timeout=timedelta(milliseconds=50))
    assert leased is not None
    await asyncio.sleep(0.1)
    assert await store.dequeue("jobs") is None
    [dead] = await store.dead_letters("jobs")
    assert [(f.attempt, f.reason) for f in dead.failures] == [(1, "visibility timeout expired")]


async def test_delay_and_dedupe(store: EventStore) -> None:
    delayed = await store.enqueue("jobs", message(1), delay=timedelta(milliseconds=200))
    assert await store.dequeue("jobs") is None
    await asyncio.sleep(0.3)
    leased = await store.dequeue("jobs")
    assert leased is not None
    assert leased.message_id == delayed.message_id

    first = await store.enqueue("jobs", message(2), dedupe_key="welcome:42")
    repeat = await store.enqueue("jobs", message(3), dedupe_key="welcome:42")
    assert repeat.deduplicated
    assert repeat.message_id == first.message_id
    many = await store.enqueue_many("jobs", [message(4), message(5), message(6)], dedupe_keys=["welcome:42", "k", "k"])
    assert [(r.deduplicated, r.message_id == first.message_id) for r in many] == [
        (True, True),
        (False, False),
        (True, False),
    ]
    assert many[2].message_id == many[1].message_id
    taken = await store.dequeue_many("jobs", max_messages=10)
    assert sorted(m.data["n"] for m in taken) == [2, 5]
    await store.acknowledge_many("jobs", [m.receipt for m in taken])
    again = await store.enqueue("jobs", message(7), dedupe_key="welcome:42")
    assert not again.deduplicated  # the first one is no longer pending


async def test_queue_bad_input(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await store.dequeue("missing")
    await store.enqueue("jobs", message(1))
    with pytest.raises(InvalidArgumentError, match="visibility_timeout must be a positive"):
        await store.dequeue("jobs", visibility_timeout=timedelta(0))
    with pytest.raises(InvalidArgumentError, match="max_messages must be 1 to 1000"):
        await store.dequeue_many("jobs", max_messages=0)
    with pytest.raises(InvalidArgumentError, match="delay must not be negative"):
        await store.enqueue("jobs", message(2), delay=timedelta(seconds=-1))
    with pytest.raises(StaleReceiptError):
        await store.acknowledge("jobs", Receipt(999_999, 1))
    with pytest.raises(InvalidArgumentError, match="malformed receipt"):
        Receipt.parse("12-3")
    assert Receipt.parse(str(Receipt(12, 3))) == Receipt(12, 3)
    leased = await store.dequeue("jobs")
    assert leased is not None
    assert leased.data == {"n": 1}


async def test_queue_depth_counts_waiting_and_leased_messages(store: EventStore) -> None:
    await store.enqueue_many("jobs", [message(n) for n in range(5)])
    await store.enqueue("jobs", message(99), delay=timedelta(minutes=5))
    assert await store.queue_depth("jobs") == QueueDepth("jobs", waiting=6, in_flight=0)
    leased = await store.dequeue_many("jobs", max_messages=3, visibility_timeout=timedelta(minutes=5))
    assert await store.queue_depth("jobs") == QueueDepth("jobs", waiting=3, in_flight=3)
    await store.acknowledge("jobs", leased[0].receipt)
    await store.nack("jobs", leased[1].receipt, delay=timedelta(minutes=5))  # given back: waiting again
    assert await store.queue_depth("jobs") == QueueDepth("jobs", waiting=4, in_flight=1)
    short = await store.dequeue("jobs", visibility_timeout=SHORT_LEASE)
    assert short is not None
    assert (await store.queue_depth("jobs")).in_flight == 2
    await asyncio.sleep(0.3)  # the short lease runs out: that message is waiting again
    assert await store.queue_depth("jobs") == QueueDepth("jobs", waiting=4, in_flight=1)


async def test_queue_depth_of_unknown_queues_and_streams_is_a_typed_error(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await store.queue_depth("missing")
    await store.create_stream(StreamConfig(name="orders"))
    with pytest.raises(StreamTypeError):
        await store.queue_depth("orders")


async def bury(store: EventStore, queue: str, numbers: list[int]) -> list[int]:
    """Enqueue one message per number and dead-letter each on its only attempt; the dead-letter ids."""
    await store.create_stream(StreamConfig(name=queue, type=StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue_many(queue, [message(n) for n in numbers], correlation_id="c-7")
    for leased in await store.dequeue_many(queue, max_messages=len(numbers)):
        await store.nack(queue, leased.receipt, reason=f"failed {leased.data['n']}")
    return [letter.dead_letter_id for letter in await store.dead_letters(queue)]


async def test_a_redriven_dead_letter_is_delivered_again_with_its_history(store: EventStore) -> None:
    first_id, second_id, _third_id = await bury(store, "jobs", [1, 2, 3])
    [original] = [letter for letter in await store.dead_letters("jobs") if letter.dead_letter_id == first_id]
    [new_message_id] = await store.redrive_dead_letters("jobs", dead_letter_ids=[first_id])
    assert new_message_id != original.message_id
    assert [letter.dead_letter_id for letter in await store.dead_letters("jobs")] == [second_id, _third_id]
    again = await store.dequeue("jobs")
    assert again is not None
    assert (again.message_id, again.data, again.attempt, again.correlation_id) == (new_message_id, {"n": 1}, 1, "c-7")
    assert again.metadata["redriven_from"] == {
        "dead_letter_id": first_id,
        "message_id": original.message_id,
        "attempts": 1,
    }
    # A stale receipt of the original message cannot settle the redriven one.
    with pytest.raises(StaleReceiptError):
        await store.acknowledge("jobs", Receipt(original.message_id, 1))
    await store.acknowledge("jobs", again.receipt)
    # Redriving the rest (all) puts both back; the queue is empty of dead letters.
    assert len(await store.redrive_dead_letters("jobs")) == 2
    assert await store.dead_letters("jobs") == []
    assert sorted(leased.data["n"] for leased in await store.dequeue_many("jobs", max_messages=10)) == [2, 3]


async def test_purge_deletes_chosen_or_all_dead_letters(store: EventStore) -> None:
    first_id, second_id, third_id = await bury(store, "jobs", [1, 2, 3])
    assert await store.purge_dead_letters("jobs", dead_letter_ids=[second_id]) == 1
    assert [letter.dead_letter_id for letter in await store.dead_letters("jobs")] == [first_id, third_id]
    assert await store.purge_dead_letters("jobs", dead_letter_ids=[second_id]) == 0  # already gone
    assert await store.purge_dead_letters("jobs") == 2
    assert await store.dead_letters("jobs") == []
    assert await store.redrive_dead_letters("jobs") == []


async def test_dead_letter_operations_refuse_bad_input(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await store.redrive_dead_letters("missing")
    with pytest.raises(StreamNotFoundError):
        await store.purge_dead_letters("missing")
    await bury(store, "jobs", [1])
    for bad in ([], [0], [-3], [True]):
        with pytest.raises(InvalidArgumentError):
            await store.redrive_dead_letters("jobs", dead_letter_ids=bad)
    assert len(await store.dead_letters("jobs")) == 1  # nothing lost
