"""A gRPC subscription and a gRPC queue worker (receive, then ack) of a ``sluice serve`` process keep
going while PostgreSQL is killed with -9, fast-restarted, or has its backends terminated. The
subscription must resume by itself (``client.subscribe`` retries what the server reports as retryable)
with every event once and in order; the queue worker reopens its receiver on typed retryable errors, as
an application would, and every message must be acknowledged. The gateway must still run afterwards."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

import sluice
from sluice import StreamConfig, StreamType
from sluice.client import SluiceClient
from sluice.errors import StaleReceiptError, UnavailableError
from tests.faults.database import DATABASE_FAULTS, Fault, FaultyDatabase
from tests.faults.report import first_after, report_resume
from tests.faults.serve_process import ServeProcess
from tests.faults.traffic import Feeder, describe_error

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]

AFTER_FAULT_SECONDS = 1.5
CATCH_UP_SECONDS = 20.0


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


@pytest.mark.parametrize("fault", DATABASE_FAULTS, ids=str)
async def test_subscription_and_queue_worker_resume_without_loss(
    faulty_database: FaultyDatabase, fault: Fault, tmp_path: Path
) -> None:
    async with await sluice.connect(faulty_database.dsn) as setup:
        await setup.create_stream(StreamConfig(name="feed"))
        await setup.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1000))
    gateway = ServeProcess(faulty_database.dsn, tmp_path)
    await asyncio.to_thread(gateway.start)
    feeder = Feeder(faulty_database.dsn, "feed")
    subscriber, queue_worker = Subscriber(), QueueWorker()
    stop_feeding = asyncio.Event()
    try:
        async with await SluiceClient.connect(gateway.grpc_target) as client:
            tasks = [
                asyncio.create_task(subscriber.run(client), name="grpc-subscriber"),
                asyncio.create_task(queue_worker.run(client), name="grpc-queue-worker"),
            ]
            feeding = asyncio.create_task(feeder.run(stop_feeding, enqueue_to="jobs"), name="feeder")
            try:
                await asyncio.sleep(1.5)
                back_at = await faulty_database.inject(fault)
                await asyncio.sleep(AFTER_FAULT_SECONDS)
                stop_feeding.set()
                await asyncio.wait_for(feeding, timeout=15)
                appended = len(feeder.appended_at)
                deadline = time.monotonic() + CATCH_UP_SECONDS
                while time.monotonic() < deadline and not all(task.done() for task in tasks):
                    if len(subscriber.received) >= appended and {s for s, _ in queue_worker.acknowledged} >= set(
                        range(appended)
                    ):
                        break
                    await asyncio.sleep(0.1)
            finally:
                stop_feeding.set()
                for task in tasks:
                    task.cancel()
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=15)
        gateway_alive = gateway.running()
    finally:
        await asyncio.to_thread(gateway.stop)

    first_new = feeder.first_after(back_at)
    assert first_new is not None, f"the feeder appended after the database came back: {feeder.errors[-3:]}"
    for name, seen in (("grpc-subscription", subscriber.received), ("grpc-queue-worker", queue_worker.acknowledged)):
        report_resume(
            name, fault, first_after([at for seq, at in seen if seq >= first_new], back_at), within=CATCH_UP_SECONDS
        )
    problems = []
    if subscriber.failure is not None:
        problems.append(f"the subscription stopped: {subscriber.failure}")
    if queue_worker.failure is not None:
        problems.append(f"the queue worker stopped: {queue_worker.failure}")
    sequence = [seq for seq, _ in subscriber.received]
    if sequence != list(range(len(sequence))):
        problems.append(f"the subscription skipped or repeated events: {sequence[:10]}...")
    if len(sequence) < appended:
        problems.append(f"the subscription received {len(sequence)} of {appended} events")
    if lost := sorted(set(range(appended)) - {seq for seq, _ in queue_worker.acknowledged}):
        problems.append(f"{len(lost)} of {appended} queue messages never acknowledged, e.g. {lost[:5]}")
    if not gateway_alive:
        problems.append(f"sluice serve exited during the fault:\n{gateway.log_tail()}")
    print(
        f"grpc {fault}: {appended} events; subscription {len(sequence)}, queue acks "
        f"{len(queue_worker.acknowledged)} (receiver reopened {queue_worker.reopened}x, "
        f"{queue_worker.stale_acks} stale)"
    )
    assert not problems, "\n".join(problems)
