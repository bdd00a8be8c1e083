"""Sluice: event streaming on PostgreSQL — persistent streams, queues, consumer groups and more.

    import sluice

    async with await sluice.connect("postgresql://...") as store:
        await store.append("orders", [OrderPlaced(order_id="o-1")])
        async for event in store.read_stream("orders"):
            ...

This module is the public facade; everything a user needs is importable from here.
"""

from sluice.connection import connect
from sluice.core.auto_create import AutoCreateRule
from sluice.core.compression import Compression
from sluice.core.errors import (
    ConcurrencyError,
    ConflictError,
    ConnectionLostError,
    ConsumerTruncatedError,
    CorruptPayloadError,
    DatabaseBusyError,
    DuplicateConsumerError,
    DuplicateEventIdError,
    FailedPreconditionError,
    FencedError,
    GroupActiveError,
    GroupNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    MigrationError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    SchemaVersionError,
    SluiceError,
    StaleReceiptError,
    StoreClosedError,
    StreamAlreadyExistsError,
    StreamArchivedError,
    StreamDeletedError,
    StreamNotFoundError,
    StreamTypeError,
    UnauthenticatedError,
    UnavailableError,
    UnknownEventTypeError,
)
from sluice.core.event_types import EventTypeRegistry, default_registry, register_event_type, register_upcaster
from sluice.core.events import AppendResult, Direction, EventData, ExpectedOffset, GlobalPosition, RecordedEvent
from sluice.core.messages import DeadLetter, DeliveryFailure, EnqueueResult, QueueDepth, QueueMessage, Receipt
from sluice.core.options import StoreOptions
from sluice.core.streams import DeliverySemantics, PartitionInfo, StreamConfig, StreamInfo, StreamType
from sluice.services.group_commit import AppendBatcher, BatchedEventStore, batched
from sluice.store import EventStore
from sluice.store.contracts.consumer_groups import ConsumerGroupReader, GroupBatchConsumption, GroupConsumption
from sluice.store.values.consumed import ConsumedBatch, ConsumedEvent
from sluice.store.values.consumer_group_options import (
    ConsumerGroupOptions,
    OffsetCommitStrategy,
    StartFrom,
    StartPosition,
    TruncationPolicy,
)
from sluice.store.values.consumer_groups import GroupDescription, GroupSummary, MemberDescription, PartitionLag
from sluice.store.values.member_reports import MemberStats

__all__ = [
    "AppendBatcher",
    "AppendResult",
    "AutoCreateRule",
    "BatchedEventStore",
    "Compression",
    "ConcurrencyError",
    "ConflictError",
    "ConnectionLostError",
    "ConsumedBatch",
    "ConsumedEvent",
    "ConsumerGroupOptions",
    "ConsumerGroupReader",
    "ConsumerTruncatedError",
    "CorruptPayloadError",
    "DatabaseBusyError",
    "DeadLetter",
    "DeliveryFailure",
    "DeliverySemantics",
    "Direction",
    "DuplicateConsumerError",
    "DuplicateEventIdError",
    "EnqueueResult",
    "EventData",
    "EventStore",
    "EventTypeRegistry",
    "ExpectedOffset",
    "FailedPreconditionError",
    "FencedError",
    "GlobalPosition",
    "GroupActiveError",
    "GroupBatchConsumption",
    "GroupConsumption",
    "GroupDescription",
    "GroupNotFoundError",
    "GroupSummary",
    "InvalidArgumentError",
    "InvalidNameError",
    "MemberDescription",
    "MemberStats",
    "MigrationError",
    "NotFoundError",
    "OffsetCommitStrategy",
    "PartitionInfo",
    "PartitionLag",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QueueDepth",
    "QueueMessage",
    "Receipt",
    "RecordedEvent",
    "SchemaVersionError",
    "SluiceError",
    "StaleReceiptError",
    "StartFrom",
    "StartPosition",
    "StoreClosedError",
    "StoreOptions",
    "StreamAlreadyExistsError",
    "StreamArchivedError",
    "StreamConfig",
    "StreamDeletedError",
    "StreamInfo",
    "StreamNotFoundError",
    "StreamType",
    "StreamTypeError",
    "TruncationPolicy",
    "UnauthenticatedError",
    "UnavailableError",
    "UnknownEventTypeError",
    "batched",
    "connect",
    "default_registry",
    "register_event_type",
    "register_upcaster",
]
