"""The typed errors Sluice raises: one base class, seven categories, one subclass per thing that can go wrong.

Every error belongs to exactly one category (``category_of``): invalid argument, not found, conflict,
failed precondition, unavailable, unauthenticated, permission denied. The doors (REST, gRPC, CLI) map
categories, not leaves (plus a short override list with a reason per leaf), so a new error class needs
no new table entry. Backends translate driver errors into these, so callers never catch asyncpg
exceptions.
"""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "ConcurrencyError",
    "ConflictError",
    "ConnectionLostError",
    "ConsumerTruncatedError",
    "CorruptPayloadError",
    "DatabaseBusyError",
    "DeadLetterNotFoundError",
    "DuplicateConsumerError",
    "DuplicateEventIdError",
    "FailedPreconditionError",
    "FencedError",
    "GroupActiveError",
    "GroupNotFoundError",
    "HandlerSpecError",
    "InvalidArgumentError",
    "InvalidNameError",
    "MigrationError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProjectionConflictError",
    "ProjectionDatabaseError",
    "ProjectionHandlerError",
    "ProjectionNotFoundError",
    "ProjectionTargetError",
    "RemoteCallError",
    "ReplayConflictError",
    "ReplayFailedError",
    "ReplayNotFoundError",
    "ReplayTargetUnavailableError",
    "RetentionPolicyNotFoundError",
    "RetentionUnavailableError",
    "SagaConflictError",
    "SagaDefinitionError",
    "SagaNotFoundError",
    "SchemaVersionError",
    "SinkDeliveryError",
    "SluiceError",
    "StaleReceiptError",
    "StoreClosedError",
    "StreamAlreadyExistsError",
    "StreamArchivedError",
    "StreamDeletedError",
    "StreamNotFoundError",
    "StreamTypeError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnknownEventTypeError",
    "category_of",
]


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""

    code: str = "sluice_error"


class InvalidArgumentError(SluiceError, ValueError):
    """Category, and an error of its own: an argument is malformed or out of range (negative offset,
    zero timeout, a number the database cannot store, ...). Nothing was changed."""

    code = "invalid_argument"


class NotFoundError(SluiceError, LookupError):
    """Category: the named thing (stream, group, saga, replay, dead letter, ...) does not exist."""

    code = "not_found"


class ConflictError(SluiceError):
    """Category: the request lost a race or clashes with what is stored (an expected offset, a version,
    a name taken with another definition). Nothing was changed; reload and decide again."""

    code = "conflict"


class FailedPreconditionError(SluiceError):
    """Category: the system is not in a state that allows this (a stale receipt or epoch, an archived
    stream, an active group, ...). Retrying unchanged does not help until that state changes."""

    code = "failed_precondition"


class UnavailableError(SluiceError):
    """Category: a dependency (the database, a server, a sink) cannot serve the request right now.
    Retrying later, with backoff, is the expected answer."""

    code = "unavailable"


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


class StreamNotFoundError(NotFoundError):
    """The named stream or queue does not exist."""

    code = "stream_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"stream {name!r} does not exist")
        self.name = name


class StreamAlreadyExistsError(ConflictError):
    """create_stream was called for a name that is taken with a different configuration."""

    code = "stream_already_exists"

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"stream {name!r} already exists: {detail}")
        self.name = name


class StreamTypeError(FailedPreconditionError, TypeError):
    """A persistent-stream operation was used on a queue, or the other way round."""

    code = "wrong_stream_type"


class ConcurrencyError(ConflictError):
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


class DuplicateEventIdError(ConflictError):
    """A batch mixed event ids the stream already holds with new ones, so it is neither new nor a retry."""

    code = "duplicate_event_id"


class StaleReceiptError(FailedPreconditionError):
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


class UnknownEventTypeError(NotFoundError):
    """decode() met an event type that no registered class answers to."""

    code = "unknown_event_type"


class SchemaVersionError(FailedPreconditionError):
    """A stored event's schema version cannot be upcast to the registered version."""

    code = "schema_version"


class StoreClosedError(UnavailableError):
    """The store was used after close()."""

    code = "store_closed"


class ConnectionLostError(UnavailableError, ConnectionError):
    """The database could not be reached (refused, starting up, too many connections) or the connection
    failed during an operation. For an append this means the batch
    was either written whole or not at all; retrying with the same event ids is safe."""

    code = "connection_lost"


class MigrationError(UnavailableError):
    """The database schema is missing, newer than this code, or a migration failed."""

    code = "migration_error"


