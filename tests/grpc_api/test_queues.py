"""Queue subscriptions over gRPC: at most max_in_flight unsettled messages, ack, nack with a delay,
extend, and stale receipts, from a client in another process."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sluice
from sluice.client import QueueReceiver, ReceivedMessage, SluiceClient
from sluice.core.events import EventData

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _no_message_within(receiver: object, seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(receiver), seconds)  # type: ignore[call-overload]
    except TimeoutError:
        return True
    return False


async def _first_message(*receivers: QueueReceiver) -> ReceivedMessage:
    waiting = [asyncio.ensure_future(anext(receiver)) for receiver in receivers]
    try:
        done, _ = await asyncio.wait(waiting, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
    assert done, "no message within 10 s"
    return done.pop().result()


async def test_max_in_flight_ack_and_nack_with_delay(remote_client: SluiceClient) -> None:
    results = await remote_client.enqueue(
        "email", [EventData("Send", {"n": n}) for n in range(3)], correlation_id="batch-1"
    )
    assert [result.deduplicated for result in results] == [False, False, False]
    async with await remote_client.receive("email", max_in_flight=2) as receiver:
        first, second = await anext(receiver), await anext(receiver)
        assert [first.data["n"], second.data["n"]] == [0, 1]
        assert first.correlation_id == "batch-1"
        assert first.attempt == 1
        assert await _no_message_within(receiver, 0.6)  # the third waits: two are in flight

        await first.ack()
        third = await asyncio.wait_for(anext(receiver), 5)
        assert third.data["n"] == 2

        await second.nack(delay=timedelta(milliseconds=500), reason="mail server busy")
        assert await _no_message_within(receiver, 0.2)  # not before its delay
        again = await asyncio.wait_for(anext(receiver), 5)
        assert (again.message_id, again.attempt) == (second.message_id, 2)

        with pytest.raises(sluice.StaleReceiptError):
            await first.ack()  # already acknowledged
        await again.ack()
        await third.ack()


async def test_extend_keeps_a_lease_and_a_lost_lease_makes_the_receipt_stale(remote_client: SluiceClient) -> None:
    await remote_client.enqueue("jobs", EventData("Job", {"id": 1}))
    # The lease starts when the gateway takes the message, before the client sees it: on a loaded machine
    # (2 test workers, the console's Chromium) 2 s of it were gone before the extension arrived.
    lease = timedelta(seconds=4)
    async with (
        await remote_client.receive("jobs", max_in_flight=1, visibility_timeout=lease) as slow,
        await remote_client.receive("jobs", max_in_flight=1, visibility_timeout=timedelta(seconds=30)) as other,
    ):
        message = await anext(slow)
        await message.extend(by=timedelta(seconds=4))  # the lease now ends 8 s after it began
        assert await _no_message_within(other, 4.6)  # without the extension the lease would have run out
        # Once the extended lease runs out, the message goes to whichever receiver asks first.
        redelivered = await _first_message(slow, other)
        assert (redelivered.message_id, redelivered.attempt) == (message.message_id, 2)
        with pytest.raises(sluice.StaleReceiptError, match="stale"):
            await message.ack()
        with pytest.raises(sluice.StaleReceiptError):
            await message.extend(by=timedelta(seconds=1))
        await redelivered.ack()
