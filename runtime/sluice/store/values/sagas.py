"""The persisted state of a saga instance: status, progress through the steps, context and history.

Pure data, shared by the engine, both repositories, the CLI and the REST API. An instance is
immutable; the engine builds the next one with ``dataclasses.replace`` and saves it conditionally on
``version`` (optimistic concurrency).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import datetime
from typing import Any

SAGA_ID_NAMESPACE = uuid.UUID("5f0c2a7e-8d1b-4c55-9a3e-2b7f61c0d9a4")


def saga_id_for(saga_name: str, correlation_id: str) -> uuid.UUID:
    """The id of the instance of ``saga_name`` for ``correlation_id``: the same on every worker, so
    starting a saga twice for one correlation id finds the first instance."""
    return uuid.uuid5(SAGA_ID_NAMESPACE, f"{saga_name}\x00{correlation_id}")


class SagaStatus(enum.StrEnum):
    """Where a saga instance is in its life."""

    RUNNING = "running"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    FAILED = "failed"
    """A compensation kept failing: the instance needs a person."""

    @property
    def finished(self) -> bool:
        return self in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED)


class StepPhase(enum.StrEnum):
    """Where the current step (or compensation) is."""

    PENDING = "pending"
    """Not started yet (the next save records it as started)."""
    EXECUTING = "executing"
    """Recorded as started: its action runs, or ran and the worker died before saving the result."""
    AWAITING_REPLY = "awaiting_reply"
    """Its action ran; the step completes or fails when a reply event (or its timeout) arrives."""
    COMPENSATING = "compensating"
    """Recorded as compensating the first entry of ``to_compensate``."""


class ReplyOutcome(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclasses.dataclass(frozen=True, slots=True)
class StepAttempt:
    """A step and the attempt it reached (the idempotency key of its action and compensation)."""

    step: str
    attempt: int


@dataclasses.dataclass(frozen=True, slots=True)
class StepReply:
    """The reply (or timeout) that decides a step awaiting one."""

    outcome: ReplyOutcome
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One thing that happened to an instance. ``kind`` is one of: saga_started, step_started,
    step_completed, step_failed, step_awaiting_reply, reply_received, timeout_fired,
    compensation_started, compensation_completed, compensation_failed, saga_completed,
    saga_compensated, saga_failed."""

    kind: str
    step: str | None = None
    attempt: int | None = None
    detail: str | None = None
    version: int | None = None
    """The version the instance reached with this entry (set when read back)."""
    recorded_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SagaInstance:
    """One saga's persisted state."""

    saga_id: uuid.UUID
    saga_name: str
    correlation_id: str
    status: SagaStatus
    current_step: str | None
    """The step running (or being compensated); None once finished."""
    phase: StepPhase
    attempt: int
    """The current step's attempt (or the compensation's attempt while compensating)."""
    completed_steps: tuple[StepAttempt, ...]
    to_compensate: tuple[StepAttempt, ...]
    """While compensating: the steps still to undo, in the order they will be undone."""
    reply: StepReply | None
    failure: str | None
    """Why the saga is compensating (or failed)."""
    context: dict[str, Any]
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def progress_document(self) -> dict[str, Any]:
        """The engine's bookkeeping, as stored in the ``progress`` JSON column."""
        return {
            "phase": self.phase.value,
            "attempt": self.attempt,
            "completed_steps": [[entry.step, entry.attempt] for entry in self.completed_steps],
            "to_compensate": [[entry.step, entry.attempt] for entry in self.to_compensate],
            "reply": None if self.reply is None else [self.reply.outcome.value, self.reply.detail],
            "failure": self.failure,
        }

    @classmethod
    def from_documents(
        cls,
        *,
        saga_id: uuid.UUID,
        saga_name: str,
        correlation_id: str,
        status: str,
        current_step: str | None,
        progress: dict[str, Any],
        context: dict[str, Any],
        version: int,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> SagaInstance:
        """Rebuild an instance from its stored columns (the inverse of ``progress_document``)."""
        reply = progress.get("reply")
        return cls(
            saga_id=saga_id,
            saga_name=saga_name,
            correlation_id=correlation_id,
            status=SagaStatus(status),
            current_step=current_step,
            phase=StepPhase(progress["phase"]),
            attempt=int(progress["attempt"]),
            completed_steps=tuple(StepAttempt(step, int(attempt)) for step, attempt in progress["completed_steps"]),
            to_compensate=tuple(StepAttempt(step, int(attempt)) for step, attempt in progress["to_compensate"]),
            reply=None if reply is None else StepReply(ReplyOutcome(reply[0]), str(reply[1])),
            failure=progress.get("failure"),
            context=context,
            version=version,
            created_at=created_at,
            updated_at=updated_at,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SagaRecord:
    """An instance with its whole history, as ``get`` returns it."""

    instance: SagaInstance
    history: tuple[HistoryEntry, ...]
