"""The event-type registry: names, versions, upcasters and decode errors."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel

from sluice import EventData, EventTypeRegistry, InvalidArgumentError, SchemaVersionError, UnknownEventTypeError


def test_registered_classes_round_trip_with_their_name_and_version() -> None:
    registry = EventTypeRegistry()

    @registry.register("order.placed", version=3)
    class OrderPlaced(BaseModel):
        order_id: str

    data = registry.to_event_data(OrderPlaced(order_id="o-1"))
    assert (data.event_type, data.schema_version, data.data) == ("order.placed", 3, {"order_id": "o-1"})
    assert registry.decode("order.placed", 3, data.data) == OrderPlaced(order_id="o-1")


def test_unregistered_classes_register_themselves_at_version_one() -> None:
    registry = EventTypeRegistry()

    @dataclasses.dataclass
    class Shipped:
        carrier: str

    data = registry.to_event_data(Shipped("dhl"))
    assert (data.event_type, data.schema_version) == ("Shipped", 1)
    assert registry.decode("Shipped", 1, {"carrier": "dhl"}) == Shipped("dhl")


def test_upcasters_chain_from_old_versions() -> None:
    registry = EventTypeRegistry()

    @registry.register(version=3)
    class Renamed(BaseModel):
        full_name: str
        country: str

    @registry.upcaster("Renamed", from_version=1)
    def split(data: dict[str, str]) -> dict[str, str]:
        return {"full_name": data["name"]}

    @registry.upcaster("Renamed", from_version=2)
    def add_country(data: dict[str, str]) -> dict[str, str]:
        return {**data, "country": "unknown"}

    assert registry.decode("Renamed", 1, {"name": "Ada"}) == Renamed(full_name="Ada", country="unknown")
    assert registry.decode("Renamed", 2, {"full_name": "Ada"}) == Renamed(full_name="Ada", country="unknown")


def test_decode_errors_say_what_to_do() -> None:
    registry = EventTypeRegistry()

    @registry.register(version=2)
    class Versioned(BaseModel):
        value: int

    with pytest.raises(UnknownEventTypeError, match="no class is registered for event type 'Missing'"):
        registry.decode("Missing", 1, {})
    with pytest.raises(SchemaVersionError, match="no upcaster from version 1"):
        registry.decode("Versioned", 1, {"value": 1})
    with pytest.raises(SchemaVersionError, match="newer than the registered version 2: upgrade this consumer"):
        registry.decode("Versioned", 3, {"value": 1})
    with pytest.raises(SchemaVersionError, match="does not fit Versioned"):
        registry.decode("Versioned", 2, {"value": "not a number"})
    with pytest.raises(InvalidArgumentError, match="schema version must be at least 1"):
        registry.register(version=0)
    with pytest.raises(InvalidArgumentError, match="give a pydantic model, a dataclass or EventData"):
        registry.to_event_data({"a": 1})


def test_event_data_passes_through_unchanged() -> None:
    event = EventData("Custom", {"x": 1}, metadata={"k": "v"}, schema_version=4)
    assert EventTypeRegistry().to_event_data(event) is event
