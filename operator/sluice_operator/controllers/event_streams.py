"""Reconciling an EventStream: make the stream exist in its database as the spec says, report its heads,
and drop its data on deletion when ``deletionPolicy`` is ``delete``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sluice.core.errors import StreamAlreadyExistsError, StreamNotFoundError
from sluice.core.streams import StreamConfig, StreamInfo
from sluice.store import EventStore
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.database_targets import resolve_database
from sluice_operator.controllers.invalid_specs import report_invalid_spec
from sluice_operator.controllers.status import write_status
from sluice_operator.controllers.stream_retention import apply_stream_retention
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.models.common import ConditionStatus
from sluice_operator.models.event_streams import EventStream
from sluice_operator.reconcile.conditions import DesiredCondition, roll_up
from sluice_operator.reconcile.event_streams import (
    SCHEMA_READY,
    STREAM_READY,
    StreamChange,
    desired_stream_config,
    plan_stream_change,
    stream_status_fields,
)

__all__ = ["KIND", "delete_stream_data", "reconcile_event_stream"]

KIND = "EventStream"
logger = logging.getLogger(__name__)


class StreamConflictError(Exception):
    """The stored stream cannot be changed into what the spec says."""


async def _apply_stream(store: EventStore, config: StreamConfig) -> StreamInfo:
    try:
        existing: StreamInfo | None = await store.get_stream(config.name)
    except StreamNotFoundError:
        existing = None
    change: StreamChange = plan_stream_change(config, existing)
    if change.conflict is not None:
        raise StreamConflictError(change.conflict)
    if change.create:
        try:
            await store.create_stream(config)
        except StreamAlreadyExistsError as error:  # created meanwhile with another shape
            raise StreamConflictError(str(error)) from error
    elif change.increase_partitions_to is not None:
        await store.set_partitions(config.name, change.increase_partitions_to)
    return await store.get_stream(config.name)


async def reconcile_event_stream(context: OperatorContext, body: Mapping[str, Any]) -> None:
    """Bring the stream in the database in line with the object, and write the object's status."""
    try:
        stream = EventStream.model_validate(body)
    except ValidationError as error:
        await report_invalid_spec(context, body, error)
        return
    namespace = str(body["metadata"]["namespace"])
    fields: dict[str, Any] = {}
    specific: list[DesiredCondition] = []
    stalled: DesiredCondition | None = None
    try:
        database = await resolve_database(context, namespace, stream.spec.database)
        config = desired_stream_config(stream)
        info = await context.databases.run(database.target, lambda store: _apply_stream(store, config))
    except DatabaseSecretError as error:
        specific.append(DesiredCondition(SCHEMA_READY, ConditionStatus.FALSE, error.reason, str(error)))
    except DatabaseUnavailableError as error:
        migrated = context.databases.is_migrated(database.target)
        specific.append(
            DesiredCondition(
                SCHEMA_READY,
                ConditionStatus.TRUE if migrated else ConditionStatus.FALSE,
                "SchemaMigrated" if migrated else error.reason,
                "" if migrated else str(error),
            )
        )
        specific.append(DesiredCondition(STREAM_READY, ConditionStatus.FALSE, error.reason, str(error)))
    except StreamConflictError as error:
        specific.append(DesiredCondition(SCHEMA_READY, ConditionStatus.TRUE, "SchemaMigrated", ""))
        stalled = DesiredCondition(STREAM_READY, ConditionStatus.FALSE, "StreamConflict", str(error))
        specific.append(stalled)
    else:
        context.known_databases[str(body["metadata"]["uid"])] = database.target
        pruned = await apply_stream_retention(context, stream, database.target, body.get("status") or {})
        if pruned:
            info = await context.databases.run(database.target, lambda store: store.get_stream(config.name))
        fields = stream_status_fields(info) | pruned
        specific.append(
            DesiredCondition(SCHEMA_READY, ConditionStatus.TRUE, "SchemaMigrated", database.target.display_name)
        )
        specific.append(
            DesiredCondition(
                STREAM_READY,
                ConditionStatus.TRUE,
                "StreamExists",
                f"stream {info.name!r}: {info.type.value}, {info.partitions} partition(s)",
            )
        )
    await write_status(context.kubernetes, body, fields, roll_up(specific, stalled=stalled))


async def delete_stream_data(context: OperatorContext, body: Mapping[str, Any]) -> None:
    """Drop the stream and all its data (deletionPolicy: delete). Raises DatabaseUnavailableError (and the
    finalizer stays) when the database cannot be reached, DatabaseSecretError when neither the Secret nor an
    earlier reconcile says which database it is; a stream already gone is fine."""
    stream = EventStream.model_validate(body)
    namespace = str(body["metadata"]["namespace"])
    uid = str(body["metadata"]["uid"])
    try:
        target = (await resolve_database(context, namespace, stream.spec.database)).target
    except DatabaseSecretError:
        # The Secret may be going away with the namespace: use the database the stream was last seen in.
        known = context.known_databases.get(uid)
        if known is None:
            raise
        target = known

    async def drop(store: EventStore) -> None:
        try:
            await store.delete_stream(stream.stream_name)
        except StreamNotFoundError:
            logger.info("stream %r was already gone", stream.stream_name)

    await context.databases.run(target, drop)
    context.known_databases.pop(uid, None)
