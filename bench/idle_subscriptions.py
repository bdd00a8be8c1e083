"""Idle subscriptions: what 500 idle gRPC subscribers cost a server process, and how fast one append
reaches all of them (issue 18).

A gRPC server runs in a child process (this module with ``serve``: ``run_grpc_server`` over one store,
as ``sluice serve`` does); 500 subscriptions to one stream connect from this process over a few
channels and catch up. Then, over an idle window, the server's CPU time (utime + stime from
/proc/<pid>/stat) and the database's transactions (pg_stat_database xact_commit + xact_rollback) are
measured; then single appends from another store (this process: the server hears of them by NOTIFY,
as it hears of a producer's appends in production) and the time until each subscriber has the event.

Subscriptions use the client's default checkpoint interval (1 s), and once more with 30 s: the server once
sent each idle subscription a checkpoint every interval; now a checkpoint is only a keep-alive after 30 s of
nothing else, so the two should cost the same.

The baseline of the idle figures is the old behaviour in the same server: ``listening_poll_interval``
equal to ``poll_interval`` (500 ms), so every idle subscription re-reads its stream every interval,
and one query per subscription (no shared reads: polling subscriptions that share reads fall into
step and end up sharing almost every query, which would hide what polling cost). The subscribers
connect over a second, so polling ones start out of step, as a real server's clients do.

Fan-out latency is measured in FAN_OUT_ROUNDS rounds, each against a fresh server, alternating
between the server as it is (NOW), the same with a message built and serialized per call
(PER_CALL_MESSAGES: the send path before events were encoded once for all calls) and as it was before
the fan-out work (BEFORE, ``--previous-send-path --default-gc``: a store subscription per call, a task
per event raced against it with ``asyncio.wait``, every event converted per subscriber, a checkpoint
right behind the event), so that all three see the same machine; the median of the rounds and each
version's range are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc

import sluice
from bench.harness import Comparison, Databases, percentile
from sluice import EventData, RecordedEvent
from sluice.client import SluiceClient
from sluice.rpc import streams_service, subscription_sending
from sluice.rpc.conversions import recorded_event_message
from sluice.rpc.database_outages import TRANSIENT_ERRORS, OutageRetry
from sluice.rpc.server import run_grpc_server
from sluice.rpc.v1 import sluice_pb2
from sluice.serving.garbage_collection import settle_after_startup

SUBSCRIBERS = 500
CHANNELS = 10
"""Client channels the subscriptions are spread over (50 HTTP/2 streams each)."""
IDLE_SECONDS = 10.0
STAGGER_SECONDS = 1.0
STATISTICS_DELAY = 10.5
"""pg_stat_database counts a backend's transactions up to 10 s after they ran."""
FAN_OUT_APPENDS = 20
FAN_OUT_ROUNDS = 3
POLL_INTERVAL = timedelta(milliseconds=500)
LISTENING_POLL_INTERVAL = timedelta(seconds=30)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True, slots=True)
class ServerVersion:
    """Which of the server's changes for issue 18 the bench's server runs with."""

    label: str
    polling: bool = False
    """Idle subscriptions re-read every 500 ms, one query each (before notifications woke them)."""
    previous_send_path: bool = False
    """Subscribe's pump and send loop before the fan-out work (_previous_pump, _previous_send_subscription):
    a store subscription per call, no live tail."""
    default_gc: bool = False
    """Python's default garbage collection (not sluice.serving.garbage_collection's)."""
    per_call_messages: bool = False
    """Each Subscribe call builds and serializes its own message of each event batch (_use_per_call_messages)."""


NOW = ServerVersion("now")
PER_CALL_MESSAGES = ServerVersion("per-call messages", per_call_messages=True)
BEFORE = ServerVersion("before", previous_send_path=True, default_gc=True)
POLLING = ServerVersion("polling", polling=True, previous_send_path=True, default_gc=True)


class IdleServer:
    """This module's ``serve`` command in a child process, on a free port."""

    def __init__(
        self,
        dsn: str,
        *,
        old_behaviour: bool,
        previous_send_path: bool,
        default_gc: bool,
        per_call_messages: bool = False,
    ) -> None:
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
                *(["--previous-send-path"] if previous_send_path else []),
                *(["--default-gc"] if default_gc else []),
                *(["--per-call-messages"] if per_call_messages else []),
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


