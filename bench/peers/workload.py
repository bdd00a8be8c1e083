"""The one workload every system runs, what each system provides to run it, and what a run yields.

- produce: up to ``PRODUCE_TOTAL`` events (at most ``PRODUCE_SECONDS`` of sending) of about ``EVENT_BYTES`` bytes
  of JSON, in batches of ``PRODUCE_BATCH``, one producer, each batch acknowledged before the next is sent;
- consume: the events just produced, read back from the start by one reader, no per-event acknowledgement;
- end-to-end latency: ``LATENCY_RATE`` events/s (a batch of ``LATENCY_BATCH`` every 10 ms) for ``LATENCY_TOTAL``
  events, each batch sent without waiting for the previous one's acknowledgement, while a subscriber receives them;
  latency is send-to-receive per event (same clock, same process).

Every system is driven by its Python asyncio client in this one process, so the figures include the client's cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

import pydantic_core

from bench.harness import percentile

EVENT_BYTES = 200
PRODUCE_BATCH = 100
PRODUCE_TOTAL = 20_000
PRODUCE_SECONDS = 5.0
LATENCY_RATE = 1000
LATENCY_BATCH = 10
LATENCY_TOTAL = 3000
LATENCY_WARM_UP = 50
LATENCY_RECEIVE_TIMEOUT_SECONDS = 60
ROUNDS = 3

# Sends one batch of events and returns when the system acknowledged all of them.
SendBatch = Callable[[list[dict[str, Any]]], Coroutine[Any, Any, None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Channel:
    """One fresh log of a system (a Sluice stream, a Kafka topic, a JetStream stream) and how to use it:
    ``send`` a batch, ``read_all`` (from the start until at least the given count; returns the count seen), and
    ``deliveries`` (the numbers of events as a subscriber receives them, from the start)."""

    send: SendBatch
    read_all: Callable[[int], Awaitable[int]]
    deliveries: Callable[[], AsyncGenerator[int, None]]


class Target(Protocol):
    """One system under one setting, ready to run the workload."""

    system: str
    setting: str
    fsync_per_write: bool  # every acknowledged write fsynced first (False: fsynced later, the peers' defaults)

    async def new_channel(self) -> Channel: ...


def event(number: int) -> dict[str, Any]:
    """One event's data: its number, a few order-like fields, and padding to about ``EVENT_BYTES`` of JSON."""
    data: dict[str, Any] = {"n": number, "order_id": f"o-{number}", "customer": f"c-{number % 97}", "pad": ""}
    data["pad"] = "x" * max(0, EVENT_BYTES - len(encode(data)))
    return data


def encode(data: dict[str, Any]) -> bytes:
    return pydantic_core.to_json(data)


def decode_number(payload: bytes) -> int:
    """The event number of an encoded event."""
    return int(pydantic_core.from_json(payload)["n"])


async def measure_produce(
    send_batch: SendBatch,
    *,
    total: int = PRODUCE_TOTAL,
    batch: int = PRODUCE_BATCH,
    seconds: float = PRODUCE_SECONDS,
) -> tuple[int, float]:
    """Send up to ``total`` events in batches of ``batch``, each acknowledged before the next, stopping after the
    batch that crosses ``seconds``; returns (events sent, events/s)."""
    started = time.perf_counter()
    sent = 0
    while sent < total and time.perf_counter() - started < seconds:
        await send_batch([event(number) for number in range(sent, sent + batch)])
        sent += batch
    return sent, sent / (time.perf_counter() - started)


async def measure_consume(read_all: Callable[[int], Awaitable[int]], expected: int) -> float:
    """Events/s of one read of everything produced; fails when the read saw fewer than ``expected`` events."""
    started = time.perf_counter()
    seen = await read_all(expected)
    elapsed = time.perf_counter() - started
    if seen < expected:
        raise RuntimeError(f"the consumer read {seen} events, expected at least {expected}")
    return seen / elapsed


async def measure_latency(
    send_batch: SendBatch,
    deliveries: AsyncGenerator[int, None],
    *,
    total: int = LATENCY_TOTAL,
    batch: int = LATENCY_BATCH,
    events_per_second: int = LATENCY_RATE,
) -> tuple[float, list[float]]:
    """Send ``total`` events at ``events_per_second`` while ``deliveries`` (the numbers of received events) is read;
    returns the send rate achieved and every event's send-to-receive latency in ms. ``LATENCY_WARM_UP`` events
    numbered below zero go first, so the figures are the steady state (connections open, consumer attached)."""
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        async for number in deliveries:
            if number < 0:
                continue
            latencies.append((time.perf_counter() - sent[number]) * 1000)
            if len(latencies) == total:
                return

    receiver = asyncio.create_task(receive())
    sends: list[asyncio.Task[None]] = []
    try:
        await send_batch([event(-1 - number) for number in range(LATENCY_WARM_UP)])
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        for first in range(0, total, batch):
            delay = start + first / events_per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            for number in range(first, first + batch):
                sent[number] = now
            sends.append(asyncio.create_task(send_batch([event(number) for number in range(first, first + batch)])))
        achieved = total / (time.perf_counter() - start)
        await asyncio.gather(*sends)  # a failed send fails the run here, not as a receive timeout
        await asyncio.wait_for(receiver, timeout=LATENCY_RECEIVE_TIMEOUT_SECONDS)
        return achieved, latencies
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, *sends, return_exceptions=True)
        await deliveries.aclose()


@dataclasses.dataclass(frozen=True, slots=True)
class PeerFigures:
    """The three figures of one system under one setting (rates in events/s, latencies in ms)."""

    system: str
    setting: str
    fsync_per_write: bool
    produce_rate: float
    consume_rate: float
    latency_p50: float
    latency_p99: float
    latency_rate: float


@dataclasses.dataclass(slots=True)
class Measurements:
    """What the rounds collected for one target so far."""

    produce_rates: list[float] = dataclasses.field(default_factory=list)
    consume_rates: list[float] = dataclasses.field(default_factory=list)
    latency_rates: list[float] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)

    def figures(self, target: Target) -> PeerFigures:
        """Medians of the rates, percentiles of the latencies of every round together."""
        return PeerFigures(
            system=target.system,
            setting=target.setting,
            fsync_per_write=target.fsync_per_write,
            produce_rate=statistics.median(self.produce_rates),
            consume_rate=statistics.median(self.consume_rates),
            latency_p50=percentile(self.latencies, 0.50),
            latency_p99=percentile(self.latencies, 0.99),
            latency_rate=statistics.median(self.latency_rates),
        )


async def produce_and_consume_round(target: Target, measurements: Measurements) -> None:
    """One round on a fresh channel: produce, then read everything produced."""
    channel = await target.new_channel()
    produced, produce_rate = await measure_produce(channel.send)
    measurements.produce_rates.append(produce_rate)
    measurements.consume_rates.append(await measure_consume(channel.read_all, produced))


async def latency_round(target: Target, measurements: Measurements) -> None:
    """One latency run on a fresh channel; its latencies join those of the other rounds."""
    channel = await target.new_channel()
    latency_rate, latencies = await measure_latency(channel.send, channel.deliveries())
    measurements.latency_rates.append(latency_rate)
    measurements.latencies += latencies
