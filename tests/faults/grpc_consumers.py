"""gRPC consumers of the fault tests: a ``client.subscribe()`` subscription and a queue worker that
receives and acknowledges, reopening its receiver on typed retryable errors as an application would.
Each records what it got (sequence number, wall-clock time) and what ended it, if anything did."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sluice.client import SluiceClient
from sluice.core.errors import StaleReceiptError, UnavailableError
from tests.faults.traffic import describe_error


class Subscriber:
    def __init__(self) -> None:
        self.received: list[tuple[int, float]] = []
        self.failure: str | None = None

    async def run(self, client: SluiceClient) -> None:
        subscription = client.subscribe("feed", checkpoint_interval=timedelta(milliseconds=200))
        try:
            async for event in subscription:
                self.received.append((event.data["seq"], time.time()))
            self.failure = "the subscription ended by itself"
        except Exception as error:
            self.failure = describe_error(error)
        finally:
            await subscription.aclose()


class QueueWorker:
    def __init__(self) -> None:
        self.acknowledged: list[tuple[int, float]] = []
        self.reopened = 0
        self.stale_acks = 0
        self.failure: str | None = None

    async def run(self, client: SluiceClient) -> None:
        while True:
            try:
                async with await client.receive(
                    "jobs", max_in_flight=5, visibility_timeout=timedelta(seconds=3)
                ) as messages:
                    async for message in messages:
                        try:
                            await message.ack()
                        except StaleReceiptError:
                            self.stale_acks += 1  # its lease ran out during the outage: it comes again
                            continue
                        self.acknowledged.append((message.data["seq"], time.time()))
                self.failure = "the receiver ended by itself"
                return
            except UnavailableError:
                self.reopened += 1
                await asyncio.sleep(0.2)
            except Exception as error:
                self.failure = describe_error(error)
                return
