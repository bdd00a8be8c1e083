"""Many gRPC subscribers of one stream each get every event once, in order, whatever the send path
batches or shares (sluice/rpc/subscription_sending.py: one buffer per call, batches of what is
ready, one wire message per stored event for every call sending it).

The subscribers read the raw Subscribe responses, not through ``SluiceClient.subscribe``: the
client skips offsets it has already handed out, which would hide a duplicate.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest

import sluice
from sluice import EventData, EventStore, RecordedEvent
from sluice.core.events import EventRow
from sluice.rpc import subscription_sending
from sluice.rpc.conversions import recorded_event_message
from sluice.rpc.live_tails import LiveTails
from sluice.rpc.server import SluiceGrpcServer, build_grpc_server
from sluice.rpc.subscription_sending import EventMessages, SubscriptionBuffer, subscribe_response_bytes
from sluice.rpc.v1 import sluice_pb2, sluice_pb2_grpc
from tests.store_fixtures import FAST_POLL
from tests.subscriptions.wakeups import eventually

SUBSCRIBERS = 60
EVENTS = 120
_NOW = datetime.now(UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    async with await sluice.connect(store_url, poll_interval=FAST_POLL) as opened:
        yield opened


@pytest.fixture
async def server(store: EventStore) -> AsyncIterator[SluiceGrpcServer]:
    built = build_grpc_server(store, address="127.0.0.1:0")
    await built.start()
    try:
        yield built
    finally:
        await built.stop(grace_seconds=1)


class _RawSubscriber:
    """One Subscribe call from ``from_offset``; keeps every event message it was sent, as sent."""

    def __init__(self, channel: grpc.aio.Channel, from_offset: int) -> None:
        self.from_offset = from_offset
        self.events: list[sluice_pb2.RecordedEvent] = []
        self._call = sluice_pb2_grpc.StreamsStub(channel).Subscribe(
            sluice_pb2.SubscribeRequest(stream_name="orders", from_offset=from_offset)
        )
        self.task = asyncio.ensure_future(self._receive())

    async def _receive(self) -> None:
        async for response in self._call:
            if response.WhichOneof("kind") == "events":
                self.events.extend(response.events.events)

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.parametrize("buffer_events", [1000, 3], ids=["buffer-1000", "buffer-3"])
async def test_every_subscriber_gets_every_event_once_in_order(
    store: EventStore, server: SluiceGrpcServer, monkeypatch: pytest.MonkeyPatch, buffer_events: int
) -> None:
    """With a 3-event buffer, bursts overflow buffers: calls are detached from the live tail, read on
    their own and attach again (sluice/rpc/live_tails.py), over and over."""
    monkeypatch.setattr(subscription_sending, "SUBSCRIBE_BATCH_EVENTS", 7)  # bursts leave in several batches
    monkeypatch.setattr(subscription_sending, "SUBSCRIBE_BUFFER_EVENTS", buffer_events)
    await store.append("orders", [EventData("Placed", {"n": n}) for n in range(20)])
    offsets = [0, 5, 20, 20]  # some catch up, some start at the head
    choices = random.Random(18)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        subscribers = [_RawSubscriber(channel, offsets[number % len(offsets)]) for number in range(SUBSCRIBERS)]
        try:
            # Live events as single appends, concurrent appends and batches, so that the senders see
            # both one event at a time and several ready at once.
            number = 20
            while number < EVENTS:
                size = choices.choice([1, 1, 3, 10])
                if size == 3:
                    await asyncio.gather(
                        *(store.append("orders", EventData("Placed", {"n": number + k})) for k in range(size))
                    )
                else:
                    await store.append("orders", [EventData("Placed", {"n": number + k}) for k in range(size)])
                number += size
                await asyncio.sleep(choices.choice([0, 0.005]))
            await eventually(
                lambda: all(len(s.events) >= EVENTS - s.from_offset for s in subscribers),
                seconds=30,
                what="every subscriber receiving every event",
            )
            await asyncio.sleep(0.2)  # anything duplicated after the last event would have arrived
        finally:
            for subscriber in subscribers:
                await subscriber.close()
    stored = [event async for event in store.read_stream("orders")]
    assert len(stored) >= EVENTS
    for subscriber in subscribers:
        expected = stored[subscriber.from_offset :]
        assert [event.offset for event in subscriber.events] == [event.offset for event in expected]
        assert [event.event_id for event in subscriber.events] == [str(event.event_id) for event in expected]
        assert [event.data for event in subscriber.events] == [event.payload for event in expected]


def _event(offset: int, event_id: uuid.UUID) -> RecordedEvent:
    row: EventRow = (offset, event_id, "Placed", 1, "application/json", b"{}", {}, None, _NOW, 1, offset)
    return RecordedEvent(row, "orders", 0)


async def test_the_buffer_hands_out_everything_once_in_order_and_stops_the_pump_when_full() -> None:
    buffer = SubscriptionBuffer(capacity=4)
    events = [_event(offset, uuid.uuid4()) for offset in range(200)]
    high_water = 0

    async def pump() -> None:
        nonlocal high_water
        for event in events:
            await buffer.put(event)
            high_water = max(high_water, len(buffer))

    pumping = asyncio.ensure_future(pump())
    choices = random.Random(18)
    received: list[RecordedEvent] = []
    loop = asyncio.get_running_loop()
    while len(received) < len(events):
        await buffer.wait(loop.time() + 5)
        received.extend(buffer.take(choices.choice([1, 3, 10])))
        if choices.random() < 0.3:
            await asyncio.sleep(0)
    await pumping
    assert [event.offset for event in received] == list(range(200))
    assert high_water <= 4, "the pump went past a full buffer"


async def test_a_waiting_sender_wakes_at_its_deadline_without_events() -> None:
    buffer = SubscriptionBuffer()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(buffer.wait(started + 0.05), 5)
    assert loop.time() - started >= 0.04
    assert buffer.take(10) == []


def test_one_message_per_stored_event_and_never_another_events_message() -> None:
    messages = EventMessages(capacity=2)
    first_id, other_id = uuid.uuid4(), uuid.uuid4()
    first = messages.message(_event(3, first_id))
    assert messages.message(_event(3, first_id)) is first  # another subscription's copy of the same row
    assert messages.built == 1
    # The same place with another event (the stream deleted and created again): its own message.
    again = messages.message(_event(3, other_id))
    assert again.event_id == str(other_id)
    assert first.event_id == str(first_id)
    messages.message(_event(4, first_id))
    messages.message(_event(5, first_id))  # the oldest entries leave: at most two kept
    assert messages.message(_event(3, first_id)) is not first


@pytest.mark.parametrize("caught_up", [False, True], ids=["live", "reaching-the-head"])
def test_a_batch_encoded_from_each_events_bytes_parses_as_one_batch_of_them_in_order(caught_up: bool) -> None:
    """Subscribe hands gRPC the concatenation of each event's encoded one-event response (encoded once for
    every call): a client parses it as the one response it would have been sent as a message."""
    messages = EventMessages()
    events = [_event(offset, uuid.uuid4()) for offset in range(5)]
    expected = sluice_pb2.SubscribeResponse(
        events=sluice_pb2.EventBatch(events=[recorded_event_message(event) for event in events], caught_up=caught_up)
    )
    parsed = sluice_pb2.SubscribeResponse.FromString(messages.batch(events, caught_up=caught_up))
    assert parsed == expected
    assert [event.offset for event in parsed.events.events] == [0, 1, 2, 3, 4]
    single = sluice_pb2.SubscribeResponse.FromString(messages.batch(events[2:3], caught_up=False))
    assert list(single.events.events) == [recorded_event_message(events[2])]
    assert messages.built == 5, "each event encoded once, however many batches carry it"
    assert subscribe_response_bytes(messages.encoded(events[0])) is messages.encoded(events[0])
    assert subscribe_response_bytes(expected) == expected.SerializeToString()


async def test_a_live_tail_hands_every_attached_call_its_events_and_detaches_a_full_one() -> None:
    async with await sluice.connect("memory://", poll_interval=FAST_POLL) as store:
        await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3)])
        tails = LiveTails(store)
        fast, slow, later = SubscriptionBuffer(), SubscriptionBuffer(capacity=2), SubscriptionBuffer()
        fast_attachment = tails.attach("orders", 0, fast, 3)
        slow_attachment = tails.attach("orders", 0, slow, 3)
        later_attachment = tails.attach("orders", 0, later, 5)  # already has 3 and 4 (read on its own)
        assert fast_attachment is not None
        assert slow_attachment is not None
        assert later_attachment is not None
        await store.append("orders", [EventData("Placed", {"n": n}) for n in range(3, 8)])
        await eventually(lambda: len(fast) == 5, what="the fast call getting offsets 3-7")
        assert [event.offset for event in fast.take(10)] == [3, 4, 5, 6, 7]
        assert [event.offset for event in later.take(10)] == [5, 6, 7]
        assert await asyncio.wait_for(slow_attachment.ended, 5) is True, "the full call is detached"
        assert slow_attachment.next_offset == 5, "it resumes on its own after what it got"
        assert [event.offset for event in slow.take(10)] == [3, 4]
        # The tail has handed out up to 7: a call at 6 must read on its own first.
        assert tails.attach("orders", 0, SubscriptionBuffer(), 6) is None
        for attachment in (fast_attachment, later_attachment):
            tails.detach(attachment)
        await asyncio.sleep(0)
        assert not fast_attachment.ended.done(), "detaching does not end the attachment for the call"


async def test_a_live_tail_stops_when_its_last_call_detaches_and_ends_its_calls_when_the_store_closes() -> None:
    async with await sluice.connect("memory://", poll_interval=FAST_POLL) as store:
        await store.append("orders", EventData("Placed", {"n": 0}))
        tails = LiveTails(store)
        first, second = SubscriptionBuffer(), SubscriptionBuffer()
        attachment = tails.attach("orders", 0, first, 1)
        assert attachment is not None
        tail_task = attachment.tail.task
        tails.detach(attachment)
        await asyncio.gather(tail_task, return_exceptions=True)
        assert tail_task.cancelled(), "no call attached: the tail's subscription stops"
        attachment = tails.attach("orders", 0, second, 1)
        assert attachment is not None
        await asyncio.sleep(0.05)  # the tail is waiting for the next event when the store closes
    assert await asyncio.wait_for(attachment.ended, 5) is False, "the store closed: the call ends"


async def test_detaching_from_an_ended_tail_leaves_its_successor_running() -> None:
    async with await sluice.connect("memory://", poll_interval=FAST_POLL) as store:
        await store.append("orders", EventData("Placed", {"n": 0}))
        tails = LiveTails(store)
        old = tails.attach("orders", 0, SubscriptionBuffer(), 1)
        assert old is not None
        old.tail.task.cancel()  # the tail ends (as when its subscription fails) before its call detaches
        await asyncio.gather(old.tail.task, return_exceptions=True)
        new = tails.attach("orders", 0, SubscriptionBuffer(), 1)
        assert new is not None
        assert new.tail is not old.tail
        tails.detach(old)
        await asyncio.sleep(0.05)
        assert not new.tail.task.done(), "the successor still serves its call"
        await store.append("orders", EventData("Placed", {"n": 1}))
        await eventually(lambda: len(new.buffer) == 1, what="the call on the successor getting offset 1")
        tails.detach(new)
