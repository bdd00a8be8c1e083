"""The in-memory adapter, for development and tests of applications built on Sluice: ``memory_backend`` bundles
its parts into a Backend, and ``MemoryEventStore`` is the EventStore over a new one.

It is a product feature, not a test double: it passes the same behavioural contract suite as the
PostgreSQL backend. Every operation runs without awaiting inside it, so on one event loop each is
atomic, just as one statement is on PostgreSQL. Payloads are stored encoded and decoded on read,
so callers never share mutable objects with the store. Nothing survives the process.

The parts live beside this module, each given the one ``MemoryState`` of its store: the stream log
(``stream_log.py``) and the queues (``queues.py``), which share one ``stream_catalog.MemoryStreamCatalog``;
consumer groups (``groups.py``) and retention (``retention.py``).
"""

from __future__ import annotations

from sluice.core.event_types import EventTypeRegistry
from sluice.core.options import StoreOptions
from sluice.core.signals import AppendSignals
from sluice.services.replay.records import MemoryReplayRecords
from sluice.services.retries.memory import MemoryGroupDeadLetters
from sluice.services.sagas.memory_repository import MemorySagaRepository
from sluice.storage.memory.groups import MemoryConsumerGroups
from sluice.storage.memory.queues import MemoryQueues
from sluice.storage.memory.retention import MemoryRetentionStorage
from sluice.storage.memory.state import MemoryState
from sluice.storage.memory.stream_catalog import MemoryStreamCatalog
from sluice.storage.memory.stream_log import MemoryStreamLog
from sluice.store import Backend, BackendCheck, ConsumerGroupsFactory, EventStore


class _MemoryConnection:
    """The in-memory adapter has no connections: always ready, nothing to close."""

    async def check(self) -> BackendCheck:
        return BackendCheck(backend="memory")

    async def close(self) -> None:
        return None

    def terminate(self) -> None:
        return None


def memory_backend(options: StoreOptions) -> Backend:
    """A new, empty in-memory backend: every part shares one state, and lives as long as its store."""
    signals = AppendSignals()
    state = MemoryState(signals)
    catalog = MemoryStreamCatalog(state, options)
    log = MemoryStreamLog(state, options, catalog)
    groups = MemoryConsumerGroups(state)
    return Backend(
        name="memory",
        log=log,
        queues=MemoryQueues(state, options, catalog),
        groups=groups,
        retention=MemoryRetentionStorage(state, groups),
        dead_letters=MemoryGroupDeadLetters(log, groups),
        sagas=MemorySagaRepository(),
        replays=MemoryReplayRecords(),
        signals=signals,
        connection=_MemoryConnection(),
    )


class MemoryEventStore(EventStore):
    """An EventStore in process memory. Open it with ``await sluice.connect("memory://")``.

    Only a constructor: it builds a new in-memory backend; everything else is ``EventStore``'s (its consumer
    groups are the service ``consumer_groups_factory`` builds: ``sluice.connect`` passes it)."""

    def __init__(
        self,
        options: StoreOptions,
        registry: EventTypeRegistry | None = None,
        *,
        consumer_groups_factory: ConsumerGroupsFactory,
    ) -> None:
        super().__init__(memory_backend(options), options, registry, consumer_groups_factory=consumer_groups_factory)
