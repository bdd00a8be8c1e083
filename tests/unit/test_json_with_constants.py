"""``json_with_constants`` (core/payloads.py), a pydantic-core serializer configured once, writes the same bytes and
raises the same errors as ``pydantic_core.to_json(value, inf_nan_mode="constants")``, which it replaces on the
write paths."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import uuid
from typing import Any

import pydantic
import pydantic_core
import pytest

from sluice.core.payloads import json_with_constants


@dataclasses.dataclass
class _Point:
    x: int
    y: float


class _Colour(enum.Enum):
    RED = "red"


class _Model(pydantic.BaseModel):
    count: int = 1


VALUES: list[Any] = [
    {"order_id": "o-1", "total_cents": 1000, "currency": "EUR"},
    [1, 2.5, "s", None, True],
    {"nan": math.nan, "inf": math.inf, "minus_inf": -math.inf, "minus_zero": -0.0},
    {1: "int key", None: "none key", 1.5: "float key"},
    {
        "date": datetime.date(2026, 12, 7),
        "time": datetime.time(1, 2, 3),
        "delta": datetime.timedelta(seconds=5),
        "at": datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC),
    },
    {"id": uuid.UUID(int=7), "decimal": decimal.Decimal("1.50"), "huge": decimal.Decimal("1e400")},
    {"bytes": b"abc", "bytearray": bytearray(b"x")},
    (1, 2),
    {"nested": {"deep": [{"x": math.nan}, {"y": "é\u0000\U0001f600"}]}},
    _Point(1, math.inf),
    _Colour.RED,
    _Model(),
    10**40,
    "text",
]


@pytest.mark.parametrize("value", VALUES, ids=lambda value: type(value).__name__)
def test_the_same_bytes_as_to_json_with_constants(value: Any) -> None:
    assert json_with_constants(value) == pydantic_core.to_json(value, inf_nan_mode="constants")


def test_non_finite_numbers_come_out_as_bare_constants() -> None:
    assert json_with_constants({"a": math.nan, "b": -math.inf}) == b'{"a":NaN,"b":-Infinity}'


@pytest.mark.parametrize("value", [object(), {"inner": object()}, {"function": len}])
def test_the_same_error_for_what_cannot_be_written(value: Any) -> None:
    with pytest.raises(pydantic_core.PydanticSerializationError) as expected:
        pydantic_core.to_json(value, inf_nan_mode="constants")
    with pytest.raises(pydantic_core.PydanticSerializationError) as raised:
        json_with_constants(value)
    assert str(raised.value) == str(expected.value)
