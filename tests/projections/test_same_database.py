"""Same-database mode on PostgreSQL: a batch's read-model writes and its checkpoint commit together, so a
projection that crashes between its handler and its checkpoint never applies an event twice. The crash
is real: the handler raises, or the server terminates the connection after the handler's writes and
before COMMIT. The same crash with checkpoints kept elsewhere (memory) does apply events twice, which
is what at-least-once means and what these tests would catch."""

from __future__ import annotations

import asyncpg
import pytest

from sluice import ConnectionLostError, EventData, RecordedEvent, StreamConfig
from sluice.core.errors import ProjectionConflictError, ProjectionDatabaseError, ProjectionHandlerError
from sluice.services.projections import (
    CheckpointStore,
    MemoryCheckpointStore,
    Projection,
    ProjectionContext,
    ProjectionOptions,
    ProjectionRunner,
)
from sluice.storage.postgres.projection_checkpoints import PostgresCheckpointStore
from sluice.storage.postgres.store import PostgresEventStore

pytestmark = pytest.mark.postgres

EVENTS = 25
CREATE_READ_MODEL = "CREATE TABLE public.applied (event_id uuid NOT NULL, n integer NOT NULL)"
COUNT_PER_EVENT = "SELECT n, count(*) FROM public.applied GROUP BY n ORDER BY n"


class SimulatedCrashError(Exception):
    """The simulated crash of a handler."""


def counting_projection(crash: object) -> Projection:
    """Inserts one row per event (deliberately not idempotent) and runs ``crash`` after the writes of event 12."""
    projection = Projection("applied", sources=["numbers"], options=ProjectionOptions(batch_size=5))

    @projection.on("Number")
    async def apply(event: RecordedEvent, context: ProjectionContext) -> None:
        connection = context.require_connection()
        await connection.execute(
            "INSERT INTO public.applied (event_id, n) VALUES ($1, $2)", event.event_id, event.data["n"]
        )
        if event.data["n"] == 12 and callable(crash):
            await crash(connection)

    return projection


async def prepare(store: PostgresEventStore) -> None:
    await store.create_stream(StreamConfig(name="numbers"))
    await store.append("numbers", [EventData("Number", {"n": n}) for n in range(EVENTS)])
    async with store.acquire() as connection:
        await connection.execute(CREATE_READ_MODEL)


async def applied_counts(store: PostgresEventStore) -> dict[int, int]:
    async with store.acquire() as connection:
        return {row["n"]: row["count"] for row in await connection.fetch(COUNT_PER_EVENT)}


async def crash_then_restart(
    store: PostgresEventStore, checkpoints: CheckpointStore, crash: object, expected: type[Exception]
) -> None:
    crashing = ProjectionRunner(counting_projection(crash), store, checkpoints=checkpoints)
    with pytest.raises(expected):
        await crashing.run_until_caught_up()
    restarted = ProjectionRunner(counting_projection(None), store, checkpoints=checkpoints)
    await restarted.run_until_caught_up()


async def raise_in_handler(connection: object) -> None:
    raise SimulatedCrashError("the process dies after the handler's writes")


async def test_a_handler_that_raises_after_its_writes_never_applies_an_event_twice(
    postgres_store: PostgresEventStore,
) -> None:
    await prepare(postgres_store)
    await crash_then_restart(
        postgres_store, PostgresCheckpointStore(postgres_store), raise_in_handler, ProjectionHandlerError
    )
    assert await applied_counts(postgres_store) == dict.fromkeys(range(EVENTS), 1)


