"""Group-commit tests run on both backends: ``store`` is parametrized over memory and PostgreSQL."""

from __future__ import annotations

from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)
