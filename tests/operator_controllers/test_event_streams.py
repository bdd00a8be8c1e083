"""EventStream controller against the fake API and a real PostgreSQL: the stream created and changed as the
spec says, its heads in status, the database Secret and the database being missing or down, deletion."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import sluice
from sluice import EventData, StreamConfig
from sluice.core.errors import StreamNotFoundError
from sluice.core.streams import StreamType
from sluice_operator.controllers.context import OperatorContext
from sluice_operator.controllers.dispatch import reconcile_named
from sluice_operator.controllers.event_streams import delete_stream_data
from sluice_operator.databases import Databases
from sluice_operator.errors import DatabaseSecretError, DatabaseUnavailableError
from sluice_operator.settings import OperatorSettings
from tests.operator_controllers.conftest import (
    NAMESPACE,
    closed_port_dsn,
    condition,
    conditions,
    event_stream,
)
from tests.operator_controllers.fake_kubernetes import FakeKubernetes

pytestmark = [pytest.mark.postgres]


async def stored_partitions(dsn: str, name: str) -> int | None:
    async with await sluice.connect(dsn) as store:
        try:
            return (await store.get_stream(name)).partitions
        except StreamNotFoundError:
            return None


async def reconcile(context: OperatorContext, name: str) -> None:
    await reconcile_named(context, "EventStream", NAMESPACE, name)


async def test_the_stream_is_created_with_its_config_and_the_status_says_ready(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("payments", partitions=2, deliverySemantics="queue"))
    await reconcile(operator_context, "payments")

    async with await sluice.connect(postgres_dsn) as store:
        info = await store.get_stream("payments")
    assert (info.partitions, info.type, info.delivery.value) == (2, StreamType.PERSISTENT, "queue")
    body = kubernetes.get("EventStream", NAMESPACE, "payments")
    assert body is not None
    assert condition(body, "Ready") == ("True", "Reconciled")
    assert condition(body, "SchemaReady") == ("True", "SchemaMigrated")
    assert condition(body, "StreamReady") == ("True", "StreamExists")
    assert condition(body, "Stalled") == ("False", "Reconciled")
    assert body["status"]["observedGeneration"] == 1
    assert {found["observedGeneration"] for found in body["status"]["conditions"]} == {1}
    assert body["status"]["headOffsets"] == [{"partition": p, "head": 0, "first": 0} for p in range(2)]
    assert "lastEventTime" not in body["status"]  # nothing appended yet: the merge patch's null removed it


async def test_stream_name_and_the_operators_default_database(kubernetes: FakeKubernetes, postgres_dsn: str) -> None:
    """Without spec.database the stream goes to SLUICE_DSN's database; spec.streamName names it there."""
    context = OperatorContext(
        settings=OperatorSettings(default_database_url=postgres_dsn, default_schema_name="sluice"),
        kubernetes=kubernetes,
        databases=Databases(timeout_seconds=5),
    )
    try:
        kubernetes.create(
            NAMESPACE, {"kind": "EventStream", "metadata": {"name": "orders"}, "spec": {"streamName": "shop.orders"}}
        )
        await reconcile(context, "orders")
    finally:
        await context.close()
    assert await stored_partitions(postgres_dsn, "shop.orders") == 1
    assert condition(kubernetes.get("EventStream", NAMESPACE, "orders"), "Ready") == ("True", "Reconciled")


async def test_partitions_grow_with_the_spec_and_conditions_observe_the_new_generation(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("payments", partitions=2))
    await reconcile(operator_context, "payments")
    kubernetes.patch("EventStream", NAMESPACE, "payments", {"spec": {"partitions": 3}})
    await reconcile(operator_context, "payments")

    grown = kubernetes.get("EventStream", NAMESPACE, "payments")
    assert grown is not None
    assert grown["metadata"]["generation"] == 2
    assert grown["status"]["observedGeneration"] == 2
    assert {found["observedGeneration"] for found in grown["status"]["conditions"]} == {2}
    assert len(grown["status"]["headOffsets"]) == 3
    assert await stored_partitions(postgres_dsn, "payments") == 3


