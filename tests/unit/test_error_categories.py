"""Every Sluice error belongs to exactly one category, so each door (REST, gRPC, CLI) maps categories
once instead of keeping a table per error class; REST and gRPC agree on what each category (and each of
the few overridden leaves) answers."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import httpx
import pytest
from fastapi import FastAPI

import sluice
from sluice.core import errors
from sluice.core.errors import CATEGORIES, SluiceError, category_of
from sluice.rest import problems as rest_problems
from sluice.rpc import status_codes as rpc_status_codes


def _import_every_runtime_module() -> None:
    for module in pkgutil.walk_packages(sluice.__path__, prefix="sluice."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _all_subclasses(base: type[SluiceError]) -> set[type[SluiceError]]:
    found: set[type[SluiceError]] = set()
    pending = list(base.__subclasses__())
    while pending:
        error_class = pending.pop()
        if error_class not in found:
            found.add(error_class)
            pending.extend(error_class.__subclasses__())
    return found


def _runtime_error_classes() -> list[type[SluiceError]]:
    _import_every_runtime_module()
    return sorted(
        (cls for cls in _all_subclasses(SluiceError) if cls.__module__.split(".")[0] == "sluice"),
        key=lambda cls: cls.__qualname__,
    )


def test_the_walk_finds_the_runtime_errors() -> None:
    classes = _runtime_error_classes()
    assert errors.StreamNotFoundError in classes
    assert errors.ConnectionLostError in classes
    assert len(classes) >= 45


@pytest.mark.parametrize("error_class", _runtime_error_classes(), ids=lambda cls: cls.__qualname__)
def test_every_error_class_has_exactly_one_category(error_class: type[SluiceError]) -> None:
    categories = [category for category in CATEGORIES if issubclass(error_class, category)]
    assert len(categories) == 1, f"{error_class.__qualname__} is in {categories}"
    assert category_of(error_class) is categories[0]


def test_error_codes_are_unique() -> None:
    classes = _runtime_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), sorted(code for code in codes if codes.count(code) > 1)


@pytest.mark.parametrize(
    ("error_class", "category"),
    [
        (errors.StreamDeletedError, errors.NotFoundError),
        (errors.ConcurrencyError, errors.ConflictError),
        (errors.FencedError, errors.FailedPreconditionError),
        (errors.ConnectionLostError, errors.UnavailableError),
        (errors.DatabaseBusyError, errors.UnavailableError),
        (errors.PayloadTooLargeError, errors.InvalidArgumentError),
        (errors.PermissionDeniedError, errors.PermissionDeniedError),
        (errors.UnauthenticatedError, errors.UnauthenticatedError),
    ],
)
def test_known_classes_sit_in_their_category(error_class: type[SluiceError], category: type[SluiceError]) -> None:
    assert category_of(error_class) is category


def test_existing_builtin_bases_are_kept() -> None:
    assert issubclass(errors.StreamNotFoundError, LookupError)
    assert issubclass(errors.ConnectionLostError, ConnectionError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.PermissionDeniedError, PermissionError)
    assert issubclass(errors.StreamTypeError, TypeError)


def test_every_error_class_of_sluice_errors_is_in_its_all() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, SluiceError) and value.__module__ == errors.__name__
    }
    assert defined <= set(errors.__all__), sorted(defined - set(errors.__all__))
    assert all(hasattr(errors, name) for name in errors.__all__)


DOORS: dict[type[SluiceError], tuple[int, grpc.StatusCode]] = {
    errors.InvalidArgumentError: (400, grpc.StatusCode.INVALID_ARGUMENT),
    errors.NotFoundError: (404, grpc.StatusCode.NOT_FOUND),
    errors.ConflictError: (409, grpc.StatusCode.ABORTED),
    errors.FailedPreconditionError: (409, grpc.StatusCode.FAILED_PRECONDITION),
    errors.UnavailableError: (503, grpc.StatusCode.UNAVAILABLE),
    errors.UnauthenticatedError: (401, grpc.StatusCode.UNAUTHENTICATED),
    errors.PermissionDeniedError: (403, grpc.StatusCode.PERMISSION_DENIED),
}
"""What each category answers at the REST and the gRPC door (docs/errors.md shows the same table)."""

LEAF_OVERRIDES: dict[type[SluiceError], tuple[int, grpc.StatusCode]] = {
    errors.PayloadTooLargeError: (413, grpc.StatusCode.INVALID_ARGUMENT),
    errors.StreamAlreadyExistsError: (409, grpc.StatusCode.ALREADY_EXISTS),
    errors.CorruptPayloadError: (500, grpc.StatusCode.DATA_LOSS),
}
"""The only leaves (with their subclasses) that answer differently from their category at some door."""


def test_both_doors_map_every_category_as_the_table_says() -> None:
    assert set(DOORS) == set(CATEGORIES)
    assert dict(rest_problems.STATUS_BY_CATEGORY) == {category: http for category, (http, _) in DOORS.items()}
    assert dict(rpc_status_codes.STATUS_BY_CATEGORY) == {category: code for category, (_, code) in DOORS.items()}


def _expected_answers(error_class: type[SluiceError]) -> tuple[int, grpc.StatusCode]:
    for ancestor in error_class.__mro__:
        if ancestor in LEAF_OVERRIDES:
            return LEAF_OVERRIDES[ancestor]
    category = category_of(error_class)
    assert category is not None, error_class
    return DOORS[category]


@pytest.mark.parametrize("error_class", _runtime_error_classes(), ids=lambda cls: cls.__qualname__)
def test_the_two_doors_agree_on_every_error_class(error_class: type[SluiceError]) -> None:
    answers = (rest_problems.status_for(error_class), rpc_status_codes.status_for(error_class))
    assert answers == _expected_answers(error_class)


@pytest.mark.parametrize(
    "overrides",
    [rest_problems.STATUS_OVERRIDES, rpc_status_codes.STATUS_OVERRIDES],
    ids=["rest", "grpc"],
)
def test_every_override_is_a_known_leaf_with_a_reason_and_a_different_answer(
    overrides: tuple[rest_problems.StatusOverride, ...] | tuple[rpc_status_codes.StatusOverride, ...],
) -> None:
    for override in overrides:
        assert override.error_class in LEAF_OVERRIDES, override.error_class
        assert len(override.reason) > 20, override.error_class
        category = category_of(override.error_class)
        assert category is not None
        rest_status, grpc_status = DOORS[category]
        assert override.status not in (rest_status, grpc_status), f"{override.error_class} repeats its category"


def test_an_error_outside_every_category_is_an_internal_error_at_both_doors() -> None:
    assert rest_problems.status_for(SluiceError("something new")) == 500
    assert rpc_status_codes.status_for(SluiceError("something new")) == grpc.StatusCode.INTERNAL
    assert rest_problems.status_for(errors.StreamDeletedError("orders")) == 404
    busy = errors.DatabaseBusyError("busy")
    assert (rest_problems.status_for(busy), rpc_status_codes.status_for(busy)) == (503, grpc.StatusCode.UNAVAILABLE)


@pytest.mark.parametrize(
    ("error", "status", "hidden_text"),
    [
        (errors.CorruptPayloadError("a zstd-compressed payload is corrupt: frame 7"), 500, "frame 7"),
        (errors.PayloadTooLargeError(size=9, limit=8, event_type="A"), 413, None),
        (errors.ConcurrencyError(stream_name="s", partition=0, expected="offset 1", head=3), 409, None),
    ],
    ids=["corrupt_payload", "payload_too_large", "concurrency_conflict"],
)
async def test_the_rest_door_answers_overrides_and_categories_as_problems(
    error: SluiceError, status: int, hidden_text: str | None
) -> None:
    app = FastAPI()
    rest_problems.install_problem_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sluice.test") as client:
        answer = await client.get("/fails")
    assert answer.status_code == status
    assert answer.json()["code"] == error.code
    assert answer.json()["type"] == rest_problems.PROBLEM_TYPE_PREFIX + error.code
    if hidden_text is None:
        assert answer.json()["detail"] == str(error)
    else:
        assert hidden_text not in answer.json()["detail"]
