"""Which saga repository a store uses: its PostgreSQL tables, or one in-memory repository per
``memory://`` store. The one place in ``sluice.sagas`` that picks an implementation, so the contract
(``repository.py``) and the implementations never import each other.
"""

from __future__ import annotations

import weakref

from sluice.sagas.repository import SagaRepository
from sluice.store import EventStore

_memory_repositories: weakref.WeakKeyDictionary[EventStore, SagaRepository] = weakref.WeakKeyDictionary()
"""One in-memory repository per memory store (it lives, and goes, with its store)."""


def saga_repository(store: EventStore) -> SagaRepository:
    """The saga repository that lives beside ``store``: its PostgreSQL tables, or (``memory://``)
    one in-memory repository per store, shared by everything that uses that store."""
    from sluice.backends.postgres.store import PostgresEventStore  # noqa: PLC0415  (only the backend used)

    if isinstance(store, PostgresEventStore):
        from sluice.backends.postgres.sagas import PostgresSagaRepository  # noqa: PLC0415

        return PostgresSagaRepository(store)
    repository = _memory_repositories.get(store)
    if repository is None:
        from sluice.sagas.memory_repository import MemorySagaRepository  # noqa: PLC0415

        repository = _memory_repositories[store] = MemorySagaRepository()
    return repository
