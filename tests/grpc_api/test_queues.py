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


async def _message_within(seconds: float, *receivers: QueueReceiver) -> ReceivedMessage | None:
    """The first message any of ``receivers`` gets within ``seconds``, or None."""
    waiting = [asyncio.ensure_future(anext(receiver)) for receiver in receivers]
    try:
        done, _ = await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
    return done.pop().result() if done else None


async def _first_message(*receivers: QueueReceiver) -> ReceivedMessage:
    message = await _message_within(10, *receivers)
    assert message is not None, "no message within 10 s"
    return message


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
    # The lease starts when the gateway takes the message, somewhere between opening the receiver and the
    # client seeing it: on a loaded machine seconds of it can be gone before the extension arrives. So the
    # window watched is worked out from the times measured here, not assumed.
    lease = 6.0
    clock = asyncio.get_running_loop().time
    opened = clock()
    async with await remote_client.receive(
        "jobs", max_in_flight=1, visibility_timeout=timedelta(seconds=lease)
    ) as slow:
        message = await anext(slow)
        received = clock()
        await message.extend(by=timedelta(seconds=lease))  # the lease now ends 2 x lease after it began
        assert clock() - opened < lease, "the extension must reach the gateway before the first lease ends"
        # The other receiver opens only now: opened with the first, it sometimes took the message first.
        async with await remote_client.receive(
            "jobs", max_in_flight=1, visibility_timeout=timedelta(seconds=30)
        ) as other:
            # The first lease ended by received + lease at the latest: watch both receivers until well past
            # that (each looks every 0.2 s). The extended one ends at opened + 2 x lease at the earliest.
            watch_until = received + lease + 1.5
            assert watch_until < opened + 2 * lease, "receiving the message took too long for this scenario"
            early = await _message_within(watch_until - clock(), slow, other)
            assert early is None, "the message came back before its extended lease ran out"
            # Once the extended lease runs out, the message goes to whichever receiver asks first.
            redelivered = await _first_message(slow, other)
            assert (redelivered.message_id, redelivered.attempt) == (message.message_id, 2)
            with pytest.raises(sluice.StaleReceiptError, match="stale"):
                await message.ack()
            with pytest.raises(sluice.StaleReceiptError):
                await message.extend(by=timedelta(seconds=1))
            await redelivered.ack()
