"""``uniform_column``: which columns of a batch the append and enqueue statements get as one value."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.storage.postgres.batch_columns import uniform_column


@pytest.mark.parametrize(
    ("column", "sent"),
    [
        (["Placed", "Placed", "Placed"], ["Placed"]),
        ([1, 1], [1]),
        ([None, None, None], [None]),
        (["{}", "{}"], ["{}"]),
        (["Placed", "Paid", "Placed"], ["Placed", "Paid", "Placed"]),
        (["Placed", "Placed", "Paid"], ["Placed", "Placed", "Paid"]),
        ([None, "request-1"], [None, "request-1"]),
        (["Placed"], ["Placed"]),
        ([], []),
    ],
)
def test_only_a_column_of_two_or_more_equal_values_goes_once(column: list[Any], sent: list[Any]) -> None:
    assert uniform_column(column) == sent


def test_the_callers_column_is_left_as_it_was() -> None:
    column = ["Placed", "Placed"]
    assert uniform_column(column) is not column
    assert column == ["Placed", "Placed"]
