"""The wrappers of a store are typed forwarding classes, and the permission table covers exactly the store's
methods: walking EventStore and ConsumerGroupReader with ``inspect``, a method added to either without a
forwarding method and a table entry fails here (before the old ``__getattr__`` forwarding would have let
it through unchecked by mypy and classified by a default)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import pytest

from sluice import EventStore
from sluice.security import AccessPolicy, AuthorizedStore, authorized_store
from sluice.security.authorized_consumer_groups import AuthorizedConsumerGroups
from sluice.security.authorized_services import CallerGroupDeadLetters, CallerHealth, CallerReplays, CallerSagas
from sluice.security.caller_scope import CallerScopedStore, caller_scoped_store
from sluice.security.operation_permissions import (
    GROUP_PERMISSIONS,
    SERVICE_PERMISSIONS,
    STORE_PERMISSIONS,
    NotChecked,
    OperationRule,
    required_permission,
)
from sluice.security.permissions import Permission
from sluice.services.group_commit import BatchedEventStore, batched
from sluice.store.contracts.consumer_groups import ConsumerGroupReader
from sluice.store.forwarding import ForwardingStore


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    """The public methods of ``cls`` (inherited ones too) and their signatures."""
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def table_problems(cls: type, table: Mapping[str, OperationRule]) -> list[str]:
    """What keeps ``table`` from classifying each public method of ``cls`` exactly once."""
    methods = public_methods(cls)
    missing = [f"{cls.__name__}.{name} has no entry" for name in sorted(methods) if name not in table]
    unknown = [f"the entry {name!r} names no method of {cls.__name__}" for name in sorted(table) if name not in methods]
    return missing + unknown


def forwarding_problems(wrapper: type, wrapped: type) -> list[str]:
    """Public methods of ``wrapped`` that ``wrapper`` does not define itself with the same signature."""
    problems = []
    for name, signature in sorted(public_methods(wrapped).items()):
        own = wrapper.__dict__.get(name)
        if own is None:
            problems.append(f"{wrapper.__name__} does not forward {name}")
        elif inspect.signature(own) != signature:
            problems.append(f"{wrapper.__name__}.{name}{inspect.signature(own)} is not {name}{signature}")
    return problems


def test_every_public_store_method_has_exactly_one_permission_entry() -> None:
    assert table_problems(EventStore, STORE_PERMISSIONS) == []
    assert "acknowledge" in STORE_PERMISSIONS  # the walk found the store's methods


def test_every_public_consumer_group_method_has_exactly_one_permission_entry() -> None:
    assert table_problems(ConsumerGroupReader, GROUP_PERMISSIONS) == []
    assert "reset_offsets" in GROUP_PERMISSIONS


SERVICE_VIEWS = {
    "group_dead_letters": CallerGroupDeadLetters,
    "sagas": CallerSagas,
    "replays": CallerReplays,
    "health": CallerHealth,
}


def test_every_operation_of_the_service_views_has_exactly_one_permission_entry() -> None:
    operations = {f"{prefix}.{name}" for prefix, view in SERVICE_VIEWS.items() for name in public_methods(view)}
    assert sorted(operations) == sorted(SERVICE_PERMISSIONS)
    assert "group_dead_letters.redrive" in operations


def test_a_store_method_added_without_an_entry_or_a_forwarding_method_is_found() -> None:
    class GrownStore(EventStore):
        async def compact_stream(self, name: str) -> None:
            """A method a later feature adds."""

    assert table_problems(GrownStore, STORE_PERMISSIONS) == ["GrownStore.compact_stream has no entry"]
    assert forwarding_problems(ForwardingStore, GrownStore) == ["ForwardingStore does not forward compact_stream"]
    stale = {**STORE_PERMISSIONS, "compact_stream": Permission.ADMIN}
    assert table_problems(EventStore, stale) == ["the entry 'compact_stream' names no method of EventStore"]


def test_the_forwarding_store_forwards_every_public_method_with_its_signature() -> None:
    assert forwarding_problems(ForwardingStore, EventStore) == []


def test_the_authorized_consumer_groups_forward_every_public_method_with_its_signature() -> None:
    assert forwarding_problems(AuthorizedConsumerGroups, ConsumerGroupReader) == []


@pytest.mark.parametrize("wrapper", [AuthorizedStore, CallerScopedStore, BatchedEventStore, AuthorizedConsumerGroups])
def test_wrappers_forward_nothing_through_getattr(wrapper: type) -> None:
    """Every attribute is declared, so mypy checks each call (``__getattr__`` would make them all ``Any``)."""
    assert not hasattr(wrapper, "__getattr__")


def test_a_rule_that_is_not_a_permission_fails_closed_if_ever_checked() -> None:
    assert required_permission(STORE_PERMISSIONS, "append") is Permission.WRITE
    assert required_permission(STORE_PERMISSIONS, "list_streams") is Permission.ADMIN  # a listing: never checked
    assert required_permission(STORE_PERMISSIONS, "no_such_method") is Permission.ADMIN
    assert {rule for rule in STORE_PERMISSIONS.values() if isinstance(rule, NotChecked)} == set(NotChecked)


async def test_wrapped_stores_are_event_stores_sharing_the_wrapped_backend(
    store: EventStore, policy: AccessPolicy
) -> None:
    batching = batched(store)
    try:
        wrappers: list[EventStore] = [
            batching,
            authorized_store(store, principal="reader", policy=policy),
            authorized_store(batching, principal="writer", policy=policy),
            caller_scoped_store(batching, policy),
        ]
        for wrapper in wrappers:
            assert isinstance(wrapper, EventStore)
            assert wrapper.backend is store.backend
            assert (wrapper.options, wrapper.registry) == (store.options, store.registry)
        assert batching.unbatched is store
    finally:
        await batching.batcher.close()
