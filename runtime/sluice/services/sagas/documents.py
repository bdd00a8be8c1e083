"""Saga instances and history as plain JSON-ready dictionaries, for the CLI and the REST API."""

from __future__ import annotations

import uuid
from typing import Any

from sluice.core.errors import InvalidArgumentError
from sluice.store.values.sagas import HistoryEntry, SagaInstance, SagaRecord, saga_id_for


def instance_document(instance: SagaInstance) -> dict[str, Any]:
    """An instance's state: identity, status, where it is, its context and version."""
    return {
        "saga_id": str(instance.saga_id),
        "saga_name": instance.saga_name,
        "correlation_id": instance.correlation_id,
        "status": instance.status.value,
        "current_step": instance.current_step,
        "phase": instance.phase.value,
        "attempt": instance.attempt,
        "completed_steps": [entry.step for entry in instance.completed_steps],
        "to_compensate": [entry.step for entry in instance.to_compensate],
        "failure": instance.failure,
        "context": instance.context,
        "version": instance.version,
        "created_at": instance.created_at,
        "updated_at": instance.updated_at,
    }


def history_document(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "step": entry.step,
        "attempt": entry.attempt,
        "detail": entry.detail,
        "version": entry.version,
        "recorded_at": entry.recorded_at,
    }


def record_document(record: SagaRecord) -> dict[str, Any]:
    """An instance's state and its whole history, oldest entry first."""
    return {**instance_document(record.instance), "history": [history_document(entry) for entry in record.history]}


def parse_saga_id(text: str, saga_name: str | None = None) -> uuid.UUID:
    """A saga id from its UUID text or, with ``saga_name``, from a correlation id."""
    if saga_name is not None:
        return saga_id_for(saga_name, text)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgumentError(
            f"{text!r} is not a saga id (a UUID); to look a saga up by correlation id, name the saga too"
        ) from None
