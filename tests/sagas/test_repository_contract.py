"""Contract of the saga repository, on both backends: create once per correlation id, save with
optimistic concurrency (a stale writer changes nothing), history in order, list and get."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from sluice import EventStore
from sluice.core.errors import InvalidArgumentError, SagaConflictError, SagaNotFoundError
from sluice.services.sagas import HistoryEntry, SagaInstance, SagaRepository, SagaStatus, saga_id_for, saga_repository
from sluice.store.values.sagas import ReplyOutcome, StepAttempt, StepPhase, StepReply


def _instance(correlation_id: str = "order-1", saga_name: str = "orders") -> SagaInstance:
    return SagaInstance(
        saga_id=saga_id_for(saga_name, correlation_id),
        saga_name=saga_name,
        correlation_id=correlation_id,
        status=SagaStatus.RUNNING,
        current_step="reserve",
        phase=StepPhase.PENDING,
        attempt=1,
        completed_steps=(),
        to_compensate=(),
        reply=None,
        failure=None,
        context={"order_id": correlation_id, "items": [1, 2]},
        version=1,
    )


async def test_create_then_load_returns_what_was_stored(repository: SagaRepository) -> None:
    instance = _instance()
    assert await repository.create(instance, [HistoryEntry("saga_started", detail="hello")])
    loaded = await repository.load(instance.saga_id)
    assert loaded is not None
    assert dataclasses.replace(loaded, created_at=None, updated_at=None) == instance
    assert loaded.created_at is not None


async def test_create_is_refused_for_an_existing_correlation_id(repository: SagaRepository) -> None:
    instance = _instance()
    assert await repository.create(instance, [HistoryEntry("saga_started")])
    again = dataclasses.replace(instance, context={"other": True})
    assert not await repository.create(again, [HistoryEntry("saga_started")])
    loaded = await repository.load(instance.saga_id)
    assert loaded is not None
    assert loaded.context == instance.context
    record = await repository.get(instance.saga_id)
    assert [entry.kind for entry in record.history] == ["saga_started"]


async def test_save_moves_the_version_and_appends_history(repository: SagaRepository) -> None:
    instance = _instance()
    await repository.create(instance, [HistoryEntry("saga_started")])
    moved = dataclasses.replace(
        instance,
        phase=StepPhase.AWAITING_REPLY,
        completed_steps=(StepAttempt("validate", 2),),
        reply=StepReply(ReplyOutcome.TIMED_OUT, "no reply"),
        context={"order_id": "order-1", "reserved": True},
    )
    saved = await repository.save(moved, [HistoryEntry("step_started", step="reserve", attempt=1), HistoryEntry("x")])
    assert saved.version == 2
    record = await repository.get(instance.saga_id)
    assert record.instance.version == 2
    assert record.instance.reply == StepReply(ReplyOutcome.TIMED_OUT, "no reply")
    assert record.instance.completed_steps == (StepAttempt("validate", 2),)
    assert record.instance.context == {"order_id": "order-1", "reserved": True}
    assert [(entry.kind, entry.step, entry.attempt, entry.version) for entry in record.history] == [
        ("saga_started", None, None, 1),
        ("step_started", "reserve", 1, 2),
        ("x", None, None, 2),
    ]


async def test_a_stale_writer_gets_a_conflict_and_changes_nothing(repository: SagaRepository) -> None:
    instance = _instance()
    await repository.create(instance, [HistoryEntry("saga_started")])
    await repository.save(dataclasses.replace(instance, context={"winner": 1}), [HistoryEntry("first")])
    with pytest.raises(SagaConflictError) as raised:
        await repository.save(dataclasses.replace(instance, context={"loser": 1}), [HistoryEntry("second")])
    assert raised.value.code == "saga_conflict"
    record = await repository.get(instance.saga_id)
    assert record.instance.context == {"winner": 1}
    assert [entry.kind for entry in record.history] == ["saga_started", "first"]


async def test_concurrent_writers_of_one_version_exactly_one_wins(repository: SagaRepository) -> None:
    instance = _instance()
    await repository.create(instance, [HistoryEntry("saga_started")])
    results = await asyncio.gather(
        *(
            repository.save(dataclasses.replace(instance, context={"writer": number}), [HistoryEntry(f"w{number}")])
            for number in range(8)
        ),
        return_exceptions=True,
    )
    winners = [result for result in results if isinstance(result, SagaInstance)]
    assert len(winners) == 1
    assert all(isinstance(result, SagaConflictError) for result in results if result not in winners)
    record = await repository.get(instance.saga_id)
    assert record.instance.version == 2
    assert len(record.history) == 2


async def test_unknown_instances(repository: SagaRepository) -> None:
    missing = uuid.uuid4()
    assert await repository.load(missing) is None
    with pytest.raises(SagaNotFoundError):
        await repository.get(missing)
    with pytest.raises(SagaNotFoundError):
        await repository.save(dataclasses.replace(_instance(), saga_id=missing), [])


async def test_a_context_that_is_not_json_is_refused_and_nothing_is_stored(repository: SagaRepository) -> None:
    instance = dataclasses.replace(_instance(), context={"when": object()})
    with pytest.raises(InvalidArgumentError):
        await repository.create(instance, [HistoryEntry("saga_started")])
    assert await repository.load(instance.saga_id) is None
    good = _instance()
    await repository.create(good, [])
    with pytest.raises(InvalidArgumentError):
        await repository.save(dataclasses.replace(good, context={"nan": float("nan")}), [])
    loaded = await repository.load(good.saga_id)
    assert loaded is not None
    assert loaded.version == 1


async def test_list_filters_by_name_and_status_newest_first(repository: SagaRepository) -> None:
    first = _instance("a")
    await repository.create(first, [])
    await asyncio.sleep(0.01)
    second = _instance("b")
    await repository.create(second, [])
    await asyncio.sleep(0.01)
    other = _instance("c", saga_name="refunds")
    await repository.create(other, [])
    await repository.save(dataclasses.replace(first, status=SagaStatus.COMPLETED, current_step=None), [])

    assert [instance.correlation_id for instance in await repository.list()] == ["c", "b", "a"]
    assert [instance.correlation_id for instance in await repository.list(saga_name="orders")] == ["b", "a"]
    running = await repository.list(saga_name="orders", statuses=[SagaStatus.RUNNING])
    assert [instance.correlation_id for instance in running] == ["b"]
    assert [instance.correlation_id for instance in await repository.list(limit=1)] == ["c"]
    with pytest.raises(InvalidArgumentError):
        await repository.list(limit=0)
    with pytest.raises(InvalidArgumentError):
        await repository.list(statuses=[])


async def test_saga_repository_is_shared_per_store(store: EventStore) -> None:
    repository = saga_repository(store)
    await repository.create(_instance(), [])
    assert await saga_repository(store).load(_instance().saga_id) is not None