@contextlib.asynccontextmanager
async def _subscribed(
    databases: Databases, version: ServerVersion, *, checkpoint_interval: timedelta
) -> AsyncIterator[tuple[IdleServer, sluice.EventStore, Fleet, str]]:
    """A fresh database and server with SUBSCRIBERS subscriptions caught up on one stream ("idle")."""
    dsn = await databases.fresh()
    server = IdleServer(
        dsn,
        old_behaviour=version.polling,
        previous_send_path=version.previous_send_path,
        default_gc=version.default_gc,
        per_call_messages=version.per_call_messages,
    )
    writer = await sluice.connect(dsn)
    clients = [await SluiceClient.connect(server.target) for _ in range(CHANNELS)]
    fleet: Fleet | None = None
    try:
        await writer.create_stream(sluice.StreamConfig(name="idle"))
        await writer.append("idle", EventData("Tick", {"n": 0}))
        fleet = Fleet(clients, "idle", checkpoint_interval)
        await fleet.all_have(0)
        yield server, writer, fleet, urlsplit(dsn).path.lstrip("/")
    finally:
        if fleet is not None:
            await fleet.close()
        for client in clients:
            await client.close()
        await writer.close()
        server.stop()


async def _fan_out(writer: sluice.EventStore, fleet: Fleet) -> list[float]:
    """Append-to-delivery latency of every subscriber for FAN_OUT_APPENDS single appends, in ms."""
    latencies: list[float] = []
    for number in range(1, FAN_OUT_APPENDS + 1):
        await asyncio.sleep(0.2)
        sent = time.perf_counter()
        await writer.append("idle", EventData("Tick", {"n": number}))
        await fleet.all_have(number)
        latencies.extend((received[number] - sent) * 1000 for received in fleet.received)
    return latencies


async def _measure(databases: Databases, version: ServerVersion, *, checkpoint_interval: timedelta) -> IdleFigures:
    async with _subscribed(databases, version, checkpoint_interval=checkpoint_interval) as (
        server,
        writer,
        fleet,
        database,
    ):
        admin = await asyncpg.connect(databases.admin_dsn)
        try:
            # A backend reports its statistics up to 10 s late (PGSTAT_IDLE_INTERVAL): let the catch-up
            # reads land before the window opens, and count the window's own for 10 s after it.
            await asyncio.sleep(STATISTICS_DELAY)
            cpu_before, transactions_before = server.cpu_seconds(), await _transactions(admin, database)
            started = time.perf_counter()
            await asyncio.sleep(IDLE_SECONDS + STATISTICS_DELAY)
            transactions_after = await _transactions(admin, database)
            elapsed = time.perf_counter() - started
            cpu_share = (server.cpu_seconds() - cpu_before) / elapsed
        finally:
            await admin.close()
        latencies = await _fan_out(writer, fleet)
        return IdleFigures(cpu_share, (transactions_after - transactions_before) / elapsed, latencies)


@dataclasses.dataclass(frozen=True, slots=True)
class FanOutRound:
    latencies: list[float]
    """Append-to-delivery latency of every subscriber for every append, in milliseconds."""
    cpu_per_append: float
    """The server's CPU time over the round (appends, deliveries, checkpoints, the pauses between), per
    append, in milliseconds: less sensitive than latency to what else the machine is running."""


async def _fan_out_round(
    databases: Databases, version: ServerVersion, *, checkpoint_interval: timedelta
) -> FanOutRound:
    async with _subscribed(databases, version, checkpoint_interval=checkpoint_interval) as (server, writer, fleet, _):
        await asyncio.sleep(1.0)  # past the catch-up's checkpoints
        cpu_before = server.cpu_seconds()
        latencies = await _fan_out(writer, fleet)
        return FanOutRound(latencies, (server.cpu_seconds() - cpu_before) * 1000 / FAN_OUT_APPENDS)