async def test_a_connection_killed_before_commit_never_applies_an_event_twice(
    postgres_store: PostgresEventStore, postgres_dsn: str
) -> None:
    await prepare(postgres_store)
    killed: list[int] = []

    async def terminate_own_backend(connection: asyncpg.Connection) -> None:
        # From another session, as an operator or the OOM killer would: the writes are done, COMMIT is not.
        process_id = connection.get_server_pid()
        admin = await asyncpg.connect(postgres_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", process_id)
        finally:
            await admin.close()
        killed.append(process_id)

    await crash_then_restart(
        postgres_store, PostgresCheckpointStore(postgres_store), terminate_own_backend, ConnectionLostError
    )
    assert killed
    assert await applied_counts(postgres_store) == dict.fromkeys(range(EVENTS), 1)


async def test_with_checkpoints_outside_the_database_the_same_crash_redelivers_the_batch(
    postgres_store: PostgresEventStore,
) -> None:
    """At least once: the batch in hand (events 10-14) is delivered again, with the same event ids."""
    await prepare(postgres_store)

    async def raise_outside_transaction(connection: object) -> None:
        raise SimulatedCrashError("after the handler's (already committed) writes")

    # Without same-database mode the handler has no transaction: it writes through its own connection.
    projection_writes: list[tuple[int, object]] = []
    projection = Projection("applied", sources=["numbers"], options=ProjectionOptions(batch_size=5))

    @projection.on("Number")
    async def apply(event: RecordedEvent, context: ProjectionContext) -> None:
        assert context.connection is None
        projection_writes.append((event.data["n"], event.event_id))
        if event.data["n"] == 12 and len(projection_writes) == 13:
            await raise_outside_transaction(None)

    checkpoints = MemoryCheckpointStore()
    with pytest.raises(ProjectionHandlerError) as raised:
        await ProjectionRunner(projection, postgres_store, checkpoints=checkpoints).run_until_caught_up()
    assert isinstance(raised.value.__cause__, SimulatedCrashError)
    await ProjectionRunner(projection, postgres_store, checkpoints=checkpoints).run_until_caught_up()
    numbers = [n for n, _ in projection_writes]
    assert numbers == [*range(13), *range(10, EVENTS)]
    delivered_ids = {n: [event_id for m, event_id in projection_writes if m == n] for n in (10, 11, 12)}
    assert all(len(ids) == 2 and ids[0] == ids[1] for ids in delivered_ids.values())


async def test_a_second_runner_of_the_same_projection_is_refused_without_applying_anything(
    postgres_store: PostgresEventStore,
) -> None:
    await prepare(postgres_store)
    first = ProjectionRunner(counting_projection(None), postgres_store)
    second = ProjectionRunner(counting_projection(None), postgres_store)
    await first.start()
    await second.start()
    await first.step()
    with pytest.raises(ProjectionConflictError):
        await second.step()  # it read after the start, which is no longer the checkpoint
    await first.run_until_caught_up()
    assert await applied_counts(postgres_store) == dict.fromkeys(range(EVENTS), 1)


CRASH_AT_COMMIT = """
CREATE SEQUENCE public.crashes;
CREATE FUNCTION public.crash_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A sequence is not transactional: only the first commit of this checkpoint crashes, not the retry.
    IF nextval('public.crashes') = 1 THEN
        IF TG_ARGV[0] = 'terminate' THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);  -- the termination lands here, before the commit completes
        ELSE
            RAISE EXCEPTION 'crash at commit';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER crash_at_commit AFTER UPDATE ON sluice.projection_checkpoints
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.events_applied = 15)
    EXECUTE FUNCTION public.crash_at_commit('{how}');
"""


@pytest.mark.parametrize("how", ["terminate", "raise"])
async def test_a_crash_at_commit_after_every_handler_and_the_checkpoint_never_applies_an_event_twice(
    postgres_store: PostgresEventStore, how: str
) -> None:
    """The latest possible crash: the handlers of the third batch have written, the checkpoint row is
    updated, and COMMIT fails (a deferred trigger on the checkpoint row terminates the session or raises).
    A projection that committed its writes and its checkpoint separately would apply events 10-14 twice."""
    await prepare(postgres_store)
    async with postgres_store.acquire() as connection:
        await connection.execute(CRASH_AT_COMMIT.format(how=how))
    expected = ConnectionLostError if how == "terminate" else ProjectionDatabaseError
    await crash_then_restart(postgres_store, PostgresCheckpointStore(postgres_store), None, expected)
    assert await applied_counts(postgres_store) == dict.fromkeys(range(EVENTS), 1)
    async with postgres_store.acquire() as connection:
        assert await connection.fetchval("SELECT last_value FROM public.crashes") == 2  # it did crash once
