"""Saga instances in memory, for ``memory://`` stores and tests.

Each method runs without awaiting, so it is atomic on its event loop (as a statement is on
PostgreSQL). The context is stored as JSON text, so callers never share mutable objects with it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sluice.core.errors import SagaConflictError, SagaNotFoundError
from sluice.store.contracts.sagas import SagaRepository, check_list_arguments, check_new_instance, context_json
from sluice.store.values.sagas import HistoryEntry, SagaInstance, SagaRecord, SagaStatus


@dataclasses.dataclass(slots=True)
class _Stored:
    instance: SagaInstance
    context_text: str
    history: list[HistoryEntry]


class MemorySagaRepository(SagaRepository):
    """The in-memory saga repository."""

    def __init__(self) -> None:
        self._instances: dict[uuid.UUID, _Stored] = {}
        self._correlations: set[tuple[str, str]] = set()

    async def create(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> bool:
        check_new_instance(instance)
        text = context_json(instance.context)
        key = (instance.saga_name, instance.correlation_id)
        if instance.saga_id in self._instances or key in self._correlations:
            return False
        now = datetime.now(UTC)
        stored = dataclasses.replace(instance, created_at=now, updated_at=now)
        self._instances[instance.saga_id] = _Stored(stored, text, _stamped(history, 1, now))
        self._correlations.add(key)
        return True

    async def save(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> SagaInstance:
        text = context_json(instance.context)
        stored = self._instances.get(instance.saga_id)
        if stored is None:
            raise SagaNotFoundError(instance.saga_id)
        if stored.instance.version != instance.version:
            raise SagaConflictError(instance.saga_id, instance.version)
        now = datetime.now(UTC)
        saved = dataclasses.replace(
            instance, version=instance.version + 1, created_at=stored.instance.created_at, updated_at=now
        )
        stored.instance = saved
        stored.context_text = text
        stored.history.extend(_stamped(history, saved.version, now))
        return _copy(saved, text)

    async def load(self, saga_id: uuid.UUID) -> SagaInstance | None:
        stored = self._instances.get(saga_id)
        return None if stored is None else _copy(stored.instance, stored.context_text)

    async def get(self, saga_id: uuid.UUID) -> SagaRecord:
        stored = self._instances.get(saga_id)
        if stored is None:
            raise SagaNotFoundError(saga_id)
        return SagaRecord(_copy(stored.instance, stored.context_text), tuple(stored.history))

    async def list(
        self,
        *,
        saga_name: str | None = None,
        statuses: Sequence[SagaStatus] | None = None,
        limit: int = 100,
    ) -> list[SagaInstance]:
        chosen = set(check_list_arguments(limit, statuses))
        matching = [
            stored
            for stored in self._instances.values()
            if stored.instance.status in chosen and (saga_name is None or stored.instance.saga_name == saga_name)
        ]
        # Newest first; ties broken by id, as PostgreSQL does.
        matching.sort(key=lambda stored: str(stored.instance.saga_id))
        matching.sort(key=lambda stored: stored.instance.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return [_copy(stored.instance, stored.context_text) for stored in matching[:limit]]


def _copy(instance: SagaInstance, context_text: str) -> SagaInstance:
    return dataclasses.replace(instance, context=json.loads(context_text))


def _stamped(history: Sequence[HistoryEntry], version: int, now: datetime) -> list[HistoryEntry]:
    return [dataclasses.replace(entry, version=version, recorded_at=now) for entry in history]
