"""The typed errors Sluice raises: one base class, one subclass per thing that can go wrong.

Backends translate driver errors into these, so callers never catch asyncpg exceptions.
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""

    code: str = "sluice_error"


class InvalidArgumentError(SluiceError, ValueError):
    """An argument is malformed or out of range (negative offset, zero timeout, ...)."""

    code = "invalid_argument"


class InvalidNameError(InvalidArgumentError):
    """A stream, queue, group or schema name does not match its documented pattern."""

    code = "invalid_name"


class PayloadTooLargeError(InvalidArgumentError):
    """An event or message payload is larger than the configured limit."""

    code = "payload_too_large"

    def __init__(self, *, size: int, limit: int, event_type: str) -> None:
        super().__init__(
            f"payload of event type {event_type!r} is {size} bytes, over the limit of {limit} bytes "
            "(raise max_payload_bytes when connecting if this is intended)"
        )
        self.size = size
        self.limit = limit
        self.event_type = event_type


class StreamNotFoundError(SluiceError, LookupError):
    """The named stream or queue does not exist."""

    code = "stream_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"stream {name!r} does not exist")
        self.name = name


class StreamAlreadyExistsError(SluiceError):
    """create_stream was called for a name that is taken with a different configuration."""

    code = "stream_already_exists"

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"stream {name!r} already exists: {detail}")
        self.name = name


class StreamTypeError(SluiceError, TypeError):
    """A persistent-stream operation was used on a queue, or the other way round."""

    code = "wrong_stream_type"


class ConcurrencyError(SluiceError):
    """An append's expected offset did not match the stream's actual position."""

    code = "concurrency_conflict"

    def __init__(self, *, stream_name: str, partition: int, expected: str, head: int) -> None:
        last = "none (the stream is empty)" if head == 0 else str(head - 1)
        super().__init__(
            f"stream {stream_name!r} partition {partition}: expected {expected}, "
            f"but its last offset is {last} (head {head})"
        )
        self.stream_name = stream_name
        self.partition = partition
        self.head = head


class DuplicateEventIdError(SluiceError):
    """A batch mixed event ids the stream already holds with new ones, so it is neither new nor a retry."""

    code = "duplicate_event_id"


class StaleReceiptError(SluiceError):
    """A queue receipt no longer owns its message: the lease expired and the message was redelivered,
    or it was already acknowledged or dead-lettered. Nothing was changed."""

    code = "stale_receipt"

    def __init__(self, queue_name: str, receipt: object) -> None:
        super().__init__(
            f"receipt {receipt} for queue {queue_name!r} is stale: the message was redelivered, "
            "acknowledged or dead-lettered since it was handed out; nothing was changed"
        )
        self.queue_name = queue_name
        self.receipt = receipt


class UnknownEventTypeError(SluiceError, LookupError):
    """decode() met an event type that no registered class answers to."""

    code = "unknown_event_type"


class SchemaVersionError(SluiceError):
    """A stored event's schema version cannot be upcast to the registered version."""

    code = "schema_version"


class StoreClosedError(SluiceError):
    """The store was used after close()."""

    code = "store_closed"


class ConnectionLostError(SluiceError, ConnectionError):
    """The database connection failed during an operation. For an append this means the batch
    was either written whole or not at all; retrying with the same event ids is safe."""

    code = "connection_lost"


class MigrationError(SluiceError):
    """The database schema is missing, newer than this code, or a migration failed."""

    code = "migration_error"


class FencedError(SluiceError):
    """A consumer-group member committed (or acted) for a partition it no longer owns: the group
    rebalanced, its session expired, or an operator reset the offsets. Nothing was committed for
    those partitions; the member stops delivering them and rejoins."""

    code = "fenced"

    def __init__(self, message: str, partitions: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.partitions = partitions


class GroupNotFoundError(SluiceError, LookupError):
    """The consumer group does not exist (it is created when its first member joins)."""

    code = "group_not_found"

    def __init__(self, stream_name: str, group_id: str) -> None:
        super().__init__(f"consumer group {group_id!r} of stream {stream_name!r} does not exist")
        self.stream_name = stream_name
        self.group_id = group_id


class GroupActiveError(SluiceError):
    """An offset reset or a delete was refused because the group has active members (use force=True
    to do it anyway; the members are then fenced)."""

    code = "group_active"


class UnauthenticatedError(SluiceError):
    """A request to the gRPC or REST API carried no credentials, or credentials that are not valid."""

    code = "unauthenticated"


class PermissionDeniedError(SluiceError, PermissionError):
    """The caller is authenticated but not allowed to do this (to this stream)."""

    code = "permission_denied"

    def __init__(self, *, principal: str, action: str, resource: str) -> None:
        super().__init__(f"{principal!r} may not {action} {resource!r}")
        self.principal = principal
        self.action = action
        self.resource = resource


class HandlerSpecError(InvalidArgumentError):
    """A ``--handler module:function`` spec is malformed, names a module that cannot be imported or
    an attribute that does not exist, or names something that is not callable."""

    code = "invalid_handler"


class SinkDeliveryError(SluiceError):
    """An HTTP sink did not accept an event: it answered with a non-2xx status, or the request failed
    (connection refused, timeout, ...). ``status_code`` is None for transport failures."""

    code = "sink_delivery_failed"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RemoteCallError(SluiceError, ConnectionError):
    """A call to a Sluice server (``sluice.client``) failed for a reason that is not a Sluice error:
    the server is unreachable or shutting down, the deadline passed, or the call was cancelled.
    ``status`` names the gRPC status (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...)."""

    code = "remote_call_failed"

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status
