"""The traffic of the fault tests: producers through each door that retry only on typed retryable errors,
a feeder that keeps events coming whatever happens, the record of what consumers processed, and a watcher
that checks, all along, that no committed offset runs ahead of processed work.

Producers append one event at a time with its own event id and retry it, with the same id, on
``sluice.core.errors.UnavailableError`` (the library and gRPC client's category for "try again later") or an
HTTP 503: the id makes a retry of an append that did land a no-op. Any other error stops the producer and
fails the test: that is the error the caller would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from sluice import EventData, EventStore
from sluice.client import SluiceClient
from sluice.core.errors import UnavailableError

ATTEMPT_SECONDS = 10.0
"""One append call may take this long before it counts as a retryable timeout."""
EVENT_DEADLINE_SECONDS = 20.0
"""An event not acknowledged this long after its first attempt: the producer stalled."""
RETRY_PAUSE_SECONDS = 0.1
RETRYABLE_HTTP_STATUSES = frozenset({502, 503, 504})


class RetryableHttpError(Exception):
    """A REST answer that asks the caller to retry (503 and the like)."""


def describe_error(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}: {error}"[:500]


@dataclasses.dataclass
class Producer:
    """One producer: what it sent, what was acknowledged (and when), and why it stopped, if it did."""

    door: str
    stream: str
    acknowledged: list[str] = dataclasses.field(default_factory=list)
    acknowledged_at: list[float] = dataclasses.field(default_factory=list)
    attempted: list[str] = dataclasses.field(default_factory=list)
    retries: int = 0
    failure: str | None = None

    async def run(self, append_one: Callable[[EventData], Awaitable[None]], stop: asyncio.Event) -> None:
        """Append events one by one until ``stop`` is set; each is retried until acknowledged."""
        sequence = 0
        while not stop.is_set():
            event = EventData("Produced", {"seq": sequence, "door": self.door}, event_id=uuid.uuid4())
            self.attempted.append(str(event.event_id))
            if not await self._append_until_acknowledged(append_one, event):
                return
            sequence += 1
            await asyncio.sleep(0.02)

    async def _append_until_acknowledged(
        self, append_one: Callable[[EventData], Awaitable[None]], event: EventData
    ) -> bool:
        deadline = time.monotonic() + EVENT_DEADLINE_SECONDS
        while True:
            try:
                await asyncio.wait_for(append_one(event), timeout=ATTEMPT_SECONDS)
            except (UnavailableError, RetryableHttpError, TimeoutError) as error:
                self.retries += 1
                if time.monotonic() > deadline:
                    self.failure = f"stalled: event not acknowledged within {EVENT_DEADLINE_SECONDS} s ({error!r})"
                    return False
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            except Exception as error:
                self.failure = describe_error(error)
                return False
            else:
                self.acknowledged.append(str(event.event_id))
                self.acknowledged_at.append(time.time())
                return True


def library_append(store: EventStore, stream: str) -> Callable[[EventData], Awaitable[None]]:
    async def append_one(event: EventData) -> None:
        await store.append(stream, [event])

    return append_one


def grpc_append(client: SluiceClient, stream: str) -> Callable[[EventData], Awaitable[None]]:
    async def append_one(event: EventData) -> None:
        await client.append(stream, [event], deadline_seconds=ATTEMPT_SECONDS)

    return append_one


def rest_append(http: httpx.AsyncClient, stream: str) -> Callable[[EventData], Awaitable[None]]:
    async def append_one(event: EventData) -> None:
        body = {"events": [{"type": event.event_type, "data": event.data, "id": str(event.event_id)}]}
        try:
            response = await http.post(f"/api/event-streams/{stream}/events", json=body)
        except httpx.TransportError as error:
            raise RetryableHttpError(f"transport: {error!r}") from error
        if response.status_code in RETRYABLE_HTTP_STATUSES:
            raise RetryableHttpError(f"{response.status_code}: {response.text[:200]}")
        if response.status_code != 201:
            raise AssertionError(
                f"REST answered {response.status_code} {response.headers.get('content-type')}: {response.text[:300]}"
            )

    return append_one


@dataclasses.dataclass
class Feeder:
    """Keeps appending ``{"seq": n}`` events round-robin, retrying on anything: it is the load, not the
    subject. ``appended_at[n]`` is when event n was acknowledged (wall clock)."""

    dsn: str
    stream: str
    appended_at: dict[int, float] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)
    pause: float = 0.05

    async def run(self, stop: asyncio.Event, enqueue_to: str | None = None) -> None:
        store: EventStore | None = None
        sequence = 0
        event_id = uuid.uuid4()  # kept across retries of one event: a retry of an append that landed is a no-op
        try:
            while not stop.is_set():
                try:
                    if store is None:
                        store = await _connect(self.dsn)
                    event = EventData("Fed", {"seq": sequence}, event_id=event_id)
                    await asyncio.wait_for(store.append(self.stream, [event]), timeout=5)
                    if enqueue_to is not None:
                        await asyncio.wait_for(
                            store.enqueue(
                                enqueue_to, EventData("Job", {"seq": sequence}), dedupe_key=f"seq-{sequence}"
                            ),
                            timeout=5,
                        )
                except Exception as error:  # the feeder is not under test: reconnect and go on
                    self.errors.append(describe_error(error))
                    if store is not None:
                        await _close_quietly(store)
                        store = None
                    await asyncio.sleep(0.1)
                    continue
                self.appended_at[sequence] = time.time()
                sequence += 1
                event_id = uuid.uuid4()
                await asyncio.sleep(self.pause)
        finally:
            if store is not None:
                await _close_quietly(store)

    def first_after(self, moment: float) -> int | None:
        """The sequence number of the first event acknowledged at or after ``moment``."""
        later = [sequence for sequence, at in self.appended_at.items() if at >= moment]
        return min(later) if later else None


async def _connect(dsn: str) -> EventStore:
    import sluice  # noqa: PLC0415

    return await sluice.connect(dsn)


async def _close_quietly(store: EventStore) -> None:
    with contextlib.suppress(Exception):  # a broken store of the feeder
        await asyncio.wait_for(store.close(), timeout=5)


@dataclasses.dataclass(frozen=True)
class Processed:
    consumer: str
    partition: int
    offset: int
    seq: int
    at: float


def read_records(paths: list[Path]) -> list[Processed]:
    """What ``tests.faults.handlers:record`` wrote (a half-written last line is skipped)."""
    processed = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            processed.append(Processed(**fields))
    return processed


@dataclasses.dataclass
class CommitWatcher:
    """Samples every group's committed offsets over a plain connection and checks, each time, that every
    offset below a committed one was processed by the group (read after the offsets, so a commit that
    follows processing is never a false alarm), and that no committed offset moved backwards."""

    dsn: str
    processed: Callable[[str], list[Processed]]
    """A group's processed events so far."""
    violations: list[str] = dataclasses.field(default_factory=list)
    samples: int = 0
    _last: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await self.check_once()  # fails while the database is down: nothing to sample then
            await asyncio.sleep(0.3)

    async def check_once(self) -> None:
        connection = await asyncpg.connect(self.dsn, timeout=2)
        try:
            rows = await asyncio.wait_for(
                connection.fetch(
                    "SELECT g.name, p.partition, p.committed_offset FROM sluice.consumer_group_partitions p"
                    " JOIN sluice.consumer_groups g USING (group_key)"
                ),
                timeout=2,
            )
        finally:
            connection.terminate()
        done: dict[str, dict[int, set[int]]] = {}
        for row in rows:
            group, partition, committed = row["name"], row["partition"], row["committed_offset"]
            if group not in done:
                done[group] = defaultdict(set)
                for record in self.processed(group):
                    done[group][record.partition].add(record.offset)
            missing = [offset for offset in range(committed) if offset not in done[group][partition]]
            if missing:
                self.violations.append(
                    f"group {group} partition {partition}: committed {committed} but offsets {missing[:5]} "
                    "were not processed"
                )
            previous = self._last.get((group, partition), 0)
            if committed < previous:
                self.violations.append(
                    f"group {group} partition {partition}: committed went back {previous} -> {committed}"
                )
            self._last[(group, partition)] = committed
        self.samples += 1
