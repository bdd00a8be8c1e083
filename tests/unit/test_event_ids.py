"""Event ids made on first need: EventData keeps one stable id, behaves as the frozen dataclass it was, and
prepare_batch gives every event of a batch a fresh version 4 id that the caller's object keeps."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import uuid

import pytest

from sluice import EventData, InvalidArgumentError
from sluice.client.outgoing import event_messages
from sluice.core.batches import NO_EVENT_ID, prepare_batch
from sluice.core.event_data import give_event_ids, has_event_id, new_event_ids
from sluice.core.event_types import EventTypeRegistry

LIMIT = 1 << 20


def test_an_id_is_made_on_first_access_and_kept() -> None:
    event = EventData("A", {})
    assert not has_event_id(event)
    first = event.event_id
    assert has_event_id(event)
    assert isinstance(first, uuid.UUID)
    assert first.version == 4
    assert first.variant == uuid.RFC_4122
    assert event.event_id is first


def test_a_given_id_is_kept_as_given() -> None:
    given = uuid.uuid4()
    event = EventData("A", {}, event_id=given)
    assert has_event_id(event)
    assert event.event_id is given


def test_the_id_cannot_be_assigned_or_deleted() -> None:
    event = EventData("A", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event_id = uuid.uuid4()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del event.event_id
    assert not has_event_id(event)


def test_equality_hash_repr_and_pickling_see_the_same_id() -> None:
    event = EventData("A", {"n": 1})
    assert repr(event) == (
        f"EventData(event_type='A', data={{'n': 1}}, metadata={{}}, event_id={event.event_id!r}, schema_version=1)"
    )
    assert event == EventData("A", {"n": 1}, event_id=event.event_id)
    assert event != EventData("A", {"n": 1})
    restored = pickle.loads(pickle.dumps(event))
    assert restored == event
    assert restored.event_id == event.event_id
    assert copy.copy(event).event_id == event.event_id
    assert dataclasses.replace(event, data={"n": 2}).event_id == event.event_id
    hashable = EventData("A", 1, metadata=(), event_id=event.event_id)  # type: ignore[arg-type]
    assert hash(hashable) == hash(EventData("A", 1, metadata=(), event_id=event.event_id))  # type: ignore[arg-type]


def test_pickling_an_event_without_an_id_fixes_its_id() -> None:
    event = EventData("A", {})
    restored = pickle.loads(pickle.dumps(event))
    assert restored.event_id == event.event_id


def test_new_event_ids_are_the_uuid4_of_their_bits() -> None:
    ids = new_event_ids(500)
    assert len(set(ids)) == 500
    for event_id in ids:
        assert type(event_id) is uuid.UUID
        assert event_id.version == 4
        assert event_id == uuid.UUID(bytes=event_id.bytes, version=4)
        assert event_id == uuid.UUID(str(event_id))
        assert hash(event_id) == hash(uuid.UUID(str(event_id)))
        assert event_id.is_safe is uuid.SafeUUID.unknown
    assert new_event_ids(0) == []


def test_prepare_batch_gives_each_event_an_id_that_the_event_keeps() -> None:
    given = uuid.uuid4()
    events = [EventData("A", {}), EventData("B", {}, event_id=given), EventData("C", {})]
    batch = prepare_batch(events, EventTypeRegistry(), LIMIT)
    assert batch.event_ids[1] is given
    assert batch.event_ids == [event.event_id for event in events]
    assert len(set(batch.event_ids)) == 3
    assert prepare_batch(events, EventTypeRegistry(), LIMIT).event_ids == batch.event_ids  # a retry: same ids


def test_prepare_batch_takes_any_iterable_and_refuses_one_event_twice() -> None:
    events = [EventData("A", {}), EventData("B", {})]
    batch = prepare_batch(iter(events), EventTypeRegistry(), LIMIT)
    assert batch.event_ids == [event.event_id for event in events]
    twice = EventData("A", {})
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch([twice, twice], EventTypeRegistry(), LIMIT)


def test_an_id_given_as_none_is_still_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="event_id must be a UUID"):
        prepare_batch([EventData("A", {}, event_id=None)], EventTypeRegistry(), LIMIT)  # type: ignore[arg-type]


def test_a_queue_batch_makes_no_ids_but_keeps_given_ones_and_their_checks() -> None:
    given = uuid.uuid4()
    events = [EventData("A", {}), EventData("B", {}, event_id=given), EventData("C", {})]
    batch = prepare_batch(events, EventTypeRegistry(), LIMIT, make_event_ids=False)
    assert batch.event_ids == [NO_EVENT_ID, given, NO_EVENT_ID]
    assert batch.event_ids[0] is NO_EVENT_ID
    assert not has_event_id(events[0])
    assert not has_event_id(events[2])
    assert len(batch) == 3
    twice = EventData("A", {})
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch([twice, twice], EventTypeRegistry(), LIMIT, make_event_ids=False)
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch([events[1], EventData("D", {}, event_id=given)], EventTypeRegistry(), LIMIT, make_event_ids=False)
    nil = EventData("E", {}, event_id=uuid.UUID(int=0))  # a caller's own nil id is an id like any other
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch(
            [nil, EventData("F", {}, event_id=uuid.UUID(int=0))], EventTypeRegistry(), LIMIT, make_event_ids=False
        )
    assert prepare_batch([nil, EventData("G", {})], EventTypeRegistry(), LIMIT, make_event_ids=False).event_ids == [
        nil.event_id,
        NO_EVENT_ID,
    ]


def test_give_event_ids_gives_the_missing_ones_ids_the_events_keep() -> None:
    given = uuid.uuid4()
    with_id = EventData("A", {}, event_id=given)
    read_before = EventData("B", {})
    already = read_before.event_id
    fresh = [EventData("C", {}) for _ in range(5)]
    twice = EventData("D", {})
    give_event_ids([with_id, read_before, *fresh, twice, twice])
    assert with_id.event_id == given
    assert read_before.event_id is already
    assert all(has_event_id(event) for event in [*fresh, twice])
    made = [event.event_id for event in [*fresh, twice]]
    assert len(set(made)) == len(made)
    assert {event_id.version for event_id in made} == {4}
    give_event_ids([*fresh, twice])  # nothing missing: nothing changes
    assert [event.event_id for event in [*fresh, twice]] == made


def test_a_client_batch_sends_the_ids_its_events_keep() -> None:
    events = [EventData("A", {"n": n}) for n in range(3)]
    messages = event_messages(events, EventTypeRegistry())
    assert [message.event_id for message in messages] == [str(event.event_id) for event in events]
    assert len({message.event_id for message in messages}) == 3
    again = event_messages(events, EventTypeRegistry())  # a retry of the same objects: the same ids
    assert [message.event_id for message in again] == [message.event_id for message in messages]


def test_a_client_batch_refuses_non_finite_numbers_naming_the_event_type() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^data of event type 'Placed' holds NaN or Infinity"):
        event_messages([EventData("A", {"n": 1}), EventData("Placed", {"n": float("nan")})], EventTypeRegistry())
    with pytest.raises(InvalidArgumentError, match=r"^metadata holds NaN or Infinity"):
        event_messages(EventData("A", {}, metadata={"score": float("inf")}), EventTypeRegistry())
