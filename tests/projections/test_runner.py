"""The projection runner on both backends: handlers per event type in global log order, checkpoints that
survive a restart, several sources, start positions, and rebuilds with progress."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

import sluice
from sluice import EventData, EventStore, InvalidArgumentError, RecordedEvent, StreamConfig
from sluice.core.errors import ProjectionNotFoundError
from sluice.services.projections import (
    Projection,
    ProjectionContext,
    ProjectionOptions,
    ProjectionRunner,
    ProjectionStart,
    RebuildProgress,
    default_checkpoint_store,
    request_rebuild,
    sql_projection,
)


class OrderPlaced(BaseModel):
    order_id: str
    total_cents: int


def order_projection(applied: list[tuple[str, int]], *, sources: tuple[str, ...] = ("orders",)) -> Projection:
    projection = Projection("order-totals", sources=sources, options=ProjectionOptions(batch_size=3))

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        applied.append((event.data["order_id"], context.version))

    @projection.on("OrderCancelled")
    def cancelled(event: RecordedEvent, context: ProjectionContext) -> None:  # plain functions work too
        applied.append(("cancelled:" + event.data["order_id"], context.version))

    return projection


async def test_handlers_run_per_event_type_in_order_and_the_checkpoint_survives_a_restart(
    store: EventStore,
) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id=f"o-{n}", total_cents=n) for n in range(5)])
    await store.append("orders", [EventData("OrderCancelled", {"order_id": "o-1"}), EventData("Ignored", {})])
    checkpoints = default_checkpoint_store(store)
    applied: list[tuple[str, int]] = []
    runner = ProjectionRunner(order_projection(applied), store, checkpoints=checkpoints)
    state = await runner.run_until_caught_up()
    assert [order for order, _ in applied] == ["o-0", "o-1", "o-2", "o-3", "o-4", "cancelled:o-1"]
    assert state.active.events_applied == 7  # the skipped event moves the checkpoint too
    await store.append("orders", OrderPlaced(order_id="o-5", total_cents=5))
    restarted = ProjectionRunner(order_projection(applied), store, checkpoints=checkpoints)
    await restarted.run_until_caught_up()
    assert [order for order, _ in applied][6:] == ["o-5"]


async def test_several_sources_are_read_together_in_global_order_and_others_are_ignored(store: EventStore) -> None:
    for name in ("orders", "returns", "unrelated"):
        await store.create_stream(StreamConfig(name=name))
    await store.append("orders", OrderPlaced(order_id="a", total_cents=1))
    await store.append("unrelated", OrderPlaced(order_id="x", total_cents=1))
    await store.append("returns", OrderPlaced(order_id="b", total_cents=1))
    await store.append("orders", OrderPlaced(order_id="c", total_cents=1))
    applied: list[tuple[str, int]] = []
    runner = ProjectionRunner(order_projection(applied, sources=("orders", "returns")), store)
    await runner.run_until_caught_up()
    assert [order for order, _ in applied] == ["a", "b", "c"]


async def test_a_projection_starting_at_the_end_sees_only_new_events(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id="old", total_cents=1)])
    applied: list[str] = []
    projection = Projection("new-only", sources=["orders"], options=ProjectionOptions(start=ProjectionStart.END))

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        applied.append(event.data["order_id"])

    runner = ProjectionRunner(projection, store)
    await runner.run_until_caught_up()
    await store.append("orders", [OrderPlaced(order_id="new", total_cents=1)])
    await runner.run_until_caught_up()
    assert applied == ["new"]


async def test_run_follows_appends_live_until_stopped(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    applied: list[str] = []
    all_applied = asyncio.Event()
    projection = Projection("live", sources=["orders"])

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        applied.append(event.data["order_id"])
        if len(applied) == 4:
            all_applied.set()

    runner = ProjectionRunner(projection, store)
    task = asyncio.create_task(runner.run())
    for n in range(4):
        await store.append("orders", OrderPlaced(order_id=f"live-{n}", total_cents=n))
    await asyncio.wait_for(all_applied.wait(), 10)
    runner.stop()
    await asyncio.wait_for(task, 5)
    assert applied == [f"live-{n}" for n in range(4)]


async def test_an_in_place_rebuild_clears_through_the_reset_hook_and_replays_with_progress(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id=f"o-{n}", total_cents=n) for n in range(7)])
    read_model: dict[str, int] = {}
    projection = Projection("totals", sources=["orders"], options=ProjectionOptions(batch_size=3))

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        read_model[event.data["order_id"]] = event.data["total_cents"]

    @projection.on_reset
    async def reset(context: ProjectionContext) -> None:
        read_model.clear()

    progress: list[RebuildProgress] = []
    runner = ProjectionRunner(projection, store, on_progress=progress.append)
    await runner.run_until_caught_up()
    live = dict(read_model)
    read_model["stale"] = 99  # something the rebuild must clear
    state = await runner.rebuild()
    assert state.rebuild is not None
    assert state.rebuild.running
    assert state.rebuild.total == 7
    assert "stale" not in read_model
    state = await runner.run_until_caught_up()
    assert read_model == live
    assert state.rebuild is not None
    assert not state.rebuild.running
    assert state.rebuild.done == 7
    assert [entry.done for entry in progress] == [0, 3, 6, 7, 7]
    assert progress[-1].percent == 100
    assert progress[1].percent == 42


async def test_blue_green_rebuild_keeps_the_old_version_live_and_switches_when_caught_up(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id=f"o-{n}", total_cents=n) for n in range(5)])
    versions: dict[int, dict[str, int]] = {}
    active: list[int] = []
    projection = Projection("totals", sources=["orders"], options=ProjectionOptions(batch_size=2))

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        versions.setdefault(context.version, {})[event.data["order_id"]] = event.data["total_cents"]

    @projection.on_prepare_version
    async def prepare(context: ProjectionContext) -> None:
        versions[context.version] = {}

    @projection.on_activate_version
    async def activate(context: ProjectionContext) -> None:
        active.append(context.version)

    @projection.on_retire_version
    async def retire(context: ProjectionContext) -> None:
        del versions[context.version]

    runner = ProjectionRunner(projection, store)
    await runner.run_until_caught_up()
    state = await runner.rebuild()
    assert state.active_version == 1
    assert state.building_version == 2
    assert versions[2] == {}
    await runner.step()  # one batch to each version: the new one is not active yet
    await store.append("orders", OrderPlaced(order_id="during", total_cents=42))
    state = await runner.run_until_caught_up()
    assert active == [2]
    assert state.active_version == 2
    assert state.building_version is None
    assert list(versions) == [2]  # version 1 retired after the switch
    assert versions[2] == {**{f"o-{n}": n for n in range(5)}, "during": 42}
    assert list(state.checkpoints) == [2]


async def test_a_raised_reset_generation_rebuilds_once(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id="o", total_cents=1)])
    checkpoints = default_checkpoint_store(store)
    applied: list[tuple[str, int]] = []
    first = ProjectionRunner(order_projection(applied), store, checkpoints=checkpoints)
    await first.start(reset_generation=3)  # a new projection records the generation, nothing to rebuild
    await first.run_until_caught_up()
    again = ProjectionRunner(order_projection(applied), store, checkpoints=checkpoints)
    state = await again.start(reset_generation=3)
    assert state.rebuild is None
    state = await again.start(reset_generation=4)
    assert state.rebuild is not None
    assert state.reset_generation == 4
    await again.run_until_caught_up()
    assert [order for order, _ in applied] == ["o", "o"]


async def test_bad_options_and_registrations_raise_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError):
        ProjectionOptions(batch_size=0)
    with pytest.raises(InvalidArgumentError):
        Projection("bad name!", sources=["orders"])
    with pytest.raises(InvalidArgumentError):
        Projection("p", sources=[])
    with pytest.raises(InvalidArgumentError):
        Projection("p", sources="orders")
    projection = Projection("p", sources=["orders"])
    projection.on("A")(lambda event, context: None)
    with pytest.raises(InvalidArgumentError):
        projection.on("A")(lambda event, context: None)


async def test_a_sql_target_needs_same_database_mode() -> None:
    target = {"table": "t", "keyColumns": ["k"], "upserts": [{"eventType": "A", "columns": {"k": "$.k"}}]}
    async with await sluice.connect("memory://") as memory:
        runner = ProjectionRunner(sql_projection("p", sources=["s"], target=target), memory)
        with pytest.raises(InvalidArgumentError, match="same-database mode"):
            await runner.start()


async def test_a_requested_rebuild_is_picked_up_by_the_running_projection(store: EventStore) -> None:
    await store.create_stream(StreamConfig(name="orders"))
    await store.append("orders", [OrderPlaced(order_id=f"o-{n}", total_cents=n) for n in range(4)])
    checkpoints = default_checkpoint_store(store)
    applied: list[str] = []
    replayed = asyncio.Event()
    projection = Projection("requested", sources=["orders"])

    @projection.on(OrderPlaced)
    async def placed(event: RecordedEvent, context: ProjectionContext) -> None:
        applied.append(event.data["order_id"])
        if len(applied) == 9:  # four, the reset, four again
            replayed.set()

    @projection.on_reset
    async def reset(context: ProjectionContext) -> None:
        applied.append("reset")

    with pytest.raises(ProjectionNotFoundError):
        await request_rebuild(store, "requested", checkpoints=checkpoints)
    runner = ProjectionRunner(projection, store, checkpoints=checkpoints)
    await runner.run_until_caught_up()
    task = asyncio.create_task(runner.run())
    try:
        await request_rebuild(store, "requested", checkpoints=checkpoints)
        await asyncio.wait_for(replayed.wait(), 10)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 5)
    assert applied[4:] == ["reset", "o-0", "o-1", "o-2", "o-3"]
    state = await checkpoints.load("requested")
    assert state is not None
    assert not state.rebuild_requested
    assert state.rebuild is not None
