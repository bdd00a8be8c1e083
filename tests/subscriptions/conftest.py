"""Fixtures of the subscription tests (defined in wakeups.py, shared with tests/postgres/test_notifications.py)."""

from tests.store_fixtures import store_url  # noqa: F401  (shared fixture: memory and PostgreSQL)
from tests.subscriptions.wakeups import refused_connections  # noqa: F401  (shared fixture)
