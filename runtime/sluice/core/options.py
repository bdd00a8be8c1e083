"""Settings a store is opened with; ``connect(url, **options)`` builds one of these."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from sluice.core.auto_create import AutoCreateRule, auto_create_config
from sluice.core.names import validate_schema_name
from sluice.core.streams import StreamConfig, StreamType
from sluice.core.validation import SluiceModel

ONE_MEBIBYTE = 1024 * 1024


class StoreOptions(SluiceModel):
    """Behaviour shared by every backend. Unknown options are an error, not silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_name: str = "sluice"
    """PostgreSQL schema that holds every Sluice table (ignored by the memory backend)."""
    max_payload_bytes: Annotated[int, Field(ge=1, le=256 * ONE_MEBIBYTE)] = ONE_MEBIBYTE
    poll_interval: timedelta = timedelta(milliseconds=500)
    """How often idle readers re-read when no wake-up arrives: consumer-group members, queue
    consumers and saga workers always; subscriptions only while appends of other processes cannot
    be heard (the PostgreSQL notification channel is down, until it reconnects and wakes them)."""
    listening_poll_interval: timedelta = timedelta(seconds=30)
    """How often idle subscriptions re-read while every append is heard (the notification channel
    listens; always on the memory backend). A notification wakes a subscription at once; this is
    only the safety net for one never sent, such as by a producer that died between its commit and
    its NOTIFY. Setting it to ``poll_interval`` makes them poll all the time."""
    auto_create_streams: bool = True
    """Create a single-partition stream on first append, and a queue on first enqueue (the default
    for names that no ``auto_create_rules`` pattern matches)."""
    auto_create_rules: tuple[AutoCreateRule, ...] = ()
    """Auto-creation per name pattern: a template to create matching streams with, or a deny rule.
    The most specific matching pattern wins (see sluice.core.auto_create)."""
    deleted_stream_grace_period: timedelta = timedelta(days=7)
    """How long a soft-deleted stream can be restored; ``purge_deleted_streams()`` removes the
    streams deleted longer ago than this for good."""
    read_page_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    pool_min_size: Annotated[int, Field(ge=0, le=1000)] = 1
    pool_max_size: Annotated[int, Field(ge=1, le=1000)] = 10
    migrate: bool = False
    """Apply pending migrations on connect (otherwise connect fails if the schema is behind)."""

    @field_validator("schema_name")
    @classmethod
    def _schema_name_is_valid(cls, value: str) -> str:
        return validate_schema_name(value)

    def auto_create_config(self, name: str, stream_type: StreamType) -> StreamConfig | None:
        """How a first append (enqueue) creates the missing stream (queue) ``name``; None if it does not."""
        return auto_create_config(self.auto_create_rules, self.auto_create_streams, name, stream_type)

    @field_validator("poll_interval", "listening_poll_interval", "deleted_stream_grace_period")
    @classmethod
    def _duration_is_positive(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"{info.field_name} must be positive")
        return value
