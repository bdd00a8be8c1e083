"""Idle subscriptions: what 500 idle gRPC subscribers cost a server process, and how fast one append
reaches all of them (issue 18).

A gRPC server runs in a child process (this module with ``serve``: ``run_grpc_server`` over one store,
as ``sluice serve`` does); 500 subscriptions to one stream connect from this process over a few
channels and catch up. Then, over an idle window, the server's CPU time (utime + stime from
/proc/<pid>/stat) and the database's transactions (pg_stat_database xact_commit + xact_rollback) are
measured; then single appends from another store (this process: the server hears of them by NOTIFY,
as it hears of a producer's appends in production) and the time until each subscriber has the event.

Subscriptions use the client's default checkpoint interval (1 s: the server sends each idle
subscription a checkpoint message every second), and once more with 30 s to show what those
messages cost.

The baseline is the old behaviour in the same server: ``listening_poll_interval`` equal to
``poll_interval`` (500 ms), so every idle subscription re-reads its stream every interval, and one
query per subscription (no shared reads: polling subscriptions that share reads fall into step and
end up sharing almost every query, which would hide what polling cost). The subscribers connect
over a second, so polling ones start out of step, as a real server's clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

import sluice
from bench.harness import Comparison, Databases, percentile
from sluice import EventData, RecordedEvent
from sluice.client import SluiceClient
from sluice.rpc.server import run_grpc_server

SUBSCRIBERS = 500
CHANNELS = 10
"""Client channels the subscriptions are spread over (50 HTTP/2 streams each)."""
IDLE_SECONDS = 10.0
STAGGER_SECONDS = 1.0
STATISTICS_DELAY = 10.5
"""pg_stat_database counts a backend's transactions up to 10 s after they ran."""
FAN_OUT_APPENDS = 20
POLL_INTERVAL = timedelta(milliseconds=500)
LISTENING_POLL_INTERVAL = timedelta(seconds=30)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class IdleServer:
    """This module's ``serve`` command in a child process, on a free port."""

    def __init__(self, dsn: str, *, old_behaviour: bool) -> None:
        self._directory = tempfile.TemporaryDirectory()
        port_file = Path(self._directory.name) / "port"
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.idle_subscriptions",
                "serve",
                "--dsn",
                dsn,
                "--port-file",
                str(port_file),
                *(["--old-behaviour"] if old_behaviour else []),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gRPC server did not start")
            time.sleep(0.05)
        self.target = f"127.0.0.1:{port_file.read_text()}"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._directory.cleanup()


async def _transactions(admin: asyncpg.Connection, database: str) -> int:
    value = await admin.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database
    )
    return int(value)


class Fleet:
    """SUBSCRIBERS gRPC subscriptions to one stream; each notes when it receives each event."""

    def __init__(self, clients: list[SluiceClient], stream_name: str, checkpoint_interval: timedelta) -> None:
        self.received: list[dict[int, float]] = [{} for _ in range(SUBSCRIBERS)]
        self._arrived = asyncio.Event()
        self._tasks = [
            asyncio.create_task(
                self._subscribe(clients[number % len(clients)], stream_name, number, checkpoint_interval)
            )
            for number in range(SUBSCRIBERS)
        ]

    async def _subscribe(
        self, client: SluiceClient, stream_name: str, number: int, checkpoint_interval: timedelta
    ) -> None:
        # Subscribers connect one by one over a second, as clients of a real server do: a polling
        # subscription then reads at its own moment, not in step with all the others (in step,
        # their reads would coincide and share one query, which flatters polling).
        await asyncio.sleep(number * STAGGER_SECONDS / SUBSCRIBERS)
        received = self.received[number]
        async for event in client.subscribe(stream_name, checkpoint_interval=checkpoint_interval):
            received[event.data["n"]] = time.perf_counter()
            self._arrived.set()

    async def all_have(self, number: int) -> None:
        async with asyncio.timeout(60):
            while not all(number in received for received in self.received):
                self._arrived.clear()
                await self._arrived.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclasses.dataclass(frozen=True, slots=True)
class IdleFigures:
    cpu_share: float
    """CPU time of the server process over the idle window, as a share of one core."""
    transactions_per_second: float
    latencies: list[float]
    """Append-to-delivery latency of every subscriber for every fan-out append, in milliseconds."""


