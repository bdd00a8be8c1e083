"""Fixtures of the observability tests: a store per backend (memory and a real PostgreSQL)."""

from __future__ import annotations

from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)
