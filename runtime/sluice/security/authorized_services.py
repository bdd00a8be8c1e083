"""The services the doors serve beside the store (consumer-group dead letters, sagas, replays, a stream's
health), as the caller of a store may use them.

    store = context.store_for(principal)               # an AuthorizedStore under a policy, else the store
    letters = await CallerGroupDeadLetters(store).list("orders", "email")   # needs read on "orders"

Each view takes the store the caller holds: its storage comes from ``store.backend`` (a wrapper shares the
wrapped store's), and when that store enforces a policy (``PolicyEnforcingStore``) every operation is checked
against ``SERVICE_PERMISSIONS`` (``sluice.security.operation_permissions``) for the store's principal first;
over a plain store nothing is checked, as the store itself checks nothing. A saga named ``order-fulfilment``
is the resource ``saga.order-fulfilment``; a replay is checked on its source stream, so its record is read
before the check (an unknown replay or saga answers not found). A stream's health is checked before the
probe: the probe reports the errors it meets as an unreachable database, and a refusal is not one.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sluice.observability.health.checks import DEFAULT_PROBE_TIMEOUT, check_stream_health
from sluice.observability.health.model import HealthThresholds, StreamHealth
from sluice.security.authorized_store import PolicyEnforcingStore
from sluice.security.authorizer import Authorizer
from sluice.security.operation_permissions import SERVICE_PERMISSIONS, required_permission
from sluice.security.permissions import Permission
from sluice.services.replay import ReplayProgress, Replays
from sluice.services.retries import GroupDeadLetter, group_dead_letters
from sluice.services.sagas.repositories import saga_repository
from sluice.store.event_store import EventStore
from sluice.store.values.sagas import SagaInstance, SagaRecord, SagaStatus


def saga_resource(saga_name: str) -> str:
    """The name access policies use for a saga's instances."""
    return f"saga.{saga_name}"


class _CallerView:
    """What the views share: the store's authorizer (None: the store enforces no policy)."""

    def __init__(self, store: EventStore) -> None:
        self._authorizer: Authorizer | None = store.authorizer() if isinstance(store, PolicyEnforcingStore) else None

    def _require(self, operation: str, resource: str) -> None:
        if self._authorizer is not None:
            permission = required_permission(SERVICE_PERMISSIONS, operation)
            self._authorizer.require(permission, resource, action=operation)

    def _may_read(self, resource: str) -> bool:
        return self._authorizer is None or self._authorizer.may(Permission.READ, resource)


class CallerGroupDeadLetters(_CallerView):
    """The dead letters of consumer groups: listing and inspecting need read on the stream, redrive and
    purge admin (as for a queue's dead letters)."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._dead_letters = group_dead_letters(store)

    async def list(
        self, stream_name: str, group_id: str, *, limit: int = 100, after_id: int = 0
    ) -> builtins.list[GroupDeadLetter]:
        self._require("group_dead_letters.list", stream_name)
        return await self._dead_letters.list(stream_name, group_id, limit=limit, after_id=after_id)

    async def get(self, stream_name: str, group_id: str, dead_letter_id: int) -> GroupDeadLetter:
        self._require("group_dead_letters.get", stream_name)
        return await self._dead_letters.get(stream_name, group_id, dead_letter_id)

    async def redrive(
        self, stream_name: str, group_id: str, *, dead_letter_ids: Sequence[int] | None = None
    ) -> builtins.list[int]:
        self._require("group_dead_letters.redrive", stream_name)
        return await self._dead_letters.redrive(stream_name, group_id, dead_letter_ids=dead_letter_ids)

    async def purge(self, stream_name: str, group_id: str, *, dead_letter_ids: Sequence[int] | None = None) -> int:
        self._require("group_dead_letters.purge", stream_name)
        return await self._dead_letters.purge(stream_name, group_id, dead_letter_ids=dead_letter_ids)


class CallerSagas(_CallerView):
    """Saga instances, read-only: reading one needs read on its saga; the list leaves out the others."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._repository = saga_repository(store)

    async def list(
        self,
        *,
        saga_name: str | None = None,
        statuses: Sequence[SagaStatus] | None = None,
        limit: int = 100,
    ) -> builtins.list[SagaInstance]:
        instances = await self._repository.list(saga_name=saga_name, statuses=statuses, limit=limit)
        return [instance for instance in instances if self._may_read(saga_resource(instance.saga_name))]

    async def get(self, saga_id: uuid.UUID) -> SagaRecord:
        record = await self._repository.get(saga_id)
        self._require("sagas.get", saga_resource(record.instance.saga_name))
        return record


class CallerReplays(_CallerView):
    """Replays: reading one's progress needs read on its source stream, cancelling it admin there."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._replays = Replays(store)

    async def progress(self, name: str) -> ReplayProgress:
        progress = await self._replays.progress(name)
        self._require("replays.progress", progress.request.stream)
        return progress

    async def cancel(self, name: str) -> ReplayProgress:
        progress = await self._replays.progress(name)
        self._require("replays.cancel", progress.request.stream)
        return await self._replays.cancel(name)


class CallerHealth(_CallerView):
    """Health checks: a stream's health needs read on it."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self._store = store

    async def stream(
        self,
        name: str,
        *,
        thresholds: HealthThresholds | None = None,
        probe_timeout: timedelta = DEFAULT_PROBE_TIMEOUT,
    ) -> StreamHealth:
        """``check_stream_health`` of stream ``name``, through the caller's store."""
        self._require("health.stream", name)
        return await check_stream_health(self._store, name, thresholds=thresholds, probe_timeout=probe_timeout)
