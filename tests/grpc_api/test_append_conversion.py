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
