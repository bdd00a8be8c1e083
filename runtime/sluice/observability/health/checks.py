"""Health checks that talk to the store: gather an observation, then evaluate it (``evaluation.py``).

A database that cannot be reached (connection refused or lost, the server shutting down, no answer
within the timeout) is a finding, not an exception: the stream is unhealthy and readiness is false.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sluice.core.errors import ConnectionLostError, DatabaseBusyError, GroupNotFoundError, MigrationError
from sluice.core.names import validate_stream_name
from sluice.core.streams import StreamType
from sluice.observability.health.evaluation import evaluate_stream_health
from sluice.observability.health.model import HealthThresholds, Readiness, StreamHealth, StreamObservation
from sluice.store import EventStore
from sluice.store.values.consumer_groups import GroupDescription

DEFAULT_PROBE_TIMEOUT = timedelta(seconds=3)

DATABASE_UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionLostError,
    DatabaseBusyError,
    OSError,
    TimeoutError,
)
"""What counts as "the database cannot be reached": the backend's unavailable errors for the database
(it translates every driver error, docs/errors.md), and the probe's own timeout."""


async def check_stream_health(
    store: EventStore,
    name: str,
    *,
    thresholds: HealthThresholds | None = None,
    probe_timeout: timedelta = DEFAULT_PROBE_TIMEOUT,
) -> StreamHealth:
    """The health of stream ``name``: consumer lag, stale members, dead-letter growth, database reachability.

    Raises StreamNotFoundError when the database answers that the stream does not exist."""
    validate_stream_name(name)
    limits = thresholds or HealthThresholds()
    try:
        async with asyncio.timeout(probe_timeout.total_seconds()):
            observation = await _observe(store, name, limits)
    except DATABASE_UNREACHABLE_ERRORS as error:
        observation = StreamObservation(
            stream_name=name,
            stream_type=None,
            observed_at=datetime.now(UTC),
            error=str(error) or type(error).__name__,
        )
    return evaluate_stream_health(observation, limits)


async def _observe(store: EventStore, name: str, thresholds: HealthThresholds) -> StreamObservation:
    info = await store.get_stream(name)
    reader = store.consumer_groups()
    groups: list[GroupDescription] = []
    for summary in await reader.list_groups():
        if summary.stream_name != name:
            continue
        try:
            groups.append(await reader.describe(name, summary.group_id))
        except GroupNotFoundError:
            continue  # deleted since it was listed
    buried: tuple[datetime, ...] = ()
    if info.type is StreamType.EPHEMERAL:
        dead_letters = await store.dead_letters(name, limit=thresholds.dead_letter_scan_limit)
        buried = tuple(letter.dead_lettered_at for letter in dead_letters)
    return StreamObservation(
        stream_name=name,
        stream_type=info.type,
        observed_at=datetime.now(UTC),
        groups=tuple(groups),
        dead_lettered_at=buried,
    )


async def check_readiness(store: EventStore, *, probe_timeout: timedelta = DEFAULT_PROBE_TIMEOUT) -> Readiness:
    """Ready when the database answers and its schema is at this Sluice's version (memory: always)."""
    try:
        async with asyncio.timeout(probe_timeout.total_seconds()):
            check = await store.check_backend()
    except MigrationError as error:
        return Readiness(ready=False, backend="postgresql", detail=str(error))
    except DATABASE_UNREACHABLE_ERRORS as error:
        return Readiness(
            ready=False,
            backend="postgresql",
            detail=f"the database could not be reached: {error or type(error).__name__}",
        )
    if check.schema_version is None:
        return Readiness(ready=True, backend=check.backend, detail="the in-memory store is always ready")
    return Readiness(
        ready=True,
        backend=check.backend,
        detail=f"schema {check.schema_name!r} is at version {check.schema_version}",
        schema_version=check.schema_version,
    )
