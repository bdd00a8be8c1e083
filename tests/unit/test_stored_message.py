"""``stored_message`` (core/messages.py) makes an EnqueueResult through the slots' setters instead of the frozen
dataclass's ``__init__``: what it makes must be the dataclass's own result in every respect callers see."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from sluice.core.messages import EnqueueResult, stored_message


def test_it_equals_hashes_and_prints_as_the_dataclass_made_one() -> None:
    made, constructed = stored_message("emails", 42), EnqueueResult("emails", 42)
    assert type(made) is EnqueueResult
    assert made == constructed
    assert hash(made) == hash(constructed)
    assert repr(made) == repr(constructed) == "EnqueueResult(queue_name='emails', message_id=42, deduplicated=False)"
    assert made != EnqueueResult("emails", 42, deduplicated=True)
    assert made != stored_message("emails", 43)


def test_every_field_is_set_and_it_stays_frozen() -> None:
    made = stored_message("emails", 7)
    assert dataclasses.asdict(made) == {"queue_name": "emails", "message_id": 7, "deduplicated": False}
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.message_id = 8  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(made)) == made
