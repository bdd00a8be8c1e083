"""Every Sluice error class survives the trip through gRPC: the client rebuilds the class from the
code the server put in the trailing metadata, and each class has a deliberate status code."""

from __future__ import annotations

import grpc
import pydantic

from sluice.client.remote_errors import error_from_code
from sluice.core import errors
from sluice.core.streams import StreamConfig
from sluice.rpc.status_codes import sluice_error_of, status_for


def _all_error_classes() -> list[type[errors.SluiceError]]:
    """Every error class of the runtime. Subclasses defined elsewhere (the operator's, tests') are left out:
    whether they exist depends on what else this test process imported (pytest-xdist workers share one
    process between many test modules), and the gRPC server never raises them."""
    found: list[type[errors.SluiceError]] = []
    pending: list[type[errors.SluiceError]] = [errors.SluiceError]
    while pending:
        error_class = pending.pop()
        if error_class.__module__.startswith("sluice."):
            found.append(error_class)
        pending.extend(error_class.__subclasses__())
    return found


def test_the_client_rebuilds_each_error_class_from_its_code() -> None:
    for error_class in _all_error_classes():
        rebuilt = error_from_code(error_class.code, "the server's message")
        assert isinstance(rebuilt, error_class), error_class
        assert str(rebuilt) == "the server's message"
        assert rebuilt.code == error_class.code
    unknown = error_from_code("from_a_newer_server", "message")
    assert type(unknown) is errors.SluiceError
    assert unknown.code == "from_a_newer_server"


def test_status_codes_of_the_main_errors() -> None:
    assert status_for(errors.InvalidNameError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(errors.StreamNotFoundError("x")) == grpc.StatusCode.NOT_FOUND
    assert status_for(errors.GroupNotFoundError("s", "g")) == grpc.StatusCode.NOT_FOUND
    assert status_for(errors.StreamAlreadyExistsError("x", "it is a queue")) == grpc.StatusCode.ALREADY_EXISTS
    concurrency = errors.ConcurrencyError(stream_name="s", partition=0, expected="no stream", head=3)
    assert status_for(concurrency) == grpc.StatusCode.ABORTED  # a failed test-and-set, like every conflict
    assert status_for(errors.DuplicateEventIdError("mixed")) == grpc.StatusCode.ABORTED
    assert status_for(errors.CorruptPayloadError("corrupt")) == grpc.StatusCode.DATA_LOSS
    assert status_for(errors.FencedError("fenced", (1,))) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.StaleReceiptError("q", "1.1")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.UnauthenticatedError("no")) == grpc.StatusCode.UNAUTHENTICATED
    denied = errors.PermissionDeniedError(principal="p", action="append to", resource="s")
    assert status_for(denied) == grpc.StatusCode.PERMISSION_DENIED
    assert status_for(errors.ConnectionLostError("lost")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.SluiceError("something new")) == grpc.StatusCode.INTERNAL


def test_every_error_class_has_a_deliberate_status() -> None:
    for error_class in _all_error_classes():
        if error_class is errors.SluiceError:
            continue
        error = error_class.__new__(error_class)
        assert status_for(error) != grpc.StatusCode.INTERNAL, error_class
    assert status_for(errors.DatabaseBusyError("busy")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.MigrationError("not migrated")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.ReplayConflictError("taken")) == grpc.StatusCode.ABORTED
    assert status_for(errors.StreamArchivedError("s")) == grpc.StatusCode.FAILED_PRECONDITION


def test_other_exceptions_become_invalid_argument_or_a_generic_internal_error() -> None:
    try:
        StreamConfig.model_validate({"name": "orders", "partitions": 5000})
    except pydantic.ValidationError as validation:
        refused = sluice_error_of(validation)
    assert isinstance(refused, errors.InvalidArgumentError)
    assert "partitions" in str(refused)
    assert "pydantic" not in str(refused)
    internal = sluice_error_of(KeyError("driver detail"))
    assert internal.code == "internal"
    assert status_for(internal) == grpc.StatusCode.INTERNAL
    assert "driver detail" not in str(internal)
    assert "KeyError" not in str(internal)
