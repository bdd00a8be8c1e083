"""Every Sluice error class survives the trip through gRPC: the client rebuilds the class from the
code the server put in the trailing metadata, and each class has a deliberate status code."""

from __future__ import annotations

import grpc

from sluice import errors
from sluice.client.remote_errors import error_from_code
from sluice.rpc.status_codes import status_for


def _all_error_classes() -> list[type[errors.SluiceError]]:
    found: list[type[errors.SluiceError]] = []
    pending: list[type[errors.SluiceError]] = [errors.SluiceError]
    while pending:
        error_class = pending.pop()
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
    assert status_for(concurrency) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.FencedError("fenced", (1,))) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.StaleReceiptError("q", "1.1")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.UnauthenticatedError("no")) == grpc.StatusCode.UNAUTHENTICATED
    denied = errors.PermissionDeniedError(principal="p", action="append to", resource="s")
    assert status_for(denied) == grpc.StatusCode.PERMISSION_DENIED
    assert status_for(errors.ConnectionLostError("lost")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.SluiceError("something new")) == grpc.StatusCode.INTERNAL
