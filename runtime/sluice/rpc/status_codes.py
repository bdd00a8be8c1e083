"""How Sluice's typed errors travel over gRPC: a status code per error class, and the error's stable
``code`` in the trailing metadata key ``sluice-error-code`` (the client turns it back into the class)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from sluice import errors

ERROR_CODE_METADATA_KEY = "sluice-error-code"

ServiceT = TypeVar("ServiceT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

_STATUS_BY_ERROR: tuple[tuple[type[errors.SluiceError], grpc.StatusCode], ...] = (
    # Most specific first: the first class the error is an instance of decides.
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.StreamNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.GroupNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.ReplayNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.SagaNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.DeadLetterNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.ProjectionNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.RetentionPolicyNotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.UnknownEventTypeError, grpc.StatusCode.NOT_FOUND),
    (errors.StreamAlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ConcurrencyError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.FencedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StaleReceiptError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StreamArchivedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConsumerTruncatedError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ReplayConflictError, grpc.StatusCode.ABORTED),
    (errors.SagaConflictError, grpc.StatusCode.ABORTED),
    (errors.ProjectionConflictError, grpc.StatusCode.ABORTED),
    (errors.CorruptPayloadError, grpc.StatusCode.DATA_LOSS),
    (errors.DuplicateEventIdError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StreamTypeError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.GroupActiveError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.SchemaVersionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.MigrationError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ConnectionLostError, grpc.StatusCode.UNAVAILABLE),
    (errors.StoreClosedError, grpc.StatusCode.UNAVAILABLE),
)


def status_for(error: errors.SluiceError) -> grpc.StatusCode:
    """The gRPC status code of a Sluice error (INTERNAL for one this table does not know yet)."""
    for error_class, status in _STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return grpc.StatusCode.INTERNAL


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: errors.SluiceError) -> NoReturn:
    """End the call with the error's status, message and code (in the trailing metadata)."""
    await context.abort(status_for(error), str(error), trailing_metadata=((ERROR_CODE_METADATA_KEY, error.code),))
    raise AssertionError("context.abort returned")  # pragma: no cover  (abort always raises)


def translate_errors(
    handler: Callable[[ServiceT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]],
) -> Callable[[ServiceT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]]:
    """Wrap a servicer method so that a SluiceError ends the call with its status and code."""

    @functools.wraps(handler)
    async def translated(
        service: ServiceT, request: RequestT, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ResponseT:
        try:
            return await handler(service, request, context)
        except errors.SluiceError as error:
            await abort_with(context, error)

    return translated
