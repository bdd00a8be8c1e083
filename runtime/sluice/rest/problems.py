"""Errors as RFC 9457 problem details (``application/problem+json``) with Sluice's stable error codes.

Every error answer has ``type``, ``title``, ``status``, ``detail``, ``code`` (``SluiceError.code``, or
``validation_error``, ``not_found``, ``method_not_allowed``, ``payload_too_large``, ``database_unavailable``,
``internal_error``) and ``instance`` (the request path); validation errors add ``errors``, one entry per
invalid field. The status follows the error's category (``STATUS_BY_CATEGORY``) except for the few leaves
in ``STATUS_OVERRIDES``, each with its reason; a 5xx answer never carries the error's own text (driver
messages, hosts): that goes to the log.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.core.errors import (
    ConflictError,
    ConnectionLostError,
    CorruptPayloadError,
    DatabaseBusyError,
    FailedPreconditionError,
    InvalidArgumentError,
    MigrationError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    SluiceError,
    StoreClosedError,
    UnauthenticatedError,
    UnavailableError,
    category_of,
)
from sluice.observability.health.checks import DATABASE_UNREACHABLE_ERRORS

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:sluice:problem:"
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
INTERNAL_ERROR_CODE = "internal_error"
RETRY_AFTER_SECONDS = 5
logger = logging.getLogger(__name__)

STATUS_BY_CATEGORY: Mapping[type[SluiceError], int] = {
    InvalidArgumentError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    # 409, not 400 or 412: the request is well formed but clashes with the resource's current state
    # (412 is for conditional headers such as If-Match, which Sluice does not use).
    FailedPreconditionError: 409,
    UnavailableError: 503,
    UnauthenticatedError: 401,
    PermissionDeniedError: 403,
}
"""One status per category (``sluice.core.errors.CATEGORIES``), so a new error class needs no entry here."""


class StatusOverride(NamedTuple):
    """A leaf whose status differs from its category's, and why."""

    error_class: type[SluiceError]
    status: int
    reason: str


STATUS_OVERRIDES: tuple[StatusOverride, ...] = (
    StatusOverride(
        PayloadTooLargeError,
        413,
        "HTTP has a status of its own for content over a limit (the body limit answers 413 too); "
        "gRPC has none, so there it stays INVALID_ARGUMENT",
    ),
    StatusOverride(
        CorruptPayloadError,
        500,
        "stored data is damaged: nothing the caller can change; gRPC says DATA_LOSS, whose HTTP "
        "equivalent is 500 (a 409 invited the caller to reload and retry)",
    ),
)
"""The only leaves that do not answer their category's status; tests/unit/test_error_categories.py
checks that REST and gRPC agree on every class."""


def status_for(error: SluiceError | type[SluiceError]) -> int:
    """The HTTP status of a Sluice error (or error class): its override, else its category's, else 500."""
    error_class = error if isinstance(error, type) else type(error)
    for override in STATUS_OVERRIDES:
        if issubclass(error_class, override.error_class):
            return override.status
    category = category_of(error_class)
    return 500 if category is None else STATUS_BY_CATEGORY[category]


class ValidationProblemEntry(BaseModel):
    """One invalid field of a request."""

    location: list[str | int]
    message: str
    type: str


class Problem(BaseModel):
    """An error answer (RFC 9457), with Sluice's stable ``code``."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "urn:sluice:problem:stream_not_found",
                "title": "Not Found",
                "status": 404,
                "detail": "stream 'orders' does not exist",
                "code": "stream_not_found",
                "instance": "/api/event-streams/orders",
            }
        }
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    errors: list[ValidationProblemEntry] | None = None


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    errors: list[ValidationProblemEntry] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return problem_at(request.url.path, status=status, code=code, detail=detail, errors=errors, headers=headers)


def problem_at(
    path: str,
    *,
    status: int,
    code: str,
    detail: str,
    errors: list[ValidationProblemEntry] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem answer for ``path`` (for ASGI middleware, which has no Request)."""
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + code,
        title=http.HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        instance=path,
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of error answers an operation can give."""
    return {
        status: {
            "description": http.HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


SERVER_SIDE_DETAILS: tuple[tuple[type[SluiceError], str], ...] = (
    (
        ConnectionLostError,
        "the database connection failed during the request; retry (an append with the same event ids is safe to retry)",
    ),
    (StoreClosedError, "the server is shutting down; retry"),
    (MigrationError, "the database schema is not at this server's version; retry later"),
    (DatabaseBusyError, "the database is busy and nothing was changed; retry later"),
    (CorruptPayloadError, "a stored payload is corrupt or uses a compression this server cannot read; it was logged"),
)
"""What a 5xx answer says: the error's own text (driver messages, hosts) goes to the log only."""


def _server_side_detail(error: SluiceError) -> str:
    for error_class, detail in SERVER_SIDE_DETAILS:
        if isinstance(error, error_class):
            return detail
    return "the server could not complete the request; retry later"


async def _sluice_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SluiceError)
    status = status_for(error)
    headers = {"WWW-Authenticate": 'Bearer realm="sluice"'} if status == 401 else None
    detail = str(error)
    if status >= 500:
        logger.warning("request %s %s failed: %s: %s", request.method, request.url.path, type(error).__name__, error)
        detail = _server_side_detail(error)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return problem_response(request, status=status, code=error.code, detail=detail, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    entries = [
        ValidationProblemEntry(
            location=[part if isinstance(part, int) else str(part) for part in detail.get("loc", ())],
            message=str(detail.get("msg", "invalid")),
            type=str(detail.get("type", "invalid")),
        )
        for detail in error.errors()
    ]
    summary = "; ".join(".".join(str(part) for part in entry.location) + ": " + entry.message for entry in entries)
    return problem_response(
        request, status=422, code="validation_error", detail=summary or "invalid request", errors=entries
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: PayloadTooLargeError.code}
    code = codes.get(error.status_code, http.HTTPStatus(error.status_code).phrase.lower().replace(" ", "_"))
    return problem_response(
        request, status=error.status_code, code=code, detail=str(error.detail), headers=dict(error.headers or {})
    )


async def _database_unreachable(request: Request, error: Exception) -> JSONResponse:
    # The driver's own words stay in the log: they name hosts, ports and internals callers need not see.
    logger.warning(
        "request %s %s: the database could not be reached: %s: %s",
        request.method,
        request.url.path,
        type(error).__name__,
        error,
    )
    return problem_response(
        request,
        status=503,
        code=DATABASE_UNAVAILABLE_CODE,
        detail="the database could not be reached; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the API knows about as problem+json."""
    app.add_exception_handler(SluiceError, _sluice_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error_class in DATABASE_UNREACHABLE_ERRORS:
        if issubclass(error_class, Exception) and not issubclass(error_class, SluiceError):
            app.add_exception_handler(error_class, _database_unreachable)


def add_problem_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Put the Problem schema (referenced by every error answer) into an OpenAPI document's components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    return document
