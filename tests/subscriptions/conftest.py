"""Fixtures of the subscription tests (defined in wakeups.py, shared with tests/postgres/test_notifications.py)."""

from tests.subscriptions.wakeups import refused_connections  # noqa: F401  (shared fixture)
