"""Everything a ``sluice serve`` gateway and the library do for callers, while PostgreSQL is killed with
-9, fast-restarted, or has its backends terminated (one server, one gateway and one fault per case):

- producers through the library, gRPC and REST append one event at a time with its own id and retry only
  on typed retryable errors (``UnavailableError``, HTTP 503). Afterwards every producer finished, no
  acknowledged event is missing, none is stored twice, nothing is stored that nobody sent;
- a gRPC ``client.subscribe()`` resumes by itself and receives every event once, in order;
- a gRPC queue worker (receive, ack; it reopens its receiver on typed retryable errors) acknowledges
  every message;
- the gateway still runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import StreamConfig, StreamType
from sluice.client import SluiceClient
from tests.faults.database import DATABASE_FAULTS, Fault, FaultyDatabase
from tests.faults.grpc_consumers import QueueWorker, Subscriber
from tests.faults.report import first_after, report_resume
from tests.faults.serve_process import ServeProcess
from tests.faults.traffic import Feeder, Producer, grpc_append, library_append, rest_append

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(120)]

WARM_UP_SECONDS = 1.5
AFTER_FAULT_SECONDS = 1.5
CATCH_UP_SECONDS = 20.0
DOORS = ("library", "grpc", "rest")


def producer_problems(
    producers: dict[str, Producer], stored: dict[str, list[str]], back_at: float, fault: Fault
) -> list[str]:
    """What went wrong for each door's producer (and each one's resume time, reported)."""
    problems = []
    for door, producer in producers.items():
        resumed = first_after(producer.acknowledged_at, back_at)
        report_resume(f"producer-{door}", fault, resumed, within=AFTER_FAULT_SECONDS)
        if producer.failure is not None:
            problems.append(f"{door}: the producer stopped: {producer.failure}")
        counts = Counter(stored[door])
        if twice := [event_id for event_id, count in counts.items() if count > 1]:
            problems.append(f"{door}: {len(twice)} events stored twice")
        if lost := [event_id for event_id in producer.acknowledged if counts[event_id] == 0]:
            problems.append(f"{door}: {len(lost)} acknowledged events missing")
        if unknown := set(counts) - set(producer.attempted):
            problems.append(f"{door}: {len(unknown)} stored events nobody sent")
        if resumed is None and producer.failure is None:
            problems.append(f"{door}: nothing acknowledged after the database came back")
    return problems


@pytest.mark.parametrize("fault", DATABASE_FAULTS, ids=str)
async def test_producers_subscription_and_queue_worker_ride_out_the_fault(
    faulty_database: FaultyDatabase, fault: Fault, tmp_path: Path
) -> None:
    async with await sluice.connect(faulty_database.dsn) as setup:
        for door in DOORS:
            await setup.create_stream(StreamConfig(name=f"produced-{door}"))
        await setup.create_stream(StreamConfig(name="feed"))
        await setup.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1000))
    gateway = ServeProcess(faulty_database.dsn, tmp_path)
    await asyncio.to_thread(gateway.start)
    producers = {door: Producer(door, f"produced-{door}") for door in DOORS}
    feeder = Feeder(faulty_database.dsn, "feed")
    subscriber, queue_worker = Subscriber(), QueueWorker()
    stop_producing, stop_feeding = asyncio.Event(), asyncio.Event()
    try:
        async with (
            await sluice.connect(faulty_database.dsn) as store,
            await SluiceClient.connect(gateway.grpc_target) as client,
            httpx.AsyncClient(base_url=gateway.http_url, timeout=10) as http,
        ):
            appenders = {
                "library": library_append(store, "produced-library"),
                "grpc": grpc_append(client, "produced-grpc"),
                "rest": rest_append(http, "produced-rest"),
            }
            producing = [
                asyncio.create_task(producers[door].run(appenders[door], stop_producing), name=f"producer-{door}")
                for door in DOORS
            ]
            consuming = [
                asyncio.create_task(subscriber.run(client), name="grpc-subscriber"),
                asyncio.create_task(queue_worker.run(client), name="grpc-queue-worker"),
            ]
            feeding = asyncio.create_task(feeder.run(stop_feeding, enqueue_to="jobs"), name="feeder")
            try:
                await asyncio.sleep(WARM_UP_SECONDS)
                back_at = await faulty_database.inject(fault)
                await asyncio.sleep(AFTER_FAULT_SECONDS)
                stop_producing.set()
                stop_feeding.set()
                await asyncio.wait_for(asyncio.gather(*producing, feeding), timeout=45)
                appended = len(feeder.appended_at)
                deadline = time.monotonic() + CATCH_UP_SECONDS
                while time.monotonic() < deadline and not all(task.done() for task in consuming):
                    acknowledged = {seq for seq, _ in queue_worker.acknowledged}
                    if len(subscriber.received) >= appended and acknowledged >= set(range(appended)):
                        break
                    await asyncio.sleep(0.1)
            finally:
                stop_producing.set()
                stop_feeding.set()
                for task in consuming:
                    task.cancel()
                await asyncio.wait_for(asyncio.gather(*producing, feeding, *consuming, return_exceptions=True), 45)
        gateway_alive = gateway.running()
    finally:
        await asyncio.to_thread(gateway.stop)

    async with await sluice.connect(faulty_database.dsn) as check:
        stored = {
            door: [str(event.event_id) async for event in check.read_stream(f"produced-{door}")] for door in DOORS
        }
    problems = producer_problems(producers, stored, back_at, fault)

    first_new = feeder.first_after(back_at)
    assert first_new is not None, f"the feeder appended after the database came back: {feeder.errors[-3:]}"
    for name, seen in (("grpc-subscription", subscriber.received), ("grpc-queue-worker", queue_worker.acknowledged)):
        resumed = first_after([at for seq, at in seen if seq >= first_new], back_at)
        report_resume(name, fault, resumed, within=CATCH_UP_SECONDS)
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
    summary = {door: (len(p.acknowledged), p.retries) for door, p in producers.items()}
    print(
        f"gateway {fault}: producers (acknowledged, retries) {summary}; {appended} fed events, subscription "
        f"{len(sequence)}, queue acks {len(queue_worker.acknowledged)} (receiver reopened {queue_worker.reopened}x)"
    )
    assert not problems, "\n".join(problems)
