"""Saga definitions are checked when they are built, and ``--saga`` specs when they are loaded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sluice.core.errors import HandlerSpecError, InvalidArgumentError, SagaDefinitionError
from sluice.services.sagas import Reply, Saga, SagaStep, SagaTrigger, StepExecution, load_saga, run_saga_worker
from tests.sagas import crash_saga

TRIGGER = SagaTrigger(stream="orders", event_type="OrderPlaced")


async def nothing(execution: StepExecution) -> None:
    del execution


@pytest.mark.parametrize(
    ("name", "steps", "message"),
    [
        ("orders", [], "no steps"),
        ("orders", [SagaStep("a", action=nothing), SagaStep("a", action=nothing)], "unique"),
        ("bad name!", [SagaStep("a", action=nothing)], "invalid stream name"),
        ("orders", [SagaStep("bad step!", action=nothing)], "invalid stream name"),
        ("orders", [SagaStep("a", action=nothing, max_attempts=0)], "max_attempts"),
        ("orders", [SagaStep("a", action=nothing, reply=Reply(stream="payments", completes_on=()))], "completes_on"),
        (
            "orders",
            [SagaStep("a", action=nothing, reply=Reply(stream="p", completes_on=("Ok",), timeout=timedelta(0)))],
            "timeout",
        ),
        ("x" * 101, [SagaStep("a", action=nothing)], "longer than"),
    ],
)
def test_malformed_definitions_are_refused(name: str, steps: list[SagaStep], message: str) -> None:
    with pytest.raises(SagaDefinitionError, match=message) as raised:
        Saga(name, started_by=TRIGGER, steps=steps)
    assert raised.value.code == "invalid_saga_definition"


def test_a_definition_knows_its_streams_queue_and_step_order() -> None:
    payments = Reply(stream="payments", completes_on=("Charged",))
    saga = Saga(
        "fulfilment",
        started_by=TRIGGER,
        steps=[
            SagaStep("reserve", action=nothing),
            SagaStep("charge", action=nothing, reply=payments),
            SagaStep("refund-check", action=nothing, reply=Reply(stream="orders", completes_on=("Ok",))),
        ],
    )
    assert saga.streams == ("orders", "payments")
    assert saga.work_queue == "saga.fulfilment.work"
    assert saga.group_id == "saga.fulfilment"
    assert saga.next_step("reserve") is saga.steps[1]
    assert saga.next_step("refund-check") is None
    with pytest.raises(SagaDefinitionError):
        saga.step("unknown")


def test_load_saga_imports_a_saga_and_refuses_anything_else() -> None:
    assert load_saga("tests.sagas.crash_saga:saga") is crash_saga.saga
    for spec, message in [
        ("no colon", "expected 'module:function'"),
        ("tests.sagas.no_such_module:saga", "cannot import"),
        ("tests.sagas.crash_saga:missing", "no attribute"),
        ("tests.sagas.crash_saga:STEPS", "not a Saga"),
    ]:
        with pytest.raises(HandlerSpecError, match=message):
            load_saga(spec)


async def test_the_worker_refuses_bad_settings() -> None:
    import sluice  # noqa: PLC0415

    async with await sluice.connect("memory://") as store:
        with pytest.raises(InvalidArgumentError, match="lease"):
            await run_saga_worker(store, crash_saga.saga, lease=timedelta(0))
        with pytest.raises(InvalidArgumentError, match="concurrency"):
            await run_saga_worker(store, crash_saga.saga, concurrency=0)
