"""The consumer worker in process, against PostgreSQL and a real HTTP receiver: delivery, commits,
dead-lettering when the sink answers 500, the health and metrics endpoint, and a clean stop."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, OffsetCommitStrategy, StreamConfig
from sluice.services.retries import RetryPolicy
from sluice.services.sinks.dead_letters import DEAD_LETTER_METADATA_KEY
from sluice.services.sinks.http import HttpSink
from sluice.services.workers.consumer import ConsumerSettings, ConsumerWorker
from tests.sinks.receiver import ReceivedRequest, Receiver

FAST_POLL = timedelta(milliseconds=100)


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(postgres_dsn, poll_interval=FAST_POLL)
    yield opened
    await opened.close()


def settings(**changes: object) -> ConsumerSettings:
    base = ConsumerSettings(
        stream_name="orders",
        group_id="billing",
        consumer_id="worker-1",
        options=ConsumerGroupOptions(batch_size=4, heartbeat_interval=timedelta(seconds=1)),
        retry=RetryPolicy(max_attempts=3, delay=0.01, max_delay=0.02),
        http_host="127.0.0.1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def poison_gets_500(request: ReceivedRequest) -> int:
    return 500 if b"poison" in request.body else 200


async def wait_until(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("strategy", [OffsetCommitStrategy.AFTER_BATCH, OffsetCommitStrategy.MANUAL])
async def test_failing_events_are_dead_lettered_and_committed_past(
    store: EventStore, receiver: Receiver, strategy: OffsetCommitStrategy
) -> None:
    receiver.choose_status = poison_gets_500
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    events = [EventData("OrderPlaced", {"n": n}, metadata={"source": "test"}) for n in range(10)]
    poison = EventData("OrderPlaced", {"n": "poison"}, metadata={"source": "test"})
    await store.append("orders", [*events[:5], poison, *events[5:]], partition_key="one-key", correlation_id="c-1")
    worker_settings = settings(
        options=ConsumerGroupOptions(commit_strategy=strategy, batch_size=4),
        worker_commits_each_event=strategy is OffsetCommitStrategy.MANUAL,
    )
    async with HttpSink(receiver.url, group_id="billing") as sink:
        worker = ConsumerWorker(store, worker_settings, sink.deliver)
        running = asyncio.create_task(worker.run())
        reader = store.consumer_groups()

        async def caught_up() -> bool:
            try:
                return (await reader.lag("orders", "billing")).lag_events == 0
            except sluice.GroupNotFoundError:
                return False

        await wait_until(caught_up)
        worker.stop()
        await asyncio.wait_for(running, timeout=10)

    accepted = receiver.accepted()
    assert sorted(request.cloud_event().get_data()["n"] for request in accepted) == list(range(10))  # type: ignore[index]
    poison_requests = [request for request in receiver.requests if b"poison" in request.body]
    assert len(poison_requests) == 3  # max_attempts
    [dead] = [event async for event in store.read_stream("orders.billing.dead-letter")]
    assert dead.event_id == poison.event_id
    assert dead.event_type == "OrderPlaced"
    assert dead.data == {"n": "poison"}
    assert dead.correlation_id == "c-1"
    assert dead.metadata["source"] == "test"
    history = dead.metadata[DEAD_LETTER_METADATA_KEY]
    assert history["attempts"] == 3
    assert "answered 500" in history["error"]
    assert history["stream"] == "orders"
    assert history["offset"] == 5
    assert history["group"] == "billing"
    assert history["first_failure_at"] <= history["last_failure_at"] <= history["dead_lettered_at"]
    description = await store.consumer_groups().describe("orders", "billing")
    assert description.lag_events == 0
    assert not description.active_members  # it left the group
    assert worker.delivered == 10
    assert worker.dead_lettered == 1


async def test_health_ready_and_metrics_endpoints(store: EventStore, receiver: Receiver) -> None:
    await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(3)])
    # The registry is the process's: other tests of this worker process may have counted this series already.
    series = {"stream": "orders", "group": "billing"}
    counted_before = REGISTRY.get_sample_value("sluice_worker_events_delivered_total", series) or 0.0
    async with HttpSink(receiver.url) as sink:
        worker = ConsumerWorker(store, settings(http_port=_free_port()), sink.deliver)
        running = asyncio.create_task(worker.run())
        await asyncio.to_thread(receiver.wait_for_accepted, 3)
        # The receiver has the events before the worker counts them (it counts once the sink's call returns).
        async with asyncio.timeout(10):
            while worker.delivered < 3:  # noqa: ASYNC110  (a plain counter: nothing to wait on)
                await asyncio.sleep(0.01)
        assert worker.health_server is not None
        base = f"http://127.0.0.1:{worker.health_server.port}"
        async with httpx.AsyncClient() as client:
            live = await client.get(base + "/health/live")
            ready = await client.get(base + "/health/ready")
            metrics = await client.get(base + "/metrics")
            missing = await client.get(base + "/nothing")
        worker.stop()
        await asyncio.wait_for(running, timeout=10)
    assert live.status_code == 200
    assert ready.status_code == 200, ready.text
    assert "consuming partitions [0]" in ready.text
    assert missing.status_code == 404
    assert metrics.headers["content-type"].startswith("text/plain")
    served = {family.name: family for family in text_string_to_metric_families(metrics.text)}
    delivered = [
        sample.value
        for sample in served["sluice_worker_events_delivered"].samples
        if sample.name.endswith("_total") and sample.labels == series
    ]
    assert delivered == [counted_before + 3]


async def test_an_idle_worker_stops_at_once_and_leaves(store: EventStore, receiver: Receiver) -> None:
    await store.append("orders", [EventData("OrderPlaced", {"n": 1})])
    async with HttpSink(receiver.url) as sink:
        worker = ConsumerWorker(store, settings(), sink.deliver)
        running = asyncio.create_task(worker.run())
        await asyncio.to_thread(receiver.wait_for_accepted, 1)
        await asyncio.sleep(0.3)  # idle now, waiting for events
        worker.stop()
        await asyncio.wait_for(running, timeout=3)
    description = await store.consumer_groups().describe("orders", "billing")
    assert description.lag_events == 0
    assert not description.active_members


async def test_a_stop_during_a_slow_delivery_finishes_it_and_commits_it(store: EventStore) -> None:
    await store.append("orders", [EventData("OrderPlaced", {"n": n}) for n in range(5)])
    started = asyncio.Event()
    finished: list[int] = []

    async def slow_handler(event: sluice.ConsumedEvent, attempt: int) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(event.offset)

    worker = ConsumerWorker(store, settings(), slow_handler)
    running = asyncio.create_task(worker.run())
    await started.wait()
    worker.stop()
    await asyncio.wait_for(running, timeout=5)
    assert finished == [0]  # the event in hand was finished, no further one was started
    description = await store.consumer_groups().describe("orders", "billing")
    assert description.partitions[0].committed_offset == 1


async def test_a_stream_that_is_not_auto_created_fails_before_joining(postgres_dsn: str) -> None:
    async def handler(event: sluice.ConsumedEvent, attempt: int) -> None:
        raise AssertionError("never called")

    async with await sluice.connect(postgres_dsn, poll_interval=FAST_POLL, auto_create_streams=False) as store:
        worker = ConsumerWorker(store, settings(stream_name="missing"), handler)
        with pytest.raises(sluice.StreamNotFoundError, match="not auto-created"):
            await asyncio.wait_for(worker.run(), 10)
        assert await store.consumer_groups().list_groups() == []


async def test_a_worker_waits_unready_for_its_stream_and_consumes_once_it_is_created(store: EventStore) -> None:
    """Workers start before producers: the stream appears with its first append (auto-created)."""
    handled: list[int] = []

    async def handler(event: sluice.ConsumedEvent, attempt: int) -> None:
        handled.append(event.data["n"])

    worker = ConsumerWorker(store, settings(stream_name="later", http_port=_free_port()), handler)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    assert not running.done(), "the worker waits for the stream"
    assert worker.health_server is not None
    base = f"http://127.0.0.1:{worker.health_server.port}"
    async with httpx.AsyncClient() as client:
        waiting = await client.get(base + "/health/ready")
        await store.append("later", [EventData("OrderPlaced", {"n": n}) for n in range(3)])
        await wait_until(lambda: asyncio.sleep(0, len(handled) == 3))
        consuming = await client.get(base + "/health/ready")
    worker.stop()
    await asyncio.wait_for(running, timeout=10)
    assert waiting.status_code == 503
    assert "waiting for stream 'later'" in waiting.text
    assert consuming.status_code == 200, consuming.text
    assert handled == [0, 1, 2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