async def _measure(databases: Databases, *, old_behaviour: bool, checkpoint_interval: timedelta) -> IdleFigures:
    dsn = await databases.fresh()
    database = urlsplit(dsn).path.lstrip("/")
    server = IdleServer(dsn, old_behaviour=old_behaviour)
    writer = await sluice.connect(dsn)
    admin = await asyncpg.connect(databases.admin_dsn)
    clients = [await SluiceClient.connect(server.target) for _ in range(CHANNELS)]
    fleet: Fleet | None = None
    try:
        await writer.create_stream(sluice.StreamConfig(name="idle"))
        await writer.append("idle", EventData("Tick", {"n": 0}))
        fleet = Fleet(clients, "idle", checkpoint_interval)
        await fleet.all_have(0)
        # A backend reports its statistics up to 10 s late (PGSTAT_IDLE_INTERVAL): let the catch-up
        # reads land before the window opens, and count the window's own for 10 s after it.
        await asyncio.sleep(STATISTICS_DELAY)
        cpu_before, transactions_before = server.cpu_seconds(), await _transactions(admin, database)
        started = time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS + STATISTICS_DELAY)
        transactions_after = await _transactions(admin, database)
        elapsed = time.perf_counter() - started
        cpu_share = (server.cpu_seconds() - cpu_before) / elapsed
        latencies: list[float] = []
        for number in range(1, FAN_OUT_APPENDS + 1):
            await asyncio.sleep(0.2)
            sent = time.perf_counter()
            await writer.append("idle", EventData("Tick", {"n": number}))
            await fleet.all_have(number)
            latencies.extend((received[number] - sent) * 1000 for received in fleet.received)
        return IdleFigures(cpu_share, (transactions_after - transactions_before) / elapsed, latencies)
    finally:
        if fleet is not None:
            await fleet.close()
        for client in clients:
            await client.close()
        await admin.close()
        await writer.close()
        server.stop()


async def run(databases: Databases) -> list[Comparison]:
    default_checkpoints = timedelta(seconds=1)
    polling = await _measure(databases, old_behaviour=True, checkpoint_interval=default_checkpoints)
    notified = await _measure(databases, old_behaviour=False, checkpoint_interval=default_checkpoints)
    quiet = await _measure(databases, old_behaviour=False, checkpoint_interval=timedelta(seconds=30))
    label = f"{SUBSCRIBERS} idle gRPC subscribers"
    rows = [
        Comparison(
            f"{label}: server CPU",
            notified.cpu_share * 100,
            polling.cpu_share * 100,
            "% core",
            "< 2%",
            notified.cpu_share < 0.02,
        ),
        Comparison(
            f"{label}, checkpoints every 30 s: server CPU",
            quiet.cpu_share * 100,
            polling.cpu_share * 100,
            "% core",
            "< 2%",
            quiet.cpu_share < 0.02,
        ),
        Comparison(
            f"{label}: PostgreSQL",
            notified.transactions_per_second,
            polling.transactions_per_second,
            "xact/s",
            "< 10",
            notified.transactions_per_second < 10,
        ),
    ]
    for figures, checkpoints in ((notified, ""), (quiet, ", checkpoints every 30 s")):
        for name, fraction, target in (("p50", 0.50, ""), ("p99", 0.99, "<= 50 ms")):
            value, baseline = percentile(figures.latencies, fraction), percentile(polling.latencies, fraction)
            met = value <= 50 if target else None
            scenario = f"one append to all {SUBSCRIBERS}{checkpoints}, {name}"
            rows.append(Comparison(scenario, value, baseline, "ms", target, met))
    return rows


class _UnsharedReads:
    """The old behaviour's reads: every subscription runs its own query (no sluice.shared_reads)."""

    shared = 0

    async def read(
        self, place: Hashable, ticket: asyncio.Event, read: Callable[[], Awaitable[list[RecordedEvent]]]
    ) -> list[RecordedEvent]:
        return await read()


async def _serve(dsn: str, port_file: Path, *, old_behaviour: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def ready(port: int) -> None:
        temporary = port_file.with_suffix(".tmp")
        temporary.write_text(str(port))
        temporary.replace(port_file)

    listening_poll_interval = POLL_INTERVAL if old_behaviour else LISTENING_POLL_INTERVAL
    async with await sluice.connect(
        dsn, poll_interval=POLL_INTERVAL, listening_poll_interval=listening_poll_interval
    ) as store:
        if old_behaviour:
            store._shared_reads = _UnsharedReads()  # type: ignore[assignment]
        await run_grpc_server(store, address="127.0.0.1:0", ready=ready, stop=stop, grace_seconds=1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.idle_subscriptions")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--old-behaviour", action="store_true", help="poll every 500 ms, one query per subscription")
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.dsn, arguments.port_file, old_behaviour=arguments.old_behaviour))
