"""The persisted state of a saga instance (status, steps, context, history): the values live in the store layer
(``sluice.store.values.sagas``), since the storage port names them; this module keeps the import path the doors,
the operator and users' code use.
"""

from sluice.store.values.sagas import (
    SAGA_ID_NAMESPACE,
    HistoryEntry,
    ReplyOutcome,
    SagaInstance,
    SagaRecord,
    SagaStatus,
    StepAttempt,
    StepPhase,
    StepReply,
    saga_id_for,
)

__all__ = [
    "SAGA_ID_NAMESPACE",
    "HistoryEntry",
    "ReplyOutcome",
    "SagaInstance",
    "SagaRecord",
    "SagaStatus",
    "StepAttempt",
    "StepPhase",
    "StepReply",
    "saga_id_for",
]
