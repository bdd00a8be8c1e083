"""Saga instances in PostgreSQL: ``saga_instances`` and ``saga_history`` (migration 0005).

A save is one statement: an UPDATE conditional on the version read, and the history rows inserted
by the same statement only when that UPDATE matched. Two workers that read one version cannot both
save: the second finds no row at that version and gets SagaConflictError, having changed nothing.
SQL lives in ``sql/sagas.sql``. It borrows the store's pool, so what escapes a statement is a Sluice error
(``driver_errors``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from sluice.core.errors import SagaConflictError, SagaNotFoundError
from sluice.storage.postgres.queries import named_queries
from sluice.store.contracts.sagas import SagaRepository, check_list_arguments, check_new_instance, context_json
from sluice.store.values.sagas import HistoryEntry, SagaInstance, SagaRecord, SagaStatus

if TYPE_CHECKING:
    from sluice.storage.postgres.database import PostgresDatabase


def _query(name: str) -> str:
    return named_queries("sagas.sql")[name]


def _history_arrays(
    history: Sequence[HistoryEntry],
) -> tuple[list[str], list[str | None], list[int | None], list[str | None]]:
    return (
        [entry.kind for entry in history],
        [entry.step for entry in history],
        [entry.attempt for entry in history],
        [entry.detail for entry in history],
    )


class PostgresSagaRepository(SagaRepository):
    """The saga repository of a PostgreSQL store (it borrows the store's connection pool)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def create(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> bool:
        check_new_instance(instance)
        context = context_json(instance.context)
        async with self._database.acquire() as connection:
            version = await connection.fetchval(
                _query("create_saga"),
                instance.saga_id,
                instance.saga_name,
                instance.correlation_id,
                instance.status.value,
                instance.current_step,
                json.dumps(instance.progress_document()),
                context,
                *_history_arrays(history),
            )
        return version is not None

    async def save(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> SagaInstance:
        context = context_json(instance.context)
        async with self._database.acquire() as connection:
            row = await connection.fetchrow(
                _query("save_saga"),
                instance.saga_id,
                instance.version,
                instance.status.value,
                instance.current_step,
                json.dumps(instance.progress_document()),
                context,
                *_history_arrays(history),
            )
            exists = row is not None or await connection.fetchval(_query("get_saga"), instance.saga_id) is not None
        if row is None:
            if not exists:
                raise SagaNotFoundError(instance.saga_id)
            raise SagaConflictError(instance.saga_id, instance.version)
        return dataclasses.replace(
            instance, context=json.loads(context), version=row["version"], updated_at=row["updated_at"]
        )

    async def load(self, saga_id: uuid.UUID) -> SagaInstance | None:
        async with self._database.acquire() as connection:
            row = await connection.fetchrow(_query("get_saga"), saga_id)
        return None if row is None else _instance(row)

    async def get(self, saga_id: uuid.UUID) -> SagaRecord:
        async with self._database.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            row = await connection.fetchrow(_query("get_saga"), saga_id)
            rows = [] if row is None else await connection.fetch(_query("saga_history"), saga_id)
        if row is None:
            raise SagaNotFoundError(saga_id)
        history = tuple(
            HistoryEntry(
                kind=entry["kind"],
                step=entry["step"],
                attempt=entry["attempt"],
                detail=entry["detail"],
                version=entry["version"],
                recorded_at=entry["recorded_at"],
            )
            for entry in rows
        )
        return SagaRecord(_instance(row), history)

    async def list(
        self,
        *,
        saga_name: str | None = None,
        statuses: Sequence[SagaStatus] | None = None,
        limit: int = 100,
    ) -> list[SagaInstance]:
        chosen = [status.value for status in check_list_arguments(limit, statuses)]
        async with self._database.acquire() as connection:
            if saga_name is None:
                rows = await connection.fetch(_query("list_sagas"), chosen, limit)
            else:
                rows = await connection.fetch(_query("list_sagas_named"), saga_name, chosen, limit)
        return [_instance(row) for row in rows]


def _instance(row: asyncpg.Record) -> SagaInstance:
    return SagaInstance.from_documents(
        saga_id=row["saga_id"],
        saga_name=row["saga_name"],
        correlation_id=row["correlation_id"],
        status=row["status"],
        current_step=row["current_step"],
        progress=json.loads(row["progress"]),
        context=json.loads(row["context"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