def _fan_out_rows(checkpoint_interval: timedelta, rounds: dict[ServerVersion, list[FanOutRound]]) -> list[Comparison]:
    """p50 and p99 of one append reaching every subscriber, and the server's CPU per append: the median of
    the rounds' figures against the server as it was before (BEFORE), with every version's range."""
    rows = []
    measures: list[tuple[str, Callable[[FanOutRound], float], str]] = [
        ("p50", lambda round_: percentile(round_.latencies, 0.50), ""),
        ("p99", lambda round_: percentile(round_.latencies, 0.99), "<= 50 ms"),
        ("server CPU per append", lambda round_: round_.cpu_per_append, ""),
    ]
    for name, measure, target in measures:
        figures = {version: [measure(round_) for round_ in runs] for version, runs in rounds.items()}
        ranges = "; ".join(
            f"{version.label} {min(values):.0f}-{max(values):.0f}" for version, values in figures.items()
        )
        value = statistics.median(figures[NOW])
        scenario = (
            f"one append to all {SUBSCRIBERS}, checkpoints every {checkpoint_interval.total_seconds():g} s, {name} "
            f"[{len(figures[NOW])} rounds each: {ranges}]"
        )
        met = value <= 50 if target else None
        rows.append(Comparison(scenario, value, statistics.median(figures[BEFORE]), "ms", target, met))
    return rows


async def run(databases: Databases) -> list[Comparison]:
    default_checkpoints = timedelta(seconds=1)
    polling = await _measure(databases, POLLING, checkpoint_interval=default_checkpoints)
    notified = await _measure(databases, NOW, checkpoint_interval=default_checkpoints)
    quiet = await _measure(databases, NOW, checkpoint_interval=timedelta(seconds=30))
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
    for name, fraction in (("p50", 0.50), ("p99", 0.99)):
        value, baseline = percentile(notified.latencies, fraction), percentile(polling.latencies, fraction)
        rows.append(Comparison(f"one append to all {SUBSCRIBERS} after the idle window, {name}", value, baseline, "ms"))
    rounds: dict[ServerVersion, list[FanOutRound]] = {version: [] for version in (NOW, PER_CALL_MESSAGES, BEFORE)}
    for _ in range(FAN_OUT_ROUNDS):
        for version, runs in rounds.items():
            runs.append(await _fan_out_round(databases, version, checkpoint_interval=default_checkpoints))
    rows.extend(_fan_out_rows(default_checkpoints, rounds))
    return rows


class _UnsharedReads:
    """The old behaviour's reads: every subscription runs its own query (no sluice.core.shared_reads)."""

    shared = 0

    async def read(
        self, place: Hashable, ticket: asyncio.Event, read: Callable[[], Awaitable[list[RecordedEvent]]]
    ) -> list[RecordedEvent]:
        return await read()


class _PreviousSubscribeQueue(asyncio.Queue[RecordedEvent]):
    """The previous send path's buffer between the pump and the sender: an asyncio.Queue."""

    def __init__(self) -> None:
        super().__init__(maxsize=1000)


