"""EventData: an event to write, before the store gives it a stream, a partition and an offset.

It sits below the event-type registry (``event_types.py``), which turns registered classes into it,
and below ``events.py``, which decodes recorded events with that registry.

An event's id is made when it is first needed, not when the event is built: queues never use it, and
an append makes the ids of a whole batch from one ``os.urandom`` call (``new_event_ids``), which costs
a fraction of one ``uuid.uuid4()`` per event. Once made, the id is kept, so ``event.event_id`` is the
same on every access and a retried append of the same objects is deduplicated as before. (Making it is not
locked: two threads reading the id of one event whose id nobody has read yet could each make one. Sluice
shares no EventData between threads; a caller that does can read ``event_id`` once before sharing it.)
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["NOT_MADE_YET", "EventData", "assign_event_id", "has_event_id", "new_event_ids", "stored_event_id"]


class _NotMadeYet:
    """The value of an event id nobody has asked for yet (distinct from None, which a caller may pass)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<event id not made yet>"


NOT_MADE_YET: Final[Any] = _NotMadeYet()
"""What ``stored_event_id`` returns for an event whose id is not made yet."""


@dataclasses.dataclass(frozen=True, slots=True)
class EventData:
    """An event to write, given explicitly. Pydantic models and dataclasses are converted to this.

    ``data`` is anything JSON can hold, or ``bytes`` for an opaque payload.
    ``event_id`` makes appends idempotent: a stream stores each id once. Left out, a random (version 4)
    UUID is made on first access and kept.
    """

    event_type: str
    data: Any
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    event_id: uuid.UUID = NOT_MADE_YET
    schema_version: int = 1


# ``event_id`` is a slot; a property over it makes the id on first read. Its setter is the slot's own, so the
# dataclass's __init__ and unpickling store ids as before, while assignment by callers still raises
# FrozenInstanceError (the dataclass's __setattr__ refuses every field). Equality, hash, repr and pickling
# read the property, so they see (and keep) the same id as ``event.event_id``.
_event_id_slot: Any = EventData.__dict__["event_id"]
_read_slot = _event_id_slot.__get__
_write_slot = _event_id_slot.__set__


def _event_id(event: EventData) -> uuid.UUID:
    event_id: uuid.UUID = _read_slot(event, EventData)
    if event_id is NOT_MADE_YET:
        [event_id] = new_event_ids(1)
        _write_slot(event, event_id)
    return event_id


setattr(EventData, "event_id", property(_event_id, _write_slot, doc="The event's id (made on first access)."))  # noqa: B010  (mypy must keep seeing the field)


# The dataclass's generated __init__ stores each field with ``object.__setattr__`` (the class is frozen), a
# Python-level call per field: 1.01 us per event. This one stores them through the slots' own setters, 0.54 us,
# with the same parameters and defaults (a fresh dict for metadata left out; None given is kept). Callers build
# one EventData per event they write, so it is on every path's hot loop.
class _NewDict:
    """The default of ``metadata``: a new dict for each event (the field's ``default_factory``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<a new dict>"


_NO_METADATA: Any = _NewDict()
_set_event_type = EventData.__dict__["event_type"].__set__
_set_data = EventData.__dict__["data"].__set__
_set_metadata = EventData.__dict__["metadata"].__set__
_set_schema_version = EventData.__dict__["schema_version"].__set__


def _init(  # noqa: PLR0917  (the dataclass's own signature: every field may be positional)
    self: EventData,
    event_type: str,
    data: Any,
    metadata: Mapping[str, Any] = _NO_METADATA,
    event_id: uuid.UUID = NOT_MADE_YET,
    schema_version: int = 1,
) -> None:
    _set_event_type(self, event_type)
    _set_data(self, data)
    _set_metadata(self, {} if metadata is _NO_METADATA else metadata)
    _write_slot(self, event_id)
    _set_schema_version(self, schema_version)


_init.__qualname__ = "EventData.__init__"
setattr(EventData, "__init__", _init)  # noqa: B010  (mypy must keep seeing the dataclass's own signature)


stored_event_id: Final[Callable[[EventData], Any]] = _read_slot
"""The event's id as given or already made, without making one: ``NOT_MADE_YET`` when it has none yet (the
slot's own getter, so a batch's loop pays no Python call for it)."""


def has_event_id(event: EventData) -> bool:
    """Whether the event's id was given or already made (reading ``event_id`` would make one)."""
    return _read_slot(event, EventData) is not NOT_MADE_YET


assign_event_id: Final[Callable[[EventData, uuid.UUID], None]] = _write_slot
"""Give an event that has no id yet (``has_event_id`` is false) the id it keeps from now on (the slot's own
setter, as ``stored_event_id``)."""


# Version 4 (random) UUIDs as uuid.uuid4() makes them: its version and variant bits over random bits.
_RANDOM_BITS: Final = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_4_BITS: Final = (4 << 76) | (0x8000 << 48)
_new_uuid = object.__new__
_set_uuid_field = object.__setattr__
_UNKNOWN_SAFETY: Final = uuid.SafeUUID.unknown


def new_event_ids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) UUIDs, equal to what ``uuid.uuid4()`` would make of the same random bytes,
    from one ``os.urandom`` call. ``uuid.UUID(bytes=..., version=4)`` checks and converts its argument in
    Python code; the UUIDs are built from their integers here instead, as ``UUID.__setstate__`` does."""
    random = os.urandom(16 * count)
    ids: list[uuid.UUID] = []
    for start in range(0, 16 * count, 16):
        event_id = _new_uuid(uuid.UUID)
        _set_uuid_field(event_id, "int", int.from_bytes(random[start : start + 16]) & _RANDOM_BITS | _VERSION_4_BITS)
        _set_uuid_field(event_id, "is_safe", _UNKNOWN_SAFETY)
        ids.append(event_id)
    return ids


def give_event_ids(events: Sequence[EventData]) -> None:
    """Give every event that has no id yet one it keeps (as reading ``event_id`` would), made together from one
    ``os.urandom`` call: a client encoding a batch paid one system call per event (profiled: a quarter of the
    gRPC client's CPU for batches of 100)."""
    missing = [event for event in events if _read_slot(event, EventData) is NOT_MADE_YET]
    for event, event_id in zip(missing, new_event_ids(len(missing)), strict=True):
        _write_slot(event, event_id)
