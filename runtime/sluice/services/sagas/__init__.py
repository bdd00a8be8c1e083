"""Sagas: long-running workflows of steps with compensations, driven by events (docs/sagas.md).

    from sluice.services.sagas import Saga, SagaStep, SagaTrigger, run_saga_worker

    saga = Saga("order-fulfilment", started_by=SagaTrigger(stream="orders", event_type="OrderPlaced"),
                steps=[SagaStep("reserve", action=reserve, compensation=release), ...])
    await run_saga_worker(store, saga)          # or: sluice sagas run --saga my_app.sagas:saga

Inspect instances with ``saga_repository(store).list()`` / ``.get(saga_id)``, ``sluice sagas list|show``
or ``GET /v1/sagas``.
"""

from sluice.services.sagas.definition import Reply, Saga, SagaStep, SagaTrigger, StepAction, StepExecution
from sluice.services.sagas.engine import SagaEngine
from sluice.services.sagas.loading import load_saga
from sluice.services.sagas.repositories import saga_repository
from sluice.services.sagas.worker import run_saga_worker
from sluice.store.contracts.sagas import SagaRepository
from sluice.store.values.sagas import (
    HistoryEntry,
    SagaInstance,
    SagaRecord,
    SagaStatus,
    StepAttempt,
    StepPhase,
    saga_id_for,
)

__all__ = [
    "HistoryEntry",
    "Reply",
    "Saga",
    "SagaEngine",
    "SagaInstance",
    "SagaRecord",
    "SagaRepository",
    "SagaStatus",
    "SagaStep",
    "SagaTrigger",
    "StepAction",
    "StepAttempt",
    "StepExecution",
    "StepPhase",
    "load_saga",
    "run_saga_worker",
    "saga_id_for",
    "saga_repository",
]
