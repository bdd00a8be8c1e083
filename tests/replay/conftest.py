"""Replay tests run the library tests once per backend (memory and PostgreSQL) through ``store``."""

from __future__ import annotations

from tests.store_fixtures import store, store_url  # noqa: F401  (shared fixtures)
