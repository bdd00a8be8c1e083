"""The shape a batch of events has once validated and encoded: column arrays, as the backends store them.

``batches.prepare_batch`` builds them; the backends and ``compression`` consume them. They live apart from
``batches`` so that the modules ``batches`` depends on (payloads, compression) can name them without an import
circle.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["PreparedBatch", "PreparedEvent", "joined"]


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedEvent:
    """One event of a batch, validated and encoded."""

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    payload: bytes
    content_type: str
    metadata_json: str


@dataclasses.dataclass(slots=True)
class PreparedBatch:
    """Column arrays of a batch of events, in the order they were given."""

    event_ids: list[uuid.UUID] = dataclasses.field(default_factory=list)
    event_types: list[str] = dataclasses.field(default_factory=list)
    schema_versions: list[int] = dataclasses.field(default_factory=list)
    content_types: list[str] = dataclasses.field(default_factory=list)
    payloads: list[bytes] = dataclasses.field(default_factory=list)
    metadata: list[str] = dataclasses.field(default_factory=list)
    correlation_ids: list[str | None] = dataclasses.field(default_factory=list)
    """Each event's correlation id, stored with it (a joined batch holds several callers' ids)."""
    correlation_id: str | None = None
    """The batch's correlation id: the one given to ``prepare_batch``, else the current context's (for a
    joined batch, its first caller's: what its trace span and logs show)."""

    def __len__(self) -> int:
        return len(self.event_ids)

    def columns(self) -> tuple[list[Any], ...]:
        """The column arrays in the order they are stored: event ids, event types, schema versions, content
        types, payloads, metadata, correlation ids."""
        return (
            self.event_ids,
            self.event_types,
            self.schema_versions,
            self.content_types,
            self.payloads,
            self.metadata,
            self.correlation_ids,
        )

    def events(self) -> Iterator[PreparedEvent]:
        """The batch event by event."""
        for columns in zip(
            self.event_ids,
            self.event_types,
            self.schema_versions,
            self.payloads,
            self.content_types,
            self.metadata,
            strict=True,
        ):
            yield PreparedEvent(*columns)


def joined(batches: Sequence[PreparedBatch]) -> PreparedBatch:
    """One batch of the events of ``batches``, in order, each keeping its own correlation id (a group-commit
    lane joins its callers' batches)."""
    if len(batches) == 1:
        return batches[0]
    result = PreparedBatch(correlation_id=batches[0].correlation_id if batches else None)
    for batch in batches:
        result.event_ids.extend(batch.event_ids)
        result.event_types.extend(batch.event_types)
        result.schema_versions.extend(batch.schema_versions)
        result.content_types.extend(batch.content_types)
        result.payloads.extend(batch.payloads)
        result.metadata.extend(batch.metadata)
        result.correlation_ids.extend(batch.correlation_ids)
    return result