async def _previous_send_subscription(
    context: grpc.aio.ServicerContext[Any, Any],
    *,
    buffer: asyncio.Queue[RecordedEvent],
    pump: asyncio.Task[None],
    messages: object,
    next_offset: int,
    head: int,
    checkpoint_seconds: float,
) -> None:
    """The Subscribe send loop as it was before the fan-out work (commit 364afac), for the same-run
    comparison: a task per event raced against the pump with asyncio.wait, each event converted for
    each subscriber, and a checkpoint right behind an event when the interval had passed."""
    queue = buffer
    idle_checkpoint_seconds = 30.0
    caught_up = next_offset >= head
    if caught_up:
        await context.write(sluice_pb2.SubscribeResponse(caught_up=sluice_pb2.CaughtUp(next_offset=next_offset)))
    last_checkpoint = time.monotonic()
    checkpointed_offset = next_offset
    while True:
        getter = asyncio.ensure_future(queue.get())
        next_checkpoint_after = checkpoint_seconds if next_offset != checkpointed_offset else idle_checkpoint_seconds
        timeout = max(last_checkpoint + next_checkpoint_after - time.monotonic(), 0.0)
        try:
            done, _ = await asyncio.wait({getter, pump}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter not in done:
            if pump in done:
                pump.result()
                return
        else:
            batch = [recorded_event_message(getter.result())]
            while len(batch) < 500 and not queue.empty():
                batch.append(recorded_event_message(queue.get_nowait()))
            next_offset = batch[-1].offset + 1
            reaches_head = not caught_up and next_offset >= head
            await context.write(
                sluice_pb2.SubscribeResponse(events=sluice_pb2.EventBatch(events=batch, caught_up=reaches_head))
            )
            if reaches_head:
                caught_up = True
                await context.write(
                    sluice_pb2.SubscribeResponse(caught_up=sluice_pb2.CaughtUp(next_offset=next_offset))
                )
        since_checkpoint = time.monotonic() - last_checkpoint
        if since_checkpoint >= checkpoint_seconds and (
            next_offset != checkpointed_offset or since_checkpoint >= idle_checkpoint_seconds
        ):
            await context.write(sluice_pb2.SubscribeResponse(checkpoint=sluice_pb2.Checkpoint(next_offset=next_offset)))
            last_checkpoint, checkpointed_offset = time.monotonic(), next_offset


async def _previous_pump(
    self: streams_service.StreamsService,
    request: sluice_pb2.SubscribeRequest,
    from_offset: int,
    queue: asyncio.Queue[RecordedEvent],
) -> None:
    """The Subscribe pump as it was before the fan-out work: one store subscription per call (no live tail)."""
    name, partition = request.stream_name, request.partition
    retry = OutageRetry(f"subscription to {name!r} partition {partition}", give_up_after_seconds=self._outage_seconds)
    position = from_offset
    while True:
        try:
            async for event in self._store.subscribe(name, from_offset=position, partition=partition):
                await queue.put(event)
                position = event.offset + 1
            return
        except TRANSIENT_ERRORS as error:
            await retry.until_reachable(lambda: self._store.get_stream(name), error)


def _use_previous_send_path() -> None:
    """Make this process's Subscribe calls use the previous pump and send loop (the store is unchanged)."""
    streams_service.SubscriptionBuffer = _PreviousSubscribeQueue  # type: ignore[attr-defined,assignment]
    streams_service.send_subscription = _previous_send_subscription  # type: ignore[attr-defined,assignment]
    streams_service.StreamsService._pump = _previous_pump  # type: ignore[method-assign,assignment]


def _per_call_batch(
    self: subscription_sending.EventMessages, events: Sequence[RecordedEvent], *, caught_up: bool
) -> sluice_pb2.SubscribeResponse:
    """The batch as a message of its own for this call (serialized by gRPC for this call)."""
    batch = [self.message(event) for event in events]
    return sluice_pb2.SubscribeResponse(events=sluice_pb2.EventBatch(events=batch, caught_up=caught_up))


def _use_per_call_messages() -> None:
    """Make this process's Subscribe calls send as before events were encoded once for all calls: a message
    built and serialized per call and event batch."""
    subscription_sending.EventMessages.batch = _per_call_batch  # type: ignore[method-assign,assignment]


async def _serve(dsn: str, port_file: Path, version: ServerVersion) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def ready(port: int) -> None:
        if not version.default_gc:
            settle_after_startup()  # as sluice serve does
        temporary = port_file.with_suffix(".tmp")
        temporary.write_text(str(port))
        temporary.replace(port_file)

    if version.previous_send_path:
        _use_previous_send_path()
    if version.per_call_messages:
        _use_per_call_messages()
    listening_poll_interval = POLL_INTERVAL if version.polling else LISTENING_POLL_INTERVAL
    async with await sluice.connect(
        dsn, poll_interval=POLL_INTERVAL, listening_poll_interval=listening_poll_interval
    ) as store:
        if version.polling:
            store._shared_reads = _UnsharedReads()  # type: ignore[assignment]
        await run_grpc_server(store, address="127.0.0.1:0", ready=ready, stop=stop, grace_seconds=1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.idle_subscriptions")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--old-behaviour", action="store_true", help="poll every 500 ms, one query per subscription")
    parser.add_argument("--previous-send-path", action="store_true", help="Subscribe's send loop before issue 18")
    parser.add_argument("--default-gc", action="store_true", help="without sluice.serving.garbage_collection")
    parser.add_argument("--per-call-messages", action="store_true", help="a message built per call")
    arguments = parser.parse_args()
    version = ServerVersion(
        "serve",
        polling=arguments.old_behaviour,
        previous_send_path=arguments.previous_send_path,
        default_gc=arguments.default_gc,
        per_call_messages=arguments.per_call_messages,
    )
    asyncio.run(_serve(arguments.dsn, arguments.port_file, version))
