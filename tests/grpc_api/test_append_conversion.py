"""An Append request's events become EventData with their ids parsed together (sluice/rpc/conversions.py:
``events_data_from_messages``, profiled for issue 18): the same EventData as one event at a time, ids in
every form ``uuid.UUID`` reads, a fresh id where none is given, and a clear error naming a bad one."""

from __future__ import annotations

import uuid

import pytest

from sluice.core.errors import InvalidArgumentError
from sluice.rpc.conversions import event_data_from_message, events_data_from_messages
from sluice.rpc.v1 import sluice_pb2

SOME_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _event(event_id: str, n: int = 0) -> sluice_pb2.EventToWrite:
    return sluice_pb2.EventToWrite(event_type="Placed", data=b'{"n": %d}' % n, event_id=event_id)


def test_a_batch_converts_to_the_same_events_as_one_at_a_time() -> None:
    messages = [_event(str(uuid.uuid4()), n) for n in range(50)]
    assert events_data_from_messages(messages) == [event_data_from_message(message) for message in messages]


@pytest.mark.parametrize(
    "text",
    [
        "12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "1234-5678-1234-5678-1234-5678-1234-5678",  # uuid.UUID ignores where the dashes are
    ],
)
def test_ids_in_every_form_uuid_reads_are_read_beside_ids_not_given(text: str) -> None:
    converted = events_data_from_messages([_event(""), _event(text), _event("")])
    assert converted[1].event_id == SOME_ID
    assert all(type(event.event_id) is uuid.UUID for event in converted)
    assert len({event.event_id for event in converted}) == 3, "each event without an id gets its own"


def test_a_bad_id_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgumentError, match="event_id must be a UUID, got 'not-a-uuid'"):
        events_data_from_messages([_event(str(uuid.uuid4())), _event("not-a-uuid")])


def _wire(**fields: object) -> sluice_pb2.EventToWrite:
    values: dict[str, object] = {"event_type": "Placed", "data": b'{"n": 1}', "event_id": str(uuid.uuid4())}
    values.update(fields)
    return sluice_pb2.EventToWrite(**values)  # type: ignore[arg-type]


REQUESTS = {
    "json, ids given": [_wire(), _wire(data=b'[1, "two", null]'), _wire(content_type="application/json")],
    "schema versions": [_wire(schema_version=3), _wire(schema_version=0), _wire(schema_version=2**31 - 1)],
    "metadata on one": [_wire(), _wire(metadata_json='{"actor": "ada"}')],
    "binary on one": [_wire(), _wire(content_type="application/octet-stream", data=b"\x00\x01")],
    "scalar payloads": [_wire(data=b"1"), _wire(data=b'"text"'), _wire(data=b"null"), _wire(data=b"true")],
    "unicode and nesting": [_wire(data='{"name": "Zoë", "lines": [{"sku": "a"}]}'.encode())],
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_every_request_shape_converts_as_event_by_event(name: str) -> None:
    messages = REQUESTS[name]
    assert events_data_from_messages(messages) == [event_data_from_message(message) for message in messages]


def test_a_request_without_ids_gets_fresh_ones_on_either_path() -> None:
    for messages in (
        [_wire(event_id=""), _wire(event_id="")],
        [_wire(event_id=""), _wire(event_id="", schema_version=2)],
    ):
        converted = events_data_from_messages(messages)
        assert len({event.event_id for event in converted}) == 2
        assert {event.event_id.version for event in converted} == {4}
        assert [event.data for event in converted] == [{"n": 1}, {"n": 1}]


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([_wire(), _wire(data=b"{not json")], "data is not valid JSON"),
        ([_wire(), _wire(content_type="text/plain")], "content_type must be one of"),
        ([_wire(), _wire(schema_version=2**31)], "schema_version must be at most 2147483647"),
        ([_wire(), _wire(metadata_json="[1]")], "metadata_json must be a JSON object"),
    ],
)
def test_a_bad_event_among_plain_ones_raises_the_loops_error(
    messages: list[sluice_pb2.EventToWrite], error: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=error):
        events_data_from_messages(messages)
