"""A saga for the crash tests, run by ``sluice sagas run --saga tests.sagas.crash_saga:saga`` in a
subprocess. Each action and compensation logs every call in ``saga_crash_calls`` and applies its
side effect once per idempotency key in ``saga_crash_effects`` (both in the public schema).

``SAGA_CRASH_POINT=step:do|undo:before|after`` makes the process SIGKILL itself there, the first
time only (``SAGA_CRASH_MARKER`` names the file that remembers it happened). An order whose
``fail_step`` names a step makes that step's action fail (before any side effect).
"""

from __future__ import annotations

import os
import pathlib
import signal

from sluice.core.events import RecordedEvent
from sluice.services.sagas import Saga, SagaStep, SagaTrigger, StepAction, StepExecution
from sluice.storage.postgres.store import PostgresEventStore

CREATE_TABLES = """
CREATE TABLE public.saga_crash_calls (
    call_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL,
    kind text NOT NULL
);
CREATE TABLE public.saga_crash_effects (
    idempotency_key text NOT NULL,
    kind text NOT NULL,
    order_id text NOT NULL,
    step text NOT NULL,
    PRIMARY KEY (idempotency_key, kind)
)
"""


class StepFailedError(Exception):
    """The order asked this step to fail."""


def _maybe_crash(step: str, kind: str, moment: str) -> None:
    if os.environ.get("SAGA_CRASH_POINT") != f"{step}:{kind}:{moment}":
        return
    marker = pathlib.Path(os.environ["SAGA_CRASH_MARKER"])
    if marker.exists():
        return
    marker.write_text("crashed")
    os.kill(os.getpid(), signal.SIGKILL)


def _side_effect(step: str, kind: str) -> StepAction:
    async def apply(execution: StepExecution) -> None:
        store = execution.store
        assert isinstance(store, PostgresEventStore)
        key = execution.idempotency_key
        async with store.acquire() as connection:
            await connection.execute(
                "INSERT INTO public.saga_crash_calls (idempotency_key, kind) VALUES ($1, $2)", key, kind
            )
        _maybe_crash(step, kind, "before")
        if kind == "do" and execution.context.get("fail_step") == step:
            raise StepFailedError(f"order {execution.correlation_id} fails at {step}")
        async with store.acquire() as connection:
            # A compensation only undoes what happened: it tolerates a step that never did.
            await connection.execute(
                "INSERT INTO public.saga_crash_effects (idempotency_key, kind, order_id, step)"
                " SELECT $1, $2, $3, $4"
                " WHERE $2 = 'do' OR EXISTS (SELECT 1 FROM public.saga_crash_effects"
                "                            WHERE order_id = $3 AND step = $4 AND kind = 'do')"
                " ON CONFLICT DO NOTHING",
                key,
                kind,
                execution.correlation_id,
                step,
            )
        _maybe_crash(step, kind, "after")

    return apply


def _order_id(event: RecordedEvent) -> str | None:
    return str(event.data["order_id"])


STEPS = ("reserve", "charge", "ship")

saga = Saga(
    "crash-test",
    started_by=SagaTrigger(stream="crash-orders", event_type="OrderPlaced", correlation=_order_id),
    steps=[SagaStep(name, action=_side_effect(name, "do"), compensation=_side_effect(name, "undo")) for name in STEPS],
)
