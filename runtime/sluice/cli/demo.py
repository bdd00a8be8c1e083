"""``sluice demo``: a tour of the runtime on a throwaway PostgreSQL that it starts and removes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import click
from pydantic import BaseModel

import sluice
from sluice.storage.postgres.embedded import EmbeddedPostgres, ServerSettings


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


class SendEmail(BaseModel):
    to: str
    template: str


def _say(text: str) -> None:
    click.echo(click.style("▸ ", fg="cyan") + text)


async def run_demo(*, events: int) -> None:
    """Append, read, subscribe, read the global log, and work a queue through to its dead letters."""
    _say("starting a throwaway PostgreSQL on loopback ...")
    with EmbeddedPostgres(ServerSettings(durable=True)) as server:
        click.echo(f"  {server.dsn()}  (pid {server.pid})")
        async with await sluice.connect(server.dsn(), migrate=True) as store:
            await _tour(store, events)
    _say("stopped PostgreSQL and removed its data. Run `./dev test` for the test suite.")


async def _tour(store: sluice.EventStore, events: int) -> None:
    await store.create_stream(sluice.StreamConfig(name="orders", partitions=1))
    received: list[sluice.RecordedEvent] = []

    async def follow() -> None:
        async for event in store.subscribe("orders"):
            received.append(event)
            if len(received) == events:
                return

    follower = asyncio.create_task(follow())
    started = time.perf_counter()
    for first in range(0, events, 100):
        batch = [OrderPlaced(order_id=f"o-{n}", total_cents=100 + n) for n in range(first, min(first + 100, events))]
        await store.append("orders", batch, correlation_id="demo")
    elapsed = time.perf_counter() - started
    _say(f"appended {events} events to 'orders' in batches of 100: {events / elapsed:,.0f} events/s")
    await asyncio.wait_for(follower, timeout=30)
    _say(
        f"a live subscription received all {len(received)} in offset order: {received[0].offset}..{received[-1].offset}"
    )
    backwards = store.read_stream("orders", direction=sluice.Direction.BACKWARDS, limit=1)
    [last] = [event async for event in backwards]
    _say(f"last event: offset {last.offset}, {last.event_type} {last.data}, decoded: {last.decode()!r}")
    try:
        await store.append("orders", OrderPlaced(order_id="x", total_cents=1), expected_offset=0)
    except sluice.ConcurrencyError as error:
        _say(f"optimistic concurrency refused a stale writer: {error}")
    count = sum([1 async for _ in store.read_all()])
    _say(f"the global log holds {count} events")

    await store.create_stream(sluice.StreamConfig(name="email", type=sluice.StreamType.EPHEMERAL, max_attempts=2))
    await store.enqueue("email", SendEmail(to="ada@example.com", template="welcome"), dedupe_key="welcome:ada")
    repeat = await store.enqueue("email", SendEmail(to="ada@example.com", template="welcome"), dedupe_key="welcome:ada")
    _say(f"enqueued a message; the repeat with the same dedupe key was deduplicated: {repeat.deduplicated}")
    for attempt in (1, 2):
        message = await store.dequeue("email", visibility_timeout=timedelta(seconds=30))
        assert message is not None
        await store.nack("email", message.receipt, reason=f"SMTP timeout (attempt {attempt})")
        _say(f"delivery {message.attempt} of {message.receipt.message_id} failed and was nacked")
    dead = await store.dead_letters("email")
    _say(
        f"after max_attempts it moved to the dead-letter queue with its history: {[f.reason for f in dead[0].failures]}"
    )
    for info in await store.list_streams():
        _say(f"stream {info.name}: {info.type.value}, head {info.head}")
