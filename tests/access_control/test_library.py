"""The library door: ``authorized_store`` enforces the policy on every store and consumer-group operation,
on both backends; refused operations change nothing and are logged for audit."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from datetime import timedelta

import pytest

from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from sluice.core.batches import prepare_batch
from sluice.core.errors import PermissionDeniedError, StreamNotFoundError
from sluice.observability.correlation import correlation_context
from sluice.security import AccessPolicy, Permission, authorized_store
from sluice.security.authorizer import AUDIT_LOGGER_NAME
from sluice.security.operation_permissions import STORE_PERMISSIONS
from sluice.store.values.consumer_group_options import StartFrom, StartPosition


def as_principal(store: EventStore, policy: AccessPolicy, principal: str) -> EventStore:
    return authorized_store(store, principal=principal, policy=policy)


async def test_a_principal_without_write_permission_cannot_append_but_can_read(
    store: EventStore, policy: AccessPolicy
) -> None:
    await store.append("orders", EventData("OrderPlaced", {"id": 1}))
    reader = as_principal(store, policy, "reader")
    with pytest.raises(PermissionDeniedError, match="'reader' may not write 'orders'") as denied:
        await reader.append("orders", EventData("OrderPlaced", {"id": 2}))
    assert (denied.value.principal, denied.value.action, denied.value.resource) == ("reader", "write", "orders")
    with pytest.raises(PermissionDeniedError):
        await reader.enqueue("jobs", EventData("Job", {}))
    assert [event.data for event in [event async for event in reader.read_stream("orders")]] == [{"id": 1}]
    assert (await reader.get_stream("orders")).partition_heads[0].head == 1  # nothing was appended

    writer = as_principal(store, policy, "writer")
    result = await writer.append("orders", EventData("OrderPlaced", {"id": 3}))
    assert result.offsets == (1,)
    with pytest.raises(PermissionDeniedError, match="'writer' may not write 'orders-audit'"):
        await writer.append("orders-audit", EventData("Audited", {}))  # the exact pattern takes write away
    assert (await store.get_stream("orders")).partition_heads[0].head == 2
    with pytest.raises(StreamNotFoundError):
        await store.get_stream("orders-audit")  # not even auto-created


async def test_administrative_operations_are_denied_to_writers(store: EventStore, policy: AccessPolicy) -> None:
    await store.create_stream(StreamConfig(name="orders-eu"))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL))
    writer = as_principal(store, policy, "writer")
    attempts = {
        "create_stream": writer.create_stream(StreamConfig(name="orders-us")),
        "delete_stream": writer.delete_stream("orders-eu"),
        "set_partitions": writer.set_partitions("orders-eu", 4),
        "redrive_dead_letters": writer.redrive_dead_letters("jobs"),
        "purge_dead_letters": writer.purge_dead_letters("jobs"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(PermissionDeniedError, match="may not admin"):
            await attempt
        assert name in STORE_PERMISSIONS
    groups = writer.consumer_groups()
    with pytest.raises(PermissionDeniedError):
        await groups.reset_offsets("orders-eu", "email", to=StartPosition(start_from=StartFrom.EARLIEST))
    with pytest.raises(PermissionDeniedError):
        await groups.delete("orders-eu", "email")
    assert [info.name for info in await store.list_streams()] == ["jobs", "orders-eu"]
    assert (await store.get_stream("orders-eu")).partitions == 1

    operator = as_principal(store, policy, "operator")
    await operator.create_stream(StreamConfig(name="orders-us"))
    await operator.delete_stream("orders-eu")
    assert [info.name for info in await store.list_streams()] == ["jobs", "orders-us"]


async def test_queues_and_consumer_groups_need_consume(store: EventStore, policy: AccessPolicy) -> None:
    await store.enqueue("jobs", EventData("Job", {"n": 1}))
    await store.append("orders", EventData("OrderPlaced", {}))
    reader = as_principal(store, policy, "reader")
    worker = as_principal(store, policy, "worker")
    with pytest.raises(PermissionDeniedError, match="may not consume 'jobs'"):
        await reader.dequeue("jobs")
    message = await worker.dequeue("jobs", visibility_timeout=timedelta(seconds=30))
    assert message is not None
    await worker.acknowledge("jobs", message.receipt)

    with pytest.raises(PermissionDeniedError, match="may not consume 'orders'"):
        reader.consumer_groups().consume("orders", group_id="email", consumer_id="c1")
    options = ConsumerGroupOptions(start_position=StartPosition(start_from=StartFrom.EARLIEST))
    async with worker.consumer_groups().consume(
        "orders", group_id="email", consumer_id="c1", options=options
    ) as events:
        event = await anext(aiter(events))
        assert event.event_type == "OrderPlaced"
    description = await reader.consumer_groups().describe("orders", "email")  # describing needs read only
    assert description.group_id == "email"
    with pytest.raises(PermissionDeniedError):
        await worker.consumer_groups().describe("orders", "email")


async def test_listings_leave_out_what_the_principal_may_not_see(store: EventStore, policy: AccessPolicy) -> None:
    for name in ("orders", "orders-eu", "payments"):
        await store.append(name, EventData("Happened", {"stream": name}))
    writer = as_principal(store, policy, "writer")
    assert [info.name for info in await writer.list_streams()] == ["orders", "orders-eu"]
    assert [event.stream_name async for event in writer.read_all()] == ["orders", "orders-eu"]
    assert [event.stream_name async for event in writer.read_all(limit=1)] == ["orders"]
    reader = as_principal(store, policy, "reader")
    assert [event.stream_name async for event in reader.read_all()] == ["orders", "orders-eu", "payments"]
    nobody = as_principal(store, policy, "nobody")
    assert await nobody.list_streams() == []
    with pytest.raises(PermissionDeniedError):
        [event async for event in nobody.read_stream("orders")]


ARGUMENTS_BY_PARAMETER = {
    "name": "orders",
    "stream_name": "orders",
    "queue_name": "orders",
    "config": StreamConfig(name="orders"),
    "partitions": 4,
}


async def call_on_orders(method: Callable[..., object]) -> None:
    """Call a store method of any kind on the stream "orders" (refused calls fail before the store sees them)."""
    signature = inspect.signature(method)
    required = [
        ARGUMENTS_BY_PARAMETER[parameter.name]
        for parameter in signature.parameters.values()
        if parameter.default is inspect.Parameter.empty
    ]
    call = method(*required)
    if inspect.isasyncgen(call):
        await anext(call)
    elif inspect.isawaitable(call):
        await call


async def test_every_administrative_store_method_is_refused_to_a_writer(
    store: EventStore, policy: AccessPolicy
) -> None:
    """Walks the permission table: each method it says needs admin is refused before it reaches the store
    (archive, restore, purge_deleted_streams, check_backend, ... included)."""
    await store.create_stream(StreamConfig(name="orders"))
    writer = as_principal(store, policy, "writer")
    administrative = sorted(name for name, rule in STORE_PERMISSIONS.items() if rule is Permission.ADMIN)
    assert {"archive_stream", "restore_stream", "purge_deleted_streams", "check_backend"} <= set(administrative)
    for name in administrative:
        with pytest.raises(PermissionDeniedError, match="'writer' may not admin"):
            await call_on_orders(getattr(writer, name))
    info = await store.get_stream("orders")
    assert (info.partitions, info.archived, info.deleted) == (1, False, False)


async def test_denials_are_logged_for_audit(
    store: EventStore, policy: AccessPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    reader = as_principal(store, policy, "reader")
    operator = as_principal(store, policy, "operator")
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER_NAME):
        with pytest.raises(PermissionDeniedError):
            await reader.append("orders", EventData("A", {}), correlation_id="request-7")
        with correlation_context("request-8"), pytest.raises(PermissionDeniedError):
            await reader.delete_stream("orders")
        await operator.create_stream(StreamConfig(name="orders"))
        await reader.get_stream("orders")  # allowed reads are not logged
    records = [record for record in caplog.records if record.name == AUDIT_LOGGER_NAME]
    audit_fields = ("levelname", "principal", "action", "permission", "stream", "outcome", "correlation_id")
    fields = [tuple(vars(record)[field] for field in audit_fields) for record in records]
    assert fields == [
        ("WARNING", "reader", "append", "write", "orders", "denied", "request-7"),
        ("WARNING", "reader", "delete_stream", "admin", "orders", "denied", "request-8"),
        ("INFO", "operator", "create_stream", "admin", "orders", "allowed", None),
    ]


async def test_appending_a_prepared_batch_needs_write_like_append(store: EventStore, policy: AccessPolicy) -> None:
    """The group-commit batcher's path (events encoded once) is checked like ``append``."""
    prepared = prepare_batch([EventData("OrderPlaced", {"id": 1})], store.registry, store.options.max_payload_bytes)
    reader = as_principal(store, policy, "reader")
    with pytest.raises(PermissionDeniedError, match="'reader' may not write 'orders'"):
        await reader.append_prepared("orders", prepared)
    with pytest.raises(PermissionDeniedError, match="'writer' may not write 'orders-audit'"):
        await as_principal(store, policy, "writer").append_prepared("orders-audit", prepared)
    assert (await as_principal(store, policy, "writer").append_prepared("orders", prepared)).offsets == (0,)
    assert (await store.get_stream("orders")).partition_heads[0].head == 1
