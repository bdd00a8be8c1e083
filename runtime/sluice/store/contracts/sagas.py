"""The saga repository contract: where saga instances and their history are kept.

Two implementations pass one contract suite (``tests/sagas/test_repository_contract.py``): the
in-memory one for ``memory://`` stores and the PostgreSQL one. ``saga_repository(store)``
(``repositories.py``) picks the one that lives beside a store, so the worker, the CLI and the REST API
see the same instances; this module knows neither implementation.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sluice.core.errors import InvalidArgumentError
from sluice.store.values.sagas import HistoryEntry, SagaInstance, SagaRecord, SagaStatus

MAX_LIST_LIMIT = 10_000


class SagaRepository(abc.ABC):
    """Saga instances keyed by id, saved with optimistic concurrency."""

    @abc.abstractmethod
    async def create(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> bool:
        """Store a new instance (its ``version`` must be 1) with its first history entries.
        Returns False, and changes nothing, when an instance with that id (or that saga name and
        correlation id) exists already."""

    @abc.abstractmethod
    async def save(self, instance: SagaInstance, history: Sequence[HistoryEntry]) -> SagaInstance:
        """Replace the stored instance whose version is ``instance.version`` and append ``history``;
        returns the instance at its new version (one more). Raises SagaConflictError, saving
        nothing, when the stored version differs (another writer saved first), and
        SagaNotFoundError when there is no such instance."""

    @abc.abstractmethod
    async def load(self, saga_id: uuid.UUID) -> SagaInstance | None:
        """The instance, or None."""

    @abc.abstractmethod
    async def get(self, saga_id: uuid.UUID) -> SagaRecord:
        """The instance and its history, oldest entry first. Raises SagaNotFoundError."""

    @abc.abstractmethod
    async def list(
        self,
        *,
        saga_name: str | None = None,
        statuses: Sequence[SagaStatus] | None = None,
        limit: int = 100,
    ) -> list[SagaInstance]:
        """Instances, newest first, optionally of one saga and some statuses."""


def context_json(context: dict[str, Any]) -> str:
    """The context as JSON text; InvalidArgumentError (nothing saved) if it is not JSON-serialisable."""
    try:
        return json.dumps(context, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"a saga context must be JSON-serialisable: {error}") from error


def check_list_arguments(limit: int, statuses: Sequence[SagaStatus] | None) -> list[SagaStatus]:
    """Validate list() arguments; returns the statuses to list (all when None)."""
    if not isinstance(limit, int) or not 0 < limit <= MAX_LIST_LIMIT:
        raise InvalidArgumentError(f"limit must be 1 to {MAX_LIST_LIMIT}, got {limit!r}")
    chosen = list(SagaStatus) if statuses is None else [SagaStatus(status) for status in statuses]
    if not chosen:
        raise InvalidArgumentError("statuses must name at least one status (or be None for all)")
    return chosen


def check_new_instance(instance: SagaInstance) -> None:
    if instance.version != 1:
        raise InvalidArgumentError(f"a new saga instance starts at version 1, not {instance.version}")
