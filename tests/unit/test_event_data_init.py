"""EventData's constructor (core/event_data.py stores the fields through the slots' setters instead of the
frozen dataclass's ``object.__setattr__`` calls): the same parameters, defaults and errors as the dataclass's."""

from __future__ import annotations

import dataclasses
import inspect
import uuid

import pytest

from sluice import EventData
from sluice.core.event_data import has_event_id


def test_the_parameters_are_the_fields_in_order_with_their_defaults() -> None:
    parameters = list(inspect.signature(EventData).parameters.values())
    assert [parameter.name for parameter in parameters] == [field.name for field in dataclasses.fields(EventData)]
    assert parameters[0].default is inspect.Parameter.empty
    assert parameters[1].default is inspect.Parameter.empty
    assert parameters[4].default == 1


def test_positional_and_keyword_arguments_land_in_their_fields() -> None:
    event_id = uuid.uuid4()
    by_position = EventData("Placed", {"n": 1}, {"tenant": "t"}, event_id, 2)
    by_keyword = EventData(
        schema_version=2, event_id=event_id, metadata={"tenant": "t"}, data={"n": 1}, event_type="Placed"
    )
    assert by_position == by_keyword
    assert (by_position.event_type, by_position.data, by_position.metadata) == ("Placed", {"n": 1}, {"tenant": "t"})
    assert (by_position.event_id, by_position.schema_version) == (event_id, 2)


def test_left_out_metadata_is_a_new_dict_for_each_event_and_none_is_kept() -> None:
    first, second = EventData("Placed", {}), EventData("Placed", {})
    assert first.metadata == {}
    assert first.metadata is not second.metadata
    assert EventData("Placed", {}, metadata=None).metadata is None  # type: ignore[arg-type]
    assert not has_event_id(first)
    assert first.schema_version == 1


def test_wrong_calls_raise_type_errors_and_the_event_stays_frozen() -> None:
    with pytest.raises(TypeError):
        EventData("Placed")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        EventData("Placed", {}, {}, uuid.uuid4(), 1, "one too many")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        EventData("Placed", {}, colour="red")  # type: ignore[call-arg]
    event = EventData("Placed", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event_type = "Paid"  # type: ignore[misc]


def test_replace_builds_through_the_same_constructor() -> None:
    event = EventData("Placed", {"n": 1}, {"tenant": "t"})
    changed = dataclasses.replace(event, data={"n": 2})
    assert changed.data == {"n": 2}
    assert changed.metadata == {"tenant": "t"}
    assert changed.event_id == event.event_id
