"""A consumer-group member waits out every transient database error — in its heartbeat, its page reads
and its commits — for longer than its session, and resumes by itself; anything else stops it with that
error instead of leaving it running with a dead heartbeat. Both backends.

The errors are injected into the store's group operations at an exact time (the real database keeps
running, so the test can append meanwhile); tests/consumer_liveness/test_database_outage.py kills a
real PostgreSQL instead."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from sluice import ConsumerGroupOptions, EventData, EventStore, OffsetCommitStrategy
from sluice.core.errors import ConnectionLostError
from sluice.storage.postgres.driver_errors import translate
from tests.contract.group_helpers import fill, take

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=1), heartbeat_interval=timedelta(milliseconds=100), batch_size=5
)
"""Commits after each batch, in the background: the delivery loop goes on reading (and retrying reads)."""
AFTER_EACH = FAST.model_copy(update={"commit_strategy": OffsetCommitStrategy.AFTER_EACH})
OUTAGE_SECONDS = 2.0
"""Twice the session timeout."""


class Outage:
    """While ``active``, the store's heartbeats, page reads and commits raise ``make_error()`` (operations
    named ``part.method`` of ``store.backend``: its consumer-group storage and its stream log). A call that
    began before the outage and answers during it raises too: its answer is lost with the connection (a
    read already waiting for a pooled connection when the outage began would otherwise see the events
    appended during it)."""

    def __init__(
        self,
        store: EventStore,
        make_error: Callable[[], BaseException],
        operations: tuple[str, ...] = ("groups.heartbeat", "log.read_page", "groups.commit"),
    ) -> None:
        self.active = False
        self.failures: Counter[str] = Counter()
        for name in operations:
            part_name, method = name.split(".")
            part = getattr(store.backend, part_name)
            setattr(part, method, self._failing(name, getattr(part, method), make_error))

    def _failing(self, name: str, operation: Any, make_error: Callable[[], BaseException]) -> Any:
        async def call(*arguments: Any, **keywords: Any) -> Any:
            self._fail_if_active(name, make_error)
            answer = await operation(*arguments, **keywords)
            self._fail_if_active(name, make_error)
            return answer

        return call

    def _fail_if_active(self, name: str, make_error: Callable[[], BaseException]) -> None:
        if self.active:
            self.failures[name] += 1
            raise make_error()


def _outcome(task: asyncio.Task[Any]) -> str:
    """What a finished task delivered or raised, for an assertion's message."""
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return f"raised {error!r}" if error is not None else f"delivered {task.result()!r}"


def as_the_pool_raises(driver_error: Exception) -> BaseException:
    """The Sluice error the PostgreSQL backend's pool raises for ``driver_error`` (it translates them all)."""
    translated = translate(driver_error)
    assert translated is not None, f"the backend does not translate {driver_error!r}"
    return translated


TRANSIENT_ERRORS: dict[str, Callable[[], BaseException]] = {
    "starting-up": lambda: as_the_pool_raises(asyncpg.CannotConnectNowError("the database system is starting up")),
    "too-many-connections": lambda: as_the_pool_raises(asyncpg.TooManyConnectionsError("sorry, too many clients")),
    "internal-client-error": lambda: as_the_pool_raises(asyncpg.InternalClientError("internal client error")),
    "deadlock": lambda: as_the_pool_raises(asyncpg.DeadlockDetectedError("deadlock detected")),
    "connection-refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "connection-lost": lambda: ConnectionLostError("the connection to the database was lost"),
}


@pytest.mark.parametrize("make_error", TRANSIENT_ERRORS.values(), ids=TRANSIENT_ERRORS.keys())
async def test_a_lone_member_waits_out_an_outage_longer_than_its_session_and_resumes(
    store: EventStore, make_error: Callable[[], BaseException]
) -> None:
    await fill(store, "orders", 10, partitions=2)
    outage = Outage(store, make_error)
    consumption = store.consumer_groups().consume("orders", group_id="g", consumer_id="w", options=FAST)
    assert len(await take(consumption, 10)) == 10
    assert consumption.health.ready, consumption.health.reason

    outage.active = True
    taking = asyncio.create_task(take(consumption, 4, seconds=30))
    await store.append("orders", [EventData("E", {"n": n}) for n in range(10, 14)])
    await asyncio.sleep(OUTAGE_SECONDS)
    during = consumption.health
    assert not taking.done(), (
        f"nothing is delivered, and nothing is raised, while the database is away: {_outcome(taking)}"
    )
    outage.active = False

    resumed = await taking
    assert sorted(int(event.data["n"]) for event in resumed) == [10, 11, 12, 13]
    assert not during.ready
    assert "database unavailable" in during.reason
    assert outage.failures["groups.heartbeat"] >= 3, "the heartbeat kept retrying"
    assert outage.failures["log.read_page"] >= 2, "the reads kept retrying"

    async def heartbeats_go_on() -> bool:
        before = (await store.consumer_groups().describe("orders", "g")).members[0].last_heartbeat_at
        await asyncio.sleep(0.5)
        after = (await store.consumer_groups().describe("orders", "g")).members[0].last_heartbeat_at
        return after > before

    assert await heartbeats_go_on(), "the heartbeat survived the outage"
    assert consumption.health.ready, consumption.health.reason
    await consumption.aclose()
    described = await store.consumer_groups().describe("orders", "g")
    assert described.lag_events == 0, "everything processed was committed"


async def test_a_commit_that_fails_transiently_is_retried_until_it_lands(store: EventStore) -> None:
    await fill(store, "orders", 3)
    outage = Outage(store, lambda: ConnectionLostError("gone"))
    consumption = store.consumer_groups().consume("orders", group_id="g", consumer_id="w", options=AFTER_EACH)
    [first] = await take(consumption, 1)
    outage.active = True  # the commit of the first event (sent when the second is asked for) fails
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, setattr, outage, "active", False)
    rest = await take(consumption, 2, seconds=20)
    assert [event.offset for event in [first, *rest]] == [0, 1, 2]
    assert outage.failures["groups.commit"] >= 1
    await consumption.aclose()
    assert (await store.consumer_groups().describe("orders", "g")).partitions[0].committed_offset == 3


async def test_a_heartbeat_that_fails_for_good_ends_the_consumption_with_its_error(store: EventStore) -> None:
    await fill(store, "orders", 5)
    outage = Outage(store, lambda: RuntimeError("a bug in the heartbeat"), operations=("groups.heartbeat",))
    consumption = store.consumer_groups().consume("orders", group_id="g", consumer_id="w", options=FAST)
    await take(consumption, 2)
    outage.active = True
    with pytest.raises(RuntimeError, match="a bug in the heartbeat"):
        await take(consumption, 100, seconds=10)
    assert not consumption.health.ready
    assert "stopped" in consumption.health.reason