async def test_the_status_follows_appends(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("payments", partitions=3))
    await reconcile(operator_context, "payments")
    async with await sluice.connect(postgres_dsn) as store:
        await store.append("payments", [EventData(event_type="Paid", data={"n": n}) for n in range(5)], partition=1)
    await reconcile(operator_context, "payments")

    status = (kubernetes.get("EventStream", NAMESPACE, "payments") or {})["status"]
    assert status["appendedEventCount"] == 5
    assert status["headOffsets"] == [
        {"partition": 0, "head": 0, "first": 0},
        {"partition": 1, "head": 5, "first": 0},
        {"partition": 2, "head": 0, "first": 0},
    ]
    assert status["lastEventTime"]


async def test_reconciling_an_unchanged_stream_again_writes_nothing(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.create(NAMESPACE, event_stream("payments"))
    await reconcile(operator_context, "payments")
    version = (kubernetes.get("EventStream", NAMESPACE, "payments") or {})["metadata"]["resourceVersion"]
    await reconcile(operator_context, "payments")
    await reconcile(operator_context, "payments")

    patches = [call for call in kubernetes.calls if call[0] == "patch_status"]
    assert len(patches) == 1
    assert (kubernetes.get("EventStream", NAMESPACE, "payments") or {})["metadata"]["resourceVersion"] == version


async def test_a_stream_stored_with_another_type_stalls_with_a_conflict(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    kubernetes.create(NAMESPACE, event_stream("jobs"))  # persistent by default
    await reconcile(operator_context, "jobs")

    body = kubernetes.get("EventStream", NAMESPACE, "jobs")
    assert condition(body, "Stalled") == ("True", "StreamConflict")
    assert condition(body, "Ready") == ("False", "StreamConflict")
    assert condition(body, "StreamReady") == ("False", "StreamConflict")
    assert "ephemeral" in conditions(body)["StreamReady"]["message"]


async def test_a_missing_database_secret_is_reported_and_the_stream_follows_once_it_exists(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("audit", secret="audit-database"))
    await reconcile(operator_context, "audit")  # no exception: the status says what is wrong

    body = kubernetes.get("EventStream", NAMESPACE, "audit")
    assert condition(body, "Ready") == ("False", "InvalidDatabaseSecret")
    assert condition(body, "SchemaReady") == ("False", "InvalidDatabaseSecret")
    assert "Secret 'audit-database' not found" in conditions(body)["SchemaReady"]["message"]
    assert await stored_partitions(postgres_dsn, "audit") is None

    kubernetes.put_secret(NAMESPACE, "audit-database", {"uri": postgres_dsn})
    await reconcile(operator_context, "audit")
    assert condition(kubernetes.get("EventStream", NAMESPACE, "audit"), "Ready") == ("True", "Reconciled")
    assert await stored_partitions(postgres_dsn, "audit") == 1


async def test_a_secret_without_a_usable_database_names_the_missing_keys(
    offline_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.put_secret(NAMESPACE, "half-database", {"host": "db.example", "user": "sluice"})
    kubernetes.create(NAMESPACE, event_stream("audit", secret="half-database"))
    await reconcile(offline_context, "audit")

    body = kubernetes.get("EventStream", NAMESPACE, "audit")
    assert condition(body, "SchemaReady") == ("False", "InvalidDatabaseSecret")
    assert "missing: dbname, password" in conditions(body)["SchemaReady"]["message"]


async def test_a_secret_with_separate_keys_reaches_the_database(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    """CloudNativePG's application Secrets: host, port, dbname, user and password keys instead of a uri."""
    parts = urlsplit(postgres_dsn)
    kubernetes.put_secret(
        NAMESPACE,
        "cnpg-app",
        {
            "host": parts.hostname or "",
            "port": str(parts.port),
            "dbname": parts.path.lstrip("/"),
            "user": parts.username or "",
            "password": "unused-with-trust-authentication",
        },
    )
    kubernetes.create(NAMESPACE, event_stream("ledger", secret="cnpg-app"))
    await reconcile(operator_context, "ledger")
    assert condition(kubernetes.get("EventStream", NAMESPACE, "ledger"), "Ready") == ("True", "Reconciled")
    assert await stored_partitions(postgres_dsn, "ledger") == 1


async def test_an_unreachable_database_makes_the_stream_unready_without_failing_and_it_recovers(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.put_secret(NAMESPACE, "down-database", {"uri": closed_port_dsn()})
    kubernetes.create(NAMESPACE, event_stream("audit", secret="down-database"))
    await reconcile(operator_context, "audit")  # returns: the periodic resync tries again

    down = kubernetes.get("EventStream", NAMESPACE, "audit")
    assert condition(down, "Ready") == ("False", "DatabaseUnreachable")
    assert condition(down, "SchemaReady") == ("False", "DatabaseUnreachable")
    assert condition(down, "StreamReady") == ("False", "DatabaseUnreachable")
    messages = " ".join(found["message"] for found in conditions(down).values())
    assert "nobody" not in messages
    assert "secret-password" not in messages  # no credentials in status

    kubernetes.put_secret(NAMESPACE, "down-database", {"uri": postgres_dsn})  # the database is back
    await reconcile(operator_context, "audit")
    assert condition(kubernetes.get("EventStream", NAMESPACE, "audit"), "Ready") == ("True", "Reconciled")
    assert await stored_partitions(postgres_dsn, "audit") == 1


async def test_an_object_being_deleted_or_gone_is_not_reconciled(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    kubernetes.create(NAMESPACE, event_stream("scratch", deletionPolicy="delete"))
    kubernetes.patch(
        "EventStream", NAMESPACE, "scratch", {"metadata": {"finalizers": ["sluice.dev/delete-stream-data"]}}
    )
    kubernetes.delete("EventStream", NAMESPACE, "scratch")  # stays, with deletionTimestamp, for the finalizer
    await reconcile(operator_context, "scratch")
    await reconcile(operator_context, "never-created")

    assert [call for call in kubernetes.calls if call[0] != "get_custom_object"] == []
    assert await stored_partitions(postgres_dsn, "scratch") is None


async def test_deletion_policy_delete_drops_the_stream_and_a_stream_already_gone_is_fine(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    body = kubernetes.create(NAMESPACE, event_stream("scratch", deletionPolicy="delete"))
    await reconcile(operator_context, "scratch")
    assert await stored_partitions(postgres_dsn, "scratch") == 1

    await delete_stream_data(operator_context, body)
    assert await stored_partitions(postgres_dsn, "scratch") is None
    await delete_stream_data(operator_context, body)  # the finalizer may run again: no error


async def test_deleting_with_the_secret_gone_uses_the_database_the_stream_was_last_seen_in(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    """A namespace being deleted takes its Secrets with it: the data is still dropped."""
    body = kubernetes.create(NAMESPACE, event_stream("scratch", deletionPolicy="delete"))
    await reconcile(operator_context, "scratch")
    kubernetes.delete_secret(NAMESPACE, "sluice-database")

    await delete_stream_data(operator_context, body)
    assert await stored_partitions(postgres_dsn, "scratch") is None
    with pytest.raises(DatabaseSecretError):  # never reconciled, no Secret: nothing says where the data is
        await delete_stream_data(operator_context, kubernetes.create(NAMESPACE, event_stream("other")))


async def test_deleting_while_the_database_is_down_raises_a_retryable_error(
    operator_context: OperatorContext, kubernetes: FakeKubernetes
) -> None:
    kubernetes.put_secret(NAMESPACE, "down-database", {"uri": closed_port_dsn()})
    body = kubernetes.create(NAMESPACE, event_stream("scratch", secret="down-database", deletionPolicy="delete"))
    with pytest.raises(DatabaseUnavailableError) as raised:  # the kopf handler retries it (TemporaryError)
        await delete_stream_data(operator_context, body)
    assert raised.value.reason == "DatabaseUnreachable"
    assert "secret-password" not in str(raised.value)


async def test_the_streams_own_retention_is_applied_and_reported(
    operator_context: OperatorContext, kubernetes: FakeKubernetes, postgres_dsn: str
) -> None:
    async with await sluice.connect(postgres_dsn) as store:
        await store.create_stream(StreamConfig(name="clicks"))
        await store.append("clicks", [EventData("Clicked", {"n": n}) for n in range(30)])
    kubernetes.create(NAMESPACE, event_stream("clicks", retention={"maxEventCount": 10}))
    await reconcile(operator_context, "clicks")

    status = (kubernetes.get("EventStream", NAMESPACE, "clicks") or {})["status"]
    assert status["prunedEvents"] == 20
    assert status["headOffsets"] == [{"partition": 0, "head": 30, "first": 20}]
    assert status["approximateEventCount"] == 10
    assert status["appendedEventCount"] == 30
    assert status["lastPruneTime"]
