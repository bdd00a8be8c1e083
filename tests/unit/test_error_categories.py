"""Every Sluice error belongs to exactly one category, so each door (REST, gRPC, CLI) maps categories
once instead of keeping a table per error class."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sluice
from sluice import errors
from sluice.errors import CATEGORIES, SluiceError, category_of


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
