"""Contract: input the database cannot hold is refused with InvalidArgumentError before anything is
stored, on both backends (issue 16 items 9-11): offsets and ids of 2^63 or more, receipts out of
range, durations past 100 years (a lease that long would end after year 9999), long dedupe keys;
and an event id given as text deduplicates like the same id as a UUID."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from sluice import EventData, EventStore, InvalidArgumentError, Receipt, StreamConfig, StreamType

TOO_BIG = 2**63
HUGE = timedelta(days=10**6)  # about 2,700 years: past year 9999 from now plus margin


async def _queue_with_one_message(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    await store.enqueue("jobs", EventData("Job", {"n": 1}))


async def _stream_with_one_event(store: EventStore) -> None:
    await store.append("orders", EventData("Placed", {"n": 1}))


Case = Callable[[EventStore], Awaitable[object]]


async def _read(store: EventStore, **arguments: object) -> None:
    async for _ in store.read_stream("orders", **arguments):  # type: ignore[arg-type]
        pass


STREAM_CASES: dict[str, Case] = {
    "append expected_offset 2^63": lambda s: s.append("orders", EventData("Placed", {}), expected_offset=TOO_BIG),
    "append expected_offset 2^63-1": lambda s: s.append("orders", EventData("Placed", {}), expected_offset=TOO_BIG - 1),
    "append partition 2^63": lambda s: s.append("orders", EventData("Placed", {}), partition=TOO_BIG),
    "append event_id not a uuid": lambda s: s.append("orders", EventData("Placed", {}, event_id="order-1")),  # type: ignore[arg-type]
    "read from_offset 2^63": lambda s: _read(s, from_offset=TOO_BIG),
    "read from_offset -1": lambda s: _read(s, from_offset=-1),
    "read partition 2^40": lambda s: _read(s, partition=2**40),
    "purge older_than huge": lambda s: s.purge_deleted_streams(older_than=HUGE),
}

QUEUE_CASES: dict[str, Case] = {
    "dequeue visibility huge": lambda s: s.dequeue("jobs", visibility_timeout=HUGE),
    "dequeue visibility timedelta.max": lambda s: s.dequeue("jobs", visibility_timeout=timedelta.max),
    "enqueue delay huge": lambda s: s.enqueue("jobs", EventData("Job", {}), delay=HUGE),
    "enqueue dedupe key 501": lambda s: s.enqueue("jobs", EventData("Job", {}), dedupe_key="k" * 501),
    "enqueue_many dedupe key 10000": lambda s: s.enqueue_many(
        "jobs", [EventData("Job", {})], dedupe_keys=["k" * 10_000]
    ),
    "acknowledge message id 2^63": lambda s: s.acknowledge("jobs", Receipt(TOO_BIG, 1)),
    "acknowledge attempt 2^31": lambda s: s.acknowledge("jobs", Receipt(1, 2**31)),
    "nack message id 2^63": lambda s: s.nack("jobs", Receipt(TOO_BIG, 1)),
    "nack delay huge": lambda s: s.nack("jobs", Receipt(1, 1), delay=HUGE),
    "extend by huge": lambda s: s.extend("jobs", Receipt(1, 1), by=HUGE),
    "extend receipt -1": lambda s: s.extend("jobs", Receipt(-1, 1), by=timedelta(seconds=1)),
    "redrive dead letter id 2^63": lambda s: s.redrive_dead_letters("jobs", dead_letter_ids=[TOO_BIG]),
    "purge dead letter id 2^63": lambda s: s.purge_dead_letters("jobs", dead_letter_ids=[TOO_BIG]),
}


@pytest.mark.parametrize("case", STREAM_CASES)
async def test_bad_stream_input_is_refused_and_nothing_is_stored(store: EventStore, case: str) -> None:
    await _stream_with_one_event(store)
    with pytest.raises(InvalidArgumentError):
        await STREAM_CASES[case](store)
    info = await store.get_stream("orders")
    assert [p.head for p in info.partition_heads] == [1]


@pytest.mark.parametrize("case", QUEUE_CASES)
async def test_bad_queue_input_is_refused_and_the_message_stays_deliverable(store: EventStore, case: str) -> None:
    await _queue_with_one_message(store)
    with pytest.raises(InvalidArgumentError):
        await QUEUE_CASES[case](store)
    depth = await store.queue_depth("jobs")
    assert (depth.waiting, depth.in_flight) == (1, 0)
    message = await store.dequeue("jobs", visibility_timeout=timedelta(minutes=1))
    assert message is not None
    assert message.data == {"n": 1}


async def test_a_long_lease_within_the_limit_is_delivered_with_its_receipt(store: EventStore) -> None:
    await _queue_with_one_message(store)
    message = await store.dequeue("jobs", visibility_timeout=timedelta(days=36_500))
    assert message is not None
    await store.acknowledge("jobs", message.receipt)


@pytest.mark.parametrize("as_text", [str, lambda value: str(value).upper(), lambda value: value.urn])
async def test_an_event_id_given_as_text_deduplicates_like_the_uuid(
    store: EventStore, as_text: Callable[[uuid.UUID], str]
) -> None:
    event_id = uuid.uuid4()
    first = await store.append("orders", EventData("Placed", {"n": 1}, event_id=as_text(event_id)))  # type: ignore[arg-type]
    again = await store.append("orders", EventData("Placed", {"n": 1}, event_id=as_text(event_id)))  # type: ignore[arg-type]
    as_uuid = await store.append("orders", EventData("Placed", {"n": 1}, event_id=event_id))
    assert not first.deduplicated
    assert again.deduplicated
    assert as_uuid.deduplicated
    assert again.offsets == as_uuid.offsets == first.offsets
    events = [event async for event in store.read_stream("orders")]
    assert [event.event_id for event in events] == [event_id]
