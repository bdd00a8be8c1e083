"""The contract suite runs every test once per backend: ``store`` is parametrized over memory and
PostgreSQL (a real server, a fresh database per test)."""

from __future__ import annotations

from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)
