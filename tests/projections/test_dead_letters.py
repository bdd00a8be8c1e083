"""Dead letters of any projection, on both backends: a handler that cannot apply an event says so with
``context.dead_letter``; the event is recorded with the reason for the version it failed in, counted in
status and metrics, and the projection goes on. A rebuild records its own and drops the old version's."""

from __future__ import annotations

from prometheus_client import REGISTRY

from sluice import EventData, EventStore, RecordedEvent, StreamConfig
from sluice.services.projections import (
    Projection,
    ProjectionContext,
    ProjectionOptions,
    ProjectionRunner,
    default_checkpoint_store,
    projection_dead_letters,
    projection_status,
)


def picky_projection(applied: list[int]) -> Projection:
    projection = Projection("picky", sources=["numbers"], options=ProjectionOptions(batch_size=3))

    @projection.on("Number")
    def number(event: RecordedEvent, context: ProjectionContext) -> None:
        value = event.data["n"]
        if value % 2:
            context.dead_letter(event, f"{value} is odd")
            context.dead_letter(event, "and I said so twice")  # one letter, both reasons
        else:
            applied.append(value)

    return projection


async def test_a_dead_lettered_event_is_recorded_counted_and_passed(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="numbers"))
    await store.append("numbers", [EventData("Number", {"n": n}) for n in range(7)])
    checkpoints = default_checkpoint_store(store)
    applied: list[int] = []
    before = REGISTRY.get_sample_value("sluice_projection_events_dead_lettered_total", {"projection": "picky"}) or 0
    runner = ProjectionRunner(picky_projection(applied), store, checkpoints=checkpoints)
    state = await runner.run_until_caught_up()

    assert applied == [0, 2, 4, 6]
    assert (state.active.events_applied, state.active.events_dead_lettered) == (7, 3)
    status = await projection_status(store, "picky", checkpoints=checkpoints)
    assert (status.dead_letters, status.lag_events) == (3, 0)
    after = REGISTRY.get_sample_value("sluice_projection_events_dead_lettered_total", {"projection": "picky"})
    assert after == before + 3
    letters = await projection_dead_letters(store, "picky", checkpoints=checkpoints)
    assert [(letter.offset, letter.reason, letter.version) for letter in letters] == [
        (1, "1 is odd; and I said so twice", 1),
        (3, "3 is odd; and I said so twice", 1),
        (5, "5 is odd; and I said so twice", 1),
    ]
    assert all(letter.dead_lettered_at is not None and letter.stream_name == "numbers" for letter in letters)
    assert len(await projection_dead_letters(store, "picky", limit=2, checkpoints=checkpoints)) == 2

    await runner.rebuild(blue_green=False)  # in place: the version's letters start again
    state = await runner.run_until_caught_up()
    assert state.active.events_dead_lettered == 3
    assert len(await projection_dead_letters(store, "picky", checkpoints=checkpoints)) == 3