class FencedError(FailedPreconditionError):
    """A consumer-group member committed (or acted) for a partition it no longer owns: the group
    rebalanced, its session expired, or an operator reset the offsets. Nothing was committed for
    those partitions; the member stops delivering them and rejoins."""

    code = "fenced"

    def __init__(self, message: str, partitions: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.partitions = partitions


class DuplicateConsumerError(FencedError):
    """Another process joined the consumer group with this member's consumer id after this one did
    (static membership: the newest join wins, as with Kafka's group.instance.id). This process is
    fenced for good: it stops consuming. Two live processes must not share one consumer id."""

    code = "duplicate_consumer"


class GroupNotFoundError(NotFoundError):
    """The consumer group does not exist (it is created when its first member joins)."""

    code = "group_not_found"

    def __init__(self, stream_name: str, group_id: str) -> None:
        super().__init__(f"consumer group {group_id!r} of stream {stream_name!r} does not exist")
        self.stream_name = stream_name
        self.group_id = group_id


class GroupActiveError(FailedPreconditionError):
    """An offset reset or a delete was refused because the group has active members (use force=True
    to do it anyway; the members are then fenced)."""

    code = "group_active"


class UnauthenticatedError(SluiceError):
    """Category, and an error of its own: a request to the gRPC or REST API carried no credentials, or
    credentials that are not valid."""

    code = "unauthenticated"


class PermissionDeniedError(SluiceError, PermissionError):
    """Category, and an error of its own: the caller is authenticated but not allowed to do this (to this stream)."""

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


class SinkDeliveryError(UnavailableError):
    """An HTTP sink did not accept an event: it answered with a non-2xx status, or the request failed
    (connection refused, timeout, ...). ``status_code`` is None for transport failures."""

    code = "sink_delivery_failed"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RemoteCallError(UnavailableError, ConnectionError):
    """A call to a Sluice server (``sluice.client``) failed for a reason that is not a Sluice error:
    the server is unreachable or shutting down, the deadline passed, or the call was cancelled.
    ``status`` names the gRPC status (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...)."""

    code = "remote_call_failed"

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class ProjectionConflictError(ConflictError):
    """A projection's checkpoint moved under this runner: another runner of the same projection applied
    the batch (or reset it) first. Nothing of this runner's batch was applied; reload and continue."""

    code = "projection_conflict"


class ProjectionTargetError(InvalidArgumentError):
    """A projection target is not valid: a malformed declarative SQL target (table, key columns,
    upserts, JSON paths) or a target table that exists and is not one Sluice maintains."""

    code = "invalid_projection_target"


class ProjectionNotFoundError(NotFoundError):
    """No projection of that name has ever run against this store."""

    code = "projection_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"projection {name!r} does not exist (it is created when it first runs)")
        self.name = name


class SagaConflictError(ConflictError):
    """A saga instance changed since it was read (optimistic concurrency): another worker saved it
    first. Nothing was saved; reload the instance and try again."""

    code = "saga_conflict"

    def __init__(self, saga_id: object, expected_version: int) -> None:
        super().__init__(f"saga {saga_id} is no longer at version {expected_version}: reload it and retry")
        self.saga_id = saga_id
        self.expected_version = expected_version


class SagaNotFoundError(NotFoundError):
    """No saga instance has this id."""

    code = "saga_not_found"

    def __init__(self, saga_id: object) -> None:
        super().__init__(f"saga {saga_id} does not exist")
        self.saga_id = saga_id


class SagaDefinitionError(InvalidArgumentError):
    """A saga definition is malformed: no steps, two steps with one name, a bad name or timeout."""

    code = "invalid_saga_definition"


class ReplayNotFoundError(NotFoundError):
    """No replay of that name exists (a replay is recorded when it first starts)."""

    code = "replay_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"replay {name!r} does not exist")
        self.name = name


class ReplayConflictError(ConflictError):
    """A replay of that name exists with another definition (source, start or target), or another run
    of the same replay took over from this one. Nothing was changed; pick a new name to replay again."""

    code = "replay_conflict"


class ReplayTargetUnavailableError(FailedPreconditionError):
    """The replay's target cannot be used: a projection target without the projections runtime, a
    consumer-group target that does not exist, or a target that is the source stream itself."""

    code = "replay_target_unavailable"


class ReplayFailedError(FailedPreconditionError):
    """A replay stopped on an error (its handler raised, the target refused an event, the database
    went away). Its progress is kept: running it again resumes from the last recorded position."""

    code = "replay_failed"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"replay {name!r} failed: {reason} (run it again to resume from its last position)")
        self.name = name
        self.reason = reason


