"""Finding the database of an object: its Secret reference, or the operator's default database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice_operator.controllers.context import OperatorContext
from sluice_operator.errors import DatabaseSecretError
from sluice_operator.models.common import DatabaseReference
from sluice_operator.reconcile.databases import DatabaseTarget, database_url_from_secret, pod_database_environment

__all__ = ["ResolvedDatabase", "resolve_database"]


@dataclass(frozen=True)
class ResolvedDatabase:
    """A database for the operator to connect to, and the environment that gives pods the same database."""

    target: DatabaseTarget
    pod_environment: list[dict[str, Any]]


async def resolve_database(
    context: OperatorContext, namespace: str, reference: DatabaseReference | None
) -> ResolvedDatabase:
    """Read the referenced Secret (or take the default); DatabaseSecretError when neither gives a database."""
    settings = context.settings
    if reference is None:
        if settings.default_database_url is None:
            raise DatabaseSecretError("no spec.database given and the operator has no default database (SLUICE_DSN)")
        target = DatabaseTarget(settings.default_database_url, settings.default_schema_name)
        environment = pod_database_environment(
            None, None, default_url=settings.default_database_url, default_schema_name=settings.default_schema_name
        )
        return ResolvedDatabase(target, environment)
    secret_name = reference.secret_ref.name
    data = await context.kubernetes.read_secret_data(namespace, secret_name)
    if data is None:
        raise DatabaseSecretError(f"Secret {secret_name!r} not found in namespace {namespace!r}")
    target = DatabaseTarget(database_url_from_secret(secret_name, data), reference.schema_name)
    environment = pod_database_environment(
        reference, data, default_url=None, default_schema_name=settings.default_schema_name
    )
    return ResolvedDatabase(target, environment)
