"""The kopf handlers: thin, they only hand each event to ``sluice_operator.controllers``.

- create, update and resume of each kind → reconcile that object (level-triggered: it is re-read first);
- EventStream deletion with ``deletionPolicy: delete`` → drop the stream's data. Only such streams get a
  finalizer (kopf adds one only when a deletion handler's filter matches), so deleting anything else, or a
  namespace, never waits for the operator;
- any event of a Deployment or Job the operator manages (including its deletion) → reconcile its owner, so a
  child deleted by hand comes back at once, and pods becoming ready show in the owner's status;
- start-up and clean-up: the composition root and the periodic resync (``sluice_operator.resync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import RECONCILERS, reconcile_named
from sluice_operator.controllers.event_streams import delete_stream_data
from sluice_operator.databases import Databases
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.kubernetes_api import KubernetesApi
from sluice_operator.models import CUSTOM_RESOURCES, GROUP, VERSION
from sluice_operator.models.event_streams import DeletionPolicy
from sluice_operator.reconcile.ownership import MANAGED_BY, MANAGED_BY_LABEL
from sluice_operator.resync import resync_forever
from sluice_operator.settings import OperatorSettings

__all__ = ["FINALIZER", "MAXIMUM_DELETION_RETRIES"]

logger = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/delete-stream-data"
MAXIMUM_DELETION_RETRIES = 12
"""Attempts (10 s apart) to drop a stream's data before its object is let go with the data left in place,
so a database that is gone for good cannot block the deletion of the object or its namespace forever."""
DELETION_RETRY_DELAY_SECONDS = 10
PLURALS = {resource.definition.kind: resource.definition.plural for resource in CUSTOM_RESOURCES}


def context_of(memo: kopf.Memo) -> OperatorContext:
    """The composition root that the start-up handler put into kopf's memo."""
    context = memo.get("context")
    if not isinstance(context, OperatorContext):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return context


# Start-up and clean-up -------------------------------------------------------------------------------------


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    operator_settings = memo["operator_settings"]
    assert isinstance(operator_settings, OperatorSettings)
    settings.peering.standalone = True  # one replica with the Recreate strategy; see docs/operator.md
    settings.watching.inactivity_timeout = operator_settings.watch_inactivity_timeout_seconds
    settings.persistence.finalizer = FINALIZER
    # Status holds only what the CRD schema allows: kopf keeps its own bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    context = OperatorContext(
        settings=operator_settings,
        kubernetes=await KubernetesApi.connect(),
        databases=Databases(timeout_seconds=operator_settings.database_timeout_seconds),
        namespaces=tuple(memo.get("namespaces") or ()),
    )
    memo["context"] = context
    memo["resync"] = asyncio.create_task(resync_forever(context), name="sluice-operator-resync")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    resync = memo.get("resync")
    if isinstance(resync, asyncio.Task):
        resync.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resync
    context = memo.get("context")
    if isinstance(context, OperatorContext):
        await context.close()


# Custom resources ------------------------------------------------------------------------------------------


def _register_changes(kind: str) -> None:
    plural = PLURALS[kind]

    @kopf.on.resume(GROUP, VERSION, plural, id=f"{plural}-resumed")
    @kopf.on.create(GROUP, VERSION, plural, id=f"{plural}-created")
    @kopf.on.update(GROUP, VERSION, plural, id=f"{plural}-updated")
    async def changed(namespace: str | None, name: str | None, memo: kopf.Memo, **_: Any) -> None:
        if namespace is None or name is None:
            return
        await reconcile_named(context_of(memo), kind, namespace, name)


for _kind in RECONCILERS:
    _register_changes(_kind)


def _deletes_data(spec: kopf.Spec, **_: Any) -> bool:
    return spec.get("deletionPolicy") == DeletionPolicy.DELETE.value


@kopf.on.delete(GROUP, VERSION, PLURALS["EventStream"], when=_deletes_data, id="eventstreams-delete-data")
async def event_stream_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    try:
        await delete_stream_data(context_of(memo), body)
    except DatabaseSecretError as error:
        kopf.warn(body, reason="StreamDataLeft", message=f"cannot reach the database to drop the stream: {error}")
    except DatabaseUnavailableError as error:
        if retry + 1 >= MAXIMUM_DELETION_RETRIES:
            kopf.warn(body, reason="StreamDataLeft", message=f"gave up dropping the stream's data: {error}")
            return
        raise kopf.TemporaryError(str(error), delay=DELETION_RETRY_DELAY_SECONDS) from error


# Children --------------------------------------------------------------------------------------------------


async def _reconcile_owner(body: kopf.Body, memo: kopf.Memo) -> None:
    namespace = body.metadata.namespace
    for reference in body.metadata.get("ownerReferences") or []:
        kind = reference.get("kind")
        if reference.get("apiVersion") == f"{GROUP}/{VERSION}" and kind in RECONCILERS and namespace:
            await reconcile_named(context_of(memo), kind, namespace, reference["name"])


@kopf.on.event("apps", "v1", "deployments", labels={MANAGED_BY_LABEL: MANAGED_BY})
async def deployment_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_owner(body, memo)


@kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY_LABEL: MANAGED_BY})
async def job_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_owner(body, memo)
