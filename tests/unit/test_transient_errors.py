"""Which errors a consumer-group member waits out: decided by the error's category alone (the backends
translate every driver error first, docs/errors.md), so the decision needs no driver."""

from __future__ import annotations

import pytest

from sluice.core.errors import (
    ConcurrencyError,
    ConnectionLostError,
    DatabaseBusyError,
    FencedError,
    GroupNotFoundError,
    InvalidArgumentError,
    MigrationError,
    SluiceError,
    StoreClosedError,
    StreamNotFoundError,
)
from sluice.services.consumers.transient import is_transient

WAITED_OUT: list[BaseException] = [
    ConnectionLostError("the database connection failed"),
    DatabaseBusyError("the database refused the work for now"),
    MigrationError("the schema is missing (a restore in progress)"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
]
ENDS_THE_CONSUMPTION: list[BaseException] = [
    StoreClosedError("closed on purpose"),
    StreamNotFoundError("orders"),
    GroupNotFoundError("orders", "g"),
    FencedError("fenced"),
    ConcurrencyError(stream_name="orders", partition=0, expected="offset 3", head=5),
    InvalidArgumentError("bad"),
    SluiceError("uncategorised"),
    RuntimeError("a bug"),
    KeyError("a bug"),
]


@pytest.mark.parametrize("error", WAITED_OUT, ids=lambda error: type(error).__name__)
def test_the_unavailable_category_and_socket_errors_are_waited_out(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", ENDS_THE_CONSUMPTION, ids=lambda error: type(error).__name__)
def test_every_other_error_ends_the_consumption(error: BaseException) -> None:
    assert not is_transient(error)
