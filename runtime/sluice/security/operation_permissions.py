"""What each operation of the store and the services beside it needs: the declarative tables the access-control
wrappers enforce.

``STORE_PERMISSIONS`` has exactly one entry per public ``EventStore`` method, ``GROUP_PERMISSIONS`` one
per public ``ConsumerGroupReader`` method and ``SERVICE_PERMISSIONS`` one per operation of the caller views
of group dead letters, sagas, replays and health; ``tests/access_control/test_typed_wrappers.py`` walks
those classes with ``inspect`` and fails when a method has no entry (a new method must be classified before it
can ship) or an entry names no method. The permission is checked on the stream the call names, or on
every stream when it names none (``purge_deleted_streams``, ``check_backend``).

A few operations are not a permission check: listings leave out what the principal may not see instead of
refusing, ``consumer_groups()`` hands out a reader whose operations are checked one by one, and ``close()``
of a wrapper leaves the shared store open. ``NotChecked`` says which.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from sluice.security.permissions import Permission


class NotChecked(enum.Enum):
    """An operation the wrapper does not refuse, and why."""

    LISTING = "listing"
    """It lists streams or events: those the principal may not see are left out (``list_streams``: any
    permission on the stream; ``read_all`` and ``subscribe_all``: read on the event's stream)."""
    CHECKED_PER_GROUP_OPERATION = "checked per group operation"
    """``consumer_groups()``: each operation of the reader it returns is checked (``GROUP_PERMISSIONS``)."""
    NOTHING_TO_RELEASE = "nothing to release"
    """``close()``: the store belongs to whoever opened it; a wrapper shares it and leaves it open."""


OperationRule = Permission | NotChecked

STORE_PERMISSIONS: Mapping[str, OperationRule] = MappingProxyType(
    {
        # lifecycle
        "close": NotChecked.NOTHING_TO_RELEASE,
        "check_backend": Permission.ADMIN,
        # streams
        "create_stream": Permission.ADMIN,
        "get_stream": Permission.READ,
        "list_streams": NotChecked.LISTING,
        "delete_stream": Permission.ADMIN,
        "archive_stream": Permission.ADMIN,
        "unarchive_stream": Permission.ADMIN,
        "restore_stream": Permission.ADMIN,
        "purge_deleted_streams": Permission.ADMIN,
        "set_partitions": Permission.ADMIN,
        "consumer_groups": NotChecked.CHECKED_PER_GROUP_OPERATION,
        # persistent streams
        "append": Permission.WRITE,
        "append_prepared": Permission.WRITE,
        "read_stream": Permission.READ,
        "subscribe": Permission.READ,
        "read_all": NotChecked.LISTING,
        "subscribe_all": NotChecked.LISTING,
        # queues
        "enqueue": Permission.WRITE,
        "enqueue_many": Permission.WRITE,
        "dequeue": Permission.CONSUME,
        "dequeue_many": Permission.CONSUME,
        "acknowledge": Permission.CONSUME,
        "acknowledge_many": Permission.CONSUME,
        "nack": Permission.CONSUME,
        "extend": Permission.CONSUME,
        "dead_letters": Permission.READ,
        "redrive_dead_letters": Permission.ADMIN,
        "purge_dead_letters": Permission.ADMIN,
        "queue_depth": Permission.READ,
    }
)
"""Every public EventStore method: the permission it needs on the stream it names (or why it needs none)."""

GROUP_PERMISSIONS: Mapping[str, OperationRule] = MappingProxyType(
    {
        "consume": Permission.CONSUME,
        "consume_batches": Permission.CONSUME,
        "commit": Permission.CONSUME,
        "list_groups": NotChecked.LISTING,
        "describe": Permission.READ,
        "lag": Permission.READ,
        "reset_offsets": Permission.ADMIN,
        "delete": Permission.ADMIN,
    }
)
"""Every public ConsumerGroupReader method (``store.consumer_groups()``): the permission it needs on the
group's stream (``list_groups`` leaves out the groups of streams the principal holds nothing on)."""

SERVICE_PERMISSIONS: Mapping[str, OperationRule] = MappingProxyType(
    {
        "group_dead_letters.list": Permission.READ,
        "group_dead_letters.get": Permission.READ,
        "group_dead_letters.redrive": Permission.ADMIN,
        "group_dead_letters.purge": Permission.ADMIN,
        "sagas.list": NotChecked.LISTING,
        "sagas.get": Permission.READ,
        "replays.progress": Permission.READ,
        "replays.cancel": Permission.ADMIN,
        "health.stream": Permission.READ,
    }
)
"""Every operation of the services the doors serve beside the store (``sluice.security.authorized_services``:
``group_dead_letters.*`` on the group's stream, ``sagas.*`` on ``saga.<name>``, ``replays.*`` on the source
stream, ``health.stream`` on the stream)."""


def required_permission(table: Mapping[str, OperationRule], operation: str) -> Permission:
    """The permission ``operation`` needs. An operation the table does not classify as a permission
    (or does not know) needs admin: a wrapper that reaches this for it fails closed."""
    rule = table.get(operation)
    return rule if isinstance(rule, Permission) else Permission.ADMIN
