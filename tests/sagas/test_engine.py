"""The saga engine on both backends: steps in order, compensation in reverse order (including the
failed step, which may never have happened), retries, replies, durable timeouts that fire once,
and the worker driving it all from a stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from sluice import EventData, EventStore, RecordedEvent
from sluice.services.sagas import (
    Reply,
    Saga,
    SagaEngine,
    SagaInstance,
    SagaRepository,
    SagaStatus,
    SagaStep,
    SagaTrigger,
    StepAction,
    StepExecution,
    StepPhase,
    run_saga_worker,
    saga_id_for,
)


class Recorder:
    """Records every action and compensation call: (kind, step, attempt)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.failures: dict[str, int] = {}
        """step -> how many more calls of it raise."""

    def action(self, step: str) -> StepAction:
        async def run(execution: StepExecution) -> None:
            self.calls.append(("do", execution.step, execution.attempt))
            execution.context.setdefault("done", []).append(step)
            if self.failures.get(step, 0) > 0:
                self.failures[step] -= 1
                raise RuntimeError(f"{step} broke")

        return run

    def compensation(self, step: str) -> StepAction:
        async def run(execution: StepExecution) -> None:
            assert execution.compensating
            self.calls.append(("undo", execution.step, execution.attempt))
            if self.failures.get("undo-" + step, 0) > 0:
                self.failures["undo-" + step] -= 1
                raise RuntimeError(f"undo {step} broke")

        return run


def order_id_of(event: RecordedEvent) -> str | None:
    return str(event.data["order_id"])


def make_saga(recorder: Recorder, *, reply: Reply | None = None, max_attempts: int = 1) -> Saga:
    return Saga(
        "fulfilment",
        started_by=SagaTrigger(stream="orders", event_type="OrderPlaced", correlation=order_id_of),
        steps=[
            SagaStep("reserve", action=recorder.action("reserve"), compensation=recorder.compensation("reserve")),
            SagaStep("notify", action=recorder.action("notify")),  # nothing to undo
            SagaStep(
                "charge",
                action=recorder.action("charge"),
                compensation=recorder.compensation("charge"),
                reply=reply,
                max_attempts=max_attempts,
            ),
            SagaStep("ship", action=recorder.action("ship"), compensation=recorder.compensation("ship")),
        ],
        max_compensation_attempts=2,
    )


async def place_order(store: EventStore, order_id: str) -> RecordedEvent:
    result = await store.append("orders", EventData("OrderPlaced", {"order_id": order_id}), correlation_id=order_id)
    events = [event async for event in store.read_stream("orders", from_offset=result.offsets[0], limit=1)]
    return events[0]


async def history_kinds(repository: SagaRepository, saga_id: uuid.UUID) -> list[tuple[str, str | None]]:
    record = await repository.get(saga_id)
    return [(entry.kind, entry.step) for entry in record.history]