class DeadLetterNotFoundError(NotFoundError):
    """No dead letter with this id belongs to this consumer group of this stream (it may have been
    purged, or delivered after a redrive)."""

    code = "dead_letter_not_found"

    def __init__(self, *, stream_name: str, group_id: str, dead_letter_id: int) -> None:
        super().__init__(f"consumer group {group_id!r} of stream {stream_name!r} has no dead letter {dead_letter_id}")
        self.stream_name = stream_name
        self.group_id = group_id
        self.dead_letter_id = dead_letter_id


class StreamArchivedError(FailedPreconditionError):
    """An append or enqueue was refused because the stream (queue) is archived: it is read-only until
    ``unarchive_stream``. Reads, subscriptions and consumer groups still work. Nothing was stored."""

    code = "stream_archived"

    def __init__(self, name: str) -> None:
        super().__init__(f"stream {name!r} is archived (read-only): unarchive it to write to it again")
        self.name = name


class StreamDeletedError(StreamNotFoundError):
    """The stream was soft-deleted: it is hidden and refuses writes, and its name stays taken until it
    is restored (``restore_stream``, within the grace period) or purged (``purge_deleted_streams``)."""

    code = "stream_deleted"

    def __init__(self, name: str, detail: str = "restore it or purge it") -> None:
        super().__init__(name)
        self.args = (f"stream {name!r} was deleted (soft delete): {detail}",)
        self.detail = detail


class CorruptPayloadError(FailedPreconditionError):
    """A stored compressed payload could not be decompressed: it is corrupt, names an unknown encoding,
    or would decompress to more than ``max_payload_bytes`` (a decompression bomb). Nothing was decoded."""

    code = "corrupt_payload"


class ConsumerTruncatedError(FailedPreconditionError):
    """A consumer group's committed offset fell behind the start of a partition's log: retention (in
    enforce mode, or after the group was inactive) pruned events the group had not consumed. Raised to
    a member whose group's policy is ``on_truncation=fail``; reset the group's offsets to go on."""

    code = "consumer_truncated"

    def __init__(self, *, stream_name: str, group_id: str, partition: int, expected_offset: int, first_offset: int):
        super().__init__(
            f"consumer group {group_id!r} of {stream_name!r} was at offset {expected_offset} of partition "
            f"{partition}, but retention pruned the partition up to offset {first_offset}: "
            f"{first_offset - expected_offset} event(s) were never delivered. Reset the group's offsets "
            "(sluice groups reset) or consume with on_truncation=earliest or latest"
        )
        self.stream_name = stream_name
        self.group_id = group_id
        self.partition = partition
        self.expected_offset = expected_offset
        self.first_offset = first_offset


class RetentionUnavailableError(FailedPreconditionError):
    """This store offers no retention (it is not one of Sluice's backends, or wraps one without it)."""

    code = "retention_unavailable"


class RetentionPolicyNotFoundError(NotFoundError):
    """No retention policy has that pattern."""

    code = "retention_policy_not_found"

    def __init__(self, pattern: str) -> None:
        super().__init__(f"no retention policy has the pattern {pattern!r}")
        self.pattern = pattern


class ProjectionHandlerError(FailedPreconditionError):
    """A projection's handler (or batch handler) raised while applying a batch. In same-database mode
    nothing of the batch was committed; the batch is applied again when the projection runs again. The
    handler's own exception is the ``__cause__``."""

    code = "projection_handler_failed"


class ProjectionDatabaseError(FailedPreconditionError):
    """A statement of a projection's own transaction failed in the database (its checkpoint update, a
    hook's DDL, or the COMMIT), for a reason other than a lost connection. Nothing of that transaction
    was applied; the database's error is the ``__cause__``."""

    code = "projection_database_error"


class DatabaseBusyError(UnavailableError):
    """The database refused or cancelled the work for now: a statement timeout or cancellation, a
    deadlock or serialization failure, a lock not available, insufficient resources. The statement's
    transaction was rolled back, so nothing of it was changed; retry later."""

    code = "database_busy"


CATEGORIES: tuple[type[SluiceError], ...] = (
    InvalidArgumentError,
    NotFoundError,
    ConflictError,
    FailedPreconditionError,
    UnavailableError,
    UnauthenticatedError,
    PermissionDeniedError,
)
"""The seven categories every Sluice error belongs to, exactly one each."""


def category_of(error: SluiceError | type[SluiceError]) -> type[SluiceError] | None:
    """The category an error (or error class) belongs to; None only for SluiceError itself or a class
    outside the hierarchy (a test proves every class has exactly one)."""
    error_class = error if isinstance(error, type) else type(error)
    matches = [category for category in CATEGORIES if issubclass(error_class, category)]
    return matches[0] if len(matches) == 1 else None
