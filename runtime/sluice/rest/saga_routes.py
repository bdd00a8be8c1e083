"""Saga instances, read-only: ``GET /api/sagas`` (list, filtered by saga and status) and
``GET /api/sagas/{saga_id}`` (state and history). See docs/sagas.md.

Under an access policy, a saga named ``order-fulfilment`` is the resource ``saga.order-fulfilment``:
reading it needs ``read`` there; the list leaves out instances the caller may not read (checked by the
caller's authorized store: ``sluice.security.authorized_services.CallerSagas``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from sluice.rest.authentication import CallerStore
from sluice.rest.problems import problem_responses
from sluice.rest.schemas import NAME_PATTERN
from sluice.security.authorized_services import CallerSagas
from sluice.services.sagas.documents import history_document, instance_document
from sluice.store.values.sagas import SagaInstance, SagaStatus

router = APIRouter(prefix="/api/sagas", tags=["sagas"])

READ_ERRORS = problem_responses(400, 401, 403, 404, 422, 503)


class SagaSummary(BaseModel):
    """A saga instance's state."""

    saga_id: uuid.UUID
    saga_name: str
    correlation_id: str
    status: SagaStatus
    current_step: str | None = Field(description="The step running or being compensated; null once finished.")
    phase: str = Field(description="pending, executing, awaiting_reply or compensating.")
    attempt: int
    completed_steps: list[str]
    to_compensate: list[str] = Field(description="While compensating: the steps still to undo, in order.")
    failure: str | None
    context: dict[str, Any]
    version: int = Field(description="Increases with every saved move (optimistic concurrency).")
    created_at: datetime | None
    updated_at: datetime | None


class SagaHistoryEntry(BaseModel):
    """One thing that happened to an instance (step_started, step_completed, compensation_completed, ...)."""

    kind: str
    step: str | None
    attempt: int | None
    detail: str | None
    version: int | None
    recorded_at: datetime | None


class SagaDetail(SagaSummary):
    history: list[SagaHistoryEntry] = Field(description="Oldest first.")


class SagaList(BaseModel):
    sagas: list[SagaSummary] = Field(description="Newest first.")


def _summary(instance: SagaInstance) -> SagaSummary:
    return SagaSummary.model_validate(instance_document(instance))


@router.get("", summary="List saga instances, newest first", responses=READ_ERRORS)
async def list_sagas(
    store: CallerStore,
    saga: Annotated[
        str | None, Query(pattern=NAME_PATTERN, max_length=100, description="Only instances of this saga.")
    ] = None,
    status: Annotated[list[SagaStatus] | None, Query(description="Only these statuses (repeatable).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many instances.")] = 100,
) -> SagaList:
    instances = await CallerSagas(store).list(saga_name=saga, statuses=status or None, limit=limit)
    return SagaList(sagas=[_summary(instance) for instance in instances])


@router.get(
    "/{saga_id}",
    summary="One saga instance: its state and its history",
    responses=READ_ERRORS,
    response_model=SagaDetail,
)
async def get_saga(
    saga_id: Annotated[uuid.UUID, Path(description="The instance's id.")],
    store: CallerStore,
) -> SagaDetail:
    record = await CallerSagas(store).get(saga_id)
    return SagaDetail(
        **_summary(record.instance).model_dump(),
        history=[SagaHistoryEntry.model_validate(history_document(entry)) for entry in record.history],
    )
