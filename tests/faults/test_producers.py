"""Producers through every door (the library, gRPC and REST of a ``sluice serve`` process) keep appending
while PostgreSQL is killed with -9, fast-restarted, or has its backends terminated. Afterwards: every
producer finished (it only ever saw typed retryable errors, and each event was acknowledged in time), no
acknowledged event is missing, none is stored twice, and the gateway still runs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

import sluice
from sluice import StreamConfig
from sluice.client import SluiceClient
from tests.faults.database import DATABASE_FAULTS, Fault, FaultyDatabase
from tests.faults.report import first_after, report_resume
from tests.faults.serve_process import ServeProcess
from tests.faults.traffic import Producer, grpc_append, library_append, rest_append

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(90)]

WARM_UP_SECONDS = 1.0
AFTER_FAULT_SECONDS = 1.5
DOORS = ("library", "grpc", "rest")


@pytest.mark.parametrize("fault", DATABASE_FAULTS, ids=str)
async def test_no_acknowledged_append_is_lost_or_stored_twice(
    faulty_database: FaultyDatabase, fault: Fault, tmp_path: Path
) -> None:
    async with await sluice.connect(faulty_database.dsn) as setup:
        for door in DOORS:
            await setup.create_stream(StreamConfig(name=f"produced-{door}"))
    gateway = ServeProcess(faulty_database.dsn, tmp_path)
    await asyncio.to_thread(gateway.start)
    producers = {door: Producer(door, f"produced-{door}") for door in DOORS}
    stop = asyncio.Event()
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
            tasks = [
                asyncio.create_task(producers[door].run(appenders[door], stop), name=f"producer-{door}")
                for door in DOORS
            ]
            try:
                await asyncio.sleep(WARM_UP_SECONDS)
                back_at = await faulty_database.inject(fault)
                await asyncio.sleep(AFTER_FAULT_SECONDS)
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=45)
        gateway_alive = gateway.running()
    finally:
        await asyncio.to_thread(gateway.stop)

    async with await sluice.connect(faulty_database.dsn) as check:
        stored = {
            door: [str(event.event_id) async for event in check.read_stream(f"produced-{door}")] for door in DOORS
        }
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
    if not gateway_alive:
        problems.append(f"sluice serve exited during the fault:\n{gateway.log_tail()}")
    summary = {door: (len(p.acknowledged), p.retries) for door, p in producers.items()}
    print(f"producers {fault}: (acknowledged, retries) {summary} at {time.strftime('%X')}")
    assert not problems, "\n".join(problems)
