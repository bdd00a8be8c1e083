"""The operator's composition root: settings, the Kubernetes API, the database connections, and one lock
per object so a change handler and the periodic resync never reconcile the same object at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sluice_operator.databases import Databases
from sluice_operator.kubernetes_port import KubernetesPort
from sluice_operator.reconcile.databases import DatabaseTarget
from sluice_operator.settings import OperatorSettings

__all__ = ["OperatorContext"]


@dataclass
class OperatorContext:
    """Everything a reconciler needs, created once per operator process."""

    settings: OperatorSettings
    kubernetes: KubernetesPort
    """The real API (``KubernetesApi``) in the operator; an in-memory one in the controller tests."""
    databases: Databases
    namespaces: tuple[str, ...] = ()
    """Namespaces the operator watches; empty for every namespace."""
    known_databases: dict[str, DatabaseTarget] = field(default_factory=dict)
    """EventStream uid → the database it was last reconciled in. Deleting a namespace deletes its Secrets
    at the same time as its EventStreams; this lets ``deletionPolicy: delete`` still find the data."""
    _locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)

    @asynccontextmanager
    async def exclusive(self, kind: str, namespace: str, name: str) -> AsyncIterator[None]:
        """Hold the object's lock while reconciling it."""
        lock = self._locks.setdefault((kind, namespace, name), asyncio.Lock())
        async with lock:
            yield

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop a deleted object's lock."""
        self._locks.pop((kind, namespace, name), None)

    async def close(self) -> None:
        await self.databases.close()
        await self.kubernetes.close()
