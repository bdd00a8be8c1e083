"""How errors travel over gRPC: a status code per Sluice error category (``STATUS_BY_CATEGORY``; the few
leaves whose status differs are in ``STATUS_OVERRIDES``, each with its reason), and the error's stable
``code`` in the trailing metadata key ``sluice-error-code`` (the client turns it back into the class).

Nothing else reaches a caller: a pydantic ValidationError (a request the models refuse) becomes
INVALID_ARGUMENT with the fields that failed, and any other exception (a raw driver error, a bug) is
logged with a reference and ends the call with INTERNAL and a generic message naming that reference,
never UNKNOWN or an internal class name.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, NoReturn, TypeVar

import grpc
import pydantic

from sluice.core import errors
from sluice.core.validation import invalid_argument

logger = logging.getLogger(__name__)

ERROR_CODE_METADATA_KEY = "sluice-error-code"
INTERNAL_ERROR_CODE = "internal"

ServiceT = TypeVar("ServiceT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

STATUS_BY_CATEGORY: Mapping[type[errors.SluiceError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    # ABORTED, as gRPC says for a failed test-and-set: reload, decide again, retry the whole sequence.
    errors.ConflictError: grpc.StatusCode.ABORTED,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
}
"""One status per category (``sluice.core.errors.CATEGORIES``), so a new error class needs no entry here."""


class StatusOverride(NamedTuple):
    """A leaf whose status differs from its category's, and why."""

    error_class: type[errors.SluiceError]
    status: grpc.StatusCode
    reason: str


STATUS_OVERRIDES: tuple[StatusOverride, ...] = (
    StatusOverride(
        errors.StreamAlreadyExistsError,
        grpc.StatusCode.ALREADY_EXISTS,
        "gRPC has a status of its own for a create whose name is taken (its HTTP equivalent is 409, as REST answers)",
    ),
    StatusOverride(
        errors.CorruptPayloadError,
        grpc.StatusCode.DATA_LOSS,
        "stored data is damaged, which no state change by the caller fixes; REST answers 500, DATA_LOSS's HTTP status",
    ),
)
"""The only leaves that do not answer their category's status; tests/unit/test_error_categories.py
checks that REST and gRPC agree on every class."""


def status_for(error: errors.SluiceError | type[errors.SluiceError]) -> grpc.StatusCode:
    """The gRPC status code of a Sluice error (or error class): its override, else its category's, else
    INTERNAL (an error outside every category)."""
    error_class = error if isinstance(error, type) else type(error)
    for override in STATUS_OVERRIDES:
        if issubclass(error_class, override.error_class):
            return override.status
    category = errors.category_of(error_class)
    return grpc.StatusCode.INTERNAL if category is None else STATUS_BY_CATEGORY[category]


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
