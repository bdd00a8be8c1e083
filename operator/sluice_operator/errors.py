"""Typed errors of the operator: what can be wrong with a custom resource or its surroundings.

Each derives from ``sluice.core.errors.SluiceError`` with a stable ``code``; the reconcilers turn them into
conditions (``reason`` is the error's ``reason``), so a user reads the cause in ``kubectl describe``.
"""

from __future__ import annotations

from sluice.core.errors import SluiceError

__all__ = [
    "DatabaseSecretError",
    "DatabaseUnavailableError",
    "OperatorError",
    "ReferenceNotFoundError",
    "UnsupportedSpecError",
]


class OperatorError(SluiceError):
    """Base of the operator's errors; ``reason`` is the CamelCase condition reason it becomes."""

    code = "operator_error"
    reason = "ReconcileFailed"


class DatabaseSecretError(OperatorError):
    """The database Secret is missing, or has neither a ``uri`` key nor host, dbname, user and password."""

    code = "invalid_database_secret"
    reason = "InvalidDatabaseSecret"


class DatabaseUnavailableError(OperatorError):
    """PostgreSQL could not be reached, or answered with an error, or the schema could not be migrated."""

    code = "database_unavailable"
    reason = "DatabaseUnreachable"


class ReferenceNotFoundError(OperatorError):
    """An object named in the spec (an EventStream, a ConsumerGroup, a Projection) does not exist."""

    code = "reference_not_found"
    reason = "ReferenceNotFound"


class UnsupportedSpecError(OperatorError):
    """The spec asks for something this version of Sluice cannot do (it will not fix itself)."""

    code = "unsupported_spec"
    reason = "UnsupportedSpec"
