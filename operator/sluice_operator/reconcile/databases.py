"""Which database an object uses, as a URL for the operator and as environment variables for pods.

A database reference names a Secret with either a ``uri`` key, or ``host``, ``port``, ``dbname``, ``user``
and ``password`` keys as CloudNativePG's application secrets have. Without a reference the operator's
default database (``SLUICE_DSN``) is used.

Pods never get a password in their spec: they read the Secret through ``secretKeyRef``. With a ``uri`` key
that is ``SLUICE_DSN`` itself; with separate keys they are libpq's ``PGHOST``, ``PGPORT``, ``PGDATABASE``,
``PGUSER`` and ``PGPASSWORD`` (which asyncpg reads for whatever the URL leaves out) and ``SLUICE_DSN`` is
``postgresql://``, so a password with URL-special characters needs no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from sluice_operator.errors import DatabaseSecretError
from sluice_operator.models.common import DatabaseReference

__all__ = [
    "DatabaseTarget",
    "database_url_from_secret",
    "pod_database_environment",
]

URI_KEY = "uri"
PART_KEYS = ("host", "dbname", "user", "password")
POSTGRES_SCHEMES = ("postgres", "postgresql")
LIBPQ_VARIABLES = (
    ("PGHOST", "host", False),
    ("PGPORT", "port", True),
    ("PGDATABASE", "dbname", False),
    ("PGUSER", "user", False),
    ("PGPASSWORD", "password", False),
)


@dataclass(frozen=True)
class DatabaseTarget:
    """One database and schema: what the operator connects to and migrates."""

    url: str
    schema_name: str

    @property
    def display_name(self) -> str:
        """The URL without user or password, for messages and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path} (schema {self.schema_name})"


def database_url_from_secret(secret_name: str, data: Mapping[str, str]) -> str:
    """The connection URL a Secret's (decoded) data describes; raises DatabaseSecretError if it describes none."""
    uri = data.get(URI_KEY)
    if uri:
        if urlsplit(uri).scheme not in POSTGRES_SCHEMES:
            raise DatabaseSecretError(f"Secret {secret_name!r}: the {URI_KEY!r} key must be a postgresql:// URL")
        return uri
    missing = [key for key in PART_KEYS if not data.get(key)]
    if missing:
        raise DatabaseSecretError(
            f"Secret {secret_name!r} needs a {URI_KEY!r} key, or host, dbname, user and password keys"
            f" (missing: {', '.join(missing)})"
        )
    port = data.get("port") or "5432"
    if not port.isdigit():
        raise DatabaseSecretError(f"Secret {secret_name!r}: port {port!r} is not a number")
    user = quote(data["user"], safe="")
    password = quote(data["password"], safe="")
    host = data["host"]
    host_part = f"[{host}]" if ":" in host else host
    return f"postgresql://{user}:{password}@{host_part}:{port}/{quote(data['dbname'], safe='')}"


def pod_database_environment(
    reference: DatabaseReference | None,
    secret_data: Mapping[str, str] | None,
    *,
    default_url: str | None,
    default_schema_name: str,
) -> list[dict[str, Any]]:
    """The environment variables that give a pod the database: SLUICE_DSN (from the Secret when there is one)
    and SLUICE_SCHEMA."""
    if reference is None:
        if default_url is None:
            raise DatabaseSecretError(
                "no spec.database on the EventStream and no operator default database (SLUICE_DSN)"
            )
        return [
            {"name": "SLUICE_DSN", "value": default_url},
            {"name": "SLUICE_SCHEMA", "value": default_schema_name},
        ]
    secret_name = reference.secret_ref.name
    data = secret_data or {}
    schema = {"name": "SLUICE_SCHEMA", "value": reference.schema_name}
    if data.get(URI_KEY):
        return [{"name": "SLUICE_DSN", "valueFrom": _secret_key(secret_name, URI_KEY)}, schema]
    database_url_from_secret(secret_name, data)  # raises when the keys are not there
    environment: list[dict[str, Any]] = [
        {"name": variable, "valueFrom": _secret_key(secret_name, key, optional=optional)}
        for variable, key, optional in LIBPQ_VARIABLES
    ]
    environment.append({"name": "SLUICE_DSN", "value": "postgresql://"})
    environment.append(schema)
    return environment


def _secret_key(secret_name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": secret_name, "key": key}
    if optional:
        reference["optional"] = True
    return {"secretKeyRef": reference}
