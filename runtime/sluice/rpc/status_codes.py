"""How errors travel over gRPC: one table from Sluice's error categories (and the few leaves whose status
differs from their category's) to status codes, and the error's stable ``code`` in the trailing metadata
key ``sluice-error-code`` (the client turns it back into the class).

Nothing else reaches a caller: a pydantic ValidationError (a request the models refuse) becomes
INVALID_ARGUMENT with the fields that failed, and any other exception (a raw driver error, a bug) is
logged with a reference and ends the call with INTERNAL and a generic message naming that reference,
never UNKNOWN or an internal class name.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import pydantic

from sluice import errors
from sluice.validation import invalid_argument

logger = logging.getLogger(__name__)

ERROR_CODE_METADATA_KEY = "sluice-error-code"
INTERNAL_ERROR_CODE = "internal"

ServiceT = TypeVar("ServiceT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

_STATUS_BY_ERROR: tuple[tuple[type[errors.SluiceError], grpc.StatusCode], ...] = (
    # The first class the error is an instance of decides: leaves that differ from their category first.
    (errors.StreamAlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ConcurrencyError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.DuplicateEventIdError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.CorruptPayloadError, grpc.StatusCode.DATA_LOSS),
    # The categories (sluice.errors.CATEGORIES): every other error belongs to exactly one.
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.ConflictError, grpc.StatusCode.ABORTED),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
)


def status_for(error: errors.SluiceError) -> grpc.StatusCode:
    """The gRPC status code of a Sluice error (INTERNAL for one outside every category)."""
    for error_class, status in _STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return grpc.StatusCode.INTERNAL


def sluice_error_of(error: Exception) -> errors.SluiceError:
    """The Sluice error a caller sees for ``error``: itself, INVALID_ARGUMENT for a pydantic
    ValidationError, or a generic internal error (logged here with a reference) for anything else."""
    if isinstance(error, errors.SluiceError):
        return error
    if isinstance(error, pydantic.ValidationError):
        return invalid_argument(error, error.title)
    reference = uuid.uuid4().hex[:12]
    logger.error("internal error in a gRPC call (reference %s)", reference, exc_info=error)
    internal = errors.SluiceError(f"internal server error (reference {reference}; see the server log)")
    internal.code = INTERNAL_ERROR_CODE
    return internal


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: errors.SluiceError) -> NoReturn:
    """End the call with the error's status, message and code (in the trailing metadata)."""
    await context.abort(status_for(error), str(error), trailing_metadata=((ERROR_CODE_METADATA_KEY, error.code),))
    raise AssertionError("context.abort returned")  # pragma: no cover  (abort always raises)


def translate_errors(
    handler: Callable[[ServiceT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]],
) -> Callable[[ServiceT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]]:
    """Wrap a servicer method so that every error ends the call with a deliberate status and code."""

    @functools.wraps(handler)
    async def translated(
        service: ServiceT, request: RequestT, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ResponseT:
        try:
            return await handler(service, request, context)
        except grpc.aio.AbortError:
            raise  # the handler ended the call itself (context.abort)
        except Exception as error:  # every error gets a status; unexpected ones are logged
            await abort_with(context, sluice_error_of(error))

    return translated