async def test_a_saga_runs_its_steps_in_order_and_completes(store: EventStore, repository: SagaRepository) -> None:
    recorder = Recorder()
    engine = SagaEngine(make_saga(recorder), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    assert started.status is SagaStatus.RUNNING
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPLETED
    assert recorder.calls == [("do", "reserve", 1), ("do", "notify", 1), ("do", "charge", 1), ("do", "ship", 1)]
    assert finished.context == {"order_id": "o-1", "done": ["reserve", "notify", "charge", "ship"]}
    kinds = await history_kinds(repository, started.saga_id)
    assert kinds[0] == ("saga_started", None)
    assert kinds[1:3] == [("step_started", "reserve"), ("step_completed", "reserve")]
    assert kinds[-1] == ("saga_completed", None)


async def test_starting_twice_for_one_correlation_id_finds_the_first_instance(
    store: EventStore, repository: SagaRepository
) -> None:
    engine = SagaEngine(make_saga(Recorder()), store)
    first = await engine.start(await place_order(store, "o-1"))
    second = await engine.start(await place_order(store, "o-1"))
    assert first is not None
    assert second is not None
    assert first.saga_id == second.saga_id
    assert len(await repository.list()) == 1
    other = await engine.start(await place_order(store, "o-2"))
    assert other is not None
    assert other.saga_id == saga_id_for("fulfilment", "o-2")


async def test_a_malformed_trigger_event_starts_nothing_and_is_not_fatal(
    store: EventStore, repository: SagaRepository
) -> None:
    engine = SagaEngine(make_saga(Recorder()), store)
    await store.append("orders", EventData("OrderPlaced", {"no_order_id": 1}))
    await store.append("orders", EventData("OrderPlaced", {"order_id": "o-1", "unserialisable": 1}))
    events = [event async for event in store.read_stream("orders")]
    assert await engine.start(events[0]) is None  # the correlation function raises KeyError
    assert await repository.list() == []
    saga = make_saga(Recorder())
    trigger = SagaTrigger(
        stream="orders", event_type="OrderPlaced", correlation=order_id_of, initial_context=lambda _: {"x": object()}
    )
    bad_context = SagaEngine(Saga("fulfilment", started_by=trigger, steps=saga.steps), store)
    assert await bad_context.start(events[1]) is None
    assert await repository.list() == []
    assert await engine.start(events[1]) is not None


async def test_a_failed_step_compensates_completed_steps_in_reverse_order(
    store: EventStore, repository: SagaRepository
) -> None:
    recorder = Recorder()
    recorder.failures["charge"] = 1
    engine = SagaEngine(make_saga(recorder), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPENSATED
    # The failed step is compensated too (it may have partly happened: its compensation must cope
    # with a step that never happened); notify has no compensation; ship never ran.
    assert recorder.calls == [
        ("do", "reserve", 1),
        ("do", "notify", 1),
        ("do", "charge", 1),
        ("undo", "charge", 1),
        ("undo", "reserve", 1),
    ]
    assert finished.failure is not None
    assert "charge" in finished.failure
    assert "broke" in finished.failure
    # A failed step's context changes are discarded.
    assert finished.context["done"] == ["reserve", "notify"]
    kinds = await history_kinds(repository, started.saga_id)
    assert ("step_failed", "charge") in kinds
    assert kinds[-5:] == [
        ("compensation_started", "charge"),
        ("compensation_completed", "charge"),
        ("compensation_started", "reserve"),
        ("compensation_completed", "reserve"),
        ("saga_compensated", None),
    ]


async def test_a_step_is_retried_with_the_next_attempt_number(store: EventStore) -> None:
    recorder = Recorder()
    recorder.failures["charge"] = 1
    engine = SagaEngine(make_saga(recorder, max_attempts=2), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPLETED
    assert [call for call in recorder.calls if call[1] == "charge"] == [("do", "charge", 1), ("do", "charge", 2)]


async def test_a_compensation_that_fails_is_retried_then_the_saga_fails(
    store: EventStore, repository: SagaRepository
) -> None:
    recorder = Recorder()
    recorder.failures.update({"ship": 1, "undo-charge": 1, "undo-reserve": 5})
    engine = SagaEngine(make_saga(recorder), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.FAILED
    undo_calls = [call for call in recorder.calls if call[0] == "undo"]
    # ship failed: ship, then charge (fails once, retried), then reserve (fails twice: gives up).
    assert undo_calls == [
        ("undo", "ship", 1),
        ("undo", "charge", 1),
        ("undo", "charge", 1),
        ("undo", "reserve", 1),
        ("undo", "reserve", 1),
    ]
    assert finished.failure is not None
    assert "reserve" in finished.failure
    assert (await history_kinds(repository, started.saga_id))[-1] == ("saga_failed", None)


PAYMENTS = Reply(stream="payments", completes_on=("PaymentCharged",), fails_on=("PaymentDeclined",))


async def reply(store: EventStore, event_type: str, order_id: str) -> RecordedEvent:
    result = await store.append("payments", EventData(event_type, {"order_id": order_id}), correlation_id=order_id)
    events = [event async for event in store.read_stream("payments", from_offset=result.offsets[0], limit=1)]
    return events[0]


@pytest.mark.parametrize(("answer", "status"), [("PaymentCharged", "completed"), ("PaymentDeclined", "compensated")])
async def test_a_step_with_a_reply_waits_for_it(store: EventStore, answer: str, status: str) -> None:
    recorder = Recorder()
    engine = SagaEngine(make_saga(recorder, reply=PAYMENTS), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    waiting = await engine.advance(started.saga_id)
    assert waiting is not None
    assert waiting.status is SagaStatus.RUNNING
    assert waiting.current_step == "charge"
    assert not await engine.deliver_reply(await reply(store, answer, "someone-else"))
    assert await engine.deliver_reply(await reply(store, answer, "o-1"))
    assert not await engine.deliver_reply(await reply(store, answer, "o-1")), "a second reply is ignored"
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status.value == status


async def test_a_reply_delivered_again_wakes_a_worker_again(store: EventStore) -> None:
    """A worker that died between recording a reply and waking a worker is covered by the reply's
    redelivery (its offset was not committed): it is not recorded twice, but it wakes a worker."""
    saga = make_saga(Recorder(), reply=PAYMENTS)
    engine = SagaEngine(saga, store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    await engine.advance(started.saga_id)
    answer = await reply(store, "PaymentCharged", "o-1")
    assert await engine.deliver_reply(answer)
    while (message := await store.dequeue(saga.work_queue)) is not None:  # the wake-up is lost
        await store.acknowledge(saga.work_queue, message.receipt)
    assert not await engine.deliver_reply(answer)
    message = await store.dequeue(saga.work_queue)
    assert message is not None
    await engine.handle_message(message)
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPLETED


async def test_a_reply_that_arrives_while_the_action_still_runs_is_kept(store: EventStore) -> None:
    recorder = Recorder()
    engines: list[SagaEngine] = []

    async def charge_and_get_an_instant_reply(execution: StepExecution) -> None:
        recorder.calls.append(("do", execution.step, execution.attempt))
        assert await engines[0].deliver_reply(await reply(store, "PaymentCharged", execution.correlation_id))

    saga = make_saga(recorder, reply=PAYMENTS)
    steps = [
        SagaStep("charge", action=charge_and_get_an_instant_reply, reply=PAYMENTS) if step.name == "charge" else step
        for step in saga.steps
    ]
    engine = SagaEngine(Saga("fulfilment", started_by=saga.started_by, steps=steps), store)
    engines.append(engine)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPLETED
    assert recorder.calls.count(("do", "charge", 1)) == 1, "the action is not run again after the conflict"


async def test_a_timeout_fires_once_and_is_ignored_after_the_saga_moved_on(
    store: EventStore, repository: SagaRepository
) -> None:
    engine = SagaEngine(make_saga(Recorder(), reply=PAYMENTS), store)
    started = await engine.start(await place_order(store, "o-1"))
    assert started is not None
    await engine.advance(started.saga_id)
    assert not await engine.fire_timeout(started.saga_id, "charge", 2), "another attempt's timeout is ignored"
    assert await engine.fire_timeout(started.saga_id, "charge", 1)
    assert not await engine.fire_timeout(started.saga_id, "charge", 1), "a timeout fires once"
    assert not await engine.deliver_reply(await reply(store, "PaymentCharged", "o-1")), "too late"
    finished = await engine.advance(started.saga_id)
    assert finished is not None
    assert finished.status is SagaStatus.COMPENSATED
    assert not await engine.fire_timeout(started.saga_id, "charge", 1)
    kinds = await history_kinds(repository, started.saga_id)
    assert kinds.count(("timeout_fired", "charge")) == 1
    assert ("reply_received", "charge") not in kinds


@contextlib.asynccontextmanager
async def running_worker(store: EventStore, saga: Saga, *, concurrency: int = 1) -> AsyncIterator[None]:
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_saga_worker(
            store, saga, worker_id="worker-1", lease=timedelta(seconds=5), concurrency=concurrency, ready=ready
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(
    repository: SagaRepository, saga_id: uuid.UUID, done: Callable[[SagaInstance], bool], seconds: float = 20
) -> SagaInstance:
    async with asyncio.timeout(seconds):
        while True:
            instance = await repository.load(saga_id)
            if instance is not None and done(instance):
                return instance
            await asyncio.sleep(0.05)


async def wait_for_status(repository: SagaRepository, saga_id: uuid.UUID, seconds: float = 20) -> SagaStatus:
    """The status the instance finishes with."""
    instance = await wait_for(repository, saga_id, lambda instance: instance.status.finished, seconds)
    return instance.status


async def test_the_worker_times_a_step_out_through_a_delayed_message(
    store: EventStore, repository: SagaRepository
) -> None:
    recorder = Recorder()
    timed = Reply(stream="payments", completes_on=("PaymentCharged",), timeout=timedelta(milliseconds=300))
    saga = make_saga(recorder, reply=timed)
    async with running_worker(store, saga):
        await place_order(store, "late")
        await place_order(store, "on-time")
        late, on_time = saga_id_for("fulfilment", "late"), saga_id_for("fulfilment", "on-time")
        await wait_for(repository, on_time, lambda instance: instance.phase is StepPhase.AWAITING_REPLY)
        await reply(store, "PaymentCharged", "on-time")
        assert await wait_for_status(repository, late) is SagaStatus.COMPENSATED
        assert await wait_for_status(repository, on_time) is SagaStatus.COMPLETED
        await asyncio.sleep(0.6)  # the on-time saga's timeout message comes and is ignored
    late_kinds = await history_kinds(repository, late)
    assert late_kinds.count(("timeout_fired", "charge")) == 1
    on_time_kinds = await history_kinds(repository, on_time)
    assert ("timeout_fired", "charge") not in on_time_kinds
    assert on_time_kinds[-1] == ("saga_completed", None)
    depth = await store.queue_depth(saga.work_queue)
    assert depth.waiting + depth.in_flight == 0


async def test_the_worker_drives_many_sagas_from_a_stream(store: EventStore, repository: SagaRepository) -> None:
    recorder = Recorder()
    recorder.failures["ship"] = 1
    saga = make_saga(recorder)
    async with running_worker(store, saga, concurrency=3):
        for number in range(5):
            await place_order(store, f"o-{number}")
        statuses = [await wait_for_status(repository, saga_id_for("fulfilment", f"o-{number}")) for number in range(5)]
    assert sorted(statuses) == sorted([SagaStatus.COMPENSATED] + [SagaStatus.COMPLETED] * 4)
