"""The event-type registry: maps event type names to classes and back, with schema versions
and upcasters so that old events still decode after their class has evolved.

    registry = EventTypeRegistry()

    @registry.register(version=2)
    class OrderPlaced(BaseModel):
        order_id: str
        total_cents: int

    @registry.upcaster("OrderPlaced", from_version=1)
    def _euros_to_cents(data: dict[str, Any]) -> dict[str, Any]:
        return {"order_id": data["order_id"], "total_cents": round(data["total"] * 100)}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from sluice.core.errors import InvalidArgumentError, SchemaVersionError, UnknownEventTypeError
from sluice.core.event_data import EventData

ClassT = TypeVar("ClassT", bound=type)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass(slots=True)
class _RegisteredType:
    event_class: type
    version: int
    adapter: TypeAdapter[Any]


class EventTypeRegistry:
    """Event type names ↔ classes, each with a current schema version and upcasters from older ones."""

    def __init__(self) -> None:
        self._by_name: dict[str, _RegisteredType] = {}
        self._names_by_class: dict[type, str] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._adapters: dict[type, TypeAdapter[Any]] = {}

    def register(self, name: str | None = None, *, version: int = 1) -> Callable[[ClassT], ClassT]:
        """Class decorator: register a pydantic model or dataclass under ``name`` (default: class name)."""
        if version < 1:
            raise InvalidArgumentError(f"schema version must be at least 1, got {version}")

        def decorate(event_class: ClassT) -> ClassT:
            type_name = name or event_class.__name__
            self._by_name[type_name] = _RegisteredType(event_class, version, self._adapter(event_class))
            self._names_by_class[event_class] = type_name
            return event_class

        return decorate

    def upcaster(self, event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: a function turning ``event_type``'s data at ``from_version`` into ``from_version + 1``."""

        def decorate(function: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = function
            return function

        return decorate

    def name_and_version(self, event_class: type) -> tuple[str, int]:
        """The event type name and current schema version to store for instances of ``event_class``.

        A class appended without being registered is registered here at version 1 under its own
        name (unless another class holds that name), so that ``decode`` works in the same process.
        """
        type_name = self._names_by_class.get(event_class)
        if type_name is None:
            type_name = event_class.__name__
            if type_name not in self._by_name:
                self.register(type_name)(event_class)
            return type_name, 1
        return type_name, self._by_name[type_name].version

    def to_event_data(self, event: object) -> EventData:
        """Convert an EventData, pydantic model or dataclass instance into EventData."""
        if isinstance(event, EventData):
            return event
        if isinstance(event, BaseModel) or (dataclasses.is_dataclass(event) and not isinstance(event, type)):
            type_name, version = self.name_and_version(type(event))
            data = self._adapter(type(event)).dump_python(event, mode="json")
            return EventData(event_type=type_name, data=data, schema_version=version)
        raise InvalidArgumentError(
            f"cannot append {type(event).__name__!r}: give a pydantic model, a dataclass or EventData"
        )

    def decode(self, event_type: str, schema_version: int, data: Any) -> Any:
        """Rebuild an instance of the class registered for ``event_type``, upcasting as needed."""
        registered = self._by_name.get(event_type)
        if registered is None:
            raise UnknownEventTypeError(
                f"no class is registered for event type {event_type!r}; register one with "
                "@registry.register() or read event.data instead"
            )
        version = schema_version
        while version < registered.version:
            upcast = self._upcasters.get((event_type, version))
            if upcast is None:
                raise SchemaVersionError(
                    f"event type {event_type!r} is stored at version {version} but registered at "
                    f"version {registered.version}, and no upcaster from version {version} is registered"
                )
            data = upcast(data)
            version += 1
        if version > registered.version:
            raise SchemaVersionError(
                f"event type {event_type!r} is stored at version {version}, newer than the registered "
                f"version {registered.version}: upgrade this consumer"
            )
        try:
            return registered.adapter.validate_python(data)
        except ValidationError as error:
            raise SchemaVersionError(
                f"event of type {event_type!r} (version {schema_version}) does not fit "
                f"{registered.event_class.__name__}: {error}"
            ) from error

    def _adapter(self, event_class: type) -> TypeAdapter[Any]:
        adapter = self._adapters.get(event_class)
        if adapter is None:
            adapter = TypeAdapter(event_class)
            self._adapters[event_class] = adapter
        return adapter


default_registry = EventTypeRegistry()
"""The registry used when none is given to ``connect`` or ``decode``."""

register_event_type = default_registry.register
register_upcaster = default_registry.upcaster
