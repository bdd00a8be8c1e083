"""prepare_batch's column-wise path (core/batches.py ``_prepare_plain_events``) and its single-event path
(``_prepare_plain_event``) against its event-by-event loop: the same batch from both for every batch they take,
and None (so the loop decides, or raises) for every batch they must leave."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from sluice import EventData
from sluice.core.batches import (
    NO_EVENT_ID,
    PreparedBatch,
    _prepare_event_by_event,
    _prepare_plain_event,
    _prepare_plain_events,
    prepare_batch,
)
from sluice.core.errors import InvalidArgumentError, PayloadTooLargeError
from sluice.core.event_data import has_event_id
from sluice.core.event_types import EventTypeRegistry

LIMIT = 1_000
REGISTRY = EventTypeRegistry()
ID_COLUMN_LEFT_OUT = ("event_types", "schema_versions", "content_types", "payloads", "metadata", "correlation_ids")


def _events(ids: str, metadata: str) -> list[EventData]:
    """Four plain events; ids: "none", "given" (UUIDs); metadata: "empty", "some" (one event has its own)."""
    made = [
        EventData(
            f"Type{n % 2}", {"n": n, "text": "é" * n, "nested": {"list": [n, 1.5, None]}}, schema_version=1 + n % 3
        )
        for n in range(4)
    ]
    if ids == "given":
        made = [EventData(e.event_type, e.data, event_id=uuid.uuid4(), schema_version=e.schema_version) for e in made]
    if metadata == "some":  # (reading event_id would make one: the ids are passed on only when given)
        made[1] = _with_metadata(made[1], {"tenant": "t", "correlation_id": "own"}, given=ids == "given")
        made[2] = _with_metadata(made[2], {"tenant": "u"}, given=ids == "given")
    return made


def _with_metadata(event: EventData, metadata: dict[str, Any], *, given: bool) -> EventData:
    if given:
        return EventData(event.event_type, event.data, metadata, event.event_id, event.schema_version)
    return EventData(event.event_type, event.data, metadata, schema_version=event.schema_version)


def _both(
    events: list[EventData], correlation: str | None, make_event_ids: bool
) -> tuple[PreparedBatch, PreparedBatch]:
    empty = "{}" if correlation is None else f'{{"correlation_id":"{correlation}"}}'
    twins = [_with_metadata(event, event.metadata, given=has_event_id(event)) for event in events]
    plain = _prepare_plain_events(events, LIMIT, correlation, empty, make_event_ids)
    assert plain is not None, "the column-wise path should take this batch"
    looped = _prepare_event_by_event(twins, REGISTRY, LIMIT, correlation, empty, make_event_ids)
    return plain, looped


@pytest.mark.parametrize("ids", ["none", "given"])
@pytest.mark.parametrize("metadata", ["empty", "some"])
@pytest.mark.parametrize("correlation", [None, "request-7"])
@pytest.mark.parametrize("make_event_ids", [True, False])
def test_both_paths_prepare_the_same_batch(
    ids: str, metadata: str, correlation: str | None, make_event_ids: bool
) -> None:
    events = _events(ids, metadata)
    plain, looped = _both(events, correlation, make_event_ids)
    for column in ID_COLUMN_LEFT_OUT:
        assert getattr(plain, column) == getattr(looped, column), column
    assert plain.correlation_id == looped.correlation_id == correlation
    if ids == "given":
        assert plain.event_ids == looped.event_ids == [event.event_id for event in events]
    elif make_event_ids:
        assert plain.event_ids == [event.event_id for event in events], "the caller's events keep the ids made"
        assert len(set(plain.event_ids)) == 4
        assert {event_id.version for event_id in plain.event_ids} == {4}
    else:
        assert plain.event_ids == looped.event_ids == [NO_EVENT_ID] * 4
        assert not any(has_event_id(event) for event in events), "queues make no ids"


def _left(events: list[Any]) -> None:
    assert _prepare_plain_events(events, LIMIT, None, "{}", True) is None


def test_batches_it_must_leave_to_the_loop_are_left_unchanged() -> None:
    plain = [EventData("E", {"n": n}) for n in range(3)]
    _left([*plain[:2], {"not": "an EventData"}])
    _left([plain[0], plain[1], plain[0]])  # one object twice: the loop refuses it as one id twice
    _left([*plain[:2], EventData("E", [1, 2])])  # not a dict
    _left([*plain[:2], EventData("", {"n": 2})])
    _left([*plain[:2], EventData("E" * 201, {"n": 2})])
    _left([*plain[:2], EventData("E", {"n": math.nan})])
    _left([*plain[:2], EventData("E", {"text": "NaN inside a string"})])
    _left([*plain[:2], EventData("E", {"big": "x" * LIMIT})])
    _left([*plain[:2], EventData("E", {"o": object()})])
    _left([*plain[:2], EventData("E", {"n": 2}, event_id=uuid.uuid4())])  # some ids given, some not
    _left([EventData("E", {"n": 0}, event_id=str(uuid.uuid4())), EventData("E", {"n": 1}, event_id=str(uuid.uuid4()))])
    assert not any(has_event_id(event) for event in plain), "nothing changed on the events it left"


def test_what_it_leaves_is_still_prepared_or_refused_by_the_loop() -> None:
    accepted = prepare_batch(
        [EventData("E", {"n": 0}), EventData("E", {"text": "NaN inside a string"})], REGISTRY, LIMIT
    )
    assert accepted.payloads[1] == b'{"text":"NaN inside a string"}'
    with pytest.raises(InvalidArgumentError, match="NaN"):
        prepare_batch([EventData("E", {"n": 0}), EventData("E", {"n": math.inf})], REGISTRY, LIMIT)
    with pytest.raises(PayloadTooLargeError):
        prepare_batch([EventData("E", {"n": 0}), EventData("E", {"big": "x" * LIMIT})], REGISTRY, LIMIT)
    repeated = EventData("E", {"n": 0})
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch([repeated, repeated], REGISTRY, LIMIT)
    same_id = uuid.uuid4()
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        prepare_batch(
            [EventData("E", {"n": 0}, event_id=same_id), EventData("E", {"n": 1}, event_id=same_id)], REGISTRY, LIMIT
        )


def test_metadata_that_cannot_be_written_leaves_the_batch_to_the_loop_before_any_id_is_made() -> None:
    events = [EventData("E", {"n": 0}), EventData("E", {"n": 1}, {"bad": object()}), EventData("E", {"n": 2})]
    _left(events)
    assert not any(has_event_id(event) for event in events), "no id made before the batch was left"
    with pytest.raises(InvalidArgumentError, match="metadata is not JSON-serializable"):
        prepare_batch(events, REGISTRY, LIMIT)


@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("correlation", [None, "request-7"])
@pytest.mark.parametrize("make_event_ids", [True, False])
@pytest.mark.parametrize("data", [{}, {"n": 1, "text": "é", "nested": {"list": [1, 1.5, None]}}])
def test_one_event_is_prepared_as_the_loop_prepares_it(
    given: bool, correlation: str | None, make_event_ids: bool, data: dict[str, Any]
) -> None:
    empty = "{}" if correlation is None else f'{{"correlation_id":"{correlation}"}}'
    event_id = uuid.uuid4() if given else None
    event = EventData("Type", data, schema_version=3) if event_id is None else EventData("Type", data, {}, event_id, 3)
    twin = EventData("Type", data, schema_version=3) if event_id is None else EventData("Type", data, {}, event_id, 3)
    single = _prepare_plain_event(event, LIMIT, correlation, empty, make_event_ids)
    assert single is not None, "the single-event path should take this event"
    looped = _prepare_event_by_event([twin], REGISTRY, LIMIT, correlation, empty, make_event_ids)
    for column in ID_COLUMN_LEFT_OUT:
        assert getattr(single, column) == getattr(looped, column), column
    assert single.correlation_id == looped.correlation_id == correlation
    if given:
        assert single.event_ids == looped.event_ids == [event_id]
    elif make_event_ids:
        assert single.event_ids == [event.event_id], "the caller's event keeps the id made"
        assert single.event_ids[0].version == 4
    else:
        assert single.event_ids == looped.event_ids == [NO_EVENT_ID]
        assert not has_event_id(event), "queues make no ids"


@pytest.mark.parametrize(
    "event",
    [
        {"not": "an EventData"},
        EventData("E", [1, 2]),
        EventData("", {"n": 1}),
        EventData("E" * 201, {"n": 1}),
        EventData("E", {"n": math.nan}),
        EventData("E", {"text": "NaN inside a string"}),  # the loop tells it from a bare NaN, and takes it
        EventData("E", {"big": "x" * LIMIT}),
        EventData("E", {"o": object()}),
        EventData("E", {"n": 1}, {"tenant": "t"}),
        EventData("E", {"n": 1}, event_id=str(uuid.uuid4())),
    ],
)
def test_an_event_the_single_path_must_leave_is_left_unchanged_and_the_loop_decides(event: Any) -> None:
    had_an_id = isinstance(event, EventData) and has_event_id(event)
    assert _prepare_plain_event(event, LIMIT, None, "{}", True) is None
    assert not isinstance(event, EventData) or has_event_id(event) == had_an_id, "nothing changed on the event"
    twin = _with_metadata(event, event.metadata, given=had_an_id) if isinstance(event, EventData) else event
    outcomes = []
    for path in (
        lambda: prepare_batch([event], REGISTRY, LIMIT),
        lambda: _prepare_event_by_event([twin], REGISTRY, LIMIT, None, "{}", True),
    ):
        try:
            outcomes.append(path())
        except (InvalidArgumentError, PayloadTooLargeError) as error:
            outcomes.append(error)
    through_prepare_batch, through_the_loop = outcomes
    assert type(through_prepare_batch) is type(through_the_loop)
    if isinstance(through_the_loop, PreparedBatch):
        assert isinstance(through_prepare_batch, PreparedBatch)
        for column in ID_COLUMN_LEFT_OUT:
            assert getattr(through_prepare_batch, column) == getattr(through_the_loop, column), column
    else:
        assert str(through_prepare_batch) == str(through_the_loop)
