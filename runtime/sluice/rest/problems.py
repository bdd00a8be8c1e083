"""Errors as RFC 9457 problem details (``application/problem+json``) with Sluice's stable error codes.

Every error answer has ``type``, ``title``, ``status``, ``detail``, ``code`` (``SluiceError.code``, or
``validation_error``, ``not_found``, ``method_not_allowed``, ``payload_too_large``, ``database_unavailable``,
``internal_error``) and ``instance`` (the request path); validation errors add ``errors``, one entry per
invalid field. The status follows the error's category; a 5xx answer never carries the error's own text
(driver messages, hosts): that goes to the log.
"""

from __future__ import annotations

import http
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.errors import (
    ConflictError,
    ConnectionLostError,
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
)
from sluice.health.checks import DATABASE_UNREACHABLE_ERRORS

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:sluice:problem:"
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
INTERNAL_ERROR_CODE = "internal_error"
RETRY_AFTER_SECONDS = 5
logger = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[SluiceError], int], ...] = (
    (PayloadTooLargeError, 413),
    (InvalidArgumentError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (FailedPreconditionError, 409),
    (UnavailableError, 503),
    (UnauthenticatedError, 401),
    (PermissionDeniedError, 403),
)
"""By category (``sluice.errors.CATEGORIES``), so a new error class needs no entry here; first match wins
(the one leaf with a status of its own comes before its category). An error outside every category is a 500."""


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


def status_for(error: SluiceError) -> int:
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return 500


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
