"""The retention suite runs on both backends: ``store`` is parametrized over memory and PostgreSQL (a
real server, a fresh database per test), as in tests/contract."""

from __future__ import annotations

from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)
