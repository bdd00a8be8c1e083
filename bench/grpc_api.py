"""gRPC API: batch appends through a server in another process against the in-process library on
the same PostgreSQL, and append-to-delivery latency of a gRPC subscription (issue: serving)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sluice
from bench.harness import Comparison, Databases, compare_rates, measure_delivery_latency, percentile, timed_rate
from sluice import EventData, EventStore
from sluice.client import SluiceClient

CLIENTS = 8
BATCH = 100
BATCHES_PER_CLIENT = 25
LATENCY_EVENTS = 3000
LATENCY_BATCH = 10


class ServerProcess:
    """``sluice serve`` on free ports, as a pod runs it (its gRPC port is the one measured)."""

    def __init__(self, dsn: str) -> None:
        self._directory = tempfile.TemporaryDirectory()
        ready_file = Path(self._directory.name) / "ready.json"
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluice.cli",
                "serve",
                "--dsn",
                dsn,
                "--grpc-address",
                "127.0.0.1:0",
                "--http-address",
                "127.0.0.1:0",
                "--ready-file",
                str(ready_file),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not ready_file.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sluice serve did not start")
            time.sleep(0.05)
        self.target = f"127.0.0.1:{json.loads(ready_file.read_text())['grpc_port']}"

    def stop(self) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=30)
        self._directory.cleanup()


def _batch(client_number: int, batch_number: int) -> list[EventData]:
    return [
        EventData("OrderPlaced", {"client": client_number, "batch": batch_number, "n": n, "total_cents": 1250})
        for n in range(BATCH)
    ]


async def bench_append(databases: Databases, rows: list[Comparison]) -> None:
    """8 concurrent writers, one stream each, batches of 100: gRPC clients against the server
    process, and tasks on one in-process store (the server's pool size, 10)."""
    dsn = await databases.fresh()
    server = ServerProcess(dsn)
    clients = [await SluiceClient.connect(server.target) for _ in range(CLIENTS)]
    store = await sluice.connect(dsn, pool_min_size=10, pool_max_size=10)
    try:
        # Warm up: channels connected, streams created, statements prepared on both sides.
        await asyncio.gather(*(client.append(f"grpc-{n}", _batch(n, -1)) for n, client in enumerate(clients)))
        await asyncio.gather(*(store.append(f"local-{n}", _batch(n, -1)) for n in range(CLIENTS)))

        async def through_grpc() -> int:
            async def writer(number: int, client: SluiceClient) -> None:
                for batch_number in range(BATCHES_PER_CLIENT):
                    await client.append(f"grpc-{number}", _batch(number, batch_number))

            await asyncio.gather(*(writer(number, client) for number, client in enumerate(clients)))
            return CLIENTS * BATCHES_PER_CLIENT * BATCH

        async def in_process() -> int:
            async def writer(number: int) -> None:
                for batch_number in range(BATCHES_PER_CLIENT):
                    await store.append(f"local-{number}", _batch(number, batch_number))

            await asyncio.gather(*(writer(number) for number in range(CLIENTS)))
            return CLIENTS * BATCHES_PER_CLIENT * BATCH

        grpc_rate, local_rate = await compare_rates(timed_rate(through_grpc), timed_rate(in_process))
        rows.append(
            Comparison(
                f"gRPC append batch {BATCH}, {CLIENTS} clients (vs in-process)",
                grpc_rate,
                local_rate,
                "events/s",
                ">= 0.5x in-process",
                grpc_rate >= 0.5 * local_rate,
            )
        )
    finally:
        for client in clients:
            await client.close()
        await store.close()
        server.stop()


async def bench_subscribe_latency(databases: Databases, rows: list[Comparison]) -> None:
    """1,000 events/s for 3 s (a batch of 10 every 10 ms) appended in-process; a gRPC subscriber
    through the server process records append-to-delivery latency per event."""
    dsn = await databases.fresh()
    server = ServerProcess(dsn)
    writer: EventStore = await sluice.connect(dsn, pool_min_size=8, pool_max_size=8)
    client = await SluiceClient.connect(server.target)
    await writer.create_stream(sluice.StreamConfig(name="ticks"))
    subscription = client.subscribe("ticks")
    try:
        achieved, latencies = await measure_delivery_latency(
            writer, "ticks", subscription, total=LATENCY_EVENTS, batch=LATENCY_BATCH
        )
    finally:
        await subscription.aclose()
        await client.close()
        await writer.close()
        server.stop()
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    label = f"gRPC subscribe latency at {achieved:,.0f} events/s"
    rows.append(Comparison(f"{label}, p50", p50, None, "ms"))
    rows.append(Comparison(f"{label}, p99", p99, None, "ms", "<= 50 ms", p99 <= 50))


async def run(databases: Databases) -> list[Comparison]:
    rows: list[Comparison] = []
    await bench_append(databases, rows)
    await bench_subscribe_latency(databases, rows)
    return rows
