"""What the stream pages show, computed from the store: a stream's row in the list (type, partitions,
heads, size, retention, lifecycle), an event's envelope and pretty payload, and a stream's groups."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sluice.console.rendering import pretty_json
from sluice.core.errors import GroupNotFoundError, SluiceError
from sluice.core.events import RecordedEvent
from sluice.core.streams import StreamInfo, StreamType
from sluice.services.retention import RetentionPolicy, list_policies
from sluice.store import EventStore
from sluice.store.values.consumer_groups import GroupDescription
from sluice.store.values.retention_patterns import most_specific


@dataclasses.dataclass(frozen=True, slots=True)
class StreamRow:
    info: StreamInfo
    retention: str
    may_admin: bool

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def lifecycle(self) -> str:
        if self.info.deleted:
            return "deleted"
        return "archived" if self.info.archived else "active"

    @property
    def head(self) -> int:
        """Offsets assigned over all partitions."""
        return sum(partition.head for partition in self.info.partition_heads)

    @property
    def retained_events(self) -> int:
        if self.info.type is not StreamType.PERSISTENT:
            return 0
        return sum(partition.head - partition.first_offset for partition in self.info.partition_heads)

    @property
    def last_appended_at(self) -> datetime | None:
        times = [partition.last_appended_at for partition in self.info.partition_heads if partition.last_appended_at]
        return max(times, default=None)


def describe_retention(policy: RetentionPolicy | None) -> str:
    """A policy's limits in a few words ("—" when no policy applies)."""
    if policy is None:
        return "—"
    limits = policy.limits
    parts = []
    if limits.max_age is not None:
        parts.append(f"max age {limits.max_age}")
    if limits.max_event_count is not None:
        parts.append(f"max {limits.max_event_count} events/partition")
    if limits.max_bytes is not None:
        parts.append(f"max {limits.max_bytes} bytes")
    parts.append("enforce" if limits.enforce else "respects consumers")
    return f"{', '.join(parts)} (policy {policy.pattern!r})"


async def retention_policies(store: EventStore) -> list[RetentionPolicy]:
    """The stored retention policies (none when the backend keeps none)."""
    try:
        return await list_policies(store)
    except SluiceError:
        return []


def retention_of(policies: list[RetentionPolicy], stream_name: str) -> str:
    return describe_retention(most_specific(policies, stream_name))


@dataclasses.dataclass(frozen=True, slots=True)
class EventView:
    """An event's envelope and its payload, ready to print."""

    stream: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    schema_version: int
    content_type: str
    correlation_id: str | None
    timestamp: datetime
    metadata: str
    payload: str

    def tail_message(self) -> str:
        """The event as one server-sent event's data (JSON)."""
        document: dict[str, Any] = dataclasses.asdict(self)
        document["timestamp"] = self.timestamp.isoformat()
        return json.dumps(document, ensure_ascii=False)


def event_view(event: RecordedEvent) -> EventView:
    return EventView(
        stream=event.stream_name,
        partition=event.partition,
        offset=event.offset,
        event_id=str(event.event_id),
        event_type=event.event_type,
        schema_version=event.schema_version,
        content_type=event.content_type,
        correlation_id=event.correlation_id,
        timestamp=event.timestamp,
        metadata=pretty_json(dict(event.metadata)),
        payload=pretty_json(event.data),
    )


async def groups_of(store: EventStore, stream_name: str) -> list[GroupDescription]:
    """The stream's consumer groups, described (lag per partition)."""
    reader = store.consumer_groups()
    groups = []
    for summary in await reader.list_groups():
        if summary.stream_name == stream_name:
            try:
                groups.append(await reader.describe(stream_name, summary.group_id))
            except GroupNotFoundError:
                continue  # deleted since it was listed
    return groups
