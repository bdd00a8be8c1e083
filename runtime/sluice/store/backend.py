"""``Backend``: everything one storage adapter hands out, in one bundle (eventsourcing's infrastructure
factory, as a value).

An adapter builds it once per store (``sluice.storage.memory.store.memory_backend``,
``sluice.storage.postgres.store.open_postgres_backend``); the ``EventStore`` facade holds it as
``store.backend``, and services reach their storage through it (``store.backend.sagas``,
``store.backend.retention``...), never by asking which adapter a store is. Parts that keep state (the
in-memory saga repository, dead letters, retention policies) live exactly as long as their store.
"""

from __future__ import annotations

import dataclasses

from sluice.core.signals import AppendSignals
from sluice.store.contracts.dead_letters import GroupDeadLetters
from sluice.store.contracts.replays import ReplayRecords
from sluice.store.contracts.sagas import SagaRepository
from sluice.store.port import (
    BackendCheck,
    BackendConnection,
    GroupStorage,
    QueueStorage,
    RetentionStorage,
    SqlDatabase,
    StreamLog,
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """One adapter's storage, as the port's interfaces."""

    name: str
    """``"memory"`` or ``"postgresql"``."""
    log: StreamLog
    queues: QueueStorage
    groups: GroupStorage
    retention: RetentionStorage
    dead_letters: GroupDeadLetters
    """The dead letters of the consumer groups (used by ``sluice.services.retries``)."""
    sagas: SagaRepository
    replays: ReplayRecords
    signals: AppendSignals
    """Wake-ups of readers waiting for appends (fired here, and by NOTIFY from other processes)."""
    connection: BackendConnection
    database: SqlDatabase | None = None
    """The SQL database, for services that run their own SQL in it (None: the adapter has none). Same-database
    projections keep their checkpoints there, in the transaction of their handlers' writes."""

    async def check(self) -> BackendCheck:
        """Whether the adapter can serve now (readiness probes use it)."""
        return await self.connection.check()

    async def close(self) -> None:
        """Release the adapter's connections and background tasks."""
        await self.connection.close()

    def terminate(self) -> None:
        """Drop the adapter's connections at once (a shutdown whose close did not finish in time)."""
        self.connection.terminate()
