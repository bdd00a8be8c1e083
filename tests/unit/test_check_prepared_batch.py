"""``check_prepared_batch``, the checks a prepared batch passes again before a backend stores it (the
batcher's joined batches and batches built by hand): done column by column, with the same errors, naming
the first event at fault, as checking event by event gave."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sluice.core.batches import MAX_EVENT_TYPE_LENGTH, check_prepared_batch
from sluice.core.errors import InvalidArgumentError, PayloadTooLargeError
from sluice.core.prepared_batches import PreparedBatch

LIMIT = 100


def batch(types: list[Any], payloads: list[bytes] | None = None, ids: list[Any] | None = None) -> PreparedBatch:
    size = len(types)
    return PreparedBatch(
        event_ids=ids if ids is not None else [uuid.uuid4() for _ in range(size)],
        event_types=types,
        schema_versions=[1] * size,
        content_types=["application/json"] * size,
        payloads=payloads if payloads is not None else [b"{}"] * size,
        metadata=["{}"] * size,
        correlation_ids=[None] * size,
    )


def test_a_valid_batch_and_an_empty_one_pass() -> None:
    check_prepared_batch(batch(["A", "B" * MAX_EVENT_TYPE_LENGTH], [b"x" * LIMIT, b"{}"]), LIMIT)
    check_prepared_batch(batch([]), LIMIT)


@pytest.mark.parametrize(
    ("types", "bad"),
    [
        (["A", "", "C"], "''"),
        (["A", "B" * (MAX_EVENT_TYPE_LENGTH + 1)], repr("B" * (MAX_EVENT_TYPE_LENGTH + 1))),
        (["A", 7, "C"], "7"),
        (["A", None], "None"),
    ],
)
def test_a_bad_event_type_is_named(types: list[Any], bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"event_type must be 1 to {MAX_EVENT_TYPE_LENGTH} characters, got"):
        check_prepared_batch(batch(types), LIMIT)
    with pytest.raises(InvalidArgumentError) as raised:
        check_prepared_batch(batch(types), LIMIT)
    assert str(raised.value).endswith(f"got {bad}")


def test_the_first_payload_over_the_limit_is_named_with_its_event_type() -> None:
    with pytest.raises(PayloadTooLargeError) as raised:
        check_prepared_batch(batch(["A", "B", "C"], [b"{}", b"x" * (LIMIT + 1), b"y" * (LIMIT + 5)]), LIMIT)
    assert raised.value.size == LIMIT + 1
    assert raised.value.event_type == "B"


def test_columns_of_different_lengths_are_refused() -> None:
    broken = batch(["A", "B"])
    broken.payloads.pop()
    with pytest.raises(InvalidArgumentError, match="columns differ in length"):
        check_prepared_batch(broken, LIMIT)


def test_an_id_twice_is_refused_whatever_the_ids_are() -> None:
    same = uuid.uuid4()
    with pytest.raises(InvalidArgumentError, match="same event id twice"):
        check_prepared_batch(batch(["A", "B", "C"], ids=[uuid.uuid4(), same, same]), LIMIT)
    with pytest.raises(InvalidArgumentError, match="same event id twice"):  # built by hand: not all UUIDs
        check_prepared_batch(batch(["A", "B", "C"], ids=["x", same, same]), LIMIT)
    check_prepared_batch(batch(["A", "B"], ids=["x", same]), LIMIT)
